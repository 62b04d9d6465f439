//! The HTTP endpoints: the route table, and what every endpoint shares
//! (the application state, authentication, the HTTP status of each
//! [`AppError`], the JSON error body, reading a request body within its cap
//! and deadline). Each endpoint's handlers live in the module named for what
//! it serves; `/graphql` upgrades to WebSocket in [`crate::live`].
pub mod adf;
pub mod graphql;
pub mod monitoring;

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_LENGTH, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpRequest, HttpResponse, web};
use futures_util::StreamExt as _;
use sea_orm::DatabaseConnection;
use serde_json::Value;

use crate::auth::{JwtKeys, Principal};
use crate::error::AppError;
use crate::graphql::error_codes::error_body;
use crate::graphql::{ApiContext, CrmSchema};
use crate::live;

/// Largest request body accepted.
pub const MAX_BODY_BYTES: usize = 256 * 1024;
/// A request body must arrive within this time (a client sending one byte a
/// second is cut off).
pub const BODY_READ_DEADLINE: Duration = Duration::from_secs(10);
/// The request line and headers must arrive within this time.
pub const HEADER_READ_DEADLINE: Duration = Duration::from_secs(5);

/// What the handlers share, built once by [`crate::startup::Application`].
pub struct AppState {
    pub schema: CrmSchema,
    pub jwt: JwtKeys,
    pub db: DatabaseConnection,
    pub api: ApiContext,
}

/// Every endpoint and what answers it.
pub fn routes(config: &mut web::ServiceConfig) {
    config
        .service(
            web::resource("/graphql")
                .route(web::get().guard(live::is_upgrade()).to(live::upgrade))
                .route(web::post().to(graphql::post))
                .route(web::get().to(graphql::get))
                .default_service(web::to(method_not_allowed)),
        )
        .configure(crate::graphiql::configure)
        .route("/leads/adf", web::post().to(adf::post))
        .route("/health/live", web::get().to(monitoring::live))
        .route("/health/ready", web::get().to(monitoring::ready))
        .route("/metrics", web::get().to(monitoring::metrics))
        .default_service(web::to(not_found));
}

/// The caller's bearer token, checked and not revoked; its role noted in
/// the request log.
pub fn authenticate(state: &AppState, req: &HttpRequest) -> Result<Principal, AppError> {
    let header = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok());
    let principal = state.jwt.authenticate(header)?;
    state.api.partners.refuse_revoked(&principal)?;
    crate::http_log::note_role(req, principal.role);
    Ok(principal)
}

async fn method_not_allowed() -> HttpResponse {
    refuse(&AppError::MethodNotAllowed(
        "method not allowed: use GET or POST".into(),
    ))
}

async fn not_found() -> HttpResponse {
    refuse(&AppError::NotFound("page"))
}

/// The HTTP status of a refusal.
pub fn status_of(error: &AppError) -> StatusCode {
    match error {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden => StatusCode::FORBIDDEN,
        AppError::BadUserInput { .. } => StatusCode::BAD_REQUEST,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Conflict(_) | AppError::Contention => StatusCode::CONFLICT,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::SlowBody(_) => StatusCode::REQUEST_TIMEOUT,
        AppError::MethodNotAllowed(_) => StatusCode::METHOD_NOT_ALLOWED,
        AppError::UnsupportedMediaType(_) => StatusCode::UNSUPPORTED_MEDIA_TYPE,
        // The request ran; what it asked for is too big to send.
        AppError::ResponseTooLarge(_) => StatusCode::OK,
        AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// The JSON error answer of a refused request, with `Retry-After` on 429
/// and `WWW-Authenticate` on 401.
pub fn refuse(error: &AppError) -> HttpResponse {
    let mut response = HttpResponse::build(status_of(error));
    match error {
        AppError::RateLimited { retry_after_secs } => {
            response.insert_header((RETRY_AFTER, retry_after_secs.to_string()));
        }
        AppError::Unauthenticated(_) => {
            response.insert_header((WWW_AUTHENTICATE, "Bearer"));
        }
        AppError::MethodNotAllowed(_) => {
            response.insert_header((actix_web::http::header::ALLOW, "GET, POST"));
        }
        AppError::Internal(detail) => {
            tracing::error!(detail = %crate::telemetry::mask_personal(detail), "internal error returned to a client");
        }
        _ => {}
    }
    let mut body = error_body(error);
    if let Some(field) = error.field()
        && let Some(Value::Object(extensions)) = body.pointer_mut("/errors/0/extensions")
    {
        extensions.insert("field".into(), field.into());
    }
    response.json(body)
}

/// Read the body within [`MAX_BODY_BYTES`] (announced or not) and
/// [`BODY_READ_DEADLINE`].
pub async fn read_body(
    req: &HttpRequest,
    mut payload: web::Payload,
) -> Result<web::Bytes, AppError> {
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_BODY_BYTES) {
        return Err(AppError::PayloadTooLarge(MAX_BODY_BYTES));
    }
    let read = async {
        let mut body = web::BytesMut::with_capacity(announced.unwrap_or(4096).min(MAX_BODY_BYTES));
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| {
                AppError::bad_input("body", format!("cannot read the request body: {e}"))
            })?;
            if body.len() + chunk.len() > MAX_BODY_BYTES {
                return Err(AppError::PayloadTooLarge(MAX_BODY_BYTES));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body.freeze())
    };
    tokio::time::timeout(BODY_READ_DEADLINE, read)
        .await
        .map_err(|_| AppError::SlowBody(BODY_READ_DEADLINE.as_secs()))?
}
