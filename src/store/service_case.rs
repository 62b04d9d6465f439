//! Service cases (after-sales) and their status history.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::service_case::{self, ServiceCaseStatus};
use entity::service_case_status_change;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};
use uuid::Uuid;

use super::page::{self, PageRequest, SortDirection};
use crate::error::AppError;

/// Filters of the service case list (every given field must hold).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCaseFilter {
    #[serde(default, rename = "status", skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
}

impl ServiceCaseFilter {
    fn apply(
        &self,
        mut select: sea_orm::Select<service_case::Entity>,
    ) -> sea_orm::Select<service_case::Entity> {
        if !self.statuses.is_empty() {
            select = select.filter(service_case::Column::Status.is_in(self.statuses.clone()));
        }
        if let Some(client_id) = self.client_id {
            select = select.filter(service_case::Column::ClientId.eq(client_id));
        }
        if let Some(assignee) = &self.assignee {
            select = select.filter(service_case::Column::Assignee.eq(assignee.clone()));
        }
        select
    }
}

/// What a new case holds.
pub struct NewServiceCase {
    pub client_id: Uuid,
    pub subject: String,
    pub description: String,
    pub assignee: Option<String>,
}

/// Changes to a case; `None` leaves a field as it is.
#[derive(Default)]
pub struct ServiceCaseChanges {
    pub status: Option<ServiceCaseStatus>,
    /// `Some(None)` clears the assignee.
    pub assignee: Option<Option<String>>,
    pub subject: Option<String>,
    pub description: Option<String>,
}

pub async fn find(
    db: &impl ConnectionTrait,
    id: Uuid,
) -> Result<Option<service_case::Model>, AppError> {
    Ok(service_case::Entity::find_by_id(id).one(db).await?)
}

/// Open a case (`OUVERT`) and record its initial status, inside the caller's
/// transaction.
pub async fn create(
    db: &impl ConnectionTrait,
    new: NewServiceCase,
    by: &str,
    now: DateTime<Utc>,
) -> Result<service_case::Model, AppError> {
    let id = Uuid::now_v7();
    service_case::Entity::insert(service_case::ActiveModel {
        id: Set(id),
        client_id: Set(new.client_id),
        subject: Set(new.subject),
        description: Set(new.description),
        status: Set(ServiceCaseStatus::Ouvert),
        assignee: Set(new.assignee),
        created_by: Set(by.to_owned()),
        created_at: Set(now),
        updated_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    record_status_change(db, id, None, ServiceCaseStatus::Ouvert, by, now).await?;
    find(db, id)
        .await?
        .ok_or_else(|| AppError::Internal("service case vanished after insert".into()))
}

/// Apply `changes`; a status change is recorded in the history.
pub async fn update(
    db: &DatabaseConnection,
    id: Uuid,
    changes: ServiceCaseChanges,
    by: &str,
    now: DateTime<Utc>,
) -> Result<service_case::Model, AppError> {
    let txn = super::begin_write(db).await?;
    let current = service_case::Entity::find_by_id(id)
        .lock_exclusive()
        .one(&txn)
        .await?
        .ok_or(AppError::NotFound("service case"))?;
    let mut active: service_case::ActiveModel = current.clone().into();
    let mut changed = false;
    if let Some(status) = changes.status
        && status != current.status
    {
        active.status = Set(status);
        record_status_change(&txn, id, Some(current.status), status, by, now).await?;
        changed = true;
    }
    if let Some(assignee) = changes.assignee
        && assignee != current.assignee
    {
        active.assignee = Set(assignee);
        changed = true;
    }
    if let Some(subject) = changes.subject
        && subject != current.subject
    {
        active.subject = Set(subject);
        changed = true;
    }
    if let Some(description) = changes.description
        && description != current.description
    {
        active.description = Set(description);
        changed = true;
    }
    if changed {
        active.updated_at = Set(now);
        service_case::Entity::update(active).exec(&txn).await?;
    }
    let updated = find(&txn, id)
        .await?
        .ok_or(AppError::NotFound("service case"))?;
    txn.commit().await?;
    Ok(updated)
}

async fn record_status_change(
    db: &impl ConnectionTrait,
    case: Uuid,
    from: Option<ServiceCaseStatus>,
    to: ServiceCaseStatus,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError> {
    service_case_status_change::Entity::insert(service_case_status_change::ActiveModel {
        id: Set(Uuid::now_v7()),
        service_case_id: Set(case),
        from_status: Set(from),
        to_status: Set(to),
        changed_by: Set(by.to_owned()),
        changed_at: Set(now),
    })
    .exec_without_returning(db)
    .await?;
    Ok(())
}

/// One page of cases matching every filter given (a saved view's and the
/// caller's), in the page's direction.
pub async fn list(
    db: &impl ConnectionTrait,
    filters: &[&ServiceCaseFilter],
    page: &PageRequest,
) -> Result<(Vec<service_case::Model>, bool), AppError> {
    page::fetch(
        db,
        select(filters),
        service_case::Column::CreatedAt,
        service_case::Column::Id,
        page,
    )
    .await
}

pub async fn count(
    db: &impl ConnectionTrait,
    filters: &[&ServiceCaseFilter],
) -> Result<u64, AppError> {
    Ok(select(filters).count(db).await?)
}

fn select(filters: &[&ServiceCaseFilter]) -> sea_orm::Select<service_case::Entity> {
    filters
        .iter()
        .fold(service_case::Entity::find(), |select, f| f.apply(select))
}

/// The status histories of several cases, oldest first.
pub async fn history_of(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<Vec<service_case_status_change::Model>, AppError> {
    Ok(service_case_status_change::Entity::find()
        .filter(service_case_status_change::Column::ServiceCaseId.is_in(ids))
        .order_by_asc(service_case_status_change::Column::ChangedAt)
        .order_by_asc(service_case_status_change::Column::Id)
        .all(db)
        .await?)
}

/// The open cases (not `FERME`) of several clients, newest first, at most
/// `cap` per client, in one statement.
pub async fn open_of_clients(
    db: &impl ConnectionTrait,
    clients: Vec<Uuid>,
    cap: u64,
) -> Result<HashMap<Uuid, Vec<service_case::Model>>, AppError> {
    let pages = page::fetch_per_parent_where::<service_case::Entity, _>(
        db,
        service_case::Column::ClientId,
        service_case::Column::CreatedAt,
        service_case::Column::Id,
        clients,
        &PageRequest {
            first: cap,
            after: None,
            direction: SortDirection::Desc,
        },
        service_case::Column::Status.ne(ServiceCaseStatus::Ferme),
        |c| c.client_id,
    )
    .await?;
    Ok(pages.into_iter().map(|(k, (rows, _))| (k, rows)).collect())
}
