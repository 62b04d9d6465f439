use sea_orm_migration::prelude::*;

use crate::tables::{NewTable, create_tables, drop_tables, flag, string, timestamp, uuid};
use sea_orm_migration::sea_orm::DbBackend;

use crate::m20261127_000001_create_client_tables::Client;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Opportunity {
    Table,
    Id,
    ClientId,
    Status,
    CreatedAt,
    UpdatedAt,
    Expiree,
    ExpiredAt,
    CreatedBy,
}

#[derive(DeriveIden)]
enum OpportunityStatusChange {
    Table,
    Id,
    OpportunityId,
    FromStatus,
    ToStatus,
    ChangedBy,
    ChangedAt,
}

#[derive(DeriveIden)]
enum OpportunityExpiryEvent {
    Table,
    OpportunityId,
    ExpiredAt,
    WindowDays,
    ProtectedStatuses,
    AppliedBy,
}

/// The flag is sticky: once `expiree` is true, no UPDATE may clear it or touch
/// `expired_at`, whatever the server does.
const PG_STICKY_TRIGGER: &str = r#"
CREATE FUNCTION opportunity_expiree_sticky() RETURNS trigger AS $$
BEGIN
    IF OLD.expiree AND (NOT NEW.expiree OR NEW.expired_at IS DISTINCT FROM OLD.expired_at) THEN
        RAISE EXCEPTION 'opportunity.expiree is sticky' USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END
$$ LANGUAGE plpgsql;
CREATE TRIGGER opportunity_expiree_sticky BEFORE UPDATE ON opportunity
    FOR EACH ROW EXECUTE FUNCTION opportunity_expiree_sticky();
"#;

const SQLITE_STICKY_TRIGGER: &str = r#"
CREATE TRIGGER opportunity_expiree_sticky BEFORE UPDATE ON opportunity
FOR EACH ROW WHEN OLD.expiree
    AND (NOT NEW.expiree OR NEW.expired_at IS NOT OLD.expired_at)
BEGIN
    SELECT RAISE(ABORT, 'opportunity.expiree is sticky');
END;
"#;

/// Partial index serving the sweep: only rows not yet expired are candidates.
const SWEEP_INDEX: &str =
    "CREATE INDEX idx_opportunity_sweep ON opportunity (created_at) WHERE NOT expiree";

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_tables(manager, [opportunity()]).await?;
        let db = manager.get_connection();
        db.execute_unprepared(SWEEP_INDEX).await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => db.execute_unprepared(PG_STICKY_TRIGGER).await?,
            _ => db.execute_unprepared(SQLITE_STICKY_TRIGGER).await?,
        };
        create_tables(manager, [status_change(), expiry_event()]).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [opportunity(), status_change(), expiry_event()]).await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS opportunity_expiree_sticky()")
                .await?;
        }
        Ok(())
    }
}

fn opportunity() -> NewTable {
    use Opportunity::*;
    NewTable::keyed(Table, Id)
        .col(uuid(ClientId))
        .col(string(Status, 32))
        .col(timestamp(CreatedAt))
        .col(timestamp(UpdatedAt))
        .col(flag(Expiree))
        .col(ColumnDef::new(ExpiredAt).timestamp_with_time_zone())
        .col(string(CreatedBy, 200))
        .check(Expr::cust(
            "(expiree AND expired_at IS NOT NULL) OR (NOT expiree AND expired_at IS NULL)",
        ))
        .references("fk_opportunity_client", ClientId, Client::Table)
        // Candidate lookup of lead intake: a client's opportunities, newest first.
        .index("idx_opportunity_client_created", [ClientId, CreatedAt])
        // Listing, ordered by creation, optionally by status.
        .index("idx_opportunity_created", [CreatedAt, Id])
        .index("idx_opportunity_status_created", [Status, CreatedAt])
}

fn status_change() -> NewTable {
    use OpportunityStatusChange::*;
    NewTable::keyed(Table, Id)
        .col(uuid(OpportunityId))
        .col(ColumnDef::new(FromStatus).string_len(32))
        .col(string(ToStatus, 32))
        .col(string(ChangedBy, 200))
        .col(timestamp(ChangedAt))
        .references(
            "fk_status_change_opportunity",
            OpportunityId,
            Opportunity::Table,
        )
        .index("idx_status_change_opportunity", [OpportunityId, ChangedAt])
}

/// Expiry is sticky, so it happens once: the opportunity is the key.
fn expiry_event() -> NewTable {
    use OpportunityExpiryEvent::*;
    NewTable::keyed(Table, OpportunityId)
        .col(timestamp(ExpiredAt))
        .col(ColumnDef::new(WindowDays).big_integer().not_null())
        .col(string(ProtectedStatuses, 200))
        .col(string(AppliedBy, 32))
        .references(
            "fk_expiry_event_opportunity",
            OpportunityId,
            Opportunity::Table,
        )
}
