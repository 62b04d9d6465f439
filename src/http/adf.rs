//! `POST /leads/adf`: an ADF 1.0 XML lead, taken in by the same path as
//! `submitLead` ([`crate::intake`]). Answers `201` with the new lead, `200`
//! for a replay; ADMIN and AGENT also learn the outcome and the opportunity,
//! a PARTNER never does (SPEC 3, secrecy). Every refusal is a GraphQL-style
//! JSON error body, and stores nothing.
use actix_web::http::StatusCode;
use actix_web::{HttpMessage, HttpRequest, HttpResponse, web};
use chrono::SecondsFormat;
use serde_json::{Value, json};

use crate::auth::Principal;
use crate::domain::adf;
use crate::domain::lead_intake::LeadWarning;
use crate::error::AppError;
use crate::graphql::ApiContext;
use crate::store::lead_intake::Intake;

/// `POST /leads/adf`.
pub async fn post(
    state: web::Data<super::AppState>,
    req: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    match super::authenticate(&state, &req) {
        Ok(principal) => receive(&state.api, &principal, &req, payload).await,
        Err(refusal) => super::refuse(&refusal),
    }
}

/// Take in one ADF document from an authenticated caller.
async fn receive(
    api: &ApiContext,
    who: &Principal,
    req: &HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    match take_in(api, who, req, payload).await {
        Ok(intake) => answer(who, &intake),
        Err(error) => super::refuse(&error),
    }
}

async fn take_in(
    api: &ApiContext,
    who: &Principal,
    req: &HttpRequest,
    payload: web::Payload,
) -> Result<Intake, AppError> {
    check_content_type(req)?;
    let body = super::read_body(req, payload).await?;
    let lead = adf::parse(&body).map_err(|e| AppError::bad_input("body", e.to_string()))?;
    crate::intake::submit_adf(api, who, lead).await
}

/// `application/xml` or `text/xml`, any parameters (charset).
fn check_content_type(req: &HttpRequest) -> Result<(), AppError> {
    let unsupported = || {
        AppError::UnsupportedMediaType(
            "must be application/xml or text/xml (an ADF 1.0 document)".into(),
        )
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
