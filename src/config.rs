//! Configuration: clap argument groups (each flag also read from the
//! environment), one per concern, so every command lists only its own.
use std::fmt;

use crate::domain::expiry::{DEFAULT_WINDOW_DAYS, ExpiryPolicy};

/// Default database: an SQLite file in the working directory, created on start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://crm.sqlite?mode=rwc";
/// Default partner rate limit (SPEC 5).
pub const DEFAULT_PARTNER_RATE_PER_MIN: u32 = 600;
/// Default time allowed for a WebSocket's `connection_init` (10 s, as the
/// `graphql-ws` protocol suggests).
pub const DEFAULT_WS_INIT_TIMEOUT_MS: u64 = 10_000;
/// Default WebSocket ping period.
pub const DEFAULT_WS_PING_INTERVAL_MS: u64 = 30_000;
/// Default longest wait of an event behind a socket's previous write, during
/// a burst (see [`crate::live::LiveTimeouts::coalesce`]). 100 ms rather than
/// 50: the subscribers' extra CPU per lead was about a fifth lower over 20
/// alternate runs of `live_bench` each (README, Performance), for events
/// that wait at most about 0.2 s during a burst, on screens read by people.
pub const DEFAULT_WS_COALESCE_MS: u64 = 100;
/// Default time a GraphQL request's loads of one kind gather before their
/// batch goes to the database (async-graphql's `DataLoader` delay).
pub const DEFAULT_LOADER_DELAY_MS: u64 = 1;

/// `--database-url`: every command that touches the database.
#[derive(Clone, clap::Args)]
pub struct DatabaseArgs {
    /// Database URL: `postgres://...` or `sqlite://file?mode=rwc`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL,
          hide_env_values = true)]
    pub database_url: String,
}

/// The JWT settings: `crm serve` and `crm token`.
#[derive(Clone, clap::Args)]
pub struct JwtArgs {
    /// HS256 secret for JWTs. Unset: development mode with an ephemeral secret.
    #[arg(long, env = "CRM_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Required `iss` claim.
    #[arg(long, env = "CRM_JWT_ISSUER", default_value = "crm")]
    pub jwt_issuer: String,

    /// Required `aud` claim (the token's audience must contain it).
    #[arg(long, env = "CRM_JWT_AUDIENCE", default_value = "crm-api")]
    pub jwt_audience: String,
}

/// The expiry rule's window: `crm serve` and `crm expire`.
#[derive(Clone, Debug, clap::Args)]
pub struct ExpiryArgs {
    /// Days after creation at which an unprotected opportunity expires.
    #[arg(long, env = "CRM_EXPIRY_DAYS", default_value_t = DEFAULT_WINDOW_DAYS,
          value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub expiry_days: i64,
}

/// What only the server needs (`crm serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct ServerArgs {
    /// Address the HTTP server binds.
    #[arg(long, env = "CRM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// Seconds between two background expiry sweeps.
    #[arg(long, env = "CRM_SWEEP_INTERVAL_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval_secs: u64,

    /// Browser origins allowed to call the API cross-origin, comma-separated
    /// (`https://crm.example.com,http://localhost:5173`). Unset: none.
    #[arg(long, env = "CRM_CORS_ORIGINS", value_delimiter = ',',
          value_parser = parse_origin)]
    pub cors_origins: Vec<String>,

    /// Lead intakes per minute allowed to each PARTNER token subject
    /// (`submitLead` and `POST /leads/adf` together).
    #[arg(long, env = "CRM_PARTNER_RATE_PER_MIN", default_value_t = DEFAULT_PARTNER_RATE_PER_MIN,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub partner_rate_per_min: u32,

    /// Milliseconds a WebSocket may take to send `connection_init` before it
    /// is closed with 4408.
    #[arg(long, env = "CRM_WS_INIT_TIMEOUT_MS", default_value_t = DEFAULT_WS_INIT_TIMEOUT_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ws_init_timeout_ms: u64,

    /// Milliseconds between two WebSocket pings; a client silent for two
    /// periods (not even a pong) is dropped.
    #[arg(long, env = "CRM_WS_PING_INTERVAL_MS", default_value_t = DEFAULT_WS_PING_INTERVAL_MS,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub ws_ping_interval_ms: u64,

    /// Milliseconds events wait to go out together after a WebSocket's
    /// previous write of events (0: every event at once). An event after a
    /// quiet spell is never delayed.
    #[arg(long, env = "CRM_WS_COALESCE_MS", default_value_t = DEFAULT_WS_COALESCE_MS,
          value_parser = clap::value_parser!(u64).range(0..=5_000))]
    pub ws_coalesce_ms: u64,

    /// Milliseconds a request's loads of one kind (the clients of a page of
    /// opportunities, ...) gather before their one statement is sent. A
    /// batch is split when loads come later than that: on a machine starved
    /// of CPU, a longer delay keeps them together, at that cost in latency.
    #[arg(long, env = "CRM_LOADER_DELAY_MS", default_value_t = DEFAULT_LOADER_DELAY_MS,
          value_parser = clap::value_parser!(u64).range(0..=1_000))]
    pub loader_delay_ms: u64,
}

/// Everything `crm serve` reads: the parts above together.
#[derive(Clone, Debug, clap::Args)]
pub struct ServeArgs {
    #[command(flatten)]
    pub database: DatabaseArgs,
    #[command(flatten)]
    pub jwt: JwtArgs,
    #[command(flatten)]
    pub expiry: ExpiryArgs,
    #[command(flatten)]
    pub server: ServerArgs,
}

impl fmt::Debug for DatabaseArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("DatabaseArgs")
            .field("database_url", &redact_url(&self.database_url))
            .finish()
    }
}

impl fmt::Debug for JwtArgs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JwtArgs")
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .finish()
    }
}

impl From<ServeArgs> for Settings {
    fn from(args: ServeArgs) -> Self {
        Self {
            database_url: args.database.database_url,
            bind: args.server.bind,
            jwt_secret: args.jwt.jwt_secret,
            jwt_issuer: args.jwt.jwt_issuer,
            jwt_audience: args.jwt.jwt_audience,
            expiry_days: args.expiry.expiry_days,
            sweep_interval_secs: args.server.sweep_interval_secs,
            cors_origins: args.server.cors_origins,
            partner_rate_per_min: args.server.partner_rate_per_min,
            ws_init_timeout_ms: args.server.ws_init_timeout_ms,
            ws_ping_interval_ms: args.server.ws_ping_interval_ms,
            ws_coalesce_ms: args.server.ws_coalesce_ms,
            loader_delay_ms: args.server.loader_delay_ms,
        }
    }
}

/// One CORS origin: `scheme://host[:port]`, no path, no wildcard.
fn parse_origin(value: &str) -> Result<String, String> {
    let origin = value.trim().trim_end_matches('/');
    let rest = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
        .ok_or_else(|| format!("{origin:?}: an origin starts with http:// or https://"))?;
    if rest.is_empty() || rest.contains(['/', '*', '?', '#', '@', ' ']) {
        return Err(format!(
            "{origin:?}: an origin is scheme://host[:port], without path or wildcard"
        ));
    }
    Ok(origin.to_ascii_lowercase())
}

/// The server's settings, as `Application::build` takes them (`crm serve`
/// reads them from [`ServeArgs`]; tests build them in code).
#[derive(Clone)]
pub struct Settings {
    /// Database URL: `postgres://...` or `sqlite://file?mode=rwc`.
    pub database_url: String,
    /// Address the HTTP server binds.
    pub bind: String,
    /// HS256 secret for JWTs. Unset: development mode with an ephemeral secret.
    pub jwt_secret: Option<String>,
    /// Required `iss` claim.
    pub jwt_issuer: String,
    /// Required `aud` claim.
    pub jwt_audience: String,
    /// Days after creation at which an unprotected opportunity expires.
    pub expiry_days: i64,
    /// Seconds between two background expiry sweeps.
    pub sweep_interval_secs: u64,
    /// Origins allowed cross-origin access (empty: none).
    pub cors_origins: Vec<String>,
    /// Lead intakes per minute allowed to each PARTNER token subject.
    pub partner_rate_per_min: u32,
    /// Milliseconds a WebSocket may take to send `connection_init`.
    pub ws_init_timeout_ms: u64,
    /// Milliseconds between two WebSocket pings.
    pub ws_ping_interval_ms: u64,
    /// Milliseconds events wait behind a WebSocket's previous write.
    pub ws_coalesce_ms: u64,
    /// Milliseconds a request's loads of one kind gather before their batch.
    pub loader_delay_ms: u64,
}

impl Settings {
    /// Settings with every default, for tests and tools.
    pub fn with_database(database_url: impl Into<String>) -> Self {
        Self {
            database_url: database_url.into(),
            bind: "127.0.0.1:0".into(),
            jwt_secret: None,
            jwt_issuer: "crm".into(),
            jwt_audience: "crm-api".into(),
            expiry_days: DEFAULT_WINDOW_DAYS,
            sweep_interval_secs: 300,
            partner_rate_per_min: DEFAULT_PARTNER_RATE_PER_MIN,
            cors_origins: Vec::new(),
            ws_init_timeout_ms: DEFAULT_WS_INIT_TIMEOUT_MS,
            ws_ping_interval_ms: DEFAULT_WS_PING_INTERVAL_MS,
            ws_coalesce_ms: DEFAULT_WS_COALESCE_MS,
            loader_delay_ms: DEFAULT_LOADER_DELAY_MS,
        }
    }

    /// The partner rate limit (at least one per minute).
    pub fn partner_rate(&self) -> std::num::NonZeroU32 {
        std::num::NonZeroU32::new(self.partner_rate_per_min).unwrap_or(std::num::NonZeroU32::MIN)
    }

    pub fn expiry_policy(&self) -> ExpiryPolicy {
        ExpiryPolicy::with_window_days(self.expiry_days)
    }
}

impl ExpiryArgs {
    pub fn policy(&self) -> ExpiryPolicy {
        ExpiryPolicy::with_window_days(self.expiry_days)
    }
}

// Secrets never reach a log line.
impl fmt::Debug for Settings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Settings")
            .field("database_url", &redact_url(&self.database_url))
            .field("bind", &self.bind)
            .field(
                "jwt_secret",
                &self.jwt_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("jwt_issuer", &self.jwt_issuer)
            .field("jwt_audience", &self.jwt_audience)
            .field("expiry_days", &self.expiry_days)
            .field("sweep_interval_secs", &self.sweep_interval_secs)
            .field("partner_rate_per_min", &self.partner_rate_per_min)
            .field("cors_origins", &self.cors_origins)
            .field("ws_init_timeout_ms", &self.ws_init_timeout_ms)
            .field("ws_ping_interval_ms", &self.ws_ping_interval_ms)
            .field("ws_coalesce_ms", &self.ws_coalesce_ms)
            .field("loader_delay_ms", &self.loader_delay_ms)
            .finish()
    }
}

/// The URL without its password.
pub fn redact_url(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme), Some(at)) if at > scheme => {
            let userinfo = &url[scheme + 3..at];
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{}{}@{}", &url[..scheme + 3], user, &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_database_password_is_never_shown() {
        assert_eq!(
            redact_url("postgres://crm:s3cret@db:5432/crm"),
            "postgres://crm@db:5432/crm"
        );
        assert_eq!(
            redact_url("sqlite://crm.sqlite?mode=rwc"),
            "sqlite://crm.sqlite?mode=rwc"
        );
    }

    #[test]
    fn cors_origins_are_scheme_host_and_port_only() {
        assert_eq!(
            parse_origin("https://CRM.example.com/").as_deref(),
            Ok("https://crm.example.com")
        );
        assert_eq!(
            parse_origin("http://localhost:5173").as_deref(),
            Ok("http://localhost:5173")
        );
        for bad in [
            "*",
            "https://*.example.com",
            "crm.example.com",
            "https://x.com/app",
            "https://",
        ] {
            assert!(parse_origin(bad).is_err(), "{bad} accepted");
        }
    }

    #[test]
    fn the_jwt_secret_is_redacted_in_debug_output() {
        let mut settings = Settings::with_database("sqlite::memory:");
        settings.jwt_secret = Some("hunter2".into());
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
