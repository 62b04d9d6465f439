//! Partner controls: revoked token subjects (read by every instance) and the
//! per-minute lead-intake counters of the partner rate limit (used on
//! PostgreSQL, where the limit must hold across instances).
use sea_orm_migration::prelude::*;

use crate::tables::{NewTable, creates_tables, string, timestamp};
creates_tables!(revoked_subject(), partner_rate());

fn revoked_subject() -> NewTable {
    use RevokedSubject::*;
    NewTable::keyed(Table, Id)
        .col(string(Sub, 200).unique_key())
        .col(timestamp(RevokedAt))
        .col(string(RevokedBy, 200))
        .index("idx_revoked_subject_revoked_at", [RevokedAt, Id])
}

fn partner_rate() -> NewTable {
    use PartnerRate::*;
    NewTable::new(Table)
        .col(string(Sub, 200))
        .col(timestamp(WindowStart))
        .col(ColumnDef::new(Hits).integer().not_null())
        .primary_key([Sub, WindowStart])
}

#[derive(DeriveIden)]
enum RevokedSubject {
    Table,
    Id,
    Sub,
    RevokedAt,
    RevokedBy,
}

#[derive(DeriveIden)]
enum PartnerRate {
    Table,
    Sub,
    WindowStart,
    Hits,
}
