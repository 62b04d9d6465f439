//! The expiry rule in SQL, built from the same [`ExpiryPolicy`] value the
//! domain predicate uses, and the set-based sweep.
use chrono::{DateTime, Utc};
use entity::opportunity;
use sea_orm::sea_query::{LockBehavior, LockType, PostgresQueryBuilder, Query};
use sea_orm::{
    ColumnTrait, Condition, ConnectionTrait, DatabaseConnection, DbBackend, EntityTrait,
    PaginatorTrait, QueryFilter, QueryOrder, QuerySelect, Statement, TransactionTrait,
};
use uuid::Uuid;

use super::is_postgres;
use super::opportunity::{ExpiryApplier, expire_where};
use crate::domain::expiry::ExpiryPolicy;
use crate::error::AppError;
use crate::events::{self, Event};

/// Rows flagged per transaction, so a lead waiting on a swept row waits for
/// one small batch, not the whole sweep.
pub const SWEEP_BATCH_SIZE: u64 = 1_000;

/// Advisory lock key: at most one sweeper at a time across instances.
pub const SWEEP_LOCK_KEY: i64 = 0x6372_6d5f_7377_6570; // "crm_swep"

/// `NOT expiree AND created_at <= now - window AND status NOT IN protected`:
/// the SQL form of [`ExpiryPolicy::is_due`].
pub fn due_condition(policy: &ExpiryPolicy, now: DateTime<Utc>) -> Condition {
    Condition::all()
        .add(opportunity::Column::Expiree.eq(false))
        .add(opportunity::Column::CreatedAt.lte(policy.created_on_or_before(now)))
        .add(opportunity::Column::Status.is_not_in(policy.protected.iter().copied()))
}

/// What one sweep did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SweepReport {
    pub expired: u64,
    pub batches: u64,
    /// False when another instance held the sweep lock and this one skipped.
    pub ran: bool,
}

/// Flag every due opportunity, batch by batch (each its own transaction).
/// On PostgreSQL each batch holds an advisory lock, so while one instance
/// sweeps the others skip; rows locked by a lead intake are skipped
/// (`SKIP LOCKED`) and picked up by the next batch or sweep.
pub async fn sweep_once(
    db: &DatabaseConnection,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
) -> Result<SweepReport, AppError> {
    sweep_in_batches(db, policy, now, SWEEP_BATCH_SIZE).await
}

/// [`sweep_once`] with another batch size (benchmarks).
pub async fn sweep_in_batches(
    db: &DatabaseConnection,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
    batch_size: u64,
) -> Result<SweepReport, AppError> {
    let postgres = is_postgres(db.get_database_backend());
    let mut report = SweepReport::default();
    // Keyset over created_at: each batch starts where the last one ended, so
    // it never rescans the index entries of rows it has just flagged.
    let mut resume_from = None;
    loop {
        let txn = db.begin().await?;
        // Transaction-scoped, so it can never leak on a pooled connection.
        if postgres && !try_sweep_lock(&txn).await? {
            break;
        }
        report.ran = true;
        let mut batch = Query::select();
        batch
            .column(opportunity::Column::Id)
            .from(opportunity::Entity)
            .cond_where(due_condition(policy, now))
            .and_where_option(resume_from.map(|at| opportunity::Column::CreatedAt.gte(at)))
            .order_by(opportunity::Column::CreatedAt, sea_orm::Order::Asc)
            .limit(batch_size.max(1));
        if postgres {
            batch.lock_with_behavior(LockType::Update, LockBehavior::SkipLocked);
        }
        let scope = Condition::all().add(opportunity::Column::Id.in_subquery(batch));
        let (flagged, last) = if postgres {
            flag_batch_postgres(&txn, scope, policy, now).await?
        } else {
            let rows = expire_where(&txn, scope, now, policy, ExpiryApplier::Sweep).await?;
            let last = rows.iter().map(|o| o.created_at).max();
            (rows.into_iter().map(|o| o.id).collect::<Vec<_>>(), last)
        };
        // On PostgreSQL the flagging statement has sent the NOTIFYs.
        let expired: Vec<Event> = flagged.iter().copied().map(Event::expired).collect();
        txn.commit().await?;
        events::committed(db, &expired);
        let flagged = flagged.len() as u64;
        // Not `< batch_size`: the UPDATE re-checks the rule, so a batch can
        // flag fewer rows than it selected while more remain due.
        if flagged == 0 {
            break;
        }
        report.batches += 1;
        report.expired += flagged;
        resume_from = last.or(resume_from);
    }
    Ok(report)
}

/// One sweep batch on PostgreSQL in a single round trip: the UPDATE (built
/// from [`due_condition`]), the audit rows and the `EXPIRED` notifications
/// (sent at commit) as one statement with data-modifying CTEs. Returns the ids flagged and the newest `created_at`
/// among them.
async fn flag_batch_postgres(
    txn: &impl ConnectionTrait,
    scope: Condition,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
) -> Result<(Vec<Uuid>, Option<DateTime<Utc>>), AppError> {
    let (update, values) = Query::update()
        .table(opportunity::Entity)
        .value(opportunity::Column::Expiree, true)
        .value(opportunity::Column::ExpiredAt, now)
        .cond_where(due_condition(policy, now))
        .cond_where(scope)
        .returning(
            Query::returning().columns([opportunity::Column::Id, opportunity::Column::CreatedAt]),
        )
        .build(PostgresQueryBuilder);
    let mut values = values.0;
    let first = values.len() + 1;
    values.extend([
        now.into(),
        policy.window.num_days().into(),
        policy.protected_names().into(),
        ExpiryApplier::Sweep.as_str().into(),
    ]);
    let sql = format!(
        "WITH flagged AS ({update}), \
         audit AS (INSERT INTO opportunity_expiry_event \
             (opportunity_id, expired_at, window_days, protected_statuses, applied_by) \
             SELECT id, ${}, ${}, ${}, ${} FROM flagged) \
         SELECT string_agg(id::text, ',') AS ids, MAX(created_at) AS last, {} AS notified \
         FROM flagged",
        first,
        first + 1,
        first + 2,
        first + 3,
        events::notify_expired_sql("flagged"),
    );
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            DbBackend::Postgres,
            sql,
            values,
        ))
        .await?
        .ok_or_else(|| AppError::Internal("sweep batch returned no row".into()))?;
    let ids: Option<String> = row.try_get("", "ids")?;
    let last: Option<DateTime<Utc>> = row.try_get("", "last")?;
    let ids = ids
        .unwrap_or_default()
        .split(',')
        .filter(|id| !id.is_empty())
        .map(|id| {
            id.parse()
                .map_err(|e| AppError::Internal(format!("sweep returned a bad id: {e}")))
        })
        .collect::<Result<Vec<Uuid>, AppError>>()?;
    Ok((ids, last))
}

async fn try_sweep_lock(txn: &impl ConnectionTrait) -> Result<bool, AppError> {
    let row = txn
        .query_one_raw(Statement::from_sql_and_values(
            txn.get_database_backend(),
            "SELECT pg_try_advisory_xact_lock($1) AS locked",
            [SWEEP_LOCK_KEY.into()],
        ))
        .await?
        .ok_or_else(|| AppError::Internal("the sweep lock query returned no row".into()))?;
    row.try_get::<bool>("", "locked")
        .map_err(|e| AppError::Internal(format!("the sweep lock answer is not a boolean: {e}")))
}

/// What a sweep at `now` would flag: the count and the first `limit` ids.
pub async fn dry_run(
    db: &impl ConnectionTrait,
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
    limit: u64,
) -> Result<(u64, Vec<Uuid>), AppError> {
    let due = opportunity::Entity::find().filter(due_condition(policy, now));
    let count = due.clone().count(db).await?;
    let ids = due
        .order_by_asc(opportunity::Column::CreatedAt)
        .limit(limit)
        .all(db)
        .await?
        .into_iter()
        .map(|o| o.id)
        .collect();
    Ok((count, ids))
}
