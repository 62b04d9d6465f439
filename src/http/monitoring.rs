//! What operators' tools poll: liveness, readiness and the Prometheus
//! scrape.
use actix_web::{HttpRequest, HttpResponse, web};

use super::{AppState, authenticate, refuse};
use crate::error::AppError;

/// `GET /health/live`: the process answers.
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({ "status": "live" }))
}

/// `GET /health/ready`: the database answers too.
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.db.ping().await {
        Ok(()) => {
            HttpResponse::Ok().json(serde_json::json!({ "status": "ready", "database": "up" }))
        }
        Err(error) => {
            tracing::warn!(%error, "readiness check: database down");
            HttpResponse::ServiceUnavailable()
                .json(serde_json::json!({ "status": "unavailable", "database": "down" }))
        }
    }
}

/// Prometheus scrape, ADMIN token required (the figures are the admins').
pub async fn metrics(state: web::Data<AppState>, req: HttpRequest) -> HttpResponse {
    let refusal = match authenticate(&state, &req) {
        Ok(principal) if principal.is_admin() => None,
        Ok(_) => Some(AppError::Forbidden),
        Err(refusal) => Some(refusal),
    };
    match refusal {
        Some(refusal) => refuse(&refusal),
        None => {
            crate::metrics::observe_pool(&state.db);
            HttpResponse::Ok()
                .content_type("text/plain; version=0.0.4")
                .body(crate::metrics::render())
        }
    }
}
