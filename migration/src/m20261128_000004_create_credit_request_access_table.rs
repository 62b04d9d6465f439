//! Quebec's Law 25: every read of a credit request, recorded before the data
//! leaves (who, role, when, which, and by which path).
use sea_orm_migration::prelude::*;

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
                    .col(
                        ColumnDef::new(CreditRequestAccess::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CreditRequestAccess::CreditRequestId)
                            .uuid()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditRequestAccess::Principal)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditRequestAccess::Role)
                            .string_len(10)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditRequestAccess::Via)
                            .string_len(20)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditRequestAccess::At)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
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
        manager
            .create_index(
                Index::create()
                    .name("idx_credit_request_access_at")
                    .table(CreditRequestAccess::Table)
                    .col(CreditRequestAccess::At)
                    .col(CreditRequestAccess::Id)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(CreditRequestAccess::Table).to_owned())
            .await
    }
}
