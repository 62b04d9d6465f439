//! Building and running the application: `Application::build`, `port`,
//! `run_until_stopped`. The endpoints themselves are in [`crate::http`].
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::Server;
use actix_web::{App, HttpServer, web};
use chrono::Duration as TokenTtl;
use sea_orm::DatabaseConnection;

use crate::auth::{JwtKeys, Role};
use crate::clock::SharedClock;
use crate::config::{Settings, redact_url};
use crate::error::AppError;
use crate::events::EventBus;
use crate::graphql::{self, ApiContext};
use crate::http::AppState;
use crate::jobs::expiry_sweep;
use crate::live::{self, LiveState};
use crate::store;

pub use crate::http::graphql::MAX_RESPONSE_BYTES;
pub use crate::http::{BODY_READ_DEADLINE, HEADER_READ_DEADLINE, MAX_BODY_BYTES};
/// How long in-flight requests get to finish on shutdown.
pub const SHUTDOWN_GRACE: Duration = Duration::from_secs(30);
/// Lifetime of the tokens printed in development mode.
pub const DEV_TOKEN_TTL: TokenTtl = TokenTtl::hours(12);

/// How the application runs besides its settings.
#[derive(Clone, Copy, Debug)]
pub struct RunOptions {
    /// Run the background expiry sweep.
    pub sweep: bool,
    /// Stop gracefully on SIGINT/SIGTERM (off for in-process tests).
    pub handle_signals: bool,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            sweep: true,
            handle_signals: true,
        }
    }
}

/// Tokens printed by `crm serve` in development mode.
#[derive(Clone, Debug)]
pub struct DevTokens {
    pub admin: String,
    pub agent: String,
    pub partner: String,
}

pub struct Application {
    port: u16,
    server: Server,
    db: DatabaseConnection,
    sweeper: Option<(
        tokio::task::JoinHandle<()>,
        tokio::sync::watch::Sender<bool>,
    )>,
    dev_tokens: Option<DevTokens>,
    /// The event listener (PostgreSQL) and its stop signal.
    events: (
        Option<tokio::task::JoinHandle<()>>,
        tokio::sync::watch::Sender<bool>,
    ),
}

#[derive(Debug, thiserror::Error)]
pub enum StartupError {
    #[error("cannot open the database {url}: {source}")]
    Database { url: String, source: sea_orm::DbErr },
    #[error("cannot migrate the database: {0}")]
    Migration(sea_orm::DbErr),
    #[error("cannot bind {addr}: {source}")]
    Bind {
        addr: String,
        source: std::io::Error,
    },
    #[error("cannot issue development tokens: {0}")]
    Tokens(AppError),
    #[error("{0}")]
    WeakSecret(String),
    #[error("cannot load the revoked token subjects: {0}")]
    Partners(AppError),
    #[error("cannot listen for events: {0}")]
    Events(sea_orm::sqlx::Error),
}

impl Application {
    /// Connect, migrate, build the schema and bind the listener.
    pub async fn build(
        settings: Settings,
        clock: SharedClock,
        options: RunOptions,
    ) -> Result<Self, StartupError> {
        let (jwt, dev_tokens) = keys(&settings)?;
        let db = database(&settings).await?;
        let policy = settings.expiry_policy();
        let partners = crate::partners::PartnerControls::start(&db, settings.partner_rate())
            .await
            .map_err(StartupError::Partners)?;
        let (events_stop, events_stop_rx) = tokio::sync::watch::channel(false);
        let (bus, event_listener) = EventBus::start(&db, &settings.database_url, events_stop_rx)
            .await
            .map_err(StartupError::Events)?;
        let api = ApiContext {
            db: db.clone(),
            policy: Arc::new(policy.clone()),
            clock: clock.clone(),
            partners,
            bus: bus.clone(),
        };
        let loader_delay = std::time::Duration::from_millis(settings.loader_delay_ms);
        let schema = graphql::build_schema(api.clone(), loader_delay);
        let (going_away, going_away_rx) = tokio::sync::watch::channel(false);
        if options.handle_signals {
            tokio::spawn(live::watch_shutdown_signals(going_away));
        }
        let live_state = web::Data::new(LiveState::new(
            schema.clone(),
            jwt.clone(),
            bus,
            db.clone(),
            live::LiveTimeouts::from(&settings),
            going_away_rx,
        ));
        let state = web::Data::new(AppState {
            schema,
            jwt,
            db: db.clone(),
            api,
        });
        let (server, port) = http_server(&settings, &options, state, live_state)?;
        let sweeper = options
            .sweep
            .then(|| start_sweeper(&settings, db.clone(), policy, clock));
        Ok(Self {
            port,
            server,
            db,
            sweeper,
            dev_tokens,
            events: (event_listener, events_stop),
        })
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }

    /// The tokens to print when running without `CRM_JWT_SECRET`.
    pub fn dev_tokens(&self) -> Option<&DevTokens> {
        self.dev_tokens.as_ref()
    }

    /// Serve until stopped (SIGINT/SIGTERM: in-flight requests finish first),
    /// then stop the sweeper and close the pool.
    pub async fn run_until_stopped(self) -> std::io::Result<()> {
        let result = self.server.await;
        if let Some((handle, stop)) = self.sweeper {
            let _ = stop.send(true);
            let _ = handle.await;
        }
        let (listener, stop) = self.events;
        let _ = stop.send(true);
        if let Some(listener) = listener {
            let _ = listener.await;
        }
        let _ = self.db.close().await;
        result
    }
}

/// The signing keys: from the configured secret, or a random one with
/// printed development tokens when none is set.
fn keys(settings: &Settings) -> Result<(JwtKeys, Option<DevTokens>), StartupError> {
    let Some(secret) = &settings.jwt_secret else {
        return dev_keys(settings);
    };
    crate::auth::check_secret(secret).map_err(StartupError::WeakSecret)?;
    let jwt = JwtKeys::hs256(
        secret.as_bytes(),
        &settings.jwt_issuer,
        &settings.jwt_audience,
    );
    Ok((jwt, None))
}

fn dev_keys(settings: &Settings) -> Result<(JwtKeys, Option<DevTokens>), StartupError> {
    let secret = format!(
        "{}{}",
        uuid::Uuid::new_v4().simple(),
        uuid::Uuid::new_v4().simple()
    );
    let jwt = JwtKeys::hs256(
        secret.as_bytes(),
        &settings.jwt_issuer,
        &settings.jwt_audience,
    );
    let now = chrono::Utc::now();
    let issue = |role, sub| {
        jwt.issue(role, sub, DEV_TOKEN_TTL, now)
            .map_err(StartupError::Tokens)
    };
    let tokens = DevTokens {
        admin: issue(Role::Admin, "dev-admin")?,
        agent: issue(Role::Agent, "dev-agent")?,
        partner: issue(Role::Partner, "dev-partner")?,
    };
    Ok((jwt, Some(tokens)))
}

/// The pool, migrated.
async fn database(settings: &Settings) -> Result<DatabaseConnection, StartupError> {
    let db = store::connect(&settings.database_url)
        .await
        .map_err(|source| StartupError::Database {
            url: redact_url(&settings.database_url),
            source,
        })?;
    store::migrate(&db).await.map_err(StartupError::Migration)?;
    Ok(db)
}

/// Bind the listener and start serving the routes; returns the server and
/// its port.
fn http_server(
    settings: &Settings,
    options: &RunOptions,
    state: web::Data<AppState>,
    live_state: web::Data<LiveState>,
) -> Result<(Server, u16), StartupError> {
    let bind_error = |source| StartupError::Bind {
        addr: settings.bind.clone(),
        source,
    };
    let listener = TcpListener::bind(&settings.bind).map_err(bind_error)?;
    let port = listener.local_addr().map_err(bind_error)?.port();
    let cors_origins = settings.cors_origins.clone();
    let mut server = HttpServer::new(move || {
        App::new()
            .wrap(crate::cors::layer(&cors_origins))
            .wrap(actix_web::middleware::from_fn(crate::cors::json_refusals))
            .wrap(actix_web::middleware::from_fn(crate::http_log::middleware))
            .app_data(state.clone())
            .app_data(live_state.clone())
            .configure(crate::http::routes)
    })
    .client_request_timeout(HEADER_READ_DEADLINE)
    .shutdown_timeout(SHUTDOWN_GRACE.as_secs());
    if !options.handle_signals {
        server = server.disable_signals().workers(2);
    }
    let server = server.listen(listener).map_err(bind_error)?.run();
    Ok((server, port))
}

/// The expiry sweep on its interval, and the sender that stops it.
fn start_sweeper(
    settings: &Settings,
    db: DatabaseConnection,
    policy: crate::domain::expiry::ExpiryPolicy,
    clock: SharedClock,
) -> (
    tokio::task::JoinHandle<()>,
    tokio::sync::watch::Sender<bool>,
) {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let handle = tokio::spawn(expiry_sweep::run(
        db,
        policy,
        clock,
        Duration::from_secs(settings.sweep_interval_secs),
        stop_rx,
    ));
    (handle, stop_tx)
}
