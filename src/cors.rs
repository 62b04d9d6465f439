//! CORS for browser frontends (`CRM_CORS_ORIGINS`): only the listed
//! origins, GET and POST, bearer tokens (never cookies, so never
//! `Access-Control-Allow-Credentials`, and never `*`).
use actix_cors::{Cors, CorsError};
use actix_web::body::{BoxBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName};
use actix_web::middleware::Next;
use actix_web::{Error, HttpResponse};

use crate::http_log::REQUEST_ID;

/// How long a browser may cache a preflight answer.
pub const PREFLIGHT_MAX_AGE_SECS: usize = 600;

/// The CORS middleware for `origins` (already checked by the settings
/// parser: `scheme://host[:port]`). With none, no origin is allowed: a
/// preflight is refused and answers carry no `Access-Control-*` header, so
/// browsers keep other origins out; same-origin and non-browser clients are
/// unaffected.
pub fn layer(origins: &[String]) -> Cors {
    let request_id = HeaderName::from_static(REQUEST_ID);
    let mut cors = Cors::default()
        .allowed_methods(["GET", "POST"])
        .allowed_headers([AUTHORIZATION, CONTENT_TYPE, request_id.clone()])
        .expose_headers([request_id])
        .max_age(PREFLIGHT_MAX_AGE_SECS);
    for origin in origins {
        cors = cors.allowed_origin(origin);
    }
    cors
}

/// Middleware around [`layer`]: a request CORS refuses (a preflight from an
/// origin not listed, or asking for a method or header not allowed) gets
/// the API's JSON error body instead of actix-cors' plain text:
/// `FORBIDDEN` (403) for the origin, `BAD_USER_INPUT` (400) otherwise.
pub async fn json_refusals(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<BoxBody>, Error> {
    let response = next.call(req).await?;
    let refusal = response
        .response()
        .error()
        .and_then(|e| e.as_error::<CorsError>())
        .map(|e| (matches!(e, CorsError::OriginNotAllowed), e.to_string()));
    let Some((bad_origin, message)) = refusal else {
        return Ok(response.map_into_boxed_body());
    };
    let (status, code) = if bad_origin {
        (StatusCode::FORBIDDEN, "FORBIDDEN")
    } else {
        (StatusCode::BAD_REQUEST, "BAD_USER_INPUT")
    };
    let body = serde_json::json!({
        "data": null,
        "errors": [{ "message": format!("CORS: {message}"), "extensions": { "code": code } }],
    });
    let (request, _) = response.into_parts();
    Ok(ServiceResponse::new(
        request,
        HttpResponse::build(status).json(body),
    ))
}
