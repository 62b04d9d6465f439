//! Partner controls: revoked token subjects (read by every instance) and the
//! per-minute lead-intake counters of the partner rate limit (used on
//! PostgreSQL, where the limit must hold across instances).
use sea_orm_migration::prelude::*;

use crate::columns::{create_table, drop_tables, index, keyed_table, string, timestamp};

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
        create_table(
            manager,
            keyed_table(RevokedSubject::Table, RevokedSubject::Id)
                .col(string(RevokedSubject::Sub, 200).unique_key())
                .col(timestamp(RevokedSubject::RevokedAt))
                .col(string(RevokedSubject::RevokedBy, 200))
                .to_owned(),
            [index(
                "idx_revoked_subject_revoked_at",
                [RevokedSubject::RevokedAt, RevokedSubject::Id],
            )],
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
        drop_tables(
            manager,
            [
                PartnerRate::Table.into_iden(),
                RevokedSubject::Table.into_iden(),
            ],
        )
        .await
    }
}
