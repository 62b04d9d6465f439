//! All database access, by aggregate. Functions take `&impl ConnectionTrait`
//! so they run on a pool or inside a transaction alike, and return
//! [`AppError`](crate::error::AppError), never raw driver errors.

pub mod access_log;
pub mod client;
pub mod credit_request;
pub mod expiry;
pub mod lead;
pub mod lead_intake;
pub mod open_files;
pub mod opportunity;
pub mod page;
pub mod partner_rate;
pub mod privacy;
pub mod revocation;
pub mod saved_view;
pub mod service_case;
pub mod status_history;
pub mod write_batch;

use std::time::Duration;

use sea_orm::sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};
use sea_orm::{
    ConnectOptions, ConnectionTrait, Database, DatabaseConnection, DatabaseTransaction, DbBackend,
    DbErr, EntityTrait, QueryFilter, SqliteTransactionMode, TransactionOptions, TransactionTrait,
};

use uuid::Uuid;

use crate::error::AppError;

/// `column` is one of `ids`. On PostgreSQL `= ANY($1)`, the ids bound as one
/// array: the statement's text is the same for any number of ids, so each
/// pooled connection prepares it once and PostgreSQL can keep one generic
/// plan, where `IN ($1, ..., $n)` was a statement of its own, parsed and
/// planned anew, for each length (the batch reads of live events vary in
/// length from one read to the next). SQLite has no arrays: `IN (...)`.
pub(crate) fn one_of(
    backend: DbBackend,
    column: impl sea_orm::ColumnTrait,
    ids: &[Uuid],
) -> sea_orm::sea_query::Expr {
    if is_postgres(backend) {
        column.eq_any(ids.iter().copied())
    } else {
        column.is_in(ids.iter().copied())
    }
}

/// The row of `E` whose key is `id`, if there is one.
pub async fn find<E>(db: &impl ConnectionTrait, id: Uuid) -> Result<Option<E::Model>, AppError>
where
    E: EntityTrait,
    Uuid: Into<<E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType>,
{
    Ok(E::find_by_id(id).one(db).await?)
}

/// The rows of `E` whose `column` is one of `ids`, in one statement (see
/// [`one_of`]).
pub async fn rows_where<E: EntityTrait>(
    db: &impl ConnectionTrait,
    column: E::Column,
    ids: &[Uuid],
) -> Result<Vec<E::Model>, AppError> {
    let backend = db.get_database_backend();
    Ok(E::find()
        .filter(one_of(backend, column, ids))
        .all(db)
        .await?)
}

/// `id`'s row, locked until `txn` ends; `NotFound(what)` when there is none.
pub(crate) async fn lock_for_update<E>(
    txn: &DatabaseTransaction,
    id: uuid::Uuid,
    what: &'static str,
) -> Result<E::Model, AppError>
where
    E: sea_orm::EntityTrait,
    uuid::Uuid: Into<<E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType>,
{
    use sea_orm::QuerySelect as _;
    E::find_by_id(id)
        .lock_exclusive()
        .one(txn)
        .await?
        .ok_or(AppError::NotFound(what))
}

/// Save `active` when `changed`, read the row back and commit `txn`.
pub(crate) async fn save_and_commit<E>(
    txn: DatabaseTransaction,
    active: E::ActiveModel,
    changed: bool,
    id: uuid::Uuid,
    what: &'static str,
) -> Result<E::Model, AppError>
where
    E: sea_orm::EntityTrait,
    E::ActiveModel: sea_orm::ActiveModelTrait<Entity = E> + Send,
    E::Model: sea_orm::IntoActiveModel<E::ActiveModel>,
    uuid::Uuid: Into<<E::PrimaryKey as sea_orm::PrimaryKeyTrait>::ValueType>,
{
    if changed {
        E::update(active).exec(&txn).await?;
    }
    let updated = find::<E>(&txn, id).await?.ok_or(AppError::NotFound(what))?;
    txn.commit().await?;
    Ok(updated)
}

/// How long a request waits for a pooled connection before failing fast.
pub const ACQUIRE_TIMEOUT: Duration = Duration::from_secs(3);
/// A pooled connection idle at least this long is pinged before it is
/// handed out (one round trip), and replaced if it died meanwhile (a
/// database restart or failover, a proxy or firewall dropping idle
/// sockets). One used more recently is handed out as is: sqlx already
/// pinged it when it was released, and under load a connection is idle for
/// microseconds, where a ping on every checkout cost about a tenth of
/// intake throughput (README, Performance).
pub const PING_IF_IDLE_FOR: Duration = Duration::from_secs(1);
/// How long SQLite waits on a locked database before giving up.
pub const SQLITE_BUSY_TIMEOUT: Duration = Duration::from_secs(15);

/// Open a pool on `url` (PostgreSQL or SQLite).
pub async fn connect(url: &str) -> Result<DatabaseConnection, DbErr> {
    let sqlite = url.starts_with("sqlite:");
    let mut opts = ConnectOptions::new(url.to_owned());
    opts.max_connections(if sqlite { 8 } else { 16 })
        .min_connections(0)
        .connect_timeout(ACQUIRE_TIMEOUT)
        .acquire_timeout(ACQUIRE_TIMEOUT)
        .test_before_acquire_if_idle_for(PING_IF_IDLE_FOR)
        .sqlx_logging(false);
    opts.map_sqlx_sqlite_opts(|o| {
        o.busy_timeout(SQLITE_BUSY_TIMEOUT)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
    });
    let mut db = Database::connect(opts).await?;
    db.set_metric_callback(|_| crate::metrics::count(crate::metrics::Counter::Statements));
    Ok(db)
}

/// Run pending migrations.
pub async fn migrate(db: &DatabaseConnection) -> Result<(), DbErr> {
    use migration::MigratorTrait;
    migration::Migrator::up(db, None).await?;
    client::backfill_search_keys(db)
        .await
        .map_err(|e| DbErr::Custom(e.to_string()))?;
    Ok(())
}

/// `work` in a write transaction ([`begin_write`]), committed when it
/// succeeds and rolled back when it fails.
pub(crate) async fn write<T>(
    db: &DatabaseConnection,
    work: impl AsyncFnOnce(&DatabaseTransaction) -> Result<T, AppError>,
) -> Result<T, AppError> {
    let txn = begin_write(db).await?;
    let done = work(&txn).await?;
    txn.commit().await?;
    Ok(done)
}

/// A write transaction: IMMEDIATE on SQLite, so two writers never both read
/// and then race to upgrade their lock (which SQLite answers with BUSY
/// instead of waiting); a plain READ COMMITTED transaction on PostgreSQL,
/// where callers lock rows explicitly.
pub async fn begin_write(db: &DatabaseConnection) -> Result<DatabaseTransaction, AppError> {
    let options = if is_postgres(db.get_database_backend()) {
        TransactionOptions::default()
    } else {
        TransactionOptions {
            sqlite_transaction_mode: Some(SqliteTransactionMode::Immediate),
            ..TransactionOptions::default()
        }
    };
    Ok(db.begin_with_options(options).await?)
}

/// True on PostgreSQL (advisory locks, `FOR UPDATE`), false on SQLite.
pub fn is_postgres(backend: DbBackend) -> bool {
    backend == DbBackend::Postgres
}

#[cfg(test)]
mod tests {
    use sea_orm::{EntityTrait, QueryFilter, QueryTrait};

    use super::*;

    fn read_of(backend: DbBackend, n: u128) -> sea_orm::Statement {
        let ids: Vec<Uuid> = (1..=n).map(Uuid::from_u128).collect();
        entity::lead::Entity::find()
            .filter(one_of(backend, entity::lead::Column::Id, &ids))
            .build(backend)
    }

    #[test]
    fn on_postgresql_a_read_by_ids_is_one_statement_whatever_their_number() {
        let (three, forty) = (
            read_of(DbBackend::Postgres, 3),
            read_of(DbBackend::Postgres, 40),
        );
        assert_eq!(three.sql, forty.sql);
        assert!(
            three.sql.ends_with(r#"WHERE "lead"."id" = ANY($1)"#),
            "{}",
            three.sql
        );
        assert_eq!(three.values.map(|v| v.0.len()), Some(1));
    }

    #[test]
    fn on_sqlite_a_read_by_ids_lists_them() {
        let read = read_of(DbBackend::Sqlite, 3);
        assert!(
            read.sql.ends_with(r#"WHERE "lead"."id" IN (?, ?, ?)"#),
            "{}",
            read.sql
        );
    }
}
