//! Quebec's Law 25: every read of a credit request, recorded before the data
//! leaves (who, role, when, which, and by which path).
use sea_orm_migration::prelude::*;

use crate::columns::{id, index, string, timestamp, uuid};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum CreditRequestAccess {
    Table,
    Id,
    CreditRequestId,
    Principal,
    Role,
    Via,
    At,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .create_table(
                Table::create()
                    .table(CreditRequestAccess::Table)
                    .col(id(CreditRequestAccess::Id))
                    .col(uuid(CreditRequestAccess::CreditRequestId))
                    .col(string(CreditRequestAccess::Principal, 200))
                    .col(string(CreditRequestAccess::Role, 10))
                    .col(string(CreditRequestAccess::Via, 20))
                    .col(timestamp(CreditRequestAccess::At))
                    .to_owned(),
            )
            .await?;
        for (name, column) in [
            (
                "idx_credit_request_access_request",
                CreditRequestAccess::CreditRequestId,
            ),
            (
                "idx_credit_request_access_principal",
                CreditRequestAccess::Principal,
            ),
        ] {
            manager
                .create_index(
                    Index::create()
                        .name(name)
                        .table(CreditRequestAccess::Table)
                        .col(column)
                        .col(CreditRequestAccess::At)
                        .to_owned(),
                )
                .await?;
        }
        index(
            manager,
            "idx_credit_request_access_at",
            CreditRequestAccess::Table,
            [CreditRequestAccess::At, CreditRequestAccess::Id],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CreditRequestAccess::Table).to_owned())
            .await
    }
}
