//! Quebec's Law 25: what was done with a person's data, by whom and when
//! (exports, anonymizations). Kept when the person is anonymized: it names
//! the client by id only.
use sea_orm_migration::prelude::*;

use crate::columns::{id, index, string, timestamp, uuid};

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
                    .col(id(PrivacyEvent::Id))
                    .col(uuid(PrivacyEvent::ClientId))
                    .col(
                        string(PrivacyEvent::Kind, 20).check(
                            Expr::col(PrivacyEvent::Kind).is_in(["EXPORT", "ANONYMIZATION"]),
                        ),
                    )
                    .col(string(PrivacyEvent::Principal, 200))
                    .col(string(PrivacyEvent::Role, 10))
                    .col(timestamp(PrivacyEvent::At))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_privacy_event_client",
            PrivacyEvent::Table,
            [PrivacyEvent::ClientId, PrivacyEvent::At],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(PrivacyEvent::Table).to_owned())
            .await
    }
}
