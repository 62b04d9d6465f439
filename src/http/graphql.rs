//! `/graphql` over plain HTTP: a POST runs any operation, a GET queries
//! only. The caller is authenticated before the body is read; the answer is
//! the GraphQL response within [`MAX_RESPONSE_BYTES`].
use actix_web::http::StatusCode;
use actix_web::http::header::ContentType;
use actix_web::{HttpRequest, HttpResponse, web};
use async_graphql::parser::types::OperationType;

use super::{AppState, authenticate, refuse};
use crate::error::AppError;

/// Largest GraphQL response sent; a larger one is replaced by an error.
pub const MAX_RESPONSE_BYTES: usize = 8 * 1024 * 1024;

/// A request refused before GraphQL runs; its HTTP status comes from
/// [`super::status_of`].
type Refusal = AppError;

/// `POST /graphql`.
pub async fn post(
    state: web::Data<AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    answer(execute_post(&state, &req, payload).await)
}

/// `GET /graphql`: queries only, a mutation over GET would be open to CSRF.
pub async fn get(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    answer(execute_get(&state, &req).await)
}

fn answer(result: Result<async_graphql::Response, Refusal>) -> HttpResponse {
    match result {
        Ok(response) => graphql_response(&response),
        Err(refusal) => refuse(&refusal),
    }
}

/// Serialize a GraphQL response, within [`MAX_RESPONSE_BYTES`]. A database
/// outage is a 503 so that clients and proxies retry.
fn graphql_response(response: &async_graphql::Response) -> HttpResponse {
    let body = match serde_json::to_vec(response) {
        Ok(body) if body.len() <= MAX_RESPONSE_BYTES => body,
        Ok(body) => {
            tracing::warn!(bytes = body.len(), "response over the size ceiling refused");
            return refuse(&AppError::ResponseTooLarge(MAX_RESPONSE_BYTES));
        }
        Err(error) => {
            return refuse(&AppError::Internal(format!(
                "response serialization: {error}"
            )));
        }
    };
    let unavailable = response.errors.iter().any(|e| {
        e.extensions
            .as_ref()
            .and_then(|x| x.get("code"))
            .is_some_and(|code| *code == async_graphql::Value::from("UNAVAILABLE"))
    });
    let status = if unavailable {
        StatusCode::SERVICE_UNAVAILABLE
    } else {
        StatusCode::OK
    };
    HttpResponse::build(status)
        .content_type(ContentType::json())
        .body(body)
}

async fn execute_post(
    state: &AppState,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<async_graphql::Response, Refusal> {
    // The token is checked before the body is read: an anonymous client
    // cannot hold a connection open by sending slowly.
    let principal = authenticate(state, req)?;
    let body = super::read_body(req, payload).await?;
    let request: async_graphql::Request = serde_json::from_slice(&body).map_err(|e| {
        let message = if body.first() == Some(&b'[') {
            "batched requests are not supported; send one operation per request".to_owned()
        } else {
            format!("the body is not a GraphQL request: {e}")
        };
        AppError::bad_input("body", message)
    })?;
    crate::http_log::note_operation(req, crate::http_log::operation_name(&request).as_deref());
    Ok(state.schema.execute(request.data(principal)).await)
}

async fn execute_get(
    state: &AppState,
    req: &HttpRequest,
) -> Result<async_graphql::Response, Refusal> {
    let principal = authenticate(state, req)?;
    let request = async_graphql::http::parse_query_string(req.query_string())
        .map_err(|e| AppError::bad_input("query", format!("cannot read the query string: {e}")))?;
    crate::http_log::note_operation(req, crate::http_log::operation_name(&request).as_deref());
    if let Ok(document) = async_graphql::parser::parse_query(&request.query)
        && document
            .operations
            .iter()
            .any(|(_, op)| op.node.ty != OperationType::Query)
    {
        return Err(AppError::MethodNotAllowed(
            "query: mutations must be sent with POST".into(),
        ));
    }
    Ok(state.schema.execute(request.data(principal)).await)
}
