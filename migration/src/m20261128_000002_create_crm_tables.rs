//! SPEC 6, the CRM around the rule: service cases, credit requests (amounts
//! in exact cents), saved views, and the folded search key of clients. Every
//! stored enum is a string held to its values by a CHECK constraint.
use sea_orm_migration::prelude::*;

use crate::columns::{
    create_table, drop_tables, foreign_key, index, keyed_table, string, timestamp, uuid,
};

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
        create_service_cases(manager).await?;
        create_status_history(manager, &SERVICE_CASE_HISTORY).await?;
        create_credit_requests(manager).await?;
        create_status_history(manager, &CREDIT_REQUEST_HISTORY).await?;
        create_saved_views(manager).await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(
            manager,
            [
                SavedView::Table.into_iden(),
                Alias::new(CREDIT_REQUEST_HISTORY.table).into_iden(),
                CreditRequest::Table.into_iden(),
                Alias::new(SERVICE_CASE_HISTORY.table).into_iden(),
                ServiceCase::Table.into_iden(),
            ],
        )
        .await?;
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
async fn create_service_cases(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_table(
        manager,
        keyed_table(ServiceCase::Table, ServiceCase::Id)
            .col(uuid(ServiceCase::ClientId))
            .col(string(ServiceCase::Subject, 200))
            .col(ColumnDef::new(ServiceCase::Description).text().not_null())
            .col(string(ServiceCase::Status, 16))
            .col(ColumnDef::new(ServiceCase::Assignee).string_len(200))
            .col(string(ServiceCase::CreatedBy, 200))
            .col(timestamp(ServiceCase::CreatedAt))
            .col(timestamp(ServiceCase::UpdatedAt))
            .check(one_of("status", SERVICE_CASE_STATUSES))
            .foreign_key(&mut foreign_key(
                "fk_service_case_client",
                (ServiceCase::Table, ServiceCase::ClientId),
                (Client::Table, Client::Id),
            ))
            .to_owned(),
        [
            index(
                "idx_service_case_created",
                [ServiceCase::CreatedAt, ServiceCase::Id],
            ),
            index(
                "idx_service_case_client",
                [ServiceCase::ClientId, ServiceCase::CreatedAt],
            ),
            index(
                "idx_service_case_status",
                [ServiceCase::Status, ServiceCase::CreatedAt],
            ),
        ],
    )
    .await
}

/// Credit requests and their list indexes.
async fn create_credit_requests(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_table(
        manager,
        keyed_table(CreditRequest::Table, CreditRequest::Id)
            .col(uuid(CreditRequest::ClientId))
            .col(uuid(CreditRequest::OpportunityId))
            .col(ColumnDef::new(CreditRequest::LeadId).uuid().unique_key())
            .col(string(CreditRequest::Status, 16))
            // Exact: dollars as integer cents, never a float.
            .col(ColumnDef::new(CreditRequest::AmountCents).big_integer())
            .col(ColumnDef::new(CreditRequest::TermMonths).integer())
            .col(ColumnDef::new(CreditRequest::Lender).string_len(200))
            .col(ColumnDef::new(CreditRequest::Notes).text())
            .col(string(CreditRequest::CreatedBy, 200))
            .col(timestamp(CreditRequest::CreatedAt))
            .col(timestamp(CreditRequest::UpdatedAt))
            .check(one_of("status", CREDIT_REQUEST_STATUSES))
            .check(Expr::cust("amount_cents IS NULL OR amount_cents >= 0"))
            .check(Expr::cust("term_months IS NULL OR term_months > 0"))
            .foreign_key(&mut foreign_key(
                "fk_credit_request_client",
                (CreditRequest::Table, CreditRequest::ClientId),
                (Client::Table, Client::Id),
            ))
            .foreign_key(&mut foreign_key(
                "fk_credit_request_opportunity",
                (CreditRequest::Table, CreditRequest::OpportunityId),
                (Opportunity::Table, Opportunity::Id),
            ))
            .to_owned(),
        [
            index(
                "idx_credit_request_created",
                [CreditRequest::CreatedAt, CreditRequest::Id],
            ),
            index(
                "idx_credit_request_client",
                [CreditRequest::ClientId, CreditRequest::CreatedAt],
            ),
            index(
                "idx_credit_request_opportunity",
                [CreditRequest::OpportunityId, CreditRequest::CreatedAt],
            ),
        ],
    )
    .await
}

/// Saved views, by module and owner or visibility.
async fn create_saved_views(manager: &SchemaManager<'_>) -> Result<(), DbErr> {
    create_table(
        manager,
        keyed_table(SavedView::Table, SavedView::Id)
            .col(string(SavedView::Module, 32))
            .col(string(SavedView::Name, 200))
            .col(string(SavedView::Visibility, 16))
            .col(string(SavedView::Owner, 200))
            // True when the filter uses an admin-only field: then the
            // view exists for admins only, shared or not.
            .col(
                ColumnDef::new(SavedView::AdminOnly)
                    .boolean()
                    .not_null()
                    .default(false),
            )
            .col(ColumnDef::new(SavedView::Filter).json_binary().not_null())
            .col(ColumnDef::new(SavedView::SortOrder).json_binary())
            .col(timestamp(SavedView::CreatedAt))
            .col(timestamp(SavedView::UpdatedAt))
            .check(one_of(
                "module",
                &["OPPORTUNITIES", "SERVICE_CASES", "CREDIT_REQUESTS"],
            ))
            .check(one_of("visibility", &["PRIVATE", "SHARED"]))
            .to_owned(),
        [
            index(
                "idx_saved_view_module_owner",
                [SavedView::Module, SavedView::Owner],
            ),
            index(
                "idx_saved_view_module_visibility",
                [SavedView::Module, SavedView::Visibility],
            ),
        ],
    )
    .await
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

async fn create_status_history(
    manager: &SchemaManager<'_>,
    history: &StatusHistory,
) -> Result<(), DbErr> {
    let (table, record) = (Alias::new(history.table), Alias::new(history.record));
    create_table(
        manager,
        keyed_table(table.clone(), StatusChange::Id)
            .col(uuid(record.clone()))
            .col(ColumnDef::new(StatusChange::FromStatus).string_len(16))
            .col(string(StatusChange::ToStatus, 16))
            .col(string(StatusChange::ChangedBy, 200))
            .col(timestamp(StatusChange::ChangedAt))
            .check(one_of("to_status", history.statuses))
            .check(Expr::cust(format!(
                "from_status IS NULL OR {}",
                one_of_sql("from_status", history.statuses)
            )))
            .foreign_key(&mut foreign_key(
                history.foreign_key,
                (table.clone(), record.clone()),
                (Alias::new(history.parent), StatusChange::Id),
            ))
            .to_owned(),
        [index(
            history.index,
            [record.into_iden(), StatusChange::ChangedAt.into_iden()],
        )],
    )
    .await
}

fn one_of_sql(column: &str, values: &[&str]) -> String {
    let list = values
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{column} IN ({list})")
}
