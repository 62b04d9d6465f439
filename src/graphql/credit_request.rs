//! Demandes de crédits: credit requests (SPEC 6).
use async_graphql::dataloader::DataLoader;
use async_graphql::{
    Context, Enum, ID, InputObject, InputValueError, InputValueResult, MaybeUndefined, Object,
    Result, Scalar, ScalarType, Value,
};
use chrono::{DateTime, Utc};
use entity::{credit_request, credit_request_status_change};

use super::client::Client;
use super::connection::{self, Page};
use super::loaders::{StoreLoader, status_history};
use super::open_file::Department;
use super::opportunity::Opportunity;
use super::saved_view::{ViewModule, file_list};
use super::service_case::optional_text;
use super::status_change::update_file;
use super::viewer::{api_and_caller, by_id, change, file_filter, parse_id, parse_optional_id};
use crate::auth::RoleGuard;
use crate::domain::money;
use crate::error::AppError;
use crate::store;
use crate::store::access_log::ReadVia;
use crate::store::page::Cursor;

/// Dollars as an exact decimal string, e.g. `"32500.00"`; never a float.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub struct Decimal(pub i64);

/// Dollars as an exact decimal string with two decimals, e.g. `"32500.00"`.
/// Input: a string such as `"32500"` or `"32500.00"` (at most two decimals).
#[Scalar(name = "Decimal")]
impl ScalarType for Decimal {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::String(s) => money::parse_cents(s)
                .map(Decimal)
                .map_err(|e| InputValueError::custom(format!("amount {e}"))),
            _ => Err(InputValueError::custom(
                "amount must be a decimal string such as \"32500.00\"",
            )),
        }
    }

    fn to_value(&self) -> Value {
        Value::String(money::format_cents(self.0))
    }
}

/// Statut d'une demande de crédit / Status of a credit request.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "entity::credit_request::CreditRequestStatus")]
pub enum CreditRequestStatus {
    /// Reçue : la demande est arrivée. / Received.
    Recue,
    /// Soumise : envoyée au prêteur. / Submitted to the lender.
    Soumise,
    /// Approuvée : accordée. / Approved.
    Approuvee,
    /// Refusée : refusée par le prêteur. / Refused.
    Refusee,
    /// Annulée : abandonnée. / Cancelled.
    Annulee,
}

/// Une demande de crédit / A credit request.
pub struct CreditRequest(pub credit_request::Model);

#[Object]
impl CreditRequest {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Always `FINANCEMENT`.
    async fn department(&self) -> Department {
        Department::Financement
    }

    /// Le client / the client.
    async fn client(&self, ctx: &Context<'_>) -> Result<Client> {
        Client::load(ctx, self.0.client_id).await
    }

    /// L'opportunité / the opportunity it belongs to.
    async fn opportunity(&self, ctx: &Context<'_>) -> Result<Opportunity> {
        Opportunity::load(ctx, self.0.opportunity_id).await
    }

    async fn status(&self) -> CreditRequestStatus {
        self.0.status.into()
    }

    /// Montant demandé / Amount asked, in dollars (exact).
    async fn amount(&self) -> Option<Decimal> {
        self.0.amount_cents.map(Decimal)
    }

    /// Durée en mois / Term in months.
    async fn term_months(&self) -> Option<i32> {
        self.0.term_months
    }

    /// Prêteur / Lender.
    async fn lender(&self) -> Option<&str> {
        self.0.lender.as_deref()
    }

    async fn notes(&self) -> Option<&str> {
        self.0.notes.as_deref()
    }

    /// Who created it (token subject).
    async fn created_by(&self) -> &str {
        &self.0.created_by
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Every status change (from, to, who, when), oldest first.
    async fn status_history(&self, ctx: &Context<'_>) -> Result<Vec<CreditRequestStatusChange>> {
        let history =
            status_history::<credit_request_status_change::Entity>(ctx, self.0.id).await?;
        Ok(history.into_iter().map(CreditRequestStatusChange).collect())
    }
}

super::status_change::status_change_object!(
    CreditRequestStatusChange(entity::credit_request::CreditRequestStatus) => CreditRequestStatus,
    from: "Previous status; null for the status the request was created with.",
);

/// The credit request a lead created (batched).
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct CreditRequestOfLead(pub uuid::Uuid);

impl async_graphql::dataloader::Loader<CreditRequestOfLead> for StoreLoader {
    type Value = credit_request::Model;
    type Error = std::sync::Arc<AppError>;

    async fn load(
        &self,
        keys: &[CreditRequestOfLead],
    ) -> Result<std::collections::HashMap<CreditRequestOfLead, Self::Value>, Self::Error> {
        let leads: Vec<_> = keys.iter().map(|k| k.0).collect();
        let lead = credit_request::Column::LeadId;
        let rows = store::rows_where::<credit_request::Entity>(self.db(), lead, &leads).await?;
        Ok(rows
            .into_iter()
            .filter_map(|r| r.lead_id.map(|lead| (CreditRequestOfLead(lead), r)))
            .collect())
    }
}

/// `Lead.creditRequest`: the request a `CRE` lead created (null otherwise).
pub async fn of_lead(ctx: &Context<'_>, lead: uuid::Uuid) -> Result<Option<CreditRequest>> {
    let loader = ctx.data::<DataLoader<StoreLoader>>()?;
    let found = loader.load_one(CreditRequestOfLead(lead)).await?;
    if let Some(request) = &found {
        super::access_log::record_reads(ctx, &[request.id], ReadVia::Lead).await?;
    }
    Ok(found.map(CreditRequest))
}

/// Filtres de la liste des demandes de crédit / Credit request list filters.
#[derive(InputObject, Default, Clone)]
pub struct CreditRequestFilter {
    /// Any of these statuses.
    pub status: Option<Vec<CreditRequestStatus>>,
    /// Only this client's requests.
    pub client_id: Option<ID>,
    /// Only the requests of this opportunity.
    pub opportunity_id: Option<ID>,
}

impl CreditRequestFilter {
    /// The stored form of the filter.
    pub fn to_store(&self) -> Result<store::credit_request::CreditRequestFilter, AppError> {
        Ok(store::credit_request::CreditRequestFilter {
            file: file_filter::<_, entity::credit_request::CreditRequestStatus>(
                self.status.as_deref(),
                self.client_id.as_ref(),
            )?,
            opportunity_id: parse_optional_id(
                "filter.opportunityId",
                self.opportunity_id.as_ref(),
            )?,
        })
    }
}

/// Créer une demande de crédit / Create a credit request on an opportunity.
#[derive(InputObject)]
pub struct CreateCreditRequestInput {
    pub opportunity_id: ID,
    /// Dollars, e.g. `"32500.00"`.
    pub amount: Option<Decimal>,
    #[graphql(validator(minimum = 1, maximum = 600))]
    pub term_months: Option<i32>,
    #[graphql(validator(max_length = 200))]
    pub lender: Option<String>,
    #[graphql(validator(max_length = 10000))]
    pub notes: Option<String>,
}

/// Modifier une demande de crédit / Change a credit request (absent fields
/// stay, `null` clears).
#[derive(InputObject)]
pub struct UpdateCreditRequestInput {
    /// A change is recorded in `statusHistory`.
    pub status: Option<CreditRequestStatus>,
    pub amount: MaybeUndefined<Decimal>,
    #[graphql(validator(minimum = 1, maximum = 600))]
    pub term_months: MaybeUndefined<i32>,
    #[graphql(validator(max_length = 200))]
    pub lender: MaybeUndefined<String>,
    #[graphql(validator(max_length = 10000))]
    pub notes: MaybeUndefined<String>,
}

pub(super) fn cursor_of(c: &credit_request::Model) -> Cursor {
    connection::time_cursor(c.created_at, c.id)
}

#[derive(Default)]
pub struct CreditRequestQuery;

#[Object]
impl CreditRequestQuery {
    /// Une demande de crédit par id / One credit request by id (null if none).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn credit_request(&self, ctx: &Context<'_>, id: ID) -> Result<Option<CreditRequest>> {
        let found = by_id::<credit_request::Entity>(ctx, &id).await?;
        if let Some(request) = &found {
            super::access_log::record_reads(ctx, &[request.id], ReadVia::Single).await?;
        }
        Ok(found.map(CreditRequest))
    }

    /// Les demandes de crédit / Credit requests, newest first. `viewId`
    /// applies a saved view; `filter` narrows it further (both must hold).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn credit_requests(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(custom = "super::connection::page_size"))] first: Option<i32>,
        after: Option<String>,
        filter: Option<CreditRequestFilter>,
        view_id: Option<ID>,
    ) -> Result<Page<CreditRequest>> {
        let module = ViewModule::CreditRequests;
        let explicit = || filter.unwrap_or_default().to_store();
        let listed = file_list(ctx, module, view_id.as_ref(), explicit, first, after).await?;
        let ids: Vec<uuid::Uuid> = listed.rows.iter().map(|r| r.id).collect();
        super::access_log::record_reads(ctx, &ids, ReadVia::List).await?;
        listed.page(ctx, cursor_of, CreditRequest).await
    }
}

#[derive(Default)]
pub struct CreditRequestMutation;

#[Object]
impl CreditRequestMutation {
    /// Créer une demande de crédit (`RECUE`) sur une opportunité / Create a
    /// credit request on an opportunity (and so for its client).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn create_credit_request(
        &self,
        ctx: &Context<'_>,
        input: CreateCreditRequestInput,
    ) -> Result<CreditRequest> {
        let (api, who) = api_and_caller(ctx)?;
        let opportunity_id = parse_id("opportunityId", &input.opportunity_id)?;
        let new = store::credit_request::NewCreditRequest {
            opportunity_id,
            lead_id: None,
            amount_cents: input.amount.map(|a| a.0),
            term_months: input.term_months,
            lender: optional_text("lender", input.lender.as_deref())?,
            notes: optional_text("notes", input.notes.as_deref())?,
        };
        let created =
            store::credit_request::create(&api.db, new, &who.sub, api.clock.now()).await?;
        Ok(CreditRequest(created))
    }

    /// Modifier une demande de crédit / Change a credit request; a status
    /// change is recorded in `statusHistory`.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn update_credit_request(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateCreditRequestInput,
    ) -> Result<CreditRequest> {
        let id = parse_id("id", &id)?;
        let changes = credit_request::ActiveModel {
            amount_cents: change(input.amount, |a| Ok(Some(a.0)))?,
            term_months: change(input.term_months, |t| Ok(Some(t)))?,
            lender: change(input.lender, |l| optional_text("lender", Some(&l)))?,
            notes: change(input.notes, |n| optional_text("notes", Some(&n)))?,
            ..Default::default()
        };
        let status = input.status.map(Into::into);
        let updated = update_file::<credit_request::Entity>(ctx, id, status, changes).await?;
        Ok(CreditRequest(updated))
    }
}
