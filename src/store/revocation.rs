//! Revoked token subjects: written by `revokeTokens`, read whole by every
//! instance's refresher, listed by `revokedSubjects`.
use chrono::{DateTime, Utc};
use entity::revoked_subject;
use sea_orm::sea_query::OnConflict;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, EntityTrait, PaginatorTrait, QueryFilter,
};
use uuid::Uuid;

use super::page::{self, PageRequest};
use crate::error::AppError;

/// Refuse every token of `sub` issued up to `at` (a later revocation moves
/// the mark forward). Returns the stored row.
pub async fn revoke(
    db: &impl ConnectionTrait,
    sub: &str,
    at: DateTime<Utc>,
    by: &str,
) -> Result<revoked_subject::Model, AppError> {
    revoked_subject::Entity::insert(revoked_subject::ActiveModel {
        id: Set(Uuid::now_v7()),
        sub: Set(sub.to_owned()),
        revoked_at: Set(at),
        revoked_by: Set(by.to_owned()),
    })
    .on_conflict(
        OnConflict::column(revoked_subject::Column::Sub)
            .update_columns([
                revoked_subject::Column::RevokedAt,
                revoked_subject::Column::RevokedBy,
            ])
            .to_owned(),
    )
    .exec_without_returning(db)
    .await?;
    revoked_subject::Entity::find()
        .filter(revoked_subject::Column::Sub.eq(sub))
        .one(db)
        .await?
        .ok_or_else(|| AppError::Internal("revocation vanished after insert".into()))
}

/// Every revoked subject and its mark (the refresher's read).
pub async fn all(db: &impl ConnectionTrait) -> Result<Vec<(String, DateTime<Utc>)>, AppError> {
    Ok(revoked_subject::Entity::find()
        .all(db)
        .await?
        .into_iter()
        .map(|r| (r.sub, r.revoked_at))
        .collect())
}

/// One page, ordered by revocation time.
pub async fn list(
    db: &impl ConnectionTrait,
    page: &PageRequest,
) -> Result<(Vec<revoked_subject::Model>, bool), AppError> {
    page::fetch(
        db,
        revoked_subject::Entity::find(),
        revoked_subject::Column::RevokedAt,
        revoked_subject::Column::Id,
        page,
    )
    .await
}

pub async fn count(db: &impl ConnectionTrait) -> Result<u64, AppError> {
    Ok(revoked_subject::Entity::find().count(db).await?)
}
