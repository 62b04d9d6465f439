//! Service cases (after-sales) and their status history.
use std::collections::HashMap;

use chrono::{DateTime, Utc};
use entity::service_case::{self, ServiceCaseStatus};
use sea_orm::{ColumnTrait, ConnectionTrait, DatabaseConnection, QueryFilter, QueryTrait};
use uuid::Uuid;

use super::client::ClientRef;
use super::page::{self, ListFilter};
use super::status_history::{self, FileFilter};
use crate::error::AppError;

/// Filters of the service case list (every given field must hold).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ServiceCaseFilter {
    #[serde(flatten)]
    pub file: FileFilter,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assignee: Option<String>,
}

impl ListFilter for ServiceCaseFilter {
    type Entity = service_case::Entity;

    fn apply(
        &self,
        select: sea_orm::Select<service_case::Entity>,
    ) -> sea_orm::Select<service_case::Entity> {
        self.file
            .apply(select)
            .apply_if(self.assignee.as_deref(), |select, assignee| {
                select.filter(service_case::Column::Assignee.eq(assignee))
            })
    }
}

/// What a new case holds.
pub struct NewServiceCase {
    pub client: ClientRef,
    pub subject: String,
    pub description: String,
    pub assignee: Option<String>,
}

/// Open a case (`OUVERT`) for the client `new` names (see
/// [`super::client::resolve`]) and record its initial status, in one
/// transaction.
pub async fn create(
    db: &DatabaseConnection,
    new: NewServiceCase,
    by: &str,
    now: DateTime<Utc>,
) -> Result<service_case::Model, AppError> {
    super::write(db, async |txn| {
        let case = service_case::Model {
            id: Uuid::now_v7(),
            client_id: super::client::resolve(txn, &new.client).await?,
            subject: new.subject,
            description: new.description,
            status: ServiceCaseStatus::Ouvert,
            assignee: new.assignee,
            created_by: by.to_owned(),
            created_at: now,
            updated_at: now,
        };
        status_history::create::<service_case::Entity>(txn, case, by, now).await
    })
    .await
}

/// The open cases (not `FERME`) of several clients, newest first, at most
/// `cap` per client, in one statement.
pub async fn open_of_clients(
    db: &impl ConnectionTrait,
    clients: Vec<Uuid>,
    cap: u64,
) -> Result<HashMap<Uuid, Vec<service_case::Model>>, AppError> {
    let open = service_case::Column::Status.ne(ServiceCaseStatus::Ferme);
    page::newest_per_parent::<service_case::Entity>(db, clients, cap, open).await
}
