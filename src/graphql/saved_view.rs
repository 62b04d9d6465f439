//! Saved views ("filtres", SPEC 6): a named filter and order of one module,
//! private or shared. One view's change never touches another. A view whose
//! filter names an admin-only field (`OpportunityFilter.expiree`) exists for
//! admins only, shared or not.
use async_graphql::{Context, Enum, ID, InputObject, Json, Object, OutputType, Result};
use chrono::{DateTime, Utc};
use entity::saved_view;

use sea_orm::EntityTrait;
use sea_orm::sea_query::IntoColumnRef;

use super::connection::Page;
use super::credit_request::CreditRequestFilter;
use super::opportunity::{OpportunityFilter, OpportunityOrder};
use super::service_case::{ServiceCaseFilter, required_text};
use super::viewer::{api, api_and_caller, parse_id, parse_optional_id, principal};
use crate::auth::{Principal, RoleGuard};
use crate::error::AppError;
use crate::store;
use crate::store::page::{Cursor, ListFilter};
use crate::store::saved_view::StoredOpportunityFilter;

/// Module d'une vue / The list a saved view applies to.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "entity::saved_view::ViewModule")]
pub enum ViewModule {
    /// Les opportunités / Opportunities.
    Opportunities,
    /// Les dossiers de service / Service cases.
    ServiceCases,
    /// Les demandes de crédit / Credit requests.
    CreditRequests,
}

/// Visibilité d'une vue / Who sees a saved view.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "entity::saved_view::ViewVisibility")]
pub enum ViewVisibility {
    /// Privée : son propriétaire seulement. / Its owner only.
    Private,
    /// Partagée : tous les utilisateurs. / Every user.
    Shared,
}

/// Une vue enregistrée (filtre) / A saved view.
pub struct SavedView(pub saved_view::Model);

#[Object]
impl SavedView {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    async fn module(&self) -> ViewModule {
        self.0.module.into()
    }

    async fn name(&self) -> &str {
        &self.0.name
    }

    async fn visibility(&self) -> ViewVisibility {
        self.0.visibility.into()
    }

    /// Who created it (token subject).
    async fn owner(&self) -> &str {
        &self.0.owner
    }

    /// The stored filter, with the field names of the module's filter input.
    async fn filter(&self) -> Json<serde_json::Value> {
        Json(self.0.filter.clone())
    }

    /// The stored order (`{"field": ..., "direction": ...}`), if any.
    async fn order(&self) -> Option<Json<serde_json::Value>> {
        self.0.sort_order.clone().map(Json)
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    async fn updated_at(&self) -> DateTime<Utc> {
        self.0.updated_at
    }
}

/// Enregistrer une vue / Save a view: its module's filter only.
#[derive(InputObject)]
pub struct CreateSavedViewInput {
    pub module: ViewModule,
    #[graphql(validator(max_length = 200))]
    pub name: String,
    pub visibility: ViewVisibility,
    pub opportunity_filter: Option<OpportunityFilter>,
    pub opportunity_order: Option<OpportunityOrder>,
    pub service_case_filter: Option<ServiceCaseFilter>,
    pub credit_request_filter: Option<CreditRequestFilter>,
}

/// Modifier une vue / Change a view (absent fields stay); a filter replaces
/// the stored one and must be of the view's module.
#[derive(InputObject)]
pub struct UpdateSavedViewInput {
    #[graphql(validator(max_length = 200))]
    pub name: Option<String>,
    pub visibility: Option<ViewVisibility>,
    pub opportunity_filter: Option<OpportunityFilter>,
    pub opportunity_order: Option<OpportunityOrder>,
    pub service_case_filter: Option<ServiceCaseFilter>,
    pub credit_request_filter: Option<CreditRequestFilter>,
}

/// A view's stored filter (with whether it is admin-only) and order.
type StoredParts = (Option<(serde_json::Value, bool)>, Option<serde_json::Value>);

/// The filters an input carries, by module.
struct GivenFilters<'a> {
    opportunity: Option<&'a OpportunityFilter>,
    opportunity_order: Option<&'a OpportunityOrder>,
    service_case: Option<&'a ServiceCaseFilter>,
    credit_request: Option<&'a CreditRequestFilter>,
}

impl GivenFilters<'_> {
    /// The stored filter of `module` (and whether it is admin-only), the
    /// stored order; a filter of another module is refused.
    fn stored(&self, module: ViewModule, who: &Principal) -> Result<StoredParts, AppError> {
        let foreign = |field: &str| {
            AppError::bad_input(field, "is the filter of another module than the view's")
        };
        if module != ViewModule::Opportunities {
            if self.opportunity.is_some() {
                return Err(foreign("opportunityFilter"));
            }
            if self.opportunity_order.is_some() {
                return Err(foreign("opportunityOrder"));
            }
        }
        if module != ViewModule::ServiceCases && self.service_case.is_some() {
            return Err(foreign("serviceCaseFilter"));
        }
        if module != ViewModule::CreditRequests && self.credit_request.is_some() {
            return Err(foreign("creditRequestFilter"));
        }
        let json = |v: Result<serde_json::Value, serde_json::Error>| {
            v.map_err(|e| AppError::Internal(format!("saved view filter: {e}")))
        };
        let filter = match module {
            ViewModule::Opportunities => match self.opportunity {
                Some(f) => {
                    let stored = stored_opportunity_filter(f, who)?;
                    let admin_only = stored.expiree.is_some();
                    Some((json(serde_json::to_value(stored))?, admin_only))
                }
                None => None,
            },
            ViewModule::ServiceCases => match self.service_case {
                Some(f) => Some((json(serde_json::to_value(f.to_store()?))?, false)),
                None => None,
            },
            ViewModule::CreditRequests => match self.credit_request {
                Some(f) => Some((json(serde_json::to_value(f.to_store()?))?, false)),
                None => None,
            },
        };
        let order = self
            .opportunity_order
            .map(|o| {
                json(serde_json::to_value(
                    store::opportunity::OpportunityOrder::from(o),
                ))
            })
            .transpose()?;
        Ok((filter, order))
    }
}

/// The stored order of an opportunity view, if it has one.
fn opportunity_order_of(
    view: &saved_view::Model,
) -> Result<Option<store::opportunity::OpportunityOrder>, AppError> {
    view.sort_order
        .clone()
        .map(serde_json::from_value)
        .transpose()
        .map_err(|e| AppError::Internal(format!("saved view {} order: {e}", view.id)))
}

/// The admin-only `expiree` is refused again here for anyone else (the wall
/// already rejected it as an unknown field).
fn stored_opportunity_filter(
    filter: &OpportunityFilter,
    who: &Principal,
) -> Result<StoredOpportunityFilter, AppError> {
    if filter.expiree.is_some() && !who.is_admin() {
        return Err(AppError::Forbidden);
    }
    Ok(StoredOpportunityFilter {
        status: filter
            .status
            .iter()
            .flatten()
            .map(|s| {
                crate::domain::status::OpportunityStatus::from(*s)
                    .as_str()
                    .to_owned()
            })
            .collect(),
        client_id: parse_optional_id("opportunityFilter.clientId", filter.client_id.as_ref())?,
        expiree: filter.expiree,
    })
}

/// The view `view_id` names, for a list of `module`: unknown, or not
/// visible to the caller → `NOT_FOUND`; of another module → `BAD_USER_INPUT`.
pub async fn view_filter(
    ctx: &Context<'_>,
    view_id: Option<&ID>,
    module: ViewModule,
) -> Result<Option<saved_view::Model>, AppError> {
    let Some(view_id) = view_id else {
        return Ok(None);
    };
    let who = principal(ctx)?;
    let view = visible_view(ctx, who, parse_id("viewId", view_id)?).await?;
    if ViewModule::from(view.module) != module {
        return Err(AppError::bad_input("viewId", "is a view of another module"));
    }
    Ok(Some(view))
}

/// What the view `view_id` names adds to a list of `module`: its stored
/// filter and order, decoded (nothing without a view; only opportunity views
/// store an order).
pub async fn view_parts<F: serde::de::DeserializeOwned>(
    ctx: &Context<'_>,
    view_id: Option<&ID>,
    module: ViewModule,
) -> Result<(Option<F>, Option<store::opportunity::OpportunityOrder>), AppError> {
    let Some(view) = view_filter(ctx, view_id, module).await? else {
        return Ok((None, None));
    };
    let filter = serde_json::from_value(view.filter.clone())
        .map_err(|e| AppError::Internal(format!("saved view {} filter: {e}", view.id)))?;
    Ok((Some(filter), opportunity_order_of(&view)?))
}

/// A fetched page of a list of `module`: the rows that meet the explicit
/// filter and, given `view_id`, the saved view's too, in the view's
/// direction.
pub(super) async fn file_list<F>(
    ctx: &Context<'_>,
    module: ViewModule,
    view_id: Option<&ID>,
    explicit: impl FnOnce() -> Result<F, AppError>,
    first: Option<i32>,
    after: Option<String>,
) -> Result<FileList<F>, AppError>
where
    F: ListFilter + serde::de::DeserializeOwned,
    <F::Entity as EntityTrait>::Column: IntoColumnRef + Copy,
{
    let (view_filter, view_order) = view_parts(ctx, view_id, module).await?;
    let request = super::connection::page_request(first, after, view_order.map(|o| o.direction))?;
    let filters: Vec<F> = std::iter::once(explicit()?).chain(view_filter).collect();
    let refs: Vec<&F> = filters.iter().collect();
    let (rows, has_next) = store::page::list(&api(ctx)?.db, &refs, &request).await?;
    Ok(FileList {
        filters,
        rows,
        has_next,
        request,
    })
}

/// A page of a list as [`file_list`] fetched it, its total not yet counted.
pub(super) struct FileList<F: ListFilter> {
    filters: Vec<F>,
    pub rows: Vec<<F::Entity as EntityTrait>::Model>,
    has_next: bool,
    request: store::page::PageRequest,
}

impl<F: ListFilter> FileList<F>
where
    <F::Entity as EntityTrait>::Model: Send + Sync,
{
    /// The page as a connection of `node`s, with `totalCount` counted when
    /// the query selects it.
    pub async fn page<N: OutputType>(
        self,
        ctx: &Context<'_>,
        cursor: impl Fn(&<F::Entity as EntityTrait>::Model) -> Cursor,
        node: impl Fn(<F::Entity as EntityTrait>::Model) -> N,
    ) -> Result<Page<N>> {
        let filters: Vec<&F> = self.filters.iter().collect();
        let count = store::page::count(&api(ctx)?.db, &filters);
        let rows = (self.rows, self.has_next);
        super::connection::counted_page(ctx, rows, &self.request, count, cursor, node).await
    }
}

async fn visible_view(
    ctx: &Context<'_>,
    who: &Principal,
    id: uuid::Uuid,
) -> Result<saved_view::Model, AppError> {
    store::find::<entity::saved_view::Entity>(&api(ctx)?.db, id)
        .await?
        .filter(|v| store::saved_view::visible_to(v, &who.sub, who.is_admin()))
        .ok_or(AppError::NotFound("saved view"))
}

/// The opportunity list's filter: the view's and the explicit one together.
/// `Ok(None)`: no opportunity can meet both.
pub async fn opportunity_filter(
    ctx: &Context<'_>,
    explicit: Option<OpportunityFilter>,
    view_id: Option<&ID>,
) -> Result<
    (
        Option<store::opportunity::OpportunityFilter>,
        Option<store::opportunity::OpportunityOrder>,
    ),
    AppError,
> {
    let who = principal(ctx)?;
    let explicit = stored_opportunity_filter(&explicit.unwrap_or_default(), who)?.to_filter()?;
    let (stored, order) =
        view_parts::<StoredOpportunityFilter>(ctx, view_id, ViewModule::Opportunities).await?;
    let Some(stored) = stored else {
        return Ok((Some(explicit), None));
    };
    Ok((
        store::saved_view::both(&explicit, &stored.to_filter()?),
        order,
    ))
}

#[derive(Default)]
pub struct SavedViewQuery;

#[Object]
impl SavedViewQuery {
    /// Mes vues et les vues partagées d'un module / The caller's own views
    /// of a module and the shared ones, oldest first.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn saved_views(&self, ctx: &Context<'_>, module: ViewModule) -> Result<Vec<SavedView>> {
        let who = principal(ctx)?;
        let views =
            store::saved_view::visible(&api(ctx)?.db, module.into(), &who.sub, who.is_admin())
                .await?;
        Ok(views.into_iter().map(SavedView).collect())
    }
}

#[derive(Default)]
pub struct SavedViewMutation;

#[Object]
impl SavedViewMutation {
    /// Enregistrer une vue / Save a view with exactly its module's filter.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn create_saved_view(
        &self,
        ctx: &Context<'_>,
        input: CreateSavedViewInput,
    ) -> Result<SavedView> {
        let (api, who) = api_and_caller(ctx)?;
        let name = required_text("name", &input.name)?;
        let given = GivenFilters {
            opportunity: input.opportunity_filter.as_ref(),
            opportunity_order: input.opportunity_order.as_ref(),
            service_case: input.service_case_filter.as_ref(),
            credit_request: input.credit_request_filter.as_ref(),
        };
        let (filter, order) = given.stored(input.module, who)?;
        let (filter, admin_only) = filter.unwrap_or((serde_json::json!({}), false));
        let created = store::saved_view::create(
            &api.db,
            store::saved_view::NewView {
                module: input.module.into(),
                name,
                visibility: input.visibility.into(),
                owner: who.sub.clone(),
                admin_only,
                filter,
                sort_order: order,
            },
            api.clock.now(),
        )
        .await?;
        Ok(SavedView(created))
    }

    /// Modifier sa vue / Change one's own view. Someone else's shared view →
    /// `FORBIDDEN`; someone else's private view → `NOT_FOUND`.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn update_saved_view(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateSavedViewInput,
    ) -> Result<SavedView> {
        let (api, who) = api_and_caller(ctx)?;
        let view = visible_view(ctx, who, parse_id("id", &id)?).await?;
        if view.owner != who.sub {
            return Err(AppError::Forbidden.into());
        }
        let given = GivenFilters {
            opportunity: input.opportunity_filter.as_ref(),
            opportunity_order: input.opportunity_order.as_ref(),
            service_case: input.service_case_filter.as_ref(),
            credit_request: input.credit_request_filter.as_ref(),
        };
        let (filter, order) = given.stored(view.module.into(), who)?;
        let changes = store::saved_view::ViewChanges {
            name: input
                .name
                .as_deref()
                .map(|n| required_text("name", n))
                .transpose()?,
            visibility: input.visibility.map(Into::into),
            filter,
            sort_order: order.map(Some),
        };
        let updated = store::saved_view::update(&api.db, view, changes, api.clock.now()).await?;
        Ok(SavedView(updated))
    }

    /// Supprimer sa vue / Delete one's own view (ADMIN: any view). Someone
    /// else's shared view → `FORBIDDEN`; someone else's private view →
    /// `NOT_FOUND`. Returns the deleted view's id.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn delete_saved_view(&self, ctx: &Context<'_>, id: ID) -> Result<ID> {
        let (api, who) = api_and_caller(ctx)?;
        let parsed = parse_id("id", &id)?;
        let view = if who.is_admin() {
            store::find::<entity::saved_view::Entity>(&api.db, parsed)
                .await?
                .ok_or(AppError::NotFound("saved view"))?
        } else {
            visible_view(ctx, who, parsed).await?
        };
        if view.owner != who.sub && !who.is_admin() {
            return Err(AppError::Forbidden.into());
        }
        store::saved_view::delete(&api.db, view.id).await?;
        Ok(id)
    }
}
