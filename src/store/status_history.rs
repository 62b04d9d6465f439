//! Status histories: one row per change of a record's status (from, to,
//! who, when), written in the transaction that changes the status and read
//! back oldest first. Opportunities, service cases and credit requests keep
//! theirs this way; the files of the last two are created and changed here
//! too, one workflow for both.
use chrono::{DateTime, Utc};
use sea_orm::{
    ActiveModelTrait, ActiveValue, ColumnTrait, ConnectionTrait, DatabaseConnection, EntityTrait,
    IdenStatic, IntoActiveModel, Iterable, ModelTrait, QueryFilter, QueryOrder, QueryTrait,
};
use uuid::Uuid;

use super::page::Child;
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
pub trait StatusHistory: EntityTrait<ActiveModel: ActiveModelTrait<Entity = Self>> {
    /// The status its rows record.
    type Status: PartialEq + Clone + Into<sea_orm::Value>;
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
) -> Result<(), AppError> {
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
) {
    batch.insert(change_row::<H>(record, from, to, by, now).into_query());
}

/// The insert of one status change, with a new id.
fn change_row<H: StatusHistory>(
    record: Uuid,
    from: Option<H::Status>,
    to: H::Status,
    by: &str,
    at: DateTime<Utc>,
) -> sea_orm::Insert<H::ActiveModel> {
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
    opportunity_status_change,
    entity::opportunity::OpportunityStatus,
    OpportunityId,
    opportunity_id
);
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

/// A client's file (opportunity, service case, credit request), the child
/// of its client, whose status changes are kept, one row each, in `History`.
pub trait StatusFile:
    Child<
        Model: IntoActiveModel<<Self as EntityTrait>::ActiveModel> + Clone,
        ActiveModel: ActiveModelTrait<Entity = Self> + Send,
        PrimaryKey: sea_orm::PrimaryKeyTrait<ValueType: From<Uuid>>,
    >
{
    type History: StatusHistory;
    /// What a missing row is called (`NotFound`).
    const WHAT: &'static str;
    const STATUS: Self::Column;
    const UPDATED_AT: Self::Column;

    fn id(model: &Self::Model) -> Uuid;
    fn status(model: &Self::Model) -> FileStatus<Self>;
}

/// The status of a file of kind `F`.
pub type FileStatus<F> = <<F as StatusFile>::History as StatusHistory>::Status;

/// `StatusFile` for an entity with `id`, `status` and `updated_at` columns
/// (its parent, for lists, comes from [`page::Child`](super::page::Child)).
macro_rules! status_file {
    ($file:ident, $history:ident, $what:literal) => {
        impl StatusFile for entity::$file::Entity {
            type History = entity::$history::Entity;
            const WHAT: &'static str = $what;
            const STATUS: Self::Column = Self::Column::Status;
            const UPDATED_AT: Self::Column = Self::Column::UpdatedAt;

            fn id(model: &Self::Model) -> Uuid {
                model.id
            }

            fn status(model: &Self::Model) -> FileStatus<Self> {
                model.status
            }
        }
    };
}

status_file!(opportunity, opportunity_status_change, "opportunity");
status_file!(service_case, service_case_status_change, "service case");
status_file!(
    credit_request,
    credit_request_status_change,
    "credit request"
);

/// Insert the new file `model` and record the status it starts with, inside
/// the caller's transaction; the row as stored.
pub async fn create<F: StatusFile>(
    db: &impl ConnectionTrait,
    model: F::Model,
    by: &str,
    now: DateTime<Utc>,
) -> Result<F::Model, AppError> {
    let (id, status) = (F::id(&model), F::status(&model));
    F::insert(model.into_active_model())
        .exec_without_returning(db)
        .await?;
    record::<F::History>(db, id, None, status, by, now).await?;
    super::find::<F>(db, id)
        .await?
        .ok_or_else(|| AppError::Internal(format!("{} vanished after insert", F::WHAT)))
}

/// As [`create`], written when `batch` runs.
pub fn create_into<F: StatusFile>(
    batch: &mut WriteBatch,
    model: F::Model,
    by: &str,
    now: DateTime<Utc>,
) {
    let (id, status) = (F::id(&model), F::status(&model));
    batch.insert(F::insert(model.into_active_model()).into_query());
    record_into::<F::History>(batch, id, None, status, by, now);
}

/// Change the file `id` in one transaction: lock its row; when `status` is
/// another, record the move and set it; set each other field that `changes`
/// sets to a new value; save the row; the row as saved. The status changes
/// through `status` only: `changes` setting it is refused.
pub async fn update<F: StatusFile>(
    db: &DatabaseConnection,
    id: Uuid,
    status: Option<FileStatus<F>>,
    changes: F::ActiveModel,
    by: &str,
    now: DateTime<Utc>,
) -> Result<F::Model, AppError> {
    let set: Vec<_> = F::Column::iter()
        .filter_map(|column| match changes.get(column) {
            ActiveValue::Set(value) => Some((column, value)),
            _ => None,
        })
        .collect();
    if set
        .iter()
        .any(|(column, _)| column.as_str() == F::STATUS.as_str())
    {
        let message = format!("{}: the status changes with its history only", F::WHAT);
        return Err(AppError::Internal(message));
    }
    let txn = super::begin_write(db).await?;
    let current = super::lock_for_update::<F>(&txn, id, F::WHAT).await?;
    let from = F::status(&current);
    let mut active = current.clone().into_active_model();
    let mut changed = false;
    if let Some(to) = status.filter(|to| *to != from) {
        record::<F::History>(&txn, id, Some(from), to.clone(), by, now).await?;
        active.try_set(F::STATUS, to.into())?;
        changed = true;
    }
    for (column, value) in set {
        if current.get(column) != value {
            active.try_set(column, value)?;
            changed = true;
        }
    }
    active.try_set(F::UPDATED_AT, now.into())?;
    super::save_and_commit::<F>(txn, active, changed, id, F::WHAT).await
}

/// The filters every file list has (each one given must hold), as saved
/// views store them: any of these statuses, and one client's files.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct FileFilter {
    #[serde(default, rename = "status", skip_serializing_if = "Vec::is_empty")]
    pub statuses: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub client_id: Option<Uuid>,
}

impl FileFilter {
    pub fn apply<F: StatusFile>(&self, select: sea_orm::Select<F>) -> sea_orm::Select<F> {
        filter_by_status_and_client(select, &self.statuses, self.client_id)
    }
}

/// The files of `select` with one of `statuses` (any, when none is given)
/// and of `client_id` (any, when `None`): the filters every file list has.
pub fn filter_by_status_and_client<F: StatusFile, S>(
    mut select: sea_orm::Select<F>,
    statuses: &[S],
    client_id: Option<Uuid>,
) -> sea_orm::Select<F>
where
    S: Into<sea_orm::Value> + Clone,
{
    if !statuses.is_empty() {
        select = select.filter(F::STATUS.is_in(statuses.iter().cloned()));
    }
    select.apply_if(client_id, |select, id| select.filter(F::PARENT.eq(id)))
}
