//! Service à la clientèle: after-sales service cases (SPEC 6).
use async_graphql::{Context, Enum, ID, InputObject, MaybeUndefined, Object, Result};
use chrono::{DateTime, Utc};
use entity::{service_case, service_case_status_change};

use super::client::Client;
use super::connection::{self, Page};
use super::loaders::status_history;
use super::open_file::Department;
use super::saved_view::{ViewModule, file_list};
use super::status_change::update_file;
use super::viewer::{api_and_caller, by_id, change, file_filter, parse_id, set_to};
use crate::auth::RoleGuard;
use crate::domain::contact::{ContactPoint, Email, Phone};
use crate::error::AppError;
use crate::store;
use crate::store::client::ClientRef;
use crate::store::page::Cursor;

/// Statut d'un dossier de service / Status of a service case.
#[derive(Enum, Copy, Clone, Debug, PartialEq, Eq)]
#[graphql(remote = "entity::service_case::ServiceCaseStatus")]
pub enum ServiceCaseStatus {
    /// Ouvert : vient d'être ouvert. / Open: just opened.
    Ouvert,
    /// En cours : quelqu'un s'en occupe. / In progress: being handled.
    EnCours,
    /// Fermé : réglé. / Closed: settled.
    Ferme,
}

/// Un dossier du service à la clientèle / An after-sales service case.
pub struct ServiceCase(pub service_case::Model);

#[Object]
impl ServiceCase {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Always `SERVICE`.
    async fn department(&self) -> Department {
        Department::Service
    }

    /// Le client / the client.
    async fn client(&self, ctx: &Context<'_>) -> Result<Client> {
        Client::load(ctx, self.0.client_id).await
    }

    /// Objet / Subject.
    async fn subject(&self) -> &str {
        &self.0.subject
    }

    /// L'explication de la situation / The explanation of the situation.
    async fn description(&self) -> &str {
        &self.0.description
    }

    async fn status(&self) -> ServiceCaseStatus {
        self.0.status.into()
    }

    /// Who handles it (user id), if anybody.
    async fn assignee(&self) -> Option<&str> {
        self.0.assignee.as_deref()
    }

    /// Who opened it (token subject).
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
    async fn status_history(&self, ctx: &Context<'_>) -> Result<Vec<ServiceCaseStatusChange>> {
        let history = status_history::<service_case_status_change::Entity>(ctx, self.0.id).await?;
        Ok(history.into_iter().map(ServiceCaseStatusChange).collect())
    }
}

super::status_change::status_change_object!(
    ServiceCaseStatusChange(entity::service_case::ServiceCaseStatus) => ServiceCaseStatus,
    from: "Previous status; null for the status the case was opened with.",
);

/// Filtres de la liste des dossiers de service / Service case list filters.
#[derive(InputObject, Default, Clone)]
pub struct ServiceCaseFilter {
    /// Any of these statuses.
    pub status: Option<Vec<ServiceCaseStatus>>,
    /// Only this client's cases.
    pub client_id: Option<ID>,
    /// Only the cases of this assignee.
    #[graphql(validator(max_length = 200))]
    pub assignee: Option<String>,
}

impl ServiceCaseFilter {
    /// The stored form of the filter.
    pub fn to_store(&self) -> Result<store::service_case::ServiceCaseFilter, AppError> {
        Ok(store::service_case::ServiceCaseFilter {
            file: file_filter::<_, entity::service_case::ServiceCaseStatus>(
                self.status.as_deref(),
                self.client_id.as_ref(),
            )?,
            assignee: self.assignee.clone(),
        })
    }
}

/// Ouvrir un dossier de service / Open a service case.
#[derive(InputObject)]
pub struct CreateServiceCaseInput {
    /// The client, by id; or give `email` and/or `phone` instead.
    pub client_id: Option<ID>,
    /// Finds the client by email (normalized as for leads).
    pub email: Option<String>,
    /// Finds the client by phone (any spelling).
    pub phone: Option<String>,
    #[graphql(validator(max_length = 200))]
    pub subject: String,
    #[graphql(validator(max_length = 10000))]
    pub description: String,
    #[graphql(validator(max_length = 200))]
    pub assignee: Option<String>,
}

/// Modifier un dossier de service / Change a service case (absent fields stay).
#[derive(InputObject)]
pub struct UpdateServiceCaseInput {
    /// A change is recorded in `statusHistory`.
    pub status: Option<ServiceCaseStatus>,
    /// `null` unassigns.
    #[graphql(validator(max_length = 200))]
    pub assignee: MaybeUndefined<String>,
    #[graphql(validator(max_length = 200))]
    pub subject: Option<String>,
    #[graphql(validator(max_length = 10000))]
    pub description: Option<String>,
}

/// Trimmed text, refused when empty or holding bidirectional controls.
pub(super) fn required_text(field: &str, value: &str) -> Result<String, AppError> {
    let value = value.trim();
    if value.is_empty() {
        return Err(AppError::bad_input(field, "must not be empty"));
    }
    if crate::domain::contact::bidi_control(value).is_some() {
        return Err(AppError::bad_input(
            field,
            "holds a bidirectional-control character",
        ));
    }
    Ok(value.to_owned())
}

/// Optional text: blank is none.
pub(super) fn optional_text(field: &str, value: Option<&str>) -> Result<Option<String>, AppError> {
    match value.map(str::trim).filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(v) => required_text(field, v).map(Some),
    }
}

pub(super) fn cursor_of(c: &service_case::Model) -> Cursor {
    connection::time_cursor(c.created_at, c.id)
}

/// The client an input names: by `clientId`, or by `email` and/or `phone`
/// (normalized as for leads), never both ways.
fn client_ref(
    client_id: Option<&ID>,
    email: Option<&str>,
    phone: Option<&str>,
) -> Result<ClientRef, AppError> {
    if let Some(id) = client_id {
        if email.is_some() || phone.is_some() {
            let message = "give clientId or an email/phone, not both";
            return Err(AppError::bad_input("clientId", message));
        }
        return parse_id("clientId", id).map(ClientRef::Id);
    }
    let mut points = Vec::new();
    if let Some(email) = email.filter(|e| !e.trim().is_empty()) {
        let email = Email::parse(email).map_err(|e| AppError::bad_input("email", e.to_string()))?;
        points.push(ContactPoint::Email(email));
    }
    if let Some(phone) = phone.filter(|p| !p.trim().is_empty()) {
        let phone = Phone::parse(phone).map_err(|e| AppError::bad_input("phone", e.to_string()))?;
        points.push(ContactPoint::Phone(phone));
    }
    if points.is_empty() {
        let message = "give clientId, or an email and/or a phone of the client";
        return Err(AppError::bad_input("input", message));
    }
    Ok(ClientRef::Contact(points))
}

#[derive(Default)]
pub struct ServiceCaseQuery;

#[Object]
impl ServiceCaseQuery {
    /// Un dossier de service par id / One service case by id (null if none).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn service_case(&self, ctx: &Context<'_>, id: ID) -> Result<Option<ServiceCase>> {
        Ok(by_id::<service_case::Entity>(ctx, &id)
            .await?
            .map(ServiceCase))
    }

    /// Les dossiers de service / Service cases, newest first. `viewId` applies
    /// a saved view; `filter` narrows it further (both must hold).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn service_cases(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(custom = "super::connection::page_size"))] first: Option<i32>,
        after: Option<String>,
        filter: Option<ServiceCaseFilter>,
        view_id: Option<ID>,
    ) -> Result<Page<ServiceCase>> {
        let module = ViewModule::ServiceCases;
        let explicit = || filter.unwrap_or_default().to_store();
        let listed = file_list(ctx, module, view_id.as_ref(), explicit, first, after).await?;
        listed.page(ctx, cursor_of, ServiceCase).await
    }
}

#[derive(Default)]
pub struct ServiceCaseMutation;

#[Object]
impl ServiceCaseMutation {
    /// Ouvrir un dossier de service (`OUVERT`) / Open a service case for a
    /// client given by id, or by email and/or phone. No client found →
    /// `NOT_FOUND`; email and phone of two different clients →
    /// `BAD_USER_INPUT`; nothing is created in either case.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn create_service_case(
        &self,
        ctx: &Context<'_>,
        input: CreateServiceCaseInput,
    ) -> Result<ServiceCase> {
        let (api, who) = api_and_caller(ctx)?;
        let subject = required_text("subject", &input.subject)?;
        let description = required_text("description", &input.description)?;
        let assignee = optional_text("assignee", input.assignee.as_deref())?;
        let new = store::service_case::NewServiceCase {
            client: client_ref(
                input.client_id.as_ref(),
                input.email.as_deref(),
                input.phone.as_deref(),
            )?,
            subject,
            description,
            assignee,
        };
        let created = store::service_case::create(&api.db, new, &who.sub, api.clock.now()).await?;
        Ok(ServiceCase(created))
    }

    /// Modifier un dossier de service / Change a service case; a status
    /// change is recorded in `statusHistory`.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn update_service_case(
        &self,
        ctx: &Context<'_>,
        id: ID,
        input: UpdateServiceCaseInput,
    ) -> Result<ServiceCase> {
        let id = parse_id("id", &id)?;
        let changes = service_case::ActiveModel {
            assignee: change(input.assignee, |a| optional_text("assignee", Some(&a)))?,
            subject: set_to(input.subject, |s| required_text("subject", &s))?,
            description: set_to(input.description, |s| required_text("description", &s))?,
            ..Default::default()
        };
        let status = input.status.map(Into::into);
        let updated = update_file::<service_case::Entity>(ctx, id, status, changes).await?;
        Ok(ServiceCase(updated))
    }
}
