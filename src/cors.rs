//! CORS for browser frontends (`CRM_CORS_ORIGINS`): only the listed
//! origins, GET and POST, bearer tokens (never cookies, so never
//! `Access-Control-Allow-Credentials`, and never `*`).
use actix_cors::Cors;
use actix_web::http::header::{AUTHORIZATION, CONTENT_TYPE, HeaderName};

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
