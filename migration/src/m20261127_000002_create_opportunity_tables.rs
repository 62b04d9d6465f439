use sea_orm_migration::prelude::*;

use crate::columns::{
    create_table, drop_tables, foreign_key, index, keyed_table, string, timestamp, uuid,
};
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
        create_table(
            manager,
            keyed_table(Opportunity::Table, Opportunity::Id)
                .col(uuid(Opportunity::ClientId))
                .col(string(Opportunity::Status, 32))
                .col(timestamp(Opportunity::CreatedAt))
                .col(timestamp(Opportunity::UpdatedAt))
                .col(
                    ColumnDef::new(Opportunity::Expiree)
                        .boolean()
                        .not_null()
                        .default(false),
                )
                .col(ColumnDef::new(Opportunity::ExpiredAt).timestamp_with_time_zone())
                .col(string(Opportunity::CreatedBy, 200))
                .check(Expr::cust(
                    "(expiree AND expired_at IS NOT NULL) OR (NOT expiree AND expired_at IS NULL)",
                ))
                .foreign_key(&mut foreign_key(
                    "fk_opportunity_client",
                    (Opportunity::Table, Opportunity::ClientId),
                    (Client::Table, Client::Id),
                ))
                .to_owned(),
            [
                // Candidate lookup of lead intake: a client's opportunities, newest first.
                index(
                    "idx_opportunity_client_created",
                    [Opportunity::ClientId, Opportunity::CreatedAt],
                ),
                // Listing, ordered by creation, optionally by status.
                index(
                    "idx_opportunity_created",
                    [Opportunity::CreatedAt, Opportunity::Id],
                ),
                index(
                    "idx_opportunity_status_created",
                    [Opportunity::Status, Opportunity::CreatedAt],
                ),
            ],
        )
        .await?;
        let db = manager.get_connection();
        db.execute_unprepared(SWEEP_INDEX).await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => db.execute_unprepared(PG_STICKY_TRIGGER).await?,
            _ => db.execute_unprepared(SQLITE_STICKY_TRIGGER).await?,
        };

        create_table(
            manager,
            keyed_table(OpportunityStatusChange::Table, OpportunityStatusChange::Id)
                .col(uuid(OpportunityStatusChange::OpportunityId))
                .col(ColumnDef::new(OpportunityStatusChange::FromStatus).string_len(32))
                .col(string(OpportunityStatusChange::ToStatus, 32))
                .col(string(OpportunityStatusChange::ChangedBy, 200))
                .col(timestamp(OpportunityStatusChange::ChangedAt))
                .foreign_key(&mut foreign_key(
                    "fk_status_change_opportunity",
                    (
                        OpportunityStatusChange::Table,
                        OpportunityStatusChange::OpportunityId,
                    ),
                    (Opportunity::Table, Opportunity::Id),
                ))
                .to_owned(),
            [index(
                "idx_status_change_opportunity",
                [
                    OpportunityStatusChange::OpportunityId,
                    OpportunityStatusChange::ChangedAt,
                ],
            )],
        )
        .await?;

        manager
            .create_table(
                // Expiry is sticky, so it happens once: the opportunity is the key.
                keyed_table(
                    OpportunityExpiryEvent::Table,
                    OpportunityExpiryEvent::OpportunityId,
                )
                .col(timestamp(OpportunityExpiryEvent::ExpiredAt))
                .col(
                    ColumnDef::new(OpportunityExpiryEvent::WindowDays)
                        .big_integer()
                        .not_null(),
                )
                .col(string(OpportunityExpiryEvent::ProtectedStatuses, 200))
                .col(string(OpportunityExpiryEvent::AppliedBy, 32))
                .foreign_key(&mut foreign_key(
                    "fk_expiry_event_opportunity",
                    (
                        OpportunityExpiryEvent::Table,
                        OpportunityExpiryEvent::OpportunityId,
                    ),
                    (Opportunity::Table, Opportunity::Id),
                ))
                .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            [
                OpportunityExpiryEvent::Table.into_iden(),
                OpportunityStatusChange::Table.into_iden(),
                Opportunity::Table.into_iden(),
            ],
        )
        .await?;
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS opportunity_expiree_sticky()")
                .await?;
        }
        Ok(())
    }
}
