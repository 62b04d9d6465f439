use sea_orm_migration::prelude::*;

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
        manager
            .create_table(
                Table::create()
                    .table(Lead::Table)
                    .col(ColumnDef::new(Lead::Id).uuid().not_null().primary_key())
                    .col(ColumnDef::new(Lead::ClientId).uuid().not_null())
                    .col(ColumnDef::new(Lead::OpportunityId).uuid().not_null())
                    .col(ColumnDef::new(Lead::Outcome).string_len(32).not_null())
                    .col(ColumnDef::new(Lead::LeadType).string_len(8).not_null())
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
                    .col(
                        ColumnDef::new(Lead::ReceivedAt)
                            .timestamp_with_time_zone()
                            .not_null(),
                    )
                    .col(ColumnDef::new(Lead::SubmittedBy).string_len(200).not_null())
                    .col(
                        ColumnDef::new(Lead::SubmittedRole)
                            .string_len(16)
                            .not_null(),
                    )
                    .col(text(Lead::IdempotencyKey, 200))
                    .col(ColumnDef::new(Lead::RequestHash).string_len(64).not_null())
                    .col(ColumnDef::new(Lead::Warnings).json_binary().not_null())
                    .col(ColumnDef::new(Lead::ContactConflict).json_binary())
                    .col(ColumnDef::new(Lead::Decision).json_binary().not_null())
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_lead_client")
                            .from(Lead::Table, Lead::ClientId)
                            .to(Client::Table, Client::Id),
                    )
                    .foreign_key(
                        ForeignKey::create()
                            .name("fk_lead_opportunity")
                            .from(Lead::Table, Lead::OpportunityId)
                            .to(Opportunity::Table, Opportunity::Id),
                    )
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lead_opportunity_received")
                    .table(Lead::Table)
                    .col(Lead::OpportunityId)
                    .col(Lead::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lead_submitted_by_received")
                    .table(Lead::Table)
                    .col(Lead::SubmittedBy)
                    .col(Lead::ReceivedAt)
                    .to_owned(),
            )
            .await?;
        manager
            .create_index(
                Index::create()
                    .name("idx_lead_client")
                    .table(Lead::Table)
                    .col(Lead::ClientId)
                    .to_owned(),
            )
            .await?;
        // Idempotency: one lead per (principal, key).
        manager
            .create_index(
                Index::create()
                    .name("uq_lead_idempotency")
                    .table(Lead::Table)
                    .col(Lead::SubmittedBy)
                    .col(Lead::IdempotencyKey)
                    .unique()
                    .to_owned(),
            )
            .await
    }

    async fn down(&self, manager: &SchemaManager) -> Result<(), DbErr> {
        manager
            .drop_table(Table::drop().table(Lead::Table).to_owned())
            .await
    }
}
