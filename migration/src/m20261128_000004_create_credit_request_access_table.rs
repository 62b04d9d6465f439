//! Quebec's Law 25: every read of a credit request, recorded before the data
//! leaves (who, role, when, which, and by which path).
use sea_orm_migration::prelude::*;

use crate::tables::{NewTable, creates_tables, string, timestamp, uuid};
creates_tables!(credit_request_access());

fn credit_request_access() -> NewTable {
    use CreditRequestAccess::*;
    NewTable::keyed(Table, Id)
        .col(uuid(CreditRequestId))
        .col(string(Principal, 200))
        .col(string(Role, 10))
        .col(string(Via, 20))
        .col(timestamp(At))
        .index("idx_credit_request_access_request", [CreditRequestId, At])
        .index("idx_credit_request_access_principal", [Principal, At])
        .index("idx_credit_request_access_at", [At, Id])
}

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
