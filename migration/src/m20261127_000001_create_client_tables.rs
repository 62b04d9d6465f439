use sea_orm_migration::prelude::*;

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
        manager
            .create_table(
                Table::create()
                    .table(Client::Table)
                    .col(ColumnDef::new(Client::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Client::FirstName).string_len(100))
                    .col(ColumnDef::new(Client::LastName).string_len(100))
                    .col(
                        ColumnDef::new(Client::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(Client::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_client_created_at")
                    .table(Client::Table)
                    .col(Client::CreatedAt)
                    .col(Client::Id)
                    .to_owned(),
            )
            .await?;
        manager
            .create_table(
                Table::create()
                    .table(ClientContact::Table)
                    .col(
                        ColumnDef::new(ClientContact::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ClientContact::ClientId).uuid().not_null())
                    .col(
                        ColumnDef::new(ClientContact::Kind)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClientContact::Value)
                            .string_len(320)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ClientContact::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_client_contact_client")
                            .from(ClientContact::Table, ClientContact::ClientId)
                            .to(Client::Table, Client::Id)
                            .on_delete(ForeignKeyAction::Cascade),
                    )
                    .to_owned(),
            )
            .await?;
        // A normalized contact point belongs to at most one client.
        manager
            .create_index(
                Index::create()
                    .name("uq_client_contact_kind_value")
                    .table(ClientContact::Table)
                    .col(ClientContact::Kind)
                    .col(ClientContact::Value)
                    .unique()
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_client_contact_client")
                    .table(ClientContact::Table)
                    .col(ClientContact::ClientId)
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(ClientContact::Table).to_owned())
            .await?;
        manager
            .drop_table(Table::drop().table(Client::Table).to_owned())
            .await
    }
}
