//! Quebec's Law 25: what was done with a person's data, by whom and when
//! (exports, anonymizations). Kept when the person is anonymized: it names
//! the client by id only.
use sea_orm_migration::prelude::*;

use crate::columns::{create_table, drop_tables, index, keyed_table, string, timestamp, uuid};

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
        create_table(
            manager,
            keyed_table(PrivacyEvent::Table, PrivacyEvent::Id)
                .col(uuid(PrivacyEvent::ClientId))
                .col(
                    string(PrivacyEvent::Kind, 20)
                        .check(Expr::col(PrivacyEvent::Kind).is_in(["EXPORT", "ANONYMIZATION"])),
                )
                .col(string(PrivacyEvent::Principal, 200))
                .col(string(PrivacyEvent::Role, 10))
                .col(timestamp(PrivacyEvent::At))
                .to_owned(),
            [index(
                "idx_privacy_event_client",
                [PrivacyEvent::ClientId, PrivacyEvent::At],
            )],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [PrivacyEvent::Table]).await
    }
}
