//! The `crm` command line.
use std::sync::Arc;

use anyhow::Context as _;
use chrono::{DateTime, Utc};
use clap::{Parser, Subcommand};

use crate::auth::{JwtKeys, MAX_TOKEN_TTL, Role};
use crate::clock::{ManualClock, SharedClock, SystemClock};
use crate::config::{DatabaseArgs, ExpiryArgs, JwtArgs, ServeArgs, Settings};
use crate::startup::{Application, RunOptions};
use crate::{graphql, jobs, store};

/// How many ids `crm expire --dry-run` lists.
pub const DRY_RUN_LISTED: u64 = 20;

#[derive(Parser, Debug)]
#[command(
    name = "crm",
    version,
    about = "Car-dealership CRM back end (GraphQL)."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,

    /// Log lines as human-readable text or as JSON objects (one per line).
    #[arg(long, env = "CRM_LOG_FORMAT", global = true, default_value = "text")]
    pub log_format: crate::telemetry::LogFormat,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Run the server: migrations, GraphQL, GraphiQL, health, metrics, sweep.
    Serve(ServeArgs),
    /// Apply pending database migrations and exit.
    Migrate(DatabaseArgs),
    /// Apply the expiry rule to every due opportunity now (or at --now).
    Expire {
        #[command(flatten)]
        database: DatabaseArgs,
        #[command(flatten)]
        expiry: ExpiryArgs,
        /// Print what would expire, change nothing.
        #[arg(long)]
        dry_run: bool,
        /// Evaluate the rule at this instant (RFC 3339) instead of now.
        #[arg(long)]
        now: Option<DateTime<Utc>>,
    },
    /// Print a signed token for ROLE and subject ID (needs CRM_JWT_SECRET).
    Token {
        #[command(flatten)]
        jwt: JwtArgs,
        /// ADMIN, AGENT or PARTNER (any case).
        #[arg(long)]
        role: Role,
        /// The token's subject: user or partner id.
        #[arg(long)]
        sub: String,
        /// Lifetime, e.g. 8h, 30m, 7d.
        #[arg(long, default_value = "8h", value_parser = humantime::parse_duration)]
        ttl: std::time::Duration,
    },
    /// Print the GraphQL SDL as ROLE sees it (default ADMIN: the whole schema).
    Schema {
        #[arg(long, default_value = "ADMIN")]
        role: Role,
    },
}

pub async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => serve(args.into()).await,
        Command::Migrate(database) => {
            let db = store::connect(&database.database_url).await?;
            store::migrate(&db).await?;
            println!("migrations applied");
            Ok(())
        }
        Command::Expire {
            database,
            expiry,
            dry_run,
            now,
        } => expire(database, expiry, dry_run, now).await,
        Command::Token {
            jwt,
            role,
            sub,
            ttl,
        } => {
            let secret = jwt
                .jwt_secret
                .as_deref()
                .context("CRM_JWT_SECRET (or --jwt-secret) is required to sign a token")?;
            crate::auth::check_secret(secret).map_err(anyhow::Error::msg)?;
            let ttl = chrono::Duration::from_std(ttl).context("--ttl is too long")?;
            anyhow::ensure!(ttl <= MAX_TOKEN_TTL, "--ttl may not exceed 366 days");
            anyhow::ensure!(!sub.trim().is_empty(), "--sub may not be empty");
            let keys = JwtKeys::hs256(secret.as_bytes(), &jwt.jwt_issuer, &jwt.jwt_audience);
            println!("{}", keys.issue(role, &sub, ttl, Utc::now())?);
            Ok(())
        }
        Command::Schema { role } => {
            print!("{}", graphql::sdl_for(role));
            Ok(())
        }
    }
}

async fn serve(settings: Settings) -> anyhow::Result<()> {
    tracing::info!(?settings, "starting");
    let clock: SharedClock = Arc::new(SystemClock);
    let app = Application::build(settings.clone(), clock, RunOptions::default()).await?;
    let base = format!("http://{}", display_addr(&settings.bind, app.port()));
    if let Some(tokens) = app.dev_tokens() {
        println!(
            "Development mode: CRM_JWT_SECRET is not set, tokens are signed with an ephemeral secret."
        );
        println!("ADMIN token: {}", tokens.admin);
        println!("AGENT token: {}", tokens.agent);
        println!("PARTNER token: {}", tokens.partner);
        println!(
            "In GraphiQL, put {{\"Authorization\": \"Bearer <token>\"}} in the Headers pane, then press \"Re-fetch GraphQL schema\"."
        );
    }
    println!("GraphiQL: {base}/graphiql");
    println!("GraphQL:  {base}/graphql");
    app.run_until_stopped().await?;
    tracing::info!("stopped");
    Ok(())
}

fn display_addr(bind: &str, port: u16) -> String {
    let host = bind.rsplit_once(':').map_or(bind, |(h, _)| h);
    let host = if host == "0.0.0.0" { "127.0.0.1" } else { host };
    format!("{host}:{port}")
}

async fn expire(
    database: DatabaseArgs,
    expiry: ExpiryArgs,
    dry_run: bool,
    at: Option<DateTime<Utc>>,
) -> anyhow::Result<()> {
    let db = store::connect(&database.database_url).await?;
    store::migrate(&db).await?;
    let clock: SharedClock = match at {
        Some(at) => Arc::new(ManualClock::new(at)),
        None => Arc::new(SystemClock),
    };
    let now = clock.now();
    let policy = expiry.policy();
    if dry_run {
        let (count, ids) = store::expiry::dry_run(&db, &policy, now, DRY_RUN_LISTED).await?;
        println!("would expire {count} opportunities at {}", now.to_rfc3339());
        for id in ids {
            println!("{id}");
        }
    } else {
        let report = jobs::expiry_sweep::sweep_once(&db, &policy, now).await?;
        if report.ran {
            println!(
                "expired {} opportunities at {}",
                report.expired,
                now.to_rfc3339()
            );
        } else {
            println!("another instance is sweeping; nothing done");
        }
    }
    Ok(())
}
