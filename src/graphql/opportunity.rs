//! `Opportunity`: the sales file, its status and history, and the admin-only
//! expiry flag.
use async_graphql::{Context, Enum, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::{opportunity, opportunity_status_change};

use super::client::Client;
use super::connection::{self, Page};
use super::lead::Lead;
use super::loaders::{LeadsOfOpportunity, OpportunityById, child_page, status_history};
use super::viewer::{api, api_and_caller, by_id, parse_id};
use crate::auth::{RoleGuard, is_admin};
use crate::error::AppError;
use crate::store;
use crate::store::page::Cursor;

/// Statut d'une opportunité / Status of an opportunity.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "crate::domain::status::OpportunityStatus")]
pub enum OpportunityStatus {
    /// Nouveau : l'opportunité vient d'être créée. / New: just created, not handled yet.
    Nouveau,
    /// Pris en charge : un agent s'en occupe. / Taken in charge: an agent is handling it.
    PrisEnCharge,
    /// Vendu non-livré : vendu, véhicule pas encore livré. / Sold, vehicle not delivered yet.
    VenduNonLivre,
    /// Suivi long terme : suivi à long terme. / Long-term follow-up.
    SuiviLongTerme,
    /// Vendu livré : vendu et livré. / Sold and delivered.
    VenduLivre,
    /// Perdu : vente perdue. / Lost.
    Perdu,
}

/// Une opportunité : le dossier de vente d'un client. / An opportunity: a client's sales file.
pub struct Opportunity(pub opportunity::Model);

impl Opportunity {
    /// The opportunity `id` through the request's loader; `NOT_FOUND` if absent.
    pub(super) async fn load(ctx: &Context<'_>, id: uuid::Uuid) -> Result<Self> {
        Ok(Self(
            super::loaders::required(ctx, OpportunityById(id), "opportunity").await?,
        ))
    }
}

#[Object]
impl Opportunity {
    /// Opaque id (UUID v7).
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Always `VENTES`.
    async fn department(&self) -> super::open_file::Department {
        super::open_file::Department::Ventes
    }

    async fn status(&self) -> Result<OpportunityStatus> {
        Ok(self.0.status.into())
    }

    /// When the opportunity was created (UTC).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Last change: status, or a lead merged into it (UTC).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }

    /// Le client / the client.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn client(&self, ctx: &Context<'_>) -> Result<Client> {
        Client::load(ctx, self.0.client_id).await
    }

    /// Every lead that created this opportunity or was merged into it, oldest first.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn leads(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(custom = "super::connection::page_size"))] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Page<Lead>> {
        let cursor = super::lead::cursor_of;
        child_page::<LeadsOfOpportunity, _>(ctx, self.0.id, first, after, cursor, Lead).await
    }

    /// Every status change (from, to, who, when), oldest first.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn status_history(&self, ctx: &Context<'_>) -> Result<Vec<StatusChange>> {
        let history = status_history::<opportunity_status_change::Entity>(ctx, self.0.id).await?;
        Ok(history.into_iter().map(StatusChange).collect())
    }

    /// Expirée : cochée par le système 8 semaines après la création si le statut
    /// n'est pas protégé. Admin seulement, non modifiable. / Set by the system
    /// eight weeks after creation unless the status is protected. Admin only,
    /// read-only, never cleared.
    #[graphql(guard = "RoleGuard::admin()", visible = "is_admin")]
    async fn expiree(&self) -> bool {
        self.0.expiree
    }

    /// When `expiree` was set; null while not expired. Admin only.
    #[graphql(guard = "RoleGuard::admin()", visible = "is_admin")]
    async fn expired_at(&self) -> Option<DateTime<Utc>> {
        self.0.expired_at
    }
}

super::status_change::status_change_object!(
    StatusChange(entity::opportunity::OpportunityStatus) => OpportunityStatus,
    from: "Previous status; null for the status the opportunity was created with.",
);

/// Filtres de la liste / List filters.
#[derive(InputObject, Default)]
pub struct OpportunityFilter {
    /// Any of these statuses.
    pub status: Option<Vec<OpportunityStatus>>,
    /// Only this client's opportunities.
    pub client_id: Option<ID>,
    /// Expired (true) or live (false) opportunities. Admin only.
    #[graphql(visible = "is_admin")]
    pub expiree: Option<bool>,
}

/// Sort key of the opportunity list (ties broken by id).
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq, Default)]
#[graphql(remote = "crate::store::opportunity::OpportunitySort")]
pub enum OpportunityOrderField {
    /// Creation time.
    #[default]
    CreatedAt,
    /// Last activity: a status change or a lead merged into it.
    UpdatedAt,
}

/// Order of the opportunity list (default: newest first by creation time).
#[derive(InputObject)]
pub struct OpportunityOrder {
    #[graphql(default)]
    pub field: OpportunityOrderField,
    #[graphql(default)]
    pub direction: connection::SortDirection,
}

impl From<&OpportunityOrder> for store::opportunity::OpportunityOrder {
    fn from(order: &OpportunityOrder) -> Self {
        Self {
            field: order.field.into(),
            direction: order.direction.into(),
        }
    }
}

pub(super) fn cursor_of(o: &opportunity::Model) -> Cursor {
    connection::time_cursor(o.created_at, o.id)
}

#[derive(Default)]
pub struct OpportunityQuery;

#[Object]
impl OpportunityQuery {
    /// Une opportunité par id / One opportunity by id (null if none).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn opportunity(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Opportunity>> {
        Ok(by_id::<entity::opportunity::Entity>(ctx, &id)
            .await?
            .map(Opportunity))
    }

    /// Les opportunités / Opportunities, filtered, newest first by default.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn opportunities(
        &self,
        ctx: &Context<'_>,
        filter: Option<OpportunityFilter>,
        order_by: Option<OpportunityOrder>,
        #[graphql(validator(custom = "super::connection::page_size"))] first: Option<i32>,
        after: Option<String>,
        view_id: Option<ID>,
    ) -> Result<Page<Opportunity>> {
        let api = api(ctx)?;
        let (filter, view_order) =
            super::saved_view::opportunity_filter(ctx, filter, view_id.as_ref()).await?;
        let order = order_by
            .as_ref()
            .map(store::opportunity::OpportunityOrder::from)
            .or(view_order)
            .unwrap_or_default();
        let cursor_of = |o: &opportunity::Model| order.field.cursor_of(o);
        let page = connection::page_request(first, after, Some(order.direction))?;
        if page
            .after
            .as_ref()
            .is_some_and(|c| c.key != order.field.key())
        {
            return Err(AppError::bad_input(
                "after",
                "is a cursor of another order than this list's",
            )
            .into());
        }
        let Some(filter) = filter else {
            return Ok(connection::page(
                Vec::new(),
                false,
                &page,
                0,
                cursor_of,
                Opportunity,
            ));
        };
        let rows = store::opportunity::list(&api.db, &filter, order.field, &page).await?;
        let count = store::opportunity::count(&api.db, &filter);
        connection::counted_page(ctx, rows, &page, count, cursor_of, Opportunity).await
    }
}

/// Ouvrir une opportunité (client sans rendez-vous, appel) / Open an opportunity by hand.
#[derive(InputObject)]
pub struct CreateOpportunityInput {
    /// The client it is for.
    pub client_id: ID,
}

#[derive(Default)]
pub struct OpportunityMutation;

#[Object]
impl OpportunityMutation {
    /// Open a `NOUVEAU` opportunity for a walk-in or a phone call.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn create_opportunity(
        &self,
        ctx: &Context<'_>,
        input: CreateOpportunityInput,
    ) -> Result<Opportunity> {
        let (api, who) = api_and_caller(ctx)?;
        let client_id = parse_id("clientId", &input.client_id)?;
        let created =
            store::opportunity::open_for_client(&api.db, client_id, &who.sub, api.clock.now())
                .await?;
        Ok(Opportunity(created))
    }

    /// Change an opportunity's status; the change is recorded in `statusHistory`.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn update_opportunity_status(
        &self,
        ctx: &Context<'_>,
        id: ID,
        status: OpportunityStatus,
    ) -> Result<Opportunity> {
        let (api, who) = api_and_caller(ctx)?;
        let id = parse_id("id", &id)?;
        let updated = store::opportunity::update_status(
            &api.db,
            id,
            status.into(),
            &who.sub,
            api.clock.now(),
            &api.policy,
        )
        .await?;
        Ok(Opportunity(updated))
    }
}
