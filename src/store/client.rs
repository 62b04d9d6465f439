//! Clients and their contact points.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{client, client_contact};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr, LockType, Order, Query};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    FromQueryResult, Iterable, QueryFilter, QueryOrder, QuerySelect, QueryTrait,
};
use uuid::Uuid;

use super::page;
use super::write_batch::WriteBatch;
use crate::domain::contact::{ContactKind, ContactPoint, Email, Phone};
use crate::domain::search;
use crate::error::AppError;

/// Contact points of several clients, in the order they were added.
pub async fn contacts_of(
    db: &impl ConnectionTrait,
    client_ids: Vec<Uuid>,
) -> Result<Vec<client_contact::Model>, AppError> {
    Ok(client_contact::Entity::find()
        .filter(client_contact::Column::ClientId.is_in(client_ids))
        .order_by_asc(client_contact::Column::CreatedAt)
        .order_by_asc(client_contact::Column::Id)
        .all(db)
        .await?)
}

/// A client named by a request: by id, or by contact points (a normalized
/// email and/or phone).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientRef {
    Id(Uuid),
    Contact(Vec<ContactPoint>),
}

/// The client `client` names. None → `NOT_FOUND`; contact points of two
/// different clients → `BAD_USER_INPUT`.
pub async fn resolve(db: &impl ConnectionTrait, client: &ClientRef) -> Result<Uuid, AppError> {
    let points = match client {
        ClientRef::Id(id) => {
            return super::find::<client::Entity>(db, *id)
                .await?
                .map(|c| c.id)
                .ok_or(AppError::NotFound("client"));
        }
        ClientRef::Contact(points) => points,
    };
    let owners = owners(db, points).await?;
    let mut found: Vec<Uuid> = points
        .iter()
        .filter_map(|p| owners.get(p))
        .copied()
        .collect();
    found.dedup();
    match found.as_slice() {
        [] => Err(AppError::NotFound("client")),
        [one] => Ok(*one),
        _ => Err(AppError::bad_input(
            "phone",
            "the email and the phone belong to two different clients",
        )),
    }
}

/// Which client owns each of these contact points (absent: nobody).
pub async fn owners(
    db: &impl ConnectionTrait,
    points: &[ContactPoint],
) -> Result<HashMap<ContactPoint, Uuid>, AppError> {
    let (owners, _) = owners_with(db, points, OwnerLock::None).await?;
    Ok(owners)
}

/// As [`owners`], and the owners' rows, locked until the transaction ends
/// (on PostgreSQL; SQLite's write transaction is the lock): the lookup and
/// the lock are one statement.
pub async fn lock_owners(
    db: &impl ConnectionTrait,
    points: &[ContactPoint],
) -> Result<(HashMap<ContactPoint, Uuid>, Vec<client::Model>), AppError> {
    owners_with(db, points, OwnerLock::ForUpdate).await
}

#[derive(Copy, Clone, PartialEq, Eq)]
enum OwnerLock {
    None,
    ForUpdate,
}

async fn owners_with(
    db: &impl ConnectionTrait,
    points: &[ContactPoint],
    lock: OwnerLock,
) -> Result<(HashMap<ContactPoint, Uuid>, Vec<client::Model>), AppError> {
    if points.is_empty() {
        return Ok((HashMap::new(), Vec::new()));
    }
    let mut any = Condition::any();
    for point in points {
        any = any.add(
            Condition::all()
                .add(client_contact::Column::Kind.eq(point.kind()))
                .add(client_contact::Column::Value.eq(point.value())),
        );
    }
    let mut select = Query::select();
    select
        .columns([client_contact::Column::Kind, client_contact::Column::Value])
        .columns(client::Column::iter().map(|c| (client::Entity, c)))
        .from(client_contact::Entity)
        .inner_join(
            client::Entity,
            Expr::col((client::Entity, client::Column::Id))
                .equals((client_contact::Entity, client_contact::Column::ClientId)),
        )
        .cond_where(any);
    if lock == OwnerLock::ForUpdate {
        // Two owners (a conflicting phone) are locked in id order, so two
        // intakes that cross the same two clients cannot deadlock.
        select
            .order_by((client::Entity, client::Column::Id), Order::Asc)
            .lock_with_tables(LockType::Update, [client::Entity]);
    }
    let mut owners = HashMap::new();
    let mut clients: Vec<client::Model> = Vec::new();
    for row in db.query_all(&select).await? {
        let kind: ContactKind = row.try_get("", "kind")?;
        let value: String = row.try_get("", "value")?;
        let owner = client::Model::from_query_result(&row, "")?;
        if let Some(point) = points
            .iter()
            .find(|p| p.kind() == kind && p.value() == value)
        {
            owners.insert(point.clone(), owner.id);
        }
        if !clients.iter().any(|c| c.id == owner.id) {
            clients.push(owner);
        }
    }
    Ok((owners, clients))
}

/// Create a client with the given names (written when `batch` runs).
pub fn create_into(
    batch: &mut WriteBatch,
    first_name: Option<String>,
    last_name: Option<String>,
    now: DateTime<Utc>,
) -> client::Model {
    let created = client::Model {
        id: Uuid::now_v7(),
        search_key: Some(search::client_key(
            first_name.as_deref(),
            last_name.as_deref(),
        )),
        first_name,
        last_name,
        created_at: now,
        updated_at: now,
    };
    batch.insert(client::Entity::insert(client::ActiveModel::from(created.clone())).into_query());
    created
}

/// `createClient`: a new client holding `points`, in one write transaction;
/// `CONFLICT` when a point already belongs to a client (seen before the
/// insert, or as the unique constraint on the contact at the insert).
pub async fn create_with_contacts(
    db: &DatabaseConnection,
    first_name: Option<String>,
    last_name: Option<String>,
    points: &[ContactPoint],
    now: DateTime<Utc>,
) -> Result<client::Model, AppError> {
    let taken = || AppError::Conflict("this email or phone already belongs to a client".into());
    super::write(db, async |txn| {
        if !owners(txn, points).await?.is_empty() {
            return Err(taken());
        }
        let mut batch = WriteBatch::new();
        let created = create_into(&mut batch, first_name, last_name, now);
        add_contacts_into(&mut batch, created.id, points, now);
        batch.execute(txn).await.map_err(|e| match e {
            AppError::Contention => taken(),
            other => other,
        })?;
        Ok(created)
    })
    .await
}

/// Fill in names the client does not have yet; never overwrite an agent's
/// edit (written when `batch` runs).
pub fn complete_names_into(
    batch: &mut WriteBatch,
    existing: &client::Model,
    first_name: Option<&str>,
    last_name: Option<&str>,
    now: DateTime<Utc>,
) {
    let mut update = client::Entity::update_many().filter(client::Column::Id.eq(existing.id));
    let mut changed = false;
    if existing.first_name.is_none()
        && let Some(first) = first_name
    {
        update = update.col_expr(client::Column::FirstName, Expr::value(first));
        changed = true;
    }
    if existing.last_name.is_none()
        && let Some(last) = last_name
    {
        update = update.col_expr(client::Column::LastName, Expr::value(last));
        changed = true;
    }
    if changed {
        let key = search::client_key(
            existing.first_name.as_deref().or(first_name),
            existing.last_name.as_deref().or(last_name),
        );
        let update = update
            .col_expr(client::Column::SearchKey, Expr::value(key))
            .col_expr(client::Column::UpdatedAt, Expr::value(now));
        // The client row is locked by the caller: exactly it changes.
        batch.update_exactly(update.into_query(), 1);
    }
}

/// Attach contact points to a client (written when `batch` runs).
pub fn add_contacts_into(
    batch: &mut WriteBatch,
    client_id: Uuid,
    points: &[ContactPoint],
    now: DateTime<Utc>,
) {
    if points.is_empty() {
        return;
    }
    let rows = points.iter().map(|p| client_contact::ActiveModel {
        id: Set(Uuid::now_v7()),
        client_id: Set(client_id),
        kind: Set(p.kind()),
        value: Set(p.value().to_owned()),
        created_at: Set(now),
    });
    batch.insert(client_contact::Entity::insert_many(rows).into_query());
}

/// The client search (listed with [`page::list`]): an email or phone finds
/// its owner exactly; any other text matches name words in any order, case-
/// and accent-insensitive; none finds every client.
pub struct ClientSearch<'a>(pub Option<&'a str>);

impl page::ListFilter for ClientSearch<'_> {
    type Entity = client::Entity;

    fn apply(&self, select: sea_orm::Select<client::Entity>) -> sea_orm::Select<client::Entity> {
        matching(select, self.0)
    }
}

fn matching(
    select: sea_orm::Select<client::Entity>,
    text: Option<&str>,
) -> sea_orm::Select<client::Entity> {
    match text.map(str::trim).filter(|t| !t.is_empty()) {
        None => select,
        Some(text) => {
            let point = Email::parse(text)
                .map(ContactPoint::Email)
                .or_else(|_| Phone::parse(text).map(ContactPoint::Phone))
                .ok();
            match point {
                Some(point) => select.filter(
                    client::Column::Id.in_subquery(
                        sea_orm::sea_query::Query::select()
                            .column(client_contact::Column::ClientId)
                            .from(client_contact::Entity)
                            .and_where(client_contact::Column::Kind.eq(point.kind()))
                            .and_where(client_contact::Column::Value.eq(point.value()))
                            .to_owned(),
                    ),
                ),
                None => {
                    // Every folded word in the folded names, in any order.
                    let mut all = Condition::all();
                    for word in search::words(text) {
                        let pattern = format!("%{}%", escape_like(&word));
                        all = all.add(
                            Expr::col(client::Column::SearchKey)
                                .like(LikeExpr::new(pattern).escape('\\')),
                        );
                    }
                    select.filter(all)
                }
            }
        }
    }
}

/// Fill the search key of clients stored before it existed (run at start).
pub async fn backfill_search_keys(db: &impl ConnectionTrait) -> Result<u64, AppError> {
    let mut done = 0;
    loop {
        let batch = client::Entity::find()
            .filter(client::Column::SearchKey.is_null())
            .limit(500)
            .all(db)
            .await?;
        if batch.is_empty() {
            return Ok(done);
        }
        for c in batch {
            let key = search::client_key(c.first_name.as_deref(), c.last_name.as_deref());
            client::Entity::update_many()
                .col_expr(client::Column::SearchKey, Expr::value(key))
                .filter(client::Column::Id.eq(c.id))
                .exec(db)
                .await?;
            done += 1;
        }
    }
}

fn escape_like(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('%', "\\%")
        .replace('_', "\\_")
}

/// Lock the client row until the transaction ends (PostgreSQL), so leads
/// for one client are routed one at a time.
pub async fn lock(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<client::Model>, AppError> {
    Ok(client::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?)
}
