//! Every stored enumeration checked by the database: a CHECK constraint on
//! PostgreSQL; on SQLite, which cannot add a constraint to a table, a pair of
//! triggers (insert, update of the column) that abort the same way. NULL
//! passes, as it does a CHECK.
use sea_orm_migration::prelude::*;
use sea_orm_migration::sea_orm::DbBackend;

#[derive(DeriveMigrationName)]
pub struct Migration;

const OPPORTUNITY_STATUSES: &[&str] = &[
    "NOUVEAU",
    "PRIS_EN_CHARGE",
    "VENDU_NON_LIVRE",
    "SUIVI_LONG_TERME",
    "VENDU_LIVRE",
    "PERDU",
];

/// (table, column, allowed values). The crate's tests check these lists
/// against the Rust enums that write the columns.
pub const STORED_VALUES: &[(&str, &str, &[&str])] = &[
    ("opportunity", "status", OPPORTUNITY_STATUSES),
    (
        "opportunity_status_change",
        "from_status",
        OPPORTUNITY_STATUSES,
    ),
    (
        "opportunity_status_change",
        "to_status",
        OPPORTUNITY_STATUSES,
    ),
    ("lead", "outcome", &["NEW_OPPORTUNITY", "MERGED"]),
    ("lead", "lead_type", &["LEAD", "REN", "CRE"]),
    ("lead", "vehicle_condition", &["NEW", "USED"]),
    ("client_contact", "kind", &["EMAIL", "PHONE"]),
];

fn allowed(values: &[&str]) -> String {
    values
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn up_sql(backend: DbBackend, table: &str, column: &str, values: &[&str]) -> Vec<String> {
    let list = allowed(values);
    match backend {
        DbBackend::Postgres => vec![format!(
            "ALTER TABLE {table} ADD CONSTRAINT {table}_{column}_check CHECK ({column} IN ({list}))"
        )],
        _ => {
            let body = format!(
                "WHEN NEW.{column} IS NOT NULL AND NEW.{column} NOT IN ({list}) \
                 BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {table}_{column}_check'); END"
            );
            vec![
                format!(
                    "CREATE TRIGGER {table}_{column}_check_insert BEFORE INSERT ON {table} {body}"
                ),
                format!(
                    "CREATE TRIGGER {table}_{column}_check_update \
                     BEFORE UPDATE OF {column} ON {table} {body}"
                ),
            ]
        }
    }
}

fn down_sql(backend: DbBackend, table: &str, column: &str) -> Vec<String> {
    match backend {
        DbBackend::Postgres => vec![format!(
            "ALTER TABLE {table} DROP CONSTRAINT {table}_{column}_check"
        )],
        _ => vec![
            format!("DROP TRIGGER {table}_{column}_check_insert"),
            format!("DROP TRIGGER {table}_{column}_check_update"),
        ],
    }
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (table, column, values) in STORED_VALUES {
            for sql in up_sql(manager.get_database_backend(), table, column, values) {
                db.execute_unprepared(&sql).await?;
            }
        }
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let db = manager.get_connection();
        for (table, column, _) in STORED_VALUES {
            for sql in down_sql(manager.get_database_backend(), table, column) {
                db.execute_unprepared(&sql).await?;
            }
        }
        Ok(())
    }
}
