//! The one error policy of the API.
//!
//! Every failure a client can see is an [`AppError`]; its variant decides the
//! GraphQL `extensions.code`. The mapping happens once, in
//! [`crate::graphql::error_codes`], from the error's source. Internal details
//! (SQL, driver text) are logged server-side and never sent.
use sea_orm::{DbErr, RuntimeErr};

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// No, malformed, expired or otherwise invalid credentials.
    #[error("authentication required: {0}")]
    Unauthenticated(String),
    /// Authenticated, but the role may not do this.
    #[error("forbidden: your role may not perform this operation")]
    Forbidden,
    /// Input the client must fix; names the offending field.
    #[error("{field}: {message}")]
    BadUserInput { field: String, message: String },
    #[error("{0} not found")]
    NotFound(&'static str),
    /// The request clashes with stored state (reused idempotency key, ...).
    #[error("{0}")]
    Conflict(String),
    /// A concurrent request touched the same rows; retrying may succeed.
    #[error("the request conflicted with a concurrent one; retry it")]
    Contention,
    /// The request body is over the cap.
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    /// The response would be over the size ceiling.
    #[error("the response would be larger than {0} bytes; ask for fewer items (`first`) or fields")]
    ResponseTooLarge(usize),
    /// The request body did not arrive within the deadline.
    #[error("body: the request body did not arrive within {0} s")]
    SlowBody(u64),
    /// An HTTP method the endpoint does not serve for this request.
    #[error("{0}")]
    MethodNotAllowed(String),
    /// A body of a type the endpoint does not take.
    #[error("Content-Type: {0}")]
    UnsupportedMediaType(String),
    /// The database cannot be reached right now.
    #[error("the database is unavailable; try again shortly")]
    Unavailable,
    /// A partner sent more leads than its rate limit allows.
    #[error("too many leads: the partner rate limit is reached; retry in {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    /// A bug or an unexpected failure: details are logged, not returned.
    #[error("internal error")]
    Internal(String),
}

impl AppError {
    pub fn bad_input(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self::BadUserInput {
            field: field.into(),
            message: message.into(),
        }
    }

    /// The GraphQL `extensions.code`.
    pub fn code(&self) -> &'static str {
        match self {
            Self::Unauthenticated(_) => "UNAUTHENTICATED",
            Self::Forbidden => "FORBIDDEN",
            Self::BadUserInput { .. } => "BAD_USER_INPUT",
            Self::NotFound(_) => "NOT_FOUND",
            Self::Conflict(_) | Self::Contention => "CONFLICT",
            Self::PayloadTooLarge(_) | Self::ResponseTooLarge(_) => "PAYLOAD_TOO_LARGE",
            Self::MethodNotAllowed(_) | Self::UnsupportedMediaType(_) | Self::SlowBody(_) => {
                "BAD_USER_INPUT"
            }
            Self::Unavailable => "UNAVAILABLE",
            Self::Internal(_) => "INTERNAL",
            Self::RateLimited { .. } => "RATE_LIMITED",
        }
    }

    /// The field at fault, for `BAD_USER_INPUT`.
    pub fn field(&self) -> Option<&str> {
        match self {
            Self::BadUserInput { field, .. } => Some(field),
            Self::SlowBody(_) => Some("body"),
            Self::UnsupportedMediaType(_) => Some("Content-Type"),
            _ => None,
        }
    }
}

impl From<crate::domain::lead_intake::InvalidLead> for AppError {
    fn from(err: crate::domain::lead_intake::InvalidLead) -> Self {
        Self::bad_input(err.field, err.message)
    }
}

impl From<DbErr> for AppError {
    fn from(err: DbErr) -> Self {
        if is_retryable(&err) {
            tracing::debug!(error = %crate::telemetry::mask_personal(&err.to_string()), "transaction conflict");
            Self::Contention
        } else if is_unavailable(&err) {
            tracing::warn!(error = %crate::telemetry::mask_personal(&err.to_string()), "database unavailable");
            Self::Unavailable
        } else {
            // Logged once, where it leaves the process (a response, the
            // sweep's tick, the command line), not here as well.
            Self::Internal(err.to_string())
        }
    }
}

/// Connection-level failures: the database is down, restarting or
/// unreachable, the connection was closed under the request, or the pool is
/// exhausted. The request changed nothing and can be sent again.
pub fn is_unavailable(err: &DbErr) -> bool {
    match err {
        DbErr::ConnectionAcquire(_) | DbErr::Conn(_) => true,
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sea_orm::sqlx::Error::Io(_)
                | sea_orm::sqlx::Error::PoolTimedOut
                | sea_orm::sqlx::Error::PoolClosed
                | sea_orm::sqlx::Error::Tls(_) => true,
                sea_orm::sqlx::Error::Database(db) => {
                    db.code().is_some_and(|c| is_connection_state(&c))
                }
                _ => false,
            }
        }
        _ => false,
    }
}

/// SQLSTATEs of a connection the server ended or cannot serve: class 08
/// (connection exception) and 57P01–57P05 (admin or crash shutdown, cannot
/// connect now, database dropped, idle session timeout).
fn is_connection_state(code: &str) -> bool {
    code.starts_with("08") || matches!(code, "57P01" | "57P02" | "57P03" | "57P04" | "57P05")
}

/// PostgreSQL SQLSTATEs and SQLite codes worth retrying a whole transaction
/// for: serialization failure, deadlock, busy/locked database.
pub fn is_retryable(err: &DbErr) -> bool {
    if err
        .sql_err()
        .is_some_and(|e| matches!(e, sea_orm::SqlErr::UniqueConstraintViolation(_)))
    {
        return true;
    }
    match err {
        DbErr::Query(RuntimeErr::SqlxError(e)) | DbErr::Exec(RuntimeErr::SqlxError(e)) => {
            match e.as_ref() {
                sea_orm::sqlx::Error::Database(db) => matches!(
                    db.code().as_deref(),
                    Some("40001" | "40P01" | "5" | "6" | "517" | "261" | "262")
                ),
                _ => false,
            }
        }
        _ => false,
    }
}
