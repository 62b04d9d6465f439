//! `Client` (fiche client): a person, found by any of their contact points.
use async_graphql::dataloader::DataLoader;
use async_graphql::{Context, ID, InputObject, Object, Result};
use chrono::{DateTime, Utc};
use entity::client;
use uuid::Uuid;

use super::connection::{self, Page};
use super::loaders::{ClientById, ContactsOf, OpportunitiesOfClient, StoreLoader, child_page};
use super::opportunity::Opportunity;
use super::viewer::{api, by_id};
use crate::auth::RoleGuard;
use crate::domain::contact::{ContactKind, ContactPoint, Email, Phone};
use crate::domain::lead_intake::limits;
use crate::error::AppError;
use crate::store;
use crate::store::page::Cursor;

/// Une fiche client / A client.
pub struct Client(pub client::Model);

impl Client {
    async fn contacts(&self, ctx: &Context<'_>, kind: ContactKind) -> Result<Vec<String>> {
        let loader = ctx.data::<DataLoader<StoreLoader>>()?;
        let contacts = loader
            .load_one(ContactsOf(self.0.id))
            .await?
            .unwrap_or_default();
        Ok(contacts
            .into_iter()
            .filter(|c| c.kind == kind)
            .map(|c| c.value)
            .collect())
    }
}

impl Client {
    /// The client `id` through the request's loader; `NOT_FOUND` if absent.
    pub(super) async fn load(ctx: &Context<'_>, id: Uuid) -> Result<Self> {
        Ok(Self(
            super::loaders::required(ctx, ClientById(id), "client").await?,
        ))
    }
}

#[Object]
impl Client {
    async fn id(&self) -> ID {
        ID(self.0.id.to_string())
    }

    /// Prénom / First name.
    async fn first_name(&self) -> Option<&str> {
        self.0.first_name.as_deref()
    }

    /// Nom / Last name.
    async fn last_name(&self) -> Option<&str> {
        self.0.last_name.as_deref()
    }

    /// Normalized emails (trimmed, lowercase).
    async fn emails(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        self.contacts(ctx, ContactKind::Email).await
    }

    /// Normalized phones (E.164).
    async fn phones(&self, ctx: &Context<'_>) -> Result<Vec<String>> {
        self.contacts(ctx, ContactKind::Phone).await
    }

    async fn created_at(&self) -> DateTime<Utc> {
        self.0.created_at
    }

    /// Dossiers ouverts / The client's files that are not closed, every
    /// department, newest first (the 20 newest). Closed: an opportunity
    /// `VENDU_LIVRE` or `PERDU`, a service case `FERME`, a credit request
    /// `APPROUVEE`, `REFUSEE` or `ANNULEE`.
    async fn open_files(&self, ctx: &Context<'_>) -> Result<Vec<super::open_file::OpenFile>> {
        super::open_file::open_files_of(ctx, self.0.id).await
    }

    /// The client's opportunities, newest first.
    async fn opportunities(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(custom = "super::connection::page_size"))] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Page<Opportunity>> {
        let cursor = super::opportunity::cursor_of;
        child_page::<OpportunitiesOfClient, _>(ctx, self.0.id, first, after, cursor, Opportunity)
            .await
    }
}

fn cursor_of(c: &client::Model) -> Cursor {
    connection::time_cursor(c.created_at, c.id)
}

#[derive(Default)]
pub struct ClientQuery;

#[Object]
impl ClientQuery {
    /// Une fiche client par id / One client by id (null if none).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn client(&self, ctx: &Context<'_>, id: ID) -> Result<Option<Client>> {
        Ok(by_id::<entity::client::Entity>(ctx, &id).await?.map(Client))
    }

    /// Rechercher des clients / Search clients: an email or a phone (any
    /// spelling) finds its owner; other text matches first or last names.
    /// Newest first.
    #[graphql(guard = "RoleGuard::staff()")]
    async fn clients(
        &self,
        ctx: &Context<'_>,
        #[graphql(validator(max_length = 320))] search: Option<String>,
        #[graphql(validator(custom = "super::connection::page_size"))] first: Option<i32>,
        after: Option<String>,
    ) -> Result<Page<Client>> {
        let api = api(ctx)?;
        let page = connection::page_request(first, after, None)?;
        let filters = [&store::client::ClientSearch(search.as_deref())];
        let rows = store::page::list(&api.db, &filters, &page).await?;
        let count = store::page::count(&api.db, &filters);
        connection::counted_page(ctx, rows, &page, count, cursor_of, Client).await
    }
}

/// Créer une fiche client (sans rendez-vous, appel) / Create a client by hand.
#[derive(InputObject)]
pub struct CreateClientInput {
    #[graphql(validator(max_length = 100))]
    pub first_name: Option<String>,
    #[graphql(validator(max_length = 100))]
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
}

#[derive(Default)]
pub struct ClientMutation;

#[Object]
impl ClientMutation {
    /// Create a client for a walk-in or a call. Its email and phone must be
    /// valid and not belong to another client (`CONFLICT`).
    #[graphql(guard = "RoleGuard::staff()")]
    async fn create_client(&self, ctx: &Context<'_>, input: CreateClientInput) -> Result<Client> {
        let api = api(ctx)?;
        let mut points = Vec::new();
        if let Some(email) = input.email.as_deref().filter(|e| !e.trim().is_empty()) {
            if email.chars().count() > limits::EMAIL_RAW {
                return Err(AppError::bad_input("email", "is too long").into());
            }
            let email =
                Email::parse(email).map_err(|e| AppError::bad_input("email", e.to_string()))?;
            points.push(ContactPoint::Email(email));
        }
        if let Some(phone) = input.phone.as_deref().filter(|p| !p.trim().is_empty()) {
            let phone =
                Phone::parse(phone).map_err(|e| AppError::bad_input("phone", e.to_string()))?;
            points.push(ContactPoint::Phone(phone));
        }
        let clean = |s: Option<String>| s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty());
        let (first, last) = (clean(input.first_name), clean(input.last_name));
        for (field, name) in [("firstName", &first), ("lastName", &last)] {
            if name
                .as_deref()
                .and_then(crate::domain::contact::bidi_control)
                .is_some()
            {
                return Err(
                    AppError::bad_input(field, "holds a bidirectional-control character").into(),
                );
            }
        }
        if first.is_none() && last.is_none() && points.is_empty() {
            return Err(
                AppError::bad_input("input", "give at least a name, an email or a phone").into(),
            );
        }
        let now = api.clock.now();
        let created =
            store::client::create_with_contacts(&api.db, first, last, &points, now).await?;
        Ok(Client(created))
    }
}
