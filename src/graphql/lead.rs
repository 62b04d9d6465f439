//! Leads: `submitLead` (the opportunity-creation rule), `previewLead`
//! (admin), and reading leads back.
use async_graphql::{Context, Enum, ID, InputObject, Object, Result, SimpleObject};
use chrono::{DateTime, Utc};
use entity::lead;

use super::client::Client;
use super::connection::{self, Page};
use super::opportunity::{Opportunity, OpportunityStatus};
use super::viewer::{api, api_and_caller, by_id, principal};
use crate::auth::{Role, RoleGuard, is_admin, is_staff};
use crate::domain::lead_intake as domain;
use crate::error::AppError;
use crate::store;
use crate::store::lead_intake::{
    ContactConflictRecord, DecisionRecord, LeadOutcome as StoreOutcome,
};
use crate::store::page::Cursor;

/// Type de lead / Lead type.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
#[graphql(remote = "crate::domain::lead_intake::LeadType")]
pub enum LeadType {
    /// Lead Internet de vente / Internet sales lead.
    #[default]
    Lead,
    /// Renouvellement de location ou de financement / Lease or loan renewal.
    Ren,
    /// Demande de crédit / Credit application.
    Cre,
}

/// Neuf ou usagé / New or used.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::domain::lead_intake::VehicleCondition")]
pub enum VehicleCondition {
    /// Neuf / New.
    New,
    /// Usagé / Used.
    Used,
}

/// Résultat d'un lead / Where a lead ended.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
pub enum LeadOutcome {
    /// Une nouvelle opportunité a été créée / A new opportunity was opened.
    NewOpportunity,
    /// Ajouté à l'opportunité existante / Added to the existing opportunity.
    Merged,
}

impl From<StoreOutcome> for LeadOutcome {
    fn from(o: StoreOutcome) -> Self {
        match o {
            StoreOutcome::NewOpportunity => Self::NewOpportunity,
            StoreOutcome::Merged => Self::Merged,
        }
    }
}

/// Véhicule d'intérêt / Vehicle of interest (every part optional).
#[derive(SimpleObject, InputObject, Default)]
#[graphql(input_name = "VehicleInput")]
pub struct Vehicle {
    pub year: Option<i32>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub trim: Option<String>,
    pub vin: Option<String>,
    pub stock_number: Option<String>,
    pub condition: Option<VehicleCondition>,
}

/// `From` both ways between two structs of the same optional fields, each
/// field converted with `Into`.
macro_rules! convert_both_ways {
    ($a:ty, $b:ty, { $($field:ident),+ $(,)? }) => {
        impl From<$a> for $b {
            fn from(v: $a) -> Self {
                Self { $($field: v.$field.map(Into::into)),+ }
            }
        }

        impl From<$b> for $a {
            fn from(v: $b) -> Self {
                Self { $($field: v.$field.map(Into::into)),+ }
            }
        }
    };
}

convert_both_ways!(Vehicle, domain::VehicleOfInterest, {
    year, make, model, trim, vin, stock_number, condition
});

/// Something about the lead that did not stop it (a value kept raw).
#[derive(SimpleObject, Clone)]
pub struct LeadWarning {
    /// The input field concerned (`phone`, `email`, `vehicle.vin`).
    pub field: String,
    pub message: String,
}

impl From<domain::LeadWarning> for LeadWarning {
    fn from(w: domain::LeadWarning) -> Self {
        Self {
            field: w.field,
            message: w.message,
        }
    }
}

/// The lead's phone (or email) already belongs to another client than the
/// one it was matched to. The clients were not merged.
#[derive(SimpleObject)]
#[graphql(visible = "is_staff")]
pub struct ContactConflict {
    /// `PHONE` or `EMAIL`.
    pub kind: String,
    /// The normalized contact value.
    pub value: Option<String>,
    /// The other client it belongs to.
    pub other_client_id: ID,
}

/// What the rule saw and decided (the stored record). Admin only.
pub struct LeadDecision(pub DecisionRecord);

/// What the rule saw and decided. Admin only.
#[Object(visible = "is_admin")]
impl LeadDecision {
    async fn evaluated_at(&self) -> DateTime<Utc> {
        self.0.evaluated_at
    }

    /// `EMAIL`, `PHONE`, or `NONE` when a new client was created.
    async fn matched_by(&self) -> &str {
        &self.0.matched_by
    }

    async fn matched_client_id(&self) -> Option<ID> {
        self.0.matched_client_id.map(ID::from)
    }

    async fn conflicting_client_id(&self) -> Option<ID> {
        self.0.conflicting_client_id.map(ID::from)
    }

    /// The client's most recent opportunity not expired before this lead.
    async fn candidate_opportunity_id(&self) -> Option<ID> {
        self.0.candidate_opportunity_id.map(ID::from)
    }

    /// The candidate's state when the rule ran: `LIVE`, `EXPIRED_NOW`.
    async fn candidate_state(&self) -> Option<&str> {
        self.0.candidate_state.as_deref()
    }

    /// Opportunities the rule expired when this lead arrived.
    async fn expired_opportunity_ids(&self) -> Vec<ID> {
        self.0.expired_now.iter().map(ID::from).collect()
    }

    async fn outcome(&self) -> LeadOutcome {
        self.0.outcome.into()
    }

    async fn window_days(&self) -> i64 {
        self.0.window_days
    }

    async fn protected_statuses(&self) -> Vec<OpportunityStatus> {
        self.0
            .protected_statuses
            .iter()
            .copied()
            .map(Into::into)
            .collect()
    }
}

/// Un lead : une demande entrante, conservée pour toujours / An inbound
/// request, kept forever.
pub struct Lead(pub lead::Model);

#[Object]
impl Lead {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    #[graphql(name = "type")]
    async fn lead_type(&self) -> LeadType {
        self.0.lead_type.into()
    }

    /// Site or partner name, as submitted.
    async fn source(&self) -> Option<&str> {
        self.0.source.as_deref()
    }

    /// Server time of reception (UTC).
    async fn received_at(&self) -> DateTime<Utc> {
        self.0.received_at
    }

    #[graphql(guard = "RoleGuard::staff()", visible = "is_staff")]
    async fn outcome(&self) -> LeadOutcome {
        self.0.outcome.into()
    }

    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }

    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }

    /// Normalized email (null if none or invalid).
    async fn email(&self) -> Option<&str> {
        self.0.email.as_deref()
    }

    /// Normalized phone, E.164 (null if none or invalid).
    async fn phone(&self) -> Option<&str> {
        self.0.phone.as_deref()
    }

    /// The email exactly as submitted.
    async fn submitted_email(&self) -> Option<&str> {
        self.0.email_raw.as_deref()
    }

    /// The phone exactly as submitted.
    async fn submitted_phone(&self) -> Option<&str> {
        self.0.phone_raw.as_deref()
    }

    async fn message(&self) -> Option<&str> {
        self.0.message.as_deref()
    }

    async fn vehicle(&self) -> Result<Option<Vehicle>> {
        Ok(store::lead::vehicle_of(&self.0)?.map(Vehicle::from))
    }

    /// Who submitted it (token subject).
    async fn submitted_by(&self) -> &str {
        &self.0.submitted_by
    }

    async fn idempotency_key(&self) -> Option<&str> {
        self.0.idempotency_key.as_deref()
    }

    /// Warnings given when it was accepted.
    async fn warnings(&self) -> Result<Vec<LeadWarning>> {
        let stored = serde_json::from_value::<Vec<domain::LeadWarning>>(self.0.warnings.clone())
            .map_err(|e| {
                AppError::Internal(format!("lead {} has unreadable warnings: {e}", self.0.id))
            })?;
        Ok(stored.into_iter().map(Into::into).collect())
    }

    /// Set when the phone belongs to another client than the email's.
    #[graphql(guard = "RoleGuard::staff()", visible = "is_staff")]
    async fn contact_conflict(&self) -> Result<Option<ContactConflict>> {
        Ok(
            ContactConflictRecord::of(&self.0)?.map(|c| ContactConflict {
                kind: c.kind,
                value: c.value,
                other_client_id: ID(c.other_client_id.to_string()),
            }),
        )
    }

    #[graphql(guard = "RoleGuard::staff()", visible = "is_staff")]
    async fn client(&self, ctx: &Context<'_>) -> Result<Client> {
        Client::load(ctx, self.0.client_id).await
    }

    /// The credit request a `CRE` lead created (null for other types).
    #[graphql(guard = "RoleGuard::staff()", visible = "is_staff")]
    async fn credit_request(
        &self,
        ctx: &Context<'_>,
    ) -> Result<Option<super::credit_request::CreditRequest>> {
        super::credit_request::of_lead(ctx, self.0.id).await
    }

    /// The opportunity the lead created or was merged into.
    #[graphql(guard = "RoleGuard::staff()", visible = "is_staff")]
    async fn opportunity(&self, ctx: &Context<'_>) -> Result<Opportunity> {
        Opportunity::load(ctx, self.0.opportunity_id).await
    }

    /// What the rule saw and decided. Admin only.
    #[graphql(guard = "RoleGuard::admin()", visible = "is_admin")]
    async fn decision(&self) -> Result<LeadDecision> {
        let record: DecisionRecord = serde_json::from_value(self.0.decision.clone())
            .map_err(|e| AppError::Internal(format!("lead {} decision: {e}", self.0.id)))?;
        Ok(LeadDecision(record))
    }
}

/// Un lead entrant / An inbound lead. At least one valid email or phone.
#[derive(InputObject, Default)]
pub struct SubmitLeadInput {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    /// Any common spelling; numbers without a country code are Canadian.
    pub phone: Option<String>,
    pub message: Option<String>,
    /// Site or partner name.
    pub source: Option<String>,
    #[graphql(name = "type", default)]
    pub lead_type: LeadType,
    pub vehicle: Option<Vehicle>,
    /// Repeating a key (same principal) returns the original result.
    pub idempotency_key: Option<String>,
}

impl From<SubmitLeadInput> for domain::LeadSubmission {
    fn from(i: SubmitLeadInput) -> Self {
        Self {
            first_name: i.first_name,
            last_name: i.last_name,
            email: i.email,
            phone: i.phone,
            message: i.message,
            source: i.source,
            lead_type: i.lead_type.into(),
            vehicle: i.vehicle.map(Into::into),
            idempotency_key: i.idempotency_key,
        }
    }
}

/// Result of `submitLead`.
pub struct SubmitLeadPayload {
    intake: store::lead_intake::Intake,
}

#[Object]
impl SubmitLeadPayload {
    async fn lead(&self) -> Lead {
        Lead(self.intake.lead.clone())
    }

    /// The client the lead was attached to. Not for partners.
    #[graphql(guard = "RoleGuard::staff()", visible = "is_staff")]
    async fn client(&self, ctx: &Context<'_>) -> Result<Client> {
        Client::load(ctx, self.intake.lead.client_id).await
    }

    /// The opportunity the lead opened or was merged into. Not for partners.
    #[graphql(guard = "RoleGuard::staff()", visible = "is_staff")]
    async fn opportunity(&self) -> Opportunity {
        Opportunity(self.intake.opportunity.clone())
    }

    /// Not for partners: the answer to a partner has one shape whatever
    /// became of the lead.
    #[graphql(guard = "RoleGuard::staff()", visible = "is_staff")]
    async fn outcome(&self) -> LeadOutcome {
        self.intake.outcome.into()
    }

    /// Values kept raw (an invalid secondary phone or email, ...).
    async fn warnings(&self) -> Vec<LeadWarning> {
        self.intake
            .warnings
            .iter()
            .cloned()
            .map(Into::into)
            .collect()
    }
}

pub(super) fn cursor_of(l: &lead::Model) -> Cursor {
    connection::time_cursor(l.received_at, l.id)
}

#[derive(Default)]
pub struct LeadQuery;

#[Object]
impl LeadQuery {
    /// One lead by id. A partner sees only the leads it submitted.
    #[graphql(guard = "RoleGuard::any()")]
    async fn lead(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Lead>> {
        let who = principal(ctx)?;
        let found = by_id::<entity::lead::Entity>(ctx, &id).await?;
        Ok(found
            .filter(|l| who.role != Role::Partner || l.submitted_by == who.sub)
            .map(Lead))
    }

    /// Leads, newest first. A partner sees only the leads it submitted.
    #[graphql(guard = "RoleGuard::any()")]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(custom = "super::connection::page_size"))] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Page<Lead>> {
        let (api, who) = api_and_caller(ctx)?;
        let only = (who.role == Role::Partner).then_some(who.sub.as_str());
        let page = connection::page_request(first, after, None)?;
        let filters = [&store::lead::SubmittedBy(only)];
        let rows = store::page::list(&api.db, &filters, &page).await?;
        let count = store::page::count(&api.db, &filters);
        connection::counted_page(ctx, rows, &page, count, cursor_of, Lead).await
    }

    /// What `submitLead` would do with this lead now, writing nothing. Admin only.
    #[graphql(guard = "RoleGuard::admin()", visible = "is_admin")]
    async fn preview_lead(
        &self,
        ctx: &Context<'_>,
        input: SubmitLeadInput,
    ) -> Result<LeadDecision> {
        let api = api(ctx)?;
        let valid = domain::validate(input.into()).map_err(AppError::from)?;
        let record =
            store::lead_intake::preview(&api.db, &valid, &api.policy, api.clock.now()).await?;
        Ok(LeadDecision(record))
    }
}

#[derive(Default)]
pub struct LeadMutation;

#[Object]
impl LeadMutation {
    /// Soumettre un lead / Submit a lead. Finds or creates the client by
    /// email or phone; the lead joins the client's current opportunity, or
    /// opens a new `NOUVEAU` one when there is none to join.
    #[graphql(guard = "RoleGuard::any()")]
    async fn submit_lead(
        &self,
        ctx: &Context<'_>,
        input: SubmitLeadInput,
    ) -> Result<SubmitLeadPayload> {
        let intake = crate::intake::submit(api(ctx)?, principal(ctx)?, input.into()).await?;
        Ok(SubmitLeadPayload { intake })
    }
}
