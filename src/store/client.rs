//! Clients and their contact points.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::{client, client_contact};
use sea_orm::sea_query::{Expr, ExprTrait, LikeExpr};
use sea_orm::{
    ActiveValue::Set, ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::page::{self, PageRequest};
use crate::domain::contact::{ContactKind, ContactPoint, Email, Phone};
use crate::domain::search;
use crate::error::AppError;

pub async fn find(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<client::Model>, AppError> {
    Ok(client::Entity::find_by_id(id).one(db).await?)
}

pub async fn by_ids(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<Vec<client::Model>, AppError> {
    Ok(client::Entity::find()
        .filter(client::Column::Id.is_in(ids))
        .all(db)
        .await?)
}

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

/// Which client owns each of these contact points (absent: nobody).
pub async fn owners(
    db: &impl ConnectionTrait,
    points: &[ContactPoint],
) -> Result<HashMap<ContactPoint, Uuid>, AppError> {
    if points.is_empty() {
        return Ok(HashMap::new());
    }
    let mut any = Condition::any();
    for point in points {
        any = any.add(
            Condition::all()
                .add(client_contact::Column::Kind.eq(point.kind().as_str()))
                .add(client_contact::Column::Value.eq(point.value())),
        );
    }
    let rows = client_contact::Entity::find().filter(any).all(db).await?;
    Ok(points
        .iter()
        .filter_map(|p| {
            rows.iter()
                .find(|r| r.kind == p.kind().as_str() && r.value == p.value())
                .map(|r| (p.clone(), r.client_id))
        })
        .collect())
}

/// Create a client with the given names.
pub async fn create(
    db: &impl ConnectionTrait,
    first_name: Option<String>,
    last_name: Option<String>,
    now: DateTime<Utc>,
) -> Result<Uuid, AppError> {
    let id = Uuid::now_v7();
    let search_key = search::client_key(first_name.as_deref(), last_name.as_deref());
    client::Entity::insert(client::ActiveModel {
        id: Set(id),
        search_key: Set(Some(search_key)),
        first_name: Set(first_name),
        last_name: Set(last_name),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(id)
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
    let txn = super::begin_write(db).await?;
    if !owners(&txn, points).await?.is_empty() {
        return Err(taken());
    }
    let id = create(&txn, first_name.clone(), last_name.clone(), now).await?;
    add_contacts(&txn, id, points, now)
        .await
        .map_err(|e| match e {
            AppError::Contention => taken(),
            other => other,
        })?;
    txn.commit().await?;
    Ok(client::Model {
        id,
        search_key: Some(search::client_key(
            first_name.as_deref(),
            last_name.as_deref(),
        )),
        first_name,
        last_name,
        created_at: now,
        updated_at: now,
    })
}

/// Fill in names the client does not have yet; never overwrite an agent's edit.
pub async fn complete_names(
    db: &impl ConnectionTrait,
    existing: &client::Model,
    first_name: Option<&str>,
    last_name: Option<&str>,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
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
        update
            .col_expr(client::Column::SearchKey, Expr::value(key))
            .col_expr(client::Column::UpdatedAt, Expr::value(now))
            .exec(db)
            .await?;
    }
    Ok(())
}

/// Attach contact points to a client.
pub async fn add_contacts(
    db: &impl ConnectionTrait,
    client_id: Uuid,
    points: &[ContactPoint],
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    if points.is_empty() {
        return Ok(());
    }
    let rows = points.iter().map(|p| client_contact::ActiveModel {
        id: Set(Uuid::now_v7()),
        client_id: Set(client_id),
        kind: Set(p.kind().as_str().to_owned()),
        value: Set(p.value().to_owned()),
        created_at: Set(now),
    });
    client_contact::Entity::insert_many(rows)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// Search clients: an email or phone finds its owner exactly; any other text
/// matches name words in any order, case- and accent-insensitive.
pub async fn search(
    db: &impl ConnectionTrait,
    text: Option<&str>,
    page: &PageRequest,
) -> Result<(Vec<client::Model>, bool), AppError> {
    page::fetch(
        db,
        matching(text),
        client::Column::CreatedAt,
        client::Column::Id,
        page,
    )
    .await
}

/// How many clients [`search`] finds in all.
pub async fn count_matching(
    db: &impl ConnectionTrait,
    text: Option<&str>,
) -> Result<u64, AppError> {
    Ok(matching(text).count(db).await?)
}

fn matching(text: Option<&str>) -> sea_orm::Select<client::Entity> {
    let select = client::Entity::find();
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
                            .and_where(client_contact::Column::Kind.eq(point.kind().as_str()))
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

/// The kind stored for a contact point.
pub fn kind_of(model: &client_contact::Model) -> Option<ContactKind> {
    match model.kind.as_str() {
        "EMAIL" => Some(ContactKind::Email),
        "PHONE" => Some(ContactKind::Phone),
        _ => None,
    }
}

/// Lock the client row until the transaction ends (PostgreSQL), so leads
/// for one client are routed one at a time.
pub async fn lock(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<client::Model>, AppError> {
    Ok(client::Entity::find_by_id(id)
        .lock_exclusive()
        .one(db)
        .await?)
}
