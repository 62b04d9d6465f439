use sea_orm_migration::prelude::*;

use crate::tables::{NewTable, creates_tables, string, timestamp, uuid};
creates_tables!(client(), client_contact());

fn client() -> NewTable {
    use Client::*;
    NewTable::keyed(Table, Id)
        .col(ColumnDef::new(FirstName).string_len(100))
        .col(ColumnDef::new(LastName).string_len(100))
        .col(timestamp(CreatedAt))
        .col(timestamp(UpdatedAt))
        .index("idx_client_created_at", [CreatedAt, Id])
}

fn client_contact() -> NewTable {
    use ClientContact::*;
    NewTable::keyed(Table, Id)
        .col(uuid(ClientId))
        .col(string(Kind, 16))
        .col(string(Value, 320))
        .col(timestamp(CreatedAt))
        .belongs_to("fk_client_contact_client", ClientId, Client::Table)
        // A normalized contact point belongs to at most one client.
        .unique_index("uq_client_contact_kind_value", [Kind, Value])
        .index("idx_client_contact_client", [ClientId])
}

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
