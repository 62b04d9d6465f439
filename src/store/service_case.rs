//! Service cases (after-sales) and their status history.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::service_case::{self, ServiceCaseStatus};
use entity::service_case_status_change;
use sea_orm::{
    ActiveValue::Set, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait, QueryFilter,
};
use uuid::Uuid;

use super::page::{self, ListFilter};
use super::{set_if_changed, status_history};
use crate::error::AppError;

type History = service_case_status_change::Entity;

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

impl ListFilter for ServiceCaseFilter {
    type Entity = service_case::Entity;

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
    status_history::record::<History>(db, id, None, ServiceCaseStatus::Ouvert, by, now).await?;
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
    let current = super::lock_for_update::<service_case::Entity>(&txn, id, "service case").await?;
    if let Some(status) = changes.status.filter(|s| *s != current.status) {
        status_history::record::<History>(&txn, id, Some(current.status), status, by, now).await?;
    }
    let mut active: service_case::ActiveModel = current.clone().into();
    let changed = [
        set_if_changed(&mut active.status, &current.status, changes.status),
        set_if_changed(&mut active.assignee, &current.assignee, changes.assignee),
        set_if_changed(&mut active.subject, &current.subject, changes.subject),
        set_if_changed(
            &mut active.description,
            &current.description,
            changes.description,
        ),
    ]
    .contains(&true);
    active.updated_at = Set(now);
    super::save_and_commit::<service_case::Entity>(txn, active, changed, id, "service case").await
}

/// The status histories of several cases, oldest first.
pub async fn history_of(
    db: &impl ConnectionTrait,
    ids: Vec<Uuid>,
) -> Result<Vec<service_case_status_change::Model>, AppError> {
    status_history::of::<History>(db, ids).await
}

/// The open cases (not `FERME`) of several clients, newest first, at most
/// `cap` per client, in one statement.
pub async fn open_of_clients(
    db: &impl ConnectionTrait,
    clients: Vec<Uuid>,
    cap: u64,
) -> Result<HashMap<Uuid, Vec<service_case::Model>>, AppError> {
    page::newest_per_parent::<service_case::Entity>(
        db,
        service_case::Column::ClientId,
        clients,
        cap,
        service_case::Column::Status.ne(ServiceCaseStatus::Ferme),
        |c| c.client_id,
    )
    .await
}
