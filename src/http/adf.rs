//! `POST /leads/adf`: an ADF 1.0 XML lead, taken in by the same path as
//! `submitLead` ([`crate::intake`]). Answers `201` with the new lead, `200`
//! for a replay; ADMIN and AGENT also learn the outcome and the opportunity,
//! a PARTNER never does (SPEC 3, secrecy). Every refusal is a GraphQL-style
//! JSON error body, and stores nothing.
use actix_web::http::StatusCode;
use actix_web::http::header::{CONTENT_LENGTH, RETRY_AFTER, WWW_AUTHENTICATE};
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chrono::SecondsFormat;
use futures_util::StreamExt;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::domain::adf;
use crate::domain::lead_intake::LeadWarning;
use crate::error::AppError;
use crate::graphql::ApiContext;
use crate::graphql::error_codes::error_body;
use crate::store::lead_intake::Intake;

/// Largest ADF document accepted (the server's body cap).
pub const MAX_ADF_BYTES: usize = crate::startup::MAX_BODY_BYTES;
/// How long a client gets to send the whole document (a slow trickle would
/// hold a worker and a connection).
pub const BODY_DEADLINE: std::time::Duration = std::time::Duration::from_secs(10);

/// Take in one ADF document from an authenticated caller.
pub async fn receive(
    api: &ApiContext,
    who: &Principal,
    req: &HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    match take_in(api, who, req, payload).await {
        Ok(intake) => answer(who, &intake),
        Err(Refused::UnsupportedType(message)) => {
            let error = AppError::bad_input("Content-Type", message);
            HttpResponse::UnsupportedMediaType().json(body_of(&error))
        }
        Err(Refused::App(error)) => refuse(&error),
    }
}

enum Refused {
    UnsupportedType(String),
    App(AppError),
}

impl From<AppError> for Refused {
    fn from(e: AppError) -> Self {
        Self::App(e)
    }
}

async fn take_in(
    api: &ApiContext,
    who: &Principal,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Intake, Refused> {
    check_content_type(req)?;
    let body = tokio::time::timeout(BODY_DEADLINE, read_capped(req, payload))
        .await
        .map_err(|_| {
            AppError::bad_input(
                "body",
                format!(
                    "the body did not arrive within {} s",
                    BODY_DEADLINE.as_secs()
                ),
            )
        })??;
    let lead = adf::parse(&body).map_err(|e| AppError::bad_input("body", e.to_string()))?;
    Ok(crate::intake::submit_adf(api, who, lead).await?)
}

/// `application/xml` or `text/xml`, any parameters (charset).
fn check_content_type(req: &HttpRequest) -> Result<(), Refused> {
    let unsupported = || {
        Refused::UnsupportedType("must be application/xml or text/xml (an ADF 1.0 document)".into())
    };
    let mime = req
        .mime_type()
        .map_err(|_| unsupported())?
        .ok_or_else(unsupported)?;
    match mime.essence_str() {
        "application/xml" | "text/xml" => Ok(()),
        _ => Err(unsupported()),
    }
}

/// The body, refused with 413 as soon as it passes the cap (announced or not).
async fn read_capped(req: &HttpRequest, mut payload: web::Payload) -> Result<Vec<u8>, AppError> {
    let announced = req
        .headers()
        .get(CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if announced.is_some_and(|n| n > MAX_ADF_BYTES) {
        return Err(AppError::PayloadTooLarge(MAX_ADF_BYTES));
    }
    let mut body = Vec::with_capacity(announced.unwrap_or(4096).min(MAX_ADF_BYTES));
    while let Some(chunk) = payload.next().await {
        let chunk =
            chunk.map_err(|e| AppError::bad_input("body", format!("cannot read the body: {e}")))?;
        if body.len() + chunk.len() > MAX_ADF_BYTES {
            return Err(AppError::PayloadTooLarge(MAX_ADF_BYTES));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn answer(who: &Principal, intake: &Intake) -> HttpResponse {
    let warnings: Vec<&LeadWarning> = intake.warnings.iter().collect();
    let mut body = json!({
        "leadId": intake.lead.id.to_string(),
        "receivedAt": intake.lead.received_at.to_rfc3339_opts(SecondsFormat::AutoSi, true),
        "warnings": warnings,
    });
    if who.role != crate::auth::Role::Partner
        && let Value::Object(fields) = &mut body
    {
        fields.insert("outcome".into(), intake.outcome.as_str().into());
        fields.insert(
            "opportunityId".into(),
            intake.opportunity.id.to_string().into(),
        );
    }
    let status = if intake.replayed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    HttpResponse::build(status).json(body)
}

/// The HTTP status of each refusal, with `Retry-After` on 429.
pub fn refuse(error: &AppError) -> HttpResponse {
    let status = match error {
        AppError::Unauthenticated(_) => StatusCode::UNAUTHORIZED,
        AppError::Forbidden => StatusCode::FORBIDDEN,
        AppError::BadUserInput { .. } => StatusCode::BAD_REQUEST,
        AppError::NotFound(_) => StatusCode::NOT_FOUND,
        AppError::Conflict(_) | AppError::Contention => StatusCode::CONFLICT,
        AppError::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
        AppError::PayloadTooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
        AppError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        AppError::Internal(detail) => {
            tracing::error!(%detail, "internal error on POST /leads/adf");
            StatusCode::INTERNAL_SERVER_ERROR
        }
    };
    let mut response = HttpResponse::build(status);
    match error {
        AppError::RateLimited { retry_after_secs } => {
            response.insert_header((RETRY_AFTER, retry_after_secs.to_string()));
        }
        AppError::Unauthenticated(_) => {
            response.insert_header((WWW_AUTHENTICATE, "Bearer"));
        }
        _ => {}
    }
    response.json(body_of(error))
}

/// [`error_body`] with `extensions.field` for bad input, as GraphQL gives it.
fn body_of(error: &AppError) -> Value {
    let mut body = error_body(error);
    if let Some(field) = error.field()
        && let Some(Value::Object(extensions)) = body.pointer_mut("/errors/0/extensions")
    {
        extensions.insert("field".into(), field.into());
    }
    body
}
