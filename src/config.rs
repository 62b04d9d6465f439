//! Configuration: one clap struct whose fields also read the environment.
use std::fmt;

use crate::domain::expiry::{DEFAULT_WINDOW_DAYS, ExpiryPolicy};

/// Default database: an SQLite file in the working directory, created on start.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://crm.sqlite?mode=rwc";
/// Default partner rate limit (SPEC 5).
pub const DEFAULT_PARTNER_RATE_PER_MIN: u32 = 600;

/// Server and tooling settings (`crm serve`, `crm expire`, `crm token`, ...).
#[derive(Clone, clap::Args)]
pub struct Settings {
    /// Database URL: `postgres://...` or `sqlite://file?mode=rwc`.
    #[arg(long, env = "DATABASE_URL", default_value = DEFAULT_DATABASE_URL)]
    pub database_url: String,

    /// Address the HTTP server binds.
    #[arg(long, env = "CRM_BIND", default_value = "127.0.0.1:8080")]
    pub bind: String,

    /// HS256 secret for JWTs. Unset: development mode with an ephemeral secret.
    #[arg(long, env = "CRM_JWT_SECRET", hide_env_values = true)]
    pub jwt_secret: Option<String>,

    /// Required `iss` claim.
    #[arg(long, env = "CRM_JWT_ISSUER", default_value = "crm")]
    pub jwt_issuer: String,

    /// Required `aud` claim (the token's audience must contain it).
    #[arg(long, env = "CRM_JWT_AUDIENCE", default_value = "crm-api")]
    pub jwt_audience: String,

    /// Days after creation at which an unprotected opportunity expires.
    #[arg(long, env = "CRM_EXPIRY_DAYS", default_value_t = DEFAULT_WINDOW_DAYS,
          value_parser = clap::value_parser!(i64).range(1..=3650))]
    pub expiry_days: i64,

    /// Seconds between two background expiry sweeps.
    #[arg(long, env = "CRM_SWEEP_INTERVAL_SECS", default_value_t = 300,
          value_parser = clap::value_parser!(u64).range(1..))]
    pub sweep_interval_secs: u64,

    /// Lead intakes per minute allowed to each PARTNER token subject
    /// (`submitLead` and `POST /leads/adf` together).
    #[arg(long, env = "CRM_PARTNER_RATE_PER_MIN", default_value_t = DEFAULT_PARTNER_RATE_PER_MIN,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub partner_rate_per_min: u32,
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
    fn the_jwt_secret_is_redacted_in_debug_output() {
        let mut settings = Settings::with_database("sqlite::memory:");
        settings.jwt_secret = Some("hunter2".into());
        assert!(!format!("{settings:?}").contains("hunter2"));
    }
}
