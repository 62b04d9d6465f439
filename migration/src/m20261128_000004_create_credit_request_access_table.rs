//! Quebec's Law 25: every read of a credit request, recorded before the data
//! leaves (who, role, when, which, and by which path).
use sea_orm_migration::prelude::*;

use crate::columns::{create_table, drop_tables, index, keyed_table, string, timestamp, uuid};

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
        create_table(
            manager,
            keyed_table(CreditRequestAccess::Table, CreditRequestAccess::Id)
                .col(uuid(CreditRequestAccess::CreditRequestId))
                .col(string(CreditRequestAccess::Principal, 200))
                .col(string(CreditRequestAccess::Role, 10))
                .col(string(CreditRequestAccess::Via, 20))
                .col(timestamp(CreditRequestAccess::At))
                .to_owned(),
            [
                index(
                    "idx_credit_request_access_request",
                    [
                        CreditRequestAccess::CreditRequestId,
                        CreditRequestAccess::At,
                    ],
                ),
                index(
                    "idx_credit_request_access_principal",
                    [CreditRequestAccess::Principal, CreditRequestAccess::At],
                ),
                index(
                    "idx_credit_request_access_at",
                    [CreditRequestAccess::At, CreditRequestAccess::Id],
                ),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [CreditRequestAccess::Table]).await
    }
}
