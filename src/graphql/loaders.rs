//! Batched loads for nested fields, so a page of N opportunities costs a
//! constant number of queries, not N+1.
use std::collections::HashMap;
use std::sync::Arc;

use async_graphql::dataloader::Loader;
use entity::{client, client_contact, lead, opportunity, opportunity_status_change};
use sea_orm::DatabaseConnection;
use uuid::Uuid;

use crate::error::AppError;
use crate::store;

pub struct StoreLoader {
    db: DatabaseConnection,
}

impl StoreLoader {
    pub fn new(db: DatabaseConnection) -> Self {
        Self { db }
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
/// The opportunities of a client, newest first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct OpportunitiesOf(pub Uuid);
/// The leads of an opportunity, oldest first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct LeadsOf(pub Uuid);
/// The status history of an opportunity, oldest first.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub struct HistoryOf(pub Uuid);

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

impl Loader<OpportunitiesOf> for StoreLoader {
    type Value = Vec<opportunity::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[OpportunitiesOf]) -> Loaded<OpportunitiesOf, Self::Value> {
        let rows = store::opportunity::of_clients(&self.db, ids(keys, |k| k.0)).await?;
        Ok(group(rows, |r| OpportunitiesOf(r.client_id)))
    }
}

impl Loader<LeadsOf> for StoreLoader {
    type Value = Vec<lead::Model>;
    type Error = Arc<AppError>;

    async fn load(&self, keys: &[LeadsOf]) -> Loaded<LeadsOf, Self::Value> {
        let rows = store::lead::of_opportunities(&self.db, ids(keys, |k| k.0)).await?;
        Ok(group(rows, |r| LeadsOf(r.opportunity_id)))
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
