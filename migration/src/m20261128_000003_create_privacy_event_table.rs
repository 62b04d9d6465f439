//! Quebec's Law 25: what was done with a person's data, by whom and when
//! (exports, anonymizations). Kept when the person is anonymized: it names
//! the client by id only.
use sea_orm_migration::prelude::*;

use crate::tables::{NewTable, creates_tables, string, timestamp, uuid};
creates_tables!(privacy_event());

fn privacy_event() -> NewTable {
    use PrivacyEvent::*;
    NewTable::keyed(Table, Id)
        .col(uuid(ClientId))
        .col(string(Kind, 20).check(Expr::col(Kind).is_in(["EXPORT", "ANONYMIZATION"])))
        .col(string(Principal, 200))
        .col(string(Role, 10))
        .col(timestamp(At))
        .index("idx_privacy_event_client", [ClientId, At])
}

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
