//! Quebec's Law 25: what was done with a person's data, by whom and when
//! (exports, anonymizations). Kept when the person is anonymized: it names
//! the client by id only.
use sea_orm_migration::prelude::*;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum PrivacyEvent {
    Table,
    Id,
    ClientId,
    Kind,
    Principal,
    Role,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(PrivacyEvent::Table)
                    .col(
                        ColumnDef::new(PrivacyEvent::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(PrivacyEvent::ClientId).uuid().not_null())
                    .col(
                        ColumnDef::new(PrivacyEvent::Kind)
                            .string_len(20)
                            .not_null()
                            .check(
                                Expr::col(PrivacyEvent::Kind).is_in(["EXPORT", "ANONYMIZATION"]),
                            ),
                    )
                    .col(
                        ColumnDef::new(PrivacyEvent::Principal)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(ColumnDef::new(PrivacyEvent::Role).string_len(10).not_null())
                    .col(
                        ColumnDef::new(PrivacyEvent::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_privacy_event_client")
                    .table(PrivacyEvent::Table)
                    .col(PrivacyEvent::ClientId)
                    .col(PrivacyEvent::At)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PrivacyEvent::Table).to_owned())
            .await
    }
}
