//! One inbound lead, kept forever: raw and normalized contact data, the
//! vehicle of interest, who sent it, and where the intake rule routed it.
use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// Where the lead ended, stored by name (in its column and in the decision
/// record alike).
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize, Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum LeadOutcome {
    /// It opened a new opportunity.
    #[sea_orm(string_value = "NEW_OPPORTUNITY")]
    NewOpportunity,
    /// It joined the client's live opportunity.
    #[sea_orm(string_value = "MERGED")]
    Merged,
}

impl LeadOutcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::NewOpportunity => "NEW_OPPORTUNITY",
            Self::Merged => "MERGED",
        }
    }
}

/// What kind of request a lead is. The serialized names (`Lead`, `Ren`,
/// `Cre`) are part of the request hash of stored leads: never rename them.
#[derive(
    Copy, Clone, Debug, PartialEq, Eq, Hash, Default, EnumIter, DeriveActiveEnum, Serialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum LeadType {
    /// Internet sales lead.
    #[default]
    #[sea_orm(string_value = "LEAD")]
    Lead,
    /// Renewal of a lease or loan.
    #[sea_orm(string_value = "REN")]
    Ren,
    /// Credit application.
    #[sea_orm(string_value = "CRE")]
    Cre,
}

impl LeadType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "LEAD",
            Self::Ren => "REN",
            Self::Cre => "CRE",
        }
    }
}

/// New or used vehicle. The serialized names (`New`, `Used`) are part of
/// the request hash of stored leads: never rename them.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum, Serialize)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
pub enum VehicleCondition {
    #[sea_orm(string_value = "NEW")]
    New,
    #[sea_orm(string_value = "USED")]
    Used,
}

impl VehicleCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Used => "USED",
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: Uuid,
    pub opportunity_id: Uuid,
    pub outcome: LeadOutcome,
    pub lead_type: LeadType,
    pub source: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email_raw: Option<String>,
    pub phone_raw: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub message: Option<String>,
    pub vehicle_year: Option<i32>,
    pub vehicle_make: Option<String>,
    pub vehicle_model: Option<String>,
    pub vehicle_trim: Option<String>,
    pub vehicle_vin: Option<String>,
    pub vehicle_stock_number: Option<String>,
    pub vehicle_condition: Option<VehicleCondition>,
    pub received_at: DateTimeUtc,
    pub submitted_by: String,
    pub submitted_role: String,
    pub idempotency_key: Option<String>,
    /// SHA-256 of the canonical submitted input, to detect a reused key with another body.
    pub request_hash: String,
    /// JSON array of warnings returned with the payload.
    pub warnings: Json,
    /// JSON description of an email/phone client conflict, if any.
    pub contact_conflict: Option<Json>,
    /// JSON decision record (admin-only): matched contact, candidate, evaluated state.
    pub decision: Json,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
