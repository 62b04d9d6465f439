//! SPEC 6, the CRM around the rule: service cases, credit requests (amounts
//! in exact cents), saved views, and the folded search key of clients. Every
//! stored enum is a string held to its values by a CHECK constraint.
use sea_orm_migration::prelude::*;

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

#[derive(DeriveIden)]
enum ServiceCaseStatusChange {
    Table,
    Id,
    ServiceCaseId,
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
enum CreditRequestStatusChange {
    Table,
    Id,
    CreditRequestId,
    FromStatus,
    ToStatus,
    ChangedBy,
    ChangedAt,
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

async fn index(
    manager: &SchemaManager<'_>,
    name: &str,
    table: impl IntoIden,
    cols: Vec<DynIden>,
) -> Result<(), DbErr> {
    let mut index = Index::create();
    index.name(name).table(table);
    for col in cols {
        index.col(col);
    }
    manager.create_index(index.to_owned()).await
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        // Filled by the server at start (`store::client::backfill_search_keys`):
        // folding needs the Unicode tables of the server, not SQL.
        manager
            .alter_table(
                Table::alter()
                    .table(Client::Table)
                    .add_column(ColumnDef::new(ClientSearch::SearchKey).text())
                    .to_owned(),
            )
            .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServiceCase::Table)
                    .col(
                        ColumnDef::new(ServiceCase::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(ServiceCase::ClientId).uuid().not_null())
                    .col(
                        ColumnDef::new(ServiceCase::Subject)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ServiceCase::Description).text().not_null())
                    .col(
                        ColumnDef::new(ServiceCase::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(ServiceCase::Assignee).string_len(200))
                    .col(
                        ColumnDef::new(ServiceCase::CreatedBy)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ServiceCase::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ServiceCase::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .check(one_of("status", SERVICE_CASE_STATUSES))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_service_case_client")
                            .from(ServiceCase::Table, ServiceCase::ClientId)
                            .to(Client::Table, Client::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_service_case_created",
            ServiceCase::Table,
            vec![
                ServiceCase::CreatedAt.into_iden(),
                ServiceCase::Id.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_service_case_client",
            ServiceCase::Table,
            vec![
                ServiceCase::ClientId.into_iden(),
                ServiceCase::CreatedAt.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_service_case_status",
            ServiceCase::Table,
            vec![
                ServiceCase::Status.into_iden(),
                ServiceCase::CreatedAt.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(ServiceCaseStatusChange::Table)
                    .col(
                        ColumnDef::new(ServiceCaseStatusChange::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(ServiceCaseStatusChange::ServiceCaseId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(ServiceCaseStatusChange::FromStatus).string_len(16))
                    .col(
                        ColumnDef::new(ServiceCaseStatusChange::ToStatus)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ServiceCaseStatusChange::ChangedBy)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(ServiceCaseStatusChange::ChangedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .check(one_of("to_status", SERVICE_CASE_STATUSES))
                    .check(Expr::cust(format!(
                        "from_status IS NULL OR {}",
                        one_of_sql("from_status", SERVICE_CASE_STATUSES)
                    )))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_service_case_status_change_case")
                            .from(
                                ServiceCaseStatusChange::Table,
                                ServiceCaseStatusChange::ServiceCaseId,
                            )
                            .to(ServiceCase::Table, ServiceCase::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_service_case_status_change_case",
            ServiceCaseStatusChange::Table,
            vec![
                ServiceCaseStatusChange::ServiceCaseId.into_iden(),
                ServiceCaseStatusChange::ChangedAt.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CreditRequest::Table)
                    .col(
                        ColumnDef::new(CreditRequest::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(CreditRequest::ClientId).uuid().not_null())
                    .col(
                        ColumnDef::new(CreditRequest::OpportunityId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CreditRequest::LeadId).uuid().unique_key())
                    .col(
                        ColumnDef::new(CreditRequest::Status)
                            .string_len(16)
                            .not_null(),
                    )
                    // Exact: dollars as integer cents, never a float.
                    .col(ColumnDef::new(CreditRequest::AmountCents).big_integer())
                    .col(ColumnDef::new(CreditRequest::TermMonths).integer())
                    .col(ColumnDef::new(CreditRequest::Lender).string_len(200))
                    .col(ColumnDef::new(CreditRequest::Notes).text())
                    .col(
                        ColumnDef::new(CreditRequest::CreatedBy)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditRequest::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditRequest::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .check(one_of("status", CREDIT_REQUEST_STATUSES))
                    .check(Expr::cust("amount_cents IS NULL OR amount_cents >= 0"))
                    .check(Expr::cust("term_months IS NULL OR term_months > 0"))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_credit_request_client")
                            .from(CreditRequest::Table, CreditRequest::ClientId)
                            .to(Client::Table, Client::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_credit_request_opportunity")
                            .from(CreditRequest::Table, CreditRequest::OpportunityId)
                            .to(Opportunity::Table, Opportunity::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_credit_request_created",
            CreditRequest::Table,
            vec![
                CreditRequest::CreatedAt.into_iden(),
                CreditRequest::Id.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_credit_request_client",
            CreditRequest::Table,
            vec![
                CreditRequest::ClientId.into_iden(),
                CreditRequest::CreatedAt.into_iden(),
            ],
        )
        .await?;
        index(
            manager,
            "idx_credit_request_opportunity",
            CreditRequest::Table,
            vec![
                CreditRequest::OpportunityId.into_iden(),
                CreditRequest::CreatedAt.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(CreditRequestStatusChange::Table)
                    .col(
                        ColumnDef::new(CreditRequestStatusChange::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(
                        ColumnDef::new(CreditRequestStatusChange::CreditRequestId)
                            .uuid()
                            .not_null(),
                    )
                    .col(ColumnDef::new(CreditRequestStatusChange::FromStatus).string_len(16))
                    .col(
                        ColumnDef::new(CreditRequestStatusChange::ToStatus)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditRequestStatusChange::ChangedBy)
                            .string_len(200)
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(CreditRequestStatusChange::ChangedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .check(one_of("to_status", CREDIT_REQUEST_STATUSES))
                    .check(Expr::cust(format!(
                        "from_status IS NULL OR {}",
                        one_of_sql("from_status", CREDIT_REQUEST_STATUSES)
                    )))
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_credit_request_status_change_request")
                            .from(
                                CreditRequestStatusChange::Table,
                                CreditRequestStatusChange::CreditRequestId,
                            )
                            .to(CreditRequest::Table, CreditRequest::Id),
                    )
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_credit_request_status_change_request",
            CreditRequestStatusChange::Table,
            vec![
                CreditRequestStatusChange::CreditRequestId.into_iden(),
                CreditRequestStatusChange::ChangedAt.into_iden(),
            ],
        )
        .await?;

        manager
            .create_table(
                Table::create()
                    .table(SavedView::Table)
                    .col(
                        ColumnDef::new(SavedView::Id)
                            .uuid()
                            .not_null()
                            .primary_key(),
                    )
                    .col(ColumnDef::new(SavedView::Module).string_len(32).not_null())
                    .col(ColumnDef::new(SavedView::Name).string_len(200).not_null())
                    .col(
                        ColumnDef::new(SavedView::Visibility)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(ColumnDef::new(SavedView::Owner).string_len(200).not_null())
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
                    .col(
                        ColumnDef::new(SavedView::CreatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(
                        ColumnDef::new(SavedView::UpdatedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .check(one_of(
                        "module",
                        &["OPPORTUNITIES", "SERVICE_CASES", "CREDIT_REQUESTS"],
                    ))
                    .check(one_of("visibility", &["PRIVATE", "SHARED"]))
                    .to_owned(),
            )
            .await?;
        index(
            manager,
            "idx_saved_view_module_owner",
            SavedView::Table,
            vec![SavedView::Module.into_iden(), SavedView::Owner.into_iden()],
        )
        .await?;
        index(
            manager,
            "idx_saved_view_module_visibility",
            SavedView::Table,
            vec![
                SavedView::Module.into_iden(),
                SavedView::Visibility.into_iden(),
            ],
        )
        .await?;
        Ok(())
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        for table in [
            SavedView::Table.into_iden(),
            CreditRequestStatusChange::Table.into_iden(),
            CreditRequest::Table.into_iden(),
            ServiceCaseStatusChange::Table.into_iden(),
            ServiceCase::Table.into_iden(),
        ] {
            manager
                .drop_table(Table::drop().table(table).to_owned())
                .await?;
        }
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

fn one_of_sql(column: &str, values: &[&str]) -> String {
    let list = values
        .iter()
        .map(|v| format!("'{v}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!("{column} IN ({list})")
}
