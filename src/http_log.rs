//! One log line and the HTTP metrics per request, and the request id: a
//! sane incoming `x-request-id` is kept, otherwise a UUID is made; either
//! way it is returned as `x-request-id`.
//!
//! Handlers add what only they know (the caller's role, the GraphQL
//! operation name) with [`note_role`] and [`note_operation`]. Nothing else
//! of the request is logged: no header (tokens), no body, no variables (emails,
//! phones), no query string.
use std::time::Instant;

use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{HeaderName, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{Error, HttpMessage as _, HttpRequest};

use crate::auth::Role;

/// The request id header, in and out.
pub const REQUEST_ID: &str = "x-request-id";
/// Longest incoming request id kept.
pub const MAX_REQUEST_ID_LEN: usize = 128;

/// The request's id, in the request extensions for handlers.
#[derive(Clone, Debug)]
pub struct RequestId(pub String);

/// What handlers learned about the request.
#[derive(Clone, Debug, Default)]
struct Noted {
    role: Option<Role>,
    operation: Option<String>,
}

/// Record the authenticated caller's role for the log line.
pub fn note_role(req: &HttpRequest, role: Role) {
    if let Some(noted) = req.extensions_mut().get_mut::<Noted>() {
        noted.role = Some(role);
    }
}

/// Record the GraphQL operation's name (`None`: an anonymous operation).
pub fn note_operation(req: &HttpRequest, name: Option<&str>) {
    let name = name
        .filter(|n| is_graphql_name(n))
        .unwrap_or("anonymous")
        .to_owned();
    if let Some(noted) = req.extensions_mut().get_mut::<Noted>() {
        noted.operation = Some(name);
    }
}

/// The GraphQL operation a request names: `operationName`, else the name
/// of the document's first operation (`None` when it has none).
///
/// A linear scan of the text, not a parse: this runs before the query
/// limits, so it must cost nothing whatever the document holds.
pub fn operation_name(request: &async_graphql::Request) -> Option<String> {
    if let Some(name) = &request.operation_name {
        return Some(name.clone());
    }
    first_operation_name(&request.query)
}

fn first_operation_name(query: &str) -> Option<String> {
    let bytes = query.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    // Set after `query`/`mutation`/`subscription` at the top level.
    let mut after_keyword = false;
    while i < bytes.len() {
        match bytes[i] {
            b'#' => {
                while i < bytes.len() && bytes[i] != b'\n' {
                    i += 1;
                }
            }
            b'"' => {
                let block = bytes[i..].starts_with(b"\"\"\"");
                i += if block { 3 } else { 1 };
                while i < bytes.len() {
                    if bytes[i] == b'\\' {
                        i += 2;
                    } else if block && bytes[i..].starts_with(b"\"\"\"") {
                        i += 3;
                        break;
                    } else if !block && bytes[i] == b'"' {
                        i += 1;
                        break;
                    } else {
                        i += 1;
                    }
                }
                continue;
            }
            b'{' => {
                if depth == 0 && after_keyword {
                    return None;
                }
                depth += 1;
            }
            b'}' => depth = depth.saturating_sub(1),
            c if c.is_ascii_alphabetic() || c == b'_' => {
                let start = i;
                while i < bytes.len() && (bytes[i].is_ascii_alphanumeric() || bytes[i] == b'_') {
                    i += 1;
                }
                let word = &query[start..i];
                if depth == 0 {
                    if after_keyword {
                        return Some(word.to_owned());
                    }
                    match word {
                        "query" | "mutation" | "subscription" => after_keyword = true,
                        // A fragment definition comes first: look further.
                        _ => {}
                    }
                }
                continue;
            }
            b'(' | b'@' if depth == 0 && after_keyword => return None,
            _ => {}
        }
        i += 1;
    }
    None
}

fn is_graphql_name(name: &str) -> bool {
    let mut chars = name.chars();
    name.len() <= 100
        && chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// A client's request id is kept when short and printable without spaces
/// (it goes into log lines and a response header).
fn sane_request_id(value: &HeaderValue) -> Option<String> {
    let text = value.to_str().ok()?;
    (!text.is_empty()
        && text.len() <= MAX_REQUEST_ID_LEN
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.:/+=".contains(&b)))
    .then(|| text.to_owned())
}

/// The middleware (`actix_web::middleware::from_fn(http_log::middleware)`).
pub async fn middleware(
    req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, Error> {
    let started = Instant::now();
    let id = req
        .headers()
        .get(REQUEST_ID)
        .and_then(sane_request_id)
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let method = req.method().to_string();
    let path = req.path().to_owned();
    req.extensions_mut().insert(RequestId(id.clone()));
    req.extensions_mut().insert(Noted::default());

    let mut response = next.call(req).await?;

    let status = response.status().as_u16();
    let seconds = started.elapsed().as_secs_f64();
    let noted = response
        .request()
        .extensions()
        .get::<Noted>()
        .cloned()
        .unwrap_or_default();
    // The metric's label: the operation for GraphQL, else the route.
    let label = match (&noted.operation, response.request().match_pattern()) {
        (Some(operation), _) => operation.clone(),
        (None, Some(pattern)) => pattern,
        (None, None) => "unmatched".to_owned(),
    };
    crate::metrics::http_request(&label, status, seconds);
    if let Ok(value) = HeaderValue::from_str(&id) {
        response
            .headers_mut()
            .insert(HeaderName::from_static(REQUEST_ID), value);
    }
    tracing::info!(
        target: "crm::http",
        request_id = %id,
        method = %method,
        path = %path,
        operation = %noted.operation.as_deref().unwrap_or("-"),
        role = %noted.role.map_or("-", Role::as_str),
        status,
        duration_ms = (seconds * 1000.0 * 1000.0).round() / 1000.0,
        "request"
    );
    Ok(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_short_plain_request_ids_are_kept() {
        let keep = |s: &str| sane_request_id(&HeaderValue::from_str(s).unwrap());
        assert_eq!(keep("abc-123_x.y").as_deref(), Some("abc-123_x.y"));
        assert_eq!(keep(""), None);
        assert_eq!(keep("has space"), None);
        assert_eq!(keep("line\tbreak"), None);
        assert_eq!(keep(&"a".repeat(MAX_REQUEST_ID_LEN + 1)), None);
    }

    #[test]
    fn the_operation_name_comes_from_the_request_or_the_document() {
        let named = async_graphql::Request::new("query Mine { me { role } }");
        assert_eq!(operation_name(&named).as_deref(), Some("Mine"));
        let anonymous = async_graphql::Request::new("{ me { role } }");
        assert_eq!(operation_name(&anonymous), None);
        let commented = async_graphql::Request::new(
            "# query Fake\nfragment F on Query { me { role } }\n\"\"\"doc\"\"\" mutation  Real($a: Int) { x }",
        );
        assert_eq!(operation_name(&commented).as_deref(), Some("Real"));
        let variables_only = async_graphql::Request::new("query ($id: ID!) { a }");
        assert_eq!(operation_name(&variables_only), None);
        let chosen = async_graphql::Request::new("query A { a } query B { b }").operation_name("B");
        assert_eq!(operation_name(&chosen).as_deref(), Some("B"));
    }
}
