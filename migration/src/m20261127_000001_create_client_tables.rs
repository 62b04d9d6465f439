use sea_orm_migration::prelude::*;

use crate::columns::{
    create_table, drop_tables, foreign_key, index, keyed_table, string, timestamp, unique_index,
    uuid,
};

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
pub(crate) enum Client {
    Table,
    Id,
    FirstName,
    LastName,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum ClientContact {
    Table,
    Id,
    ClientId,
    Kind,
    Value,
    CreatedAt,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        create_table(
            manager,
            keyed_table(Client::Table, Client::Id)
                .col(ColumnDef::new(Client::FirstName).string_len(100))
                .col(ColumnDef::new(Client::LastName).string_len(100))
                .col(timestamp(Client::CreatedAt))
                .col(timestamp(Client::UpdatedAt))
                .to_owned(),
            [index(
                "idx_client_created_at",
                [Client::CreatedAt, Client::Id],
            )],
        )
        .await?;
        create_table(
            manager,
            keyed_table(ClientContact::Table, ClientContact::Id)
                .col(uuid(ClientContact::ClientId))
                .col(string(ClientContact::Kind, 16))
                .col(string(ClientContact::Value, 320))
                .col(timestamp(ClientContact::CreatedAt))
                .foreign_key(
                    foreign_key(
                        "fk_client_contact_client",
                        (ClientContact::Table, ClientContact::ClientId),
                        (Client::Table, Client::Id),
                    )
                    .on_delete(ForeignKeyAction::Cascade),
                )
                .to_owned(),
            [
                // A normalized contact point belongs to at most one client.
                unique_index(
                    "uq_client_contact_kind_value",
                    [ClientContact::Kind, ClientContact::Value],
                ),
                index("idx_client_contact_client", [ClientContact::ClientId]),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            [ClientContact::Table.into_iden(), Client::Table.into_iden()],
        )
        .await
    }
}
