//! One inbound lead, kept forever: raw and normalized contact data, the
//! vehicle of interest, who sent it, and where the intake rule routed it.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "lead")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: Uuid,
    pub opportunity_id: Uuid,
    /// `NEW_OPPORTUNITY` or `MERGED`.
    pub outcome: String,
    /// `LEAD`, `REN` or `CRE`.
    pub lead_type: String,
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
    /// `NEW` or `USED`.
    pub vehicle_condition: Option<String>,
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
