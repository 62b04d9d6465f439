//! Partner controls: revoked token subjects (read by every instance) and the
//! per-minute lead-intake counters of the partner rate limit (used on
//! PostgreSQL, where the limit must hold across instances).
use sea_orm_migration::prelude::*;

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
                    .col(
                        ColumnDef::new(RevokedSubject::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(RevokedSubject::Sub)
                            .string_len(200)
                            .not_null()
                            .unique_key(),
                    )
                    .col(
                        ColumnDef::new(RevokedSubject::RevokedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(RevokedSubject::RevokedBy)
                            .string_len(200)
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_revoked_subject_revoked_at")
                    .table(RevokedSubject::Table)
                    .col(RevokedSubject::RevokedAt)
                    .col(RevokedSubject::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(PartnerRate::Table)
                    .col(ColumnDef::new(PartnerRate::Sub).string_len(200).not_null())
                    .col(
                        ColumnDef::new(PartnerRate::WindowStart)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
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
