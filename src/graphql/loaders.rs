//! Batched loads for nested fields, so a page of N opportunities costs a
//! constant number of queries, not N+1.
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use entity::{client, client_contact, lead, opportunity, opportunity_status_change};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::AppError;
use crate::store;
use crate::store::page::{Cursor, PageRequest, SortDirection};
use crate::store::status_history::{StatusChange, StatusHistory};

pub struct StoreLoader {
    db: DatabaseConnection,
}

impl StoreLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
    }

    /// The pool, for loaders defined beside their types.
    pub fn db(&self) -> &DatabaseConnection {
        &self.db
    }
}

/// A client by id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ClientById(pub Uuid);
/// An opportunity by id.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpportunityById(pub Uuid);
/// The contact points of a client.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ContactsOf(pub Uuid);
/// One page of a client's opportunities, newest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpportunitiesPage {
    pub client: Uuid,
    pub first: u64,
    pub after: Option<Cursor>,
}
/// How many opportunities a client has.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpportunityCount(pub Uuid);
/// One page of an opportunity's leads, oldest first.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeadsPage {
    pub opportunity: Uuid,
    pub first: u64,
    pub after: Option<Cursor>,
}
/// How many leads an opportunity has.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeadCount(pub Uuid);

/// A page of rows and whether more follow.
pub type Rows<M> = (Vec<M>, bool);

/// One page of a parent's children through the loader (`page_key`), with
/// the total (`count_key`) only when the client selected `totalCount`.
pub async fn child_page<P, C, M, N>(
    ctx: &async_graphql::Context<'_>,
    request: &PageRequest,
    page_key: P,
    count_key: C,
    cursor: impl Fn(&M) -> Cursor,
    node: impl Fn(M) -> N,
) -> async_graphql::Result<super::connection::Page<N>>
where
    P: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    C: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    M: Send + Sync + Clone + 'static,
    N: async_graphql::OutputType,
    StoreLoader: Loader<P, Value = Rows<M>, Error = Arc<AppError>>
        + Loader<C, Value = u64, Error = Arc<AppError>>,
{
    let loader = ctx.data::<DataLoader<StoreLoader>>()?;
    let (rows, has_next) = loader.load_one(page_key).await?.unwrap_or_default();
    let total = if super::connection::wants_total(ctx) {
        loader.load_one(count_key).await?.unwrap_or_default()
    } else {
        0
    };
    Ok(super::connection::page(
        rows, has_next, request, total, cursor, node,
    ))
}
/// The status history of an opportunity, oldest first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct HistoryOf(pub Uuid);

/// The status history of a service case or a credit request (the table
/// `H`), oldest first.
pub struct StatusHistoryOf<H>(pub Uuid, PhantomData<fn() -> H>);

impl<H> StatusHistoryOf<H> {
    pub fn new(record: Uuid) -> Self {
        Self(record, PhantomData)
    }
}

// By hand: derives would ask the same of `H`, a table marker.
impl<H> Clone for StatusHistoryOf<H> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<H> Copy for StatusHistoryOf<H> {}
impl<H> PartialEq for StatusHistoryOf<H> {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl<H> Eq for StatusHistoryOf<H> {}
impl<H> std::hash::Hash for StatusHistoryOf<H> {
    fn hash<S: std::hash::Hasher>(&self, state: &mut S) {
        self.0.hash(state);
    }
}

type Loaded<K, V> = Result<HashMap<K, V>, Arc<AppError>>;

fn group<K: std::hash::Hash + Eq, V>(rows: Vec<V>, key: impl Fn(&V) -> K) -> HashMap<K, Vec<V>> {
    let mut map: HashMap<K, Vec<V>> = HashMap::new();
    for row in rows {
        map.entry(key(&row)).or_default().push(row);
    }
    map
}

fn ids<K: Copy>(keys: &[K], id: impl Fn(K) -> Uuid) -> Vec<Uuid> {
    keys.iter().map(|k| id(*k)).collect()
}

impl Loader<ClientById> for StoreLoader {
    type Value = client::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ClientById]) -> Loaded<ClientById, client::Model> {
        let rows = store::client::by_ids(&self.db, ids(keys, |k| k.0)).await?;
        Ok(rows.into_iter().map(|c| (ClientById(c.id), c)).collect())
    }
}

impl Loader<OpportunityById> for StoreLoader {
    type Value = opportunity::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[OpportunityById]) -> Loaded<OpportunityById, opportunity::Model> {
        let rows = store::opportunity::by_ids(&self.db, ids(keys, |k| k.0)).await?;
        Ok(rows
            .into_iter()
            .map(|o| (OpportunityById(o.id), o))
            .collect())
    }
}

impl Loader<ContactsOf> for StoreLoader {
    type Value = Vec<client_contact::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ContactsOf]) -> Loaded<ContactsOf, Self::Value> {
        let rows = store::client::contacts_of(&self.db, ids(keys, |k| k.0)).await?;
        Ok(group(rows, |r| ContactsOf(r.client_id)))
    }
}

/// Keys that ask for the same page (size and cursor) share one statement.
fn by_page<K, P: std::hash::Hash + Eq>(keys: &[K], page: impl Fn(&K) -> P) -> HashMap<P, Vec<&K>> {
    let mut groups: HashMap<P, Vec<&K>> = HashMap::new();
    for key in keys {
        groups.entry(page(key)).or_default().push(key);
    }
    groups
}

impl Loader<OpportunitiesPage> for StoreLoader {
    type Value = Rows<opportunity::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[OpportunitiesPage]) -> Loaded<OpportunitiesPage, Self::Value> {
        let mut loaded = HashMap::new();
        for ((first, after), group) in by_page(keys, |k| (k.first, k.after.clone())) {
            let request = PageRequest {
                first,
                after: after.clone(),
                direction: SortDirection::Desc,
            };
            let clients = group.iter().map(|k| k.client).collect();
            let mut pages =
                store::opportunity::pages_of_clients(&self.db, clients, &request).await?;
            for key in group {
                let page = pages.remove(&key.client).unwrap_or_default();
                loaded.insert(key.clone(), page);
            }
        }
        Ok(loaded)
    }
}

impl Loader<OpportunityCount> for StoreLoader {
    type Value = u64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[OpportunityCount]) -> Loaded<OpportunityCount, u64> {
        let counts = store::opportunity::count_of_clients(&self.db, ids(keys, |k| k.0)).await?;
        Ok(keys
            .iter()
            .map(|k| (*k, counts.get(&k.0).copied().unwrap_or(0)))
            .collect())
    }
}

impl Loader<LeadsPage> for StoreLoader {
    type Value = Rows<lead::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[LeadsPage]) -> Loaded<LeadsPage, Self::Value> {
        let mut loaded = HashMap::new();
        for ((first, after), group) in by_page(keys, |k| (k.first, k.after.clone())) {
            let request = PageRequest {
                first,
                after: after.clone(),
                direction: SortDirection::Asc,
            };
            let opportunities = group.iter().map(|k| k.opportunity).collect();
            let mut pages =
                store::lead::pages_of_opportunities(&self.db, opportunities, &request).await?;
            for key in group {
                let page = pages.remove(&key.opportunity).unwrap_or_default();
                loaded.insert(key.clone(), page);
            }
        }
        Ok(loaded)
    }
}

impl Loader<LeadCount> for StoreLoader {
    type Value = u64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[LeadCount]) -> Loaded<LeadCount, u64> {
        let counts = store::lead::count_of_opportunities(&self.db, ids(keys, |k| k.0)).await?;
        Ok(keys
            .iter()
            .map(|k| (*k, counts.get(&k.0).copied().unwrap_or(0)))
            .collect())
    }
}

impl Loader<HistoryOf> for StoreLoader {
    type Value = Vec<opportunity_status_change::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[HistoryOf]) -> Loaded<HistoryOf, Self::Value> {
        let rows = store::opportunity::history_of(&self.db, ids(keys, |k| k.0)).await?;
        Ok(group(rows, |r| HistoryOf(r.opportunity_id)))
    }
}

/// The row `key` names, through the request's loader; `NOT_FOUND` (naming
/// `what`) if there is none.
pub async fn required<K>(
    ctx: &async_graphql::Context<'_>,
    key: K,
    what: &'static str,
) -> async_graphql::Result<<StoreLoader as Loader<K>>::Value>
where
    K: Send + Sync + std::hash::Hash + Eq + Clone + 'static,
    StoreLoader: Loader<K, Error = Arc<AppError>>,
{
    let loader = ctx.data::<DataLoader<StoreLoader>>()?;
    Ok(loader
        .load_one(key)
        .await?
        .ok_or(AppError::NotFound(what))?)
}

/// The status history of the record `id` in the table `H`, oldest first,
/// through the request's loader (batched across the records of a page).
pub async fn status_history<H>(
    ctx: &async_graphql::Context<'_>,
    id: Uuid,
) -> async_graphql::Result<Vec<StatusChange<H::Status>>>
where
    H: StatusHistory + Send + Sync + 'static,
    H::Column: Send + Sync,
    H::Status: Clone + Send + Sync + 'static,
{
    let loader = ctx.data::<DataLoader<StoreLoader>>()?;
    Ok(loader
        .load_one(StatusHistoryOf::<H>::new(id))
        .await?
        .unwrap_or_default())
}

impl<H> Loader<StatusHistoryOf<H>> for StoreLoader
where
    H: StatusHistory + Send + Sync + 'static,
    H::Column: Send + Sync,
    H::Status: Clone + Send + Sync + 'static,
{
    type Value = Vec<StatusChange<H::Status>>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[StatusHistoryOf<H>]) -> Loaded<StatusHistoryOf<H>, Self::Value> {
        let rows = store::status_history::of::<H>(&self.db, ids(keys, |k| k.0)).await?;
        let changes = rows.into_iter().map(H::change).collect();
        Ok(group(changes, |c| StatusHistoryOf::new(c.record)))
    }
}
