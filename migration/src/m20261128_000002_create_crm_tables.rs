//! SPEC 6, the CRM around the rule: service cases, credit requests (amounts
//! in exact cents), saved views, and the folded search key of clients. Every
//! stored enum is a string held to its values by a CHECK constraint.
use sea_orm_migration::prelude::*;

use crate::tables::{NewTable, create_tables, drop_tables, flag, string, timestamp, uuid};

use crate::m20261127_000001_create_client_tables::Client;
use crate::m20261127_000002_create_opportunity_tables::Opportunity;

#[derive(DeriveMigrationName)]
pub struct Migration;

#[derive(DeriveIden)]
enum ClientSearch {
    SearchKey,
}

#[derive(DeriveIden)]
enum ServiceCase {
    Table,
    Id,
    ClientId,
    Subject,
    Description,
    Status,
    Assignee,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

/// The columns every status history shares.
#[derive(DeriveIden)]
enum StatusChange {
    Id,
    FromStatus,
    ToStatus,
    ChangedBy,
    ChangedAt,
}

#[derive(DeriveIden)]
enum CreditRequest {
    Table,
    Id,
    ClientId,
    OpportunityId,
    LeadId,
    Status,
    AmountCents,
    TermMonths,
    Lender,
    Notes,
    CreatedBy,
    CreatedAt,
    UpdatedAt,
}

#[derive(DeriveIden)]
enum SavedView {
    Table,
    Id,
    Module,
    Name,
    Visibility,
    Owner,
    AdminOnly,
    Filter,
    SortOrder,
    CreatedAt,
    UpdatedAt,
}

fn one_of(column: &str, values: &[&str]) -> Expr {
    Expr::cust(one_of_sql(column, values))
}

const SERVICE_CASE_STATUSES: &[&str] = &["OUVERT", "EN_COURS", "FERME"];
const CREDIT_REQUEST_STATUSES: &[&str] = &["RECUE", "SOUMISE", "APPROUVEE", "REFUSEE", "ANNULEE"];

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        add_client_search_key(manager).await?;
        create_tables(manager, tables()).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, tables()).await?;
        manager
            .alter_table(
                Table::alter()
                    .table(Client::Table)
                    .drop_column(ClientSearch::SearchKey)
                    .to_owned(),
            )
            .await
    }
}

fn tables() -> [NewTable; 5] {
    [
        service_cases(),
        status_history(&SERVICE_CASE_HISTORY),
        credit_requests(),
        status_history(&CREDIT_REQUEST_HISTORY),
        saved_views(),
    ]
}

/// The folded search key of clients.
async fn add_client_search_key(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    // Filled by the server at start (`store::client::backfill_search_keys`):
    // folding needs the Unicode tables of the server, not SQL.
    manager
        .alter_table(
            Table::alter()
                .table(Client::Table)
                .add_column(ColumnDef::new(ClientSearch::SearchKey).text())
                .to_owned(),
        )
        .await
}

/// Service cases (after-sales) and their list indexes.
fn service_cases() -> NewTable {
    use ServiceCase::*;
    NewTable::keyed(Table, Id)
        .col(uuid(ClientId))
        .col(string(Subject, 200))
        .col(ColumnDef::new(Description).text().not_null())
        .col(string(Status, 16))
        .col(ColumnDef::new(Assignee).string_len(200))
        .col(string(CreatedBy, 200))
        .col(timestamp(CreatedAt))
        .col(timestamp(UpdatedAt))
        .check(one_of("status", SERVICE_CASE_STATUSES))
        .references("fk_service_case_client", ClientId, Client::Table)
        .index("idx_service_case_created", [CreatedAt, Id])
        .index("idx_service_case_client", [ClientId, CreatedAt])
        .index("idx_service_case_status", [Status, CreatedAt])
}

/// Credit requests and their list indexes.
fn credit_requests() -> NewTable {
    use CreditRequest::*;
    NewTable::keyed(Table, Id)
        .col(uuid(ClientId))
        .col(uuid(OpportunityId))
        .col(ColumnDef::new(LeadId).uuid().unique_key())
        .col(string(Status, 16))
        // Exact: dollars as integer cents, never a float.
        .col(ColumnDef::new(AmountCents).big_integer())
        .col(ColumnDef::new(TermMonths).integer())
        .col(ColumnDef::new(Lender).string_len(200))
        .col(ColumnDef::new(Notes).text())
        .col(string(CreatedBy, 200))
        .col(timestamp(CreatedAt))
        .col(timestamp(UpdatedAt))
        .check(one_of("status", CREDIT_REQUEST_STATUSES))
        .check(Expr::cust("amount_cents IS NULL OR amount_cents >= 0"))
        .check(Expr::cust("term_months IS NULL OR term_months > 0"))
        .references("fk_credit_request_client", ClientId, Client::Table)
        .references(
            "fk_credit_request_opportunity",
            OpportunityId,
            Opportunity::Table,
        )
        .index("idx_credit_request_created", [CreatedAt, Id])
        .index("idx_credit_request_client", [ClientId, CreatedAt])
        .index("idx_credit_request_opportunity", [OpportunityId, CreatedAt])
}

/// Saved views, by module and owner or visibility.
fn saved_views() -> NewTable {
    use SavedView::*;
    NewTable::keyed(Table, Id)
        .col(string(Module, 32))
        .col(string(Name, 200))
        .col(string(Visibility, 16))
        .col(string(Owner, 200))
        // True when the filter uses an admin-only field: then the view
        // exists for admins only, shared or not.
        .col(flag(AdminOnly))
        .col(ColumnDef::new(Filter).json_binary().not_null())
        .col(ColumnDef::new(SortOrder).json_binary())
        .col(timestamp(CreatedAt))
        .col(timestamp(UpdatedAt))
        .check(one_of(
            "module",
            &["OPPORTUNITIES", "SERVICE_CASES", "CREDIT_REQUESTS"],
        ))
        .check(one_of("visibility", &["PRIVATE", "SHARED"]))
        .index("idx_saved_view_module_owner", [Module, Owner])
        .index("idx_saved_view_module_visibility", [Module, Visibility])
}

/// A status history: one row per change of a record's status, its
/// statuses held to `statuses` (`from_status` is null for the first).
struct StatusHistory {
    table: &'static str,
    record: &'static str,
    parent: &'static str,
    statuses: &'static [&'static str],
    foreign_key: &'static str,
    index: &'static str,
}

const SERVICE_CASE_HISTORY: StatusHistory = StatusHistory {
    table: "service_case_status_change",
    record: "service_case_id",
    parent: "service_case",
    statuses: SERVICE_CASE_STATUSES,
    foreign_key: "fk_service_case_status_change_case",
    index: "idx_service_case_status_change_case",
};

const CREDIT_REQUEST_HISTORY: StatusHistory = StatusHistory {
    table: "credit_request_status_change",
    record: "credit_request_id",
    parent: "credit_request",
    statuses: CREDIT_REQUEST_STATUSES,
    foreign_key: "fk_credit_request_status_change_request",
    index: "idx_credit_request_status_change_request",
};

fn status_history(history: &StatusHistory) -> NewTable {
    use StatusChange::*;
    let record = Alias::new(history.record);
    NewTable::keyed(Alias::new(history.table), Id)
        .col(uuid(record.clone()))
        .col(ColumnDef::new(FromStatus).string_len(16))
        .col(string(ToStatus, 16))
        .col(string(ChangedBy, 200))
        .col(timestamp(ChangedAt))
        .check(one_of("to_status", history.statuses))
        .check(Expr::cust(format!(
            "from_status IS NULL OR {}",
            one_of_sql("from_status", history.statuses)
        )))
        .references(
            history.foreign_key,
            record.clone(),
            Alias::new(history.parent),
        )
        .index(history.index, [record.into_iden(), ChangedAt.into_iden()])
}

fn one_of_sql(column: &str, values: &[&str]) -> String {
    let list = values
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{column} IN ({list})")
}
