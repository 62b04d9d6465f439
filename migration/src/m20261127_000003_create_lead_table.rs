use sea_orm_migration::prelude::*;

use crate::columns::{
    create_table, drop_tables, foreign_key, index, keyed_table, string, timestamp, unique_index,
    uuid,
};

use crate::m20261127_000001_create_client_tables::Client;
use crate::m20261127_000002_create_opportunity_tables::Opportunity;

#[derive(DeriveMigrationName)]
pub struct Migration;

// `LeadType` is the column `lead_type`, named like the entity's field.
#[derive(DeriveIden)]
#[expect(clippy::enum_variant_names)]
enum Lead {
    Table,
    Id,
    ClientId,
    OpportunityId,
    Outcome,
    LeadType,
    Source,
    FirstName,
    LastName,
    EmailRaw,
    PhoneRaw,
    Email,
    Phone,
    Message,
    VehicleYear,
    VehicleMake,
    VehicleModel,
    VehicleTrim,
    VehicleVin,
    VehicleStockNumber,
    VehicleCondition,
    ReceivedAt,
    SubmittedBy,
    SubmittedRole,
    IdempotencyKey,
    RequestHash,
    Warnings,
    ContactConflict,
    Decision,
}

#[async_trait::async_trait]
impl MigrationTrait for Migration {
    async fn up(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        let text = |col: Lead, len: u32| ColumnDef::new(col).string_len(len).to_owned();
        create_table(
            manager,
            keyed_table(Lead::Table, Lead::Id)
                .col(uuid(Lead::ClientId))
                .col(uuid(Lead::OpportunityId))
                .col(string(Lead::Outcome, 32))
                .col(string(Lead::LeadType, 8))
                .col(text(Lead::Source, 200))
                .col(text(Lead::FirstName, 100))
                .col(text(Lead::LastName, 100))
                .col(text(Lead::EmailRaw, 320))
                .col(text(Lead::PhoneRaw, 64))
                .col(text(Lead::Email, 320))
                .col(text(Lead::Phone, 32))
                .col(ColumnDef::new(Lead::Message).text())
                .col(ColumnDef::new(Lead::VehicleYear).integer())
                .col(text(Lead::VehicleMake, 64))
                .col(text(Lead::VehicleModel, 64))
                .col(text(Lead::VehicleTrim, 64))
                .col(text(Lead::VehicleVin, 17))
                .col(text(Lead::VehicleStockNumber, 64))
                .col(text(Lead::VehicleCondition, 8))
                .col(timestamp(Lead::ReceivedAt))
                .col(string(Lead::SubmittedBy, 200))
                .col(string(Lead::SubmittedRole, 16))
                .col(text(Lead::IdempotencyKey, 200))
                .col(string(Lead::RequestHash, 64))
                .col(ColumnDef::new(Lead::Warnings).json_binary().not_null())
                .col(ColumnDef::new(Lead::ContactConflict).json_binary())
                .col(ColumnDef::new(Lead::Decision).json_binary().not_null())
                .foreign_key(&mut foreign_key(
                    "fk_lead_client",
                    (Lead::Table, Lead::ClientId),
                    (Client::Table, Client::Id),
                ))
                .foreign_key(&mut foreign_key(
                    "fk_lead_opportunity",
                    (Lead::Table, Lead::OpportunityId),
                    (Opportunity::Table, Opportunity::Id),
                ))
                .to_owned(),
            [
                index(
                    "idx_lead_opportunity_received",
                    [Lead::OpportunityId, Lead::ReceivedAt],
                ),
                index(
                    "idx_lead_submitted_by_received",
                    [Lead::SubmittedBy, Lead::ReceivedAt],
                ),
                index("idx_lead_client", [Lead::ClientId]),
                // Idempotency: one lead per (principal, key).
                unique_index(
                    "uq_lead_idempotency",
                    [Lead::SubmittedBy, Lead::IdempotencyKey],
                ),
            ],
        )
        .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        drop_tables(manager, [Lead::Table]).await
    }
}
