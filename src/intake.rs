//! The one path of a lead into the CRM, whichever door it came through
//! (`submitLead`, `POST /leads/adf`): the partner rate limit, validation,
//! then the rule's transaction ([`store::lead_intake::submit`]).
use crate::auth::Principal;
use crate::domain::adf::AdfLead;
use crate::domain::lead_intake::{self as domain, LeadSubmission};
use crate::error::AppError;
use crate::graphql::ApiContext;
use crate::store;
use crate::store::lead_intake::Intake;

/// Take in a lead submitted through GraphQL.
pub async fn submit(
    api: &ApiContext,
    who: &Principal,
    submission: LeadSubmission,
) -> Result<Intake, AppError> {
    api.partners.admit(who).await?;
    store_valid(api, who, domain::validate(submission)?).await
}

/// Take in a lead read from an ADF document. A `status="resend"` whose
/// `<id>` was seen before returns the earlier lead even if reworded.
pub async fn submit_adf(
    api: &ApiContext,
    who: &Principal,
    adf: AdfLead,
) -> Result<Intake, AppError> {
    api.partners.admit(who).await?;
    if adf.resend
        && let Some(key) = adf.submission.idempotency_key.as_deref()
        && let Some(earlier) = store::lead_intake::earlier(&api.db, who, key.trim()).await?
    {
        return Ok(earlier);
    }
    let mut valid = domain::validate(adf.submission)?;
    valid.warnings.extend(adf.warnings);
    store_valid(api, who, valid).await
}

async fn store_valid(
    api: &ApiContext,
    who: &Principal,
    valid: domain::ValidLead,
) -> Result<Intake, AppError> {
    let intake =
        store::lead_intake::submit(&api.db, who, &valid, &api.policy, api.clock.now()).await?;
    if !intake.replayed {
        api.bus.remember(&intake.lead, &intake.opportunity);
        crate::metrics::lead_accepted(intake.outcome.as_str());
    }
    Ok(intake)
}
