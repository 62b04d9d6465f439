use sea_orm_migration::prelude::*;
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
        manager
            .create_table(
                Table::create()
                    .table(Opportunity::Table)
                    .col(ColumnDef::new(Opportunity::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Opportunity::ClientId).uuid().not_null())
                    .col(ColumnDef::new(Opportunity::Status).string_len(32).not_null())
                    .col(ColumnDef::new(Opportunity::CreatedAt).timestamp_with_time_zone().not_null())
                    .col(ColumnDef::new(Opportunity::UpdatedAt).timestamp_with_time_zone().not_null())
                    .col(
                        ColumnDef::new(Opportunity::Expiree)
                            .boolean()
                            .not_null()
                            .default(false),
                    )
                    .col(ColumnDef::new(Opportunity::ExpiredAt).timestamp_with_time_zone())
                    .col(ColumnDef::new(Opportunity::CreatedBy).string_len(200).not_null())
                    .check(Expr::cust(
                        "(expiree AND expired_at IS NOT NULL) OR (NOT expiree AND expired_at IS NULL)",
                    ))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_opportunity_client")
                            .from(Opportunity::Table, Opportunity::ClientId)
                            .to(Client::Table, Client::Id),
                    )
                    .to_owned(),
            )
            .await?;
        // Candidate lookup of lead intake: a client's opportunities, newest first.
        manager
            .create_index(
                Index::create()
                    .name("idx_opportunity_client_created")
                    .table(Opportunity::Table)
                    .col(Opportunity::ClientId)
                    .col(Opportunity::CreatedAt)
                    .to_owned(),
            )
            .await?;
        // Listing, ordered by creation, optionally by status.
        manager
            .create_index(
                Index::create()
                    .name("idx_opportunity_created")
                    .table(Opportunity::Table)
                    .col(Opportunity::CreatedAt)
                    .col(Opportunity::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_opportunity_status_created")
                    .table(Opportunity::Table)
                    .col(Opportunity::Status)
                    .col(Opportunity::CreatedAt)
                    .to_owned(),
            )
            .await?;
        let db = manager.get_connection();
        db.execute_unprepared(SWEEP_INDEX).await?;
        match manager.get_database_backend() {
            DbBackend::Postgres => db.execute_unprepared(PG_STICKY_TRIGGER).await?,
            _ => db.execute_unprepared(SQLITE_STICKY_TRIGGER).await?,
        };

        manager
            .create_table(
                Table::create()
                    .table(OpportunityStatusChange::Table)
                    .col(
                        ColumnDef::new(OpportunityStatusChange::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OpportunityStatusChange::OpportunityId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(OpportunityStatusChange::FromStatus).string_len(32))
                    .col(
                        ColumnDef::new(OpportunityStatusChange::ToStatus)
                            .string_len(32)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OpportunityStatusChange::ChangedBy)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OpportunityStatusChange::ChangedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_status_change_opportunity")
                            .from(
                                OpportunityStatusChange::Table,
                                OpportunityStatusChange::OpportunityId,
                            )
                            .to(Opportunity::Table, Opportunity::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_status_change_opportunity")
                    .table(OpportunityStatusChange::Table)
                    .col(OpportunityStatusChange::OpportunityId)
                    .col(OpportunityStatusChange::ChangedAt)
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(OpportunityExpiryEvent::Table)
                    // Expiry is sticky, so it happens once: the opportunity is the key.
                    .col(
                        ColumnDef::new(OpportunityExpiryEvent::OpportunityId)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(OpportunityExpiryEvent::ExpiredAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OpportunityExpiryEvent::WindowDays)
                            .big_integer()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OpportunityExpiryEvent::ProtectedStatuses)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(OpportunityExpiryEvent::AppliedBy)
                            .string_len(32)
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_expiry_event_opportunity")
                            .from(
                                OpportunityExpiryEvent::Table,
                                OpportunityExpiryEvent::OpportunityId,
                            )
                            .to(Opportunity::Table, Opportunity::Id),
                    )
                    .to_owned(),
            )
            .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            OpportunityExpiryEvent::Table.into_iden(),
            OpportunityStatusChange::Table.into_iden(),
            Opportunity::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
        if manager.get_database_backend() == DbBackend::Postgres {
            manager
                .get_connection()
                .execute_unprepared("DROP FUNCTION IF EXISTS opportunity_expiree_sticky()")
                .await?;
        }
        Ok(())
    }
}
