//! Status histories: one row per change of a record's status (from, to,
//! who, when), written in the transaction that changes the status and read
//! back oldest first. Service cases and credit requests keep theirs this way.
use chrono::{DateTime, Utc};
use sea_orm::{ColumnTrait, ConnectionTrait, EntityTrait, QueryFilter, QueryOrder, QueryTrait};
use uuid::Uuid;

use super::write_batch::WriteBatch;
use crate::error::AppError;

/// One change of a record's status.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusChange<S> {
    pub record: Uuid,
    /// `None` for the status the record was created with.
    pub from: Option<S>,
    pub to: S,
    /// Who made it (token subject).
    pub by: String,
    pub at: DateTime<Utc>,
}

/// A status-history table.
pub trait StatusHistory: EntityTrait {
    /// The status its rows record.
    type Status;
    /// The column naming the record whose status changed.
    const RECORD: Self::Column;
    const CHANGED_AT: Self::Column;
    const ID: Self::Column;

    /// The row of one change.
    fn row(id: Uuid, change: StatusChange<Self::Status>) -> Self::ActiveModel;
    /// The change a row records.
    fn change(row: Self::Model) -> StatusChange<Self::Status>;
}

/// Record that `record`'s status went `from` → `to` (`from` is `None` for
/// the status it was created with).
pub async fn record<H: StatusHistory>(
    db: &impl ConnectionTrait,
    record: Uuid,
    from: Option<H::Status>,
    to: H::Status,
    by: &str,
    now: DateTime<Utc>,
) -> Result<(), AppError>
where
    H::ActiveModel: sea_orm::ActiveModelTrait<Entity = H>,
{
    change_row::<H>(record, from, to, by, now)
        .exec_without_returning(db)
        .await?;
    Ok(())
}

/// As [`record`], written when `batch` runs.
pub fn record_into<H: StatusHistory>(
    batch: &mut WriteBatch,
    record: Uuid,
    from: Option<H::Status>,
    to: H::Status,
    by: &str,
    now: DateTime<Utc>,
) where
    H::ActiveModel: sea_orm::ActiveModelTrait<Entity = H>,
{
    batch.insert(change_row::<H>(record, from, to, by, now).into_query());
}

/// The insert of one status change, with a new id.
fn change_row<H: StatusHistory>(
    record: Uuid,
    from: Option<H::Status>,
    to: H::Status,
    by: &str,
    at: DateTime<Utc>,
) -> sea_orm::Insert<H::ActiveModel>
where
    H::ActiveModel: sea_orm::ActiveModelTrait<Entity = H>,
{
    let change = StatusChange {
        record,
        from,
        to,
        by: by.to_owned(),
        at,
    };
    H::insert(H::row(Uuid::now_v7(), change))
}

/// The histories of several records, oldest first.
pub async fn of<H: StatusHistory>(
    db: &impl ConnectionTrait,
    records: Vec<Uuid>,
) -> Result<Vec<H::Model>, AppError> {
    Ok(H::find()
        .filter(H::RECORD.is_in(records))
        .order_by_asc(H::CHANGED_AT)
        .order_by_asc(H::ID)
        .all(db)
        .await?)
}

/// `StatusHistory` for a history entity whose rows are (id, the record's
/// id column, from_status, to_status, changed_by, changed_at).
macro_rules! status_history {
    ($history:ident, $status:ty, $record_column:ident, $record_field:ident) => {
        impl StatusHistory for entity::$history::Entity {
            type Status = $status;
            const RECORD: Self::Column = Self::Column::$record_column;
            const CHANGED_AT: Self::Column = Self::Column::ChangedAt;
            const ID: Self::Column = Self::Column::Id;

            fn row(id: Uuid, change: StatusChange<Self::Status>) -> Self::ActiveModel {
                use sea_orm::ActiveValue::Set;
                Self::ActiveModel {
                    id: Set(id),
                    $record_field: Set(change.record),
                    from_status: Set(change.from),
                    to_status: Set(change.to),
                    changed_by: Set(change.by),
                    changed_at: Set(change.at),
                }
            }

            fn change(row: Self::Model) -> StatusChange<Self::Status> {
                StatusChange {
                    record: row.$record_field,
                    from: row.from_status,
                    to: row.to_status,
                    by: row.changed_by,
                    at: row.changed_at,
                }
            }
        }
    };
}

status_history!(
    service_case_status_change,
    entity::service_case::ServiceCaseStatus,
    ServiceCaseId,
    service_case_id
);
status_history!(
    credit_request_status_change,
    entity::credit_request::CreditRequestStatus,
    CreditRequestId,
    credit_request_id
);
