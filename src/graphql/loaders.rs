//! Batched loads for nested fields, so a page of N opportunities costs a
//! constant number of queries, not N+1.
use std::collections::HashMap;
use std::marker::PhantomData;
use std::sync::Arc;

use async_graphql::dataloader::{DataLoader, Loader};
use entity::{client, client_contact, lead, opportunity};
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
/// A page of rows and whether more follow.
pub type Rows<M> = (Vec<M>, bool);

/// The children of a parent, listed a page at a time. Implemented by unit
/// markers, which name the children in the loader keys.
pub trait Children: Copy + Eq + std::hash::Hash + std::fmt::Debug + Send + Sync + 'static {
    type Model: Send + Sync + Clone + 'static;
    /// The order of the list.
    const DIRECTION: SortDirection;

    /// One page (the same size and cursor) of each parent's children.
    fn pages(
        db: &DatabaseConnection,
        parents: Vec<Uuid>,
        page: &PageRequest,
    ) -> impl Future<Output = Result<HashMap<Uuid, Rows<Self::Model>>, AppError>> + Send;

    /// How many children each parent has (parents with none may be absent).
    fn counts(
        db: &DatabaseConnection,
        parents: Vec<Uuid>,
    ) -> impl Future<Output = Result<HashMap<Uuid, u64>, AppError>> + Send;
}

/// Declares the marker `$marker` of the children (rows of `$entity`) of a
/// parent, listed in `$direction`.
macro_rules! children {
    ($(#[$doc:meta])* $marker:ident($entity:ty, $direction:ident)) => {
        $(#[$doc])*
        #[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
        pub struct $marker;

        impl Children for $marker {
            type Model = <$entity as sea_orm::EntityTrait>::Model;
            const DIRECTION: SortDirection = SortDirection::$direction;

            fn pages(
                db: &DatabaseConnection,
                parents: Vec<Uuid>,
                page: &PageRequest,
            ) -> impl Future<Output = Result<HashMap<Uuid, Rows<Self::Model>>, AppError>> + Send {
                store::page::fetch_per_parent::<$entity>(db, parents, page)
            }

            fn counts(
                db: &DatabaseConnection,
                parents: Vec<Uuid>,
            ) -> impl Future<Output = Result<HashMap<Uuid, u64>, AppError>> + Send {
                store::page::count_per_parent::<$entity>(db, parents)
            }
        }
    };
}

children!(
    /// A client's opportunities, newest first.
    OpportunitiesOfClient(opportunity::Entity, Desc)
);
children!(
    /// An opportunity's leads, oldest first.
    LeadsOfOpportunity(lead::Entity, Asc)
);

/// One page of a parent's children `C`.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChildPage<C> {
    pub parent: Uuid,
    pub first: u64,
    pub after: Option<Cursor>,
    children: PhantomData<C>,
}

/// How many children `C` a parent has.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct ChildCount<C>(pub Uuid, PhantomData<C>);

/// One page (`first`, `after`) of the children `C` of `parent` through the
/// loader, with the total only when the client selected `totalCount`.
pub async fn child_page<C: Children, N: async_graphql::OutputType>(
    ctx: &async_graphql::Context<'_>,
    parent: Uuid,
    first: Option<i32>,
    after: Option<String>,
    cursor: impl Fn(&C::Model) -> Cursor,
    node: impl Fn(C::Model) -> N,
) -> async_graphql::Result<super::connection::Page<N>> {
    let request = super::connection::page_request(first, after, Some(C::DIRECTION))?;
    let loader = ctx.data::<DataLoader<StoreLoader>>()?;
    let page_key = ChildPage::<C> {
        parent,
        first: request.first,
        after: request.after.clone(),
        children: PhantomData,
    };
    let (rows, has_next) = loader.load_one(page_key).await?.unwrap_or_default();
    let total = if super::connection::wants_total(ctx) {
        let count_key = ChildCount::<C>(parent, PhantomData);
        loader.load_one(count_key).await?.unwrap_or_default()
    } else {
        0
    };
    Ok(super::connection::page(
        rows, has_next, &request, total, cursor, node,
    ))
}

/// The status history of a record (an opportunity, a service case or a
/// credit request: the table `H`), oldest first.
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
        let rows =
            store::rows_where::<client::Entity>(&self.db, client::Column::Id, &ids(keys, |k| k.0))
                .await?;
        Ok(rows.into_iter().map(|c| (ClientById(c.id), c)).collect())
    }
}

impl Loader<OpportunityById> for StoreLoader {
    type Value = opportunity::Model;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[OpportunityById]) -> Loaded<OpportunityById, opportunity::Model> {
        let rows = store::rows_where::<opportunity::Entity>(
            &self.db,
            opportunity::Column::Id,
            &ids(keys, |k| k.0),
        )
        .await?;
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

impl<C: Children> Loader<ChildPage<C>> for StoreLoader {
    type Value = Rows<C::Model>;
    type Error = Arc<AppError>;

    /// Keys that ask for the same page (size and cursor) share one statement.
    async fn load(&self, keys: &[ChildPage<C>]) -> Loaded<ChildPage<C>, Self::Value> {
        let mut loaded = HashMap::new();
        for ((first, after), same_page) in
            group(keys.iter().collect(), |k| (k.first, k.after.clone()))
        {
            let request = PageRequest {
                first,
                after,
                direction: C::DIRECTION,
            };
            let parents = same_page.iter().map(|k| k.parent).collect();
            let mut pages = C::pages(&self.db, parents, &request).await?;
            for key in same_page {
                let rows = pages.remove(&key.parent).unwrap_or_default();
                loaded.insert(key.clone(), rows);
            }
        }
        Ok(loaded)
    }
}

impl<C: Children> Loader<ChildCount<C>> for StoreLoader {
    type Value = u64;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[ChildCount<C>]) -> Loaded<ChildCount<C>, u64> {
        let counts = C::counts(&self.db, ids(keys, |k| k.0)).await?;
        Ok(keys
            .iter()
            .map(|k| (*k, counts.get(&k.0).copied().unwrap_or(0)))
            .collect())
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
