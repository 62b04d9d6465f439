//! Audit record: one row per opportunity the expiry rule flagged (expiry
//! happens once, so the opportunity is the key), with the policy applied and
//! where (sweep, lead intake, status change).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "opportunity_expiry_event")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub opportunity_id: Uuid,
    pub expired_at: DateTimeUtc,
    pub window_days: i64,
    /// Comma-separated protected statuses in force.
    pub protected_statuses: String,
    /// `SWEEP`, `LEAD_INTAKE` or `STATUS_CHANGE`.
    pub applied_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
