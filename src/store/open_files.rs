//! The open files of clients, every department (SPEC 6): opportunities
//! whose status is not closed — expiry plays no part.
use std::collections::HashMap;

use entity::opportunity;
use sea_orm::{ColumnTrait, ConnectionTrait};
use uuid::Uuid;

use super::page;
use crate::error::AppError;

/// The open opportunities (status not closed; expiry plays no part) of
/// several clients, newest first, at most `cap` each, in one statement.
pub async fn opportunities_of_clients(
    db: &impl ConnectionTrait,
    clients: Vec<Uuid>,
    cap: u64,
) -> Result<HashMap<Uuid, Vec<opportunity::Model>>, AppError> {
    let open =
        opportunity::Column::Status.is_in(crate::domain::open_files::open_opportunity_statuses());
    page::newest_per_parent::<opportunity::Entity>(db, clients, cap, open).await
}
