use sea_orm_migration::prelude::*;

use crate::tables::{NewTable, creates_tables, optional_strings, string, timestamp, uuid};

use crate::m20261127_000001_create_client_tables::Client;
use crate::m20261127_000002_create_opportunity_tables::Opportunity;

creates_tables!(lead());

fn lead() -> NewTable {
    use Lead::*;
    NewTable::keyed(Table, Id)
        .col(uuid(ClientId))
        .col(uuid(OpportunityId))
        .col(string(Outcome, 32))
        .col(string(LeadType, 8))
        .cols(optional_strings([
            (Source, 200),
            (FirstName, 100),
            (LastName, 100),
            (EmailRaw, 320),
            (PhoneRaw, 64),
            (Email, 320),
            (Phone, 32),
        ]))
        .col(ColumnDef::new(Message).text())
        .col(ColumnDef::new(VehicleYear).integer())
        .cols(optional_strings([
            (VehicleMake, 64),
            (VehicleModel, 64),
            (VehicleTrim, 64),
            (VehicleVin, 17),
            (VehicleStockNumber, 64),
            (VehicleCondition, 8),
        ]))
        .col(timestamp(ReceivedAt))
        .col(string(SubmittedBy, 200))
        .col(string(SubmittedRole, 16))
        .cols(optional_strings([(IdempotencyKey, 200)]))
        .col(string(RequestHash, 64))
        .col(ColumnDef::new(Warnings).json_binary().not_null())
        .col(ColumnDef::new(ContactConflict).json_binary())
        .col(ColumnDef::new(Decision).json_binary().not_null())
        .references("fk_lead_client", ClientId, Client::Table)
        .references("fk_lead_opportunity", OpportunityId, Opportunity::Table)
        .index("idx_lead_opportunity_received", [OpportunityId, ReceivedAt])
        .index("idx_lead_submitted_by_received", [SubmittedBy, ReceivedAt])
        .index("idx_lead_client", [ClientId])
        // Idempotency: one lead per (principal, key).
        .unique_index("uq_lead_idempotency", [SubmittedBy, IdempotencyKey])
}

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
