//! Partner controls: revoked token subjects (read by every instance) and the
//! per-minute lead-intake counters of the partner rate limit (used on
//! PostgreSQL, where the limit must hold across instances).
use sea_orm_migration::prelude::*;

use crate::columns::{id, index, string, timestamp};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum RevokedSubject {
    Table,
    Id,
    Sub,
    RevokedAt,
    RevokedBy,
}

#[derive(DeriveIden)]
enum PartnerRate {
    Table,
    Sub,
    WindowStart,
    Hits,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(RevokedSubject::Table)
                    .col(id(RevokedSubject::Id))
                    .col(string(RevokedSubject::Sub, 200).unique_key())
                    .col(timestamp(RevokedSubject::RevokedAt))
                    .col(string(RevokedSubject::RevokedBy, 200))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_revoked_subject_revoked_at",
            RevokedSubject::Table,
            [RevokedSubject::RevokedAt, RevokedSubject::Id],
        )
        .await?;
        manager
            .create_table(
                Table::create()
                    .table(PartnerRate::Table)
                    .col(string(PartnerRate::Sub, 200))
                    .col(timestamp(PartnerRate::WindowStart))
                    .col(ColumnDef::new(PartnerRate::Hits).integer().not_null())
                    .primary_key(
                        Index::create()
                            .col(PartnerRate::Sub)
                            .col(PartnerRate::WindowStart),
                    )
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PartnerRate::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(RevokedSubject::Table).to_owned())
            .await
    }
}
