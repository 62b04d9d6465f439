//! The writes of one transaction that need nothing from each other's
//! results, sent together.
//!
//! On PostgreSQL the whole batch is **one statement**: every write is a
//! data-modifying CTE (`WITH w0 AS (INSERT ...), w1 AS (UPDATE ...
//! RETURNING 1) SELECT ...`). PostgreSQL runs each of them to completion
//! whether or not the final `SELECT` reads it, and checks foreign keys at the
//! end of the statement, so a row may reference a row inserted by an earlier
//! CTE of the same batch. The final `SELECT` counts the rows of the writes
//! that must change an exact number of rows and sends the batch's
//! notifications (`pg_notify`, delivered on commit only).
//!
//! On SQLite (in process: a statement costs no round trip) the writes run one
//! by one, in the order they were added, and notifications are not sent (the
//! in-process bus delivers after the commit, see [`crate::events`]).
//!
//! The CTEs of one statement all see the snapshot the statement started
//! with: a batch must never write the same row twice, nor read what another
//! write of the batch writes. Callers add writes in dependency order (a
//! client before its contacts), which SQLite needs.
use sea_orm::sea_query::{
    Alias, CommonTableExpression, Expr, Func, InsertStatement, Query, SelectStatement,
    UpdateStatement, WithClause,
};
use sea_orm::{ConnectionTrait, QueryResult};

use super::is_postgres;
use crate::error::AppError;

/// Writes to send together; see the module documentation.
#[derive(Default)]
pub struct WriteBatch {
    writes: Vec<Write>,
    /// `(channel, payload)` for `pg_notify`.
    notifications: Vec<(String, String)>,
}

enum Write {
    Insert(InsertStatement),
    /// An update that must change exactly `rows` rows, or the transaction
    /// is retried ([`AppError::Contention`]).
    Update {
        statement: UpdateStatement,
        rows: u64,
    },
}

impl WriteBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn is_empty(&self) -> bool {
        self.writes.is_empty() && self.notifications.is_empty()
    }

    /// Add an insert.
    pub fn insert(&mut self, statement: InsertStatement) -> &mut Self {
        self.writes.push(Write::Insert(statement));
        self
    }

    /// Add an update that must change exactly `rows` rows.
    pub fn update_exactly(&mut self, statement: UpdateStatement, rows: u64) -> &mut Self {
        self.writes.push(Write::Update { statement, rows });
        self
    }

    /// Send `payload` on `channel` when the transaction commits (PostgreSQL).
    pub fn notify(&mut self, channel: &str, payload: String) -> &mut Self {
        self.notifications.push((channel.to_owned(), payload));
        self
    }

    /// Run the batch inside the caller's transaction.
    pub async fn execute(self, db: &impl ConnectionTrait) -> Result<(), AppError> {
        if self.is_empty() {
            return Ok(());
        }
        if is_postgres(db.get_database_backend()) {
            self.execute_as_one_statement(db).await
        } else {
            self.execute_one_by_one(db).await
        }
    }

    async fn execute_one_by_one(self, db: &impl ConnectionTrait) -> Result<(), AppError> {
        for write in self.writes {
            match write {
                Write::Insert(statement) => {
                    db.execute(&statement).await?;
                }
                Write::Update { statement, rows } => {
                    let changed = db.execute(&statement).await?.rows_affected();
                    expect_rows(changed, rows)?;
                }
            }
        }
        Ok(())
    }

    async fn execute_as_one_statement(self, db: &impl ConnectionTrait) -> Result<(), AppError> {
        let (statement, expected) = self.into_statement();
        let row = db.query_one(&statement).await?.ok_or_else(|| {
            AppError::Internal("a write batch's statement returned no row".into())
        })?;
        for (column, rows) in expected {
            expect_rows(counted(&row, &column)?, rows)?;
        }
        Ok(())
    }

    /// The PostgreSQL statement, and the rows each counted write must change
    /// (by the name of the column that counts them).
    fn into_statement(self) -> (sea_orm::sea_query::WithQuery, Vec<(String, u64)>) {
        let mut with = WithClause::new();
        let mut select = Query::select();
        let mut expected = Vec::new();
        for (i, write) in self.writes.into_iter().enumerate() {
            let name = format!("w{i}");
            let mut cte = CommonTableExpression::new();
            cte.table_name(Alias::new(name.clone()));
            match write {
                Write::Insert(statement) => {
                    cte.query(statement);
                }
                Write::Update {
                    mut statement,
                    rows,
                } => {
                    statement.returning(Query::returning().expr(Expr::val(1)));
                    cte.query(statement);
                    select.expr_as(count_of(&name), Alias::new(name.clone()));
                    expected.push((name, rows));
                }
            }
            with.cte(cte);
        }
        for (channel, payload) in self.notifications {
            select.expr(Func::cust("pg_notify").arg(channel).arg(payload));
        }
        if expected.is_empty() {
            select.expr(Expr::val(1));
        }
        (select.with(with), expected)
    }
}

/// `(SELECT count(*) FROM <cte>)`.
fn count_of(cte: &str) -> Expr {
    let counting: SelectStatement = Query::select()
        .expr(Func::count(Expr::cust("*")))
        .from(Alias::new(cte))
        .to_owned();
    Expr::SubQuery(None, Box::new(counting.into()))
}

fn counted(row: &QueryResult, column: &str) -> Result<u64, AppError> {
    let n: i64 = row.try_get("", column)?;
    u64::try_from(n).map_err(|_| AppError::Internal(format!("negative row count {n}")))
}

/// A write that must change a known number of rows changed another: the
/// rows it expected moved under it, so the transaction starts again.
fn expect_rows(changed: u64, expected: u64) -> Result<(), AppError> {
    if changed == expected {
        Ok(())
    } else {
        tracing::warn!(
            changed,
            expected,
            "a batched update changed an unexpected number of rows"
        );
        Err(AppError::Contention)
    }
}

#[cfg(test)]
mod tests {
    use entity::{client, opportunity};
    use sea_orm::{ColumnTrait, EntityTrait, QueryFilter, QueryTrait};
    use uuid::Uuid;

    use super::*;

    /// The SQL the batch sends on PostgreSQL, values inlined.
    fn postgres_sql(batch: WriteBatch) -> String {
        use sea_orm::sea_query::PostgresQueryBuilder;
        batch.into_statement().0.to_string(PostgresQueryBuilder)
    }

    fn insert_client() -> InsertStatement {
        client::Entity::insert(client::ActiveModel {
            id: sea_orm::Set(Uuid::nil()),
            ..Default::default()
        })
        .into_query()
    }

    fn touch() -> UpdateStatement {
        opportunity::Entity::update_many()
            .col_expr(opportunity::Column::Expiree, Expr::value(false))
            .filter(opportunity::Column::Id.eq(Uuid::nil()))
            .into_query()
    }

    #[test]
    fn on_postgresql_a_batch_is_one_statement_of_ctes_that_counts_and_notifies() {
        let mut batch = WriteBatch::new();
        batch
            .insert(insert_client())
            .update_exactly(touch(), 1)
            .notify("crm_events", "[]".into());
        let sql = postgres_sql(batch);
        println!("{sql}");
        assert!(
            sql.starts_with(r#"WITH "w0" AS (INSERT INTO "client""#),
            "{sql}"
        );
        assert!(sql.contains(r#", "w1" AS (UPDATE "opportunity""#), "{sql}");
        assert!(sql.contains("RETURNING 1)"), "{sql}");
        assert!(
            sql.contains(r#"(SELECT COUNT(*) FROM "w1") AS "w1""#),
            "{sql}"
        );
        assert!(sql.contains("pg_notify('crm_events', '[]')"), "{sql}");
        assert_eq!(sql.matches("INSERT").count(), 1);
    }

    #[test]
    fn a_batch_without_counted_writes_still_selects_a_row() {
        let mut batch = WriteBatch::new();
        batch.insert(insert_client());
        let sql = postgres_sql(batch);
        assert!(sql.ends_with("SELECT 1"), "{sql}");
    }

    #[test]
    fn an_update_that_changed_other_rows_than_expected_retries_the_transaction() {
        assert!(expect_rows(1, 1).is_ok());
        assert!(matches!(expect_rows(0, 1), Err(AppError::Contention)));
        assert!(matches!(expect_rows(2, 1), Err(AppError::Contention)));
    }
}
