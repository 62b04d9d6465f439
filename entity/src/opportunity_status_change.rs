//! One status change of an opportunity: from, to, who, when.
use sea_orm::entity::prelude::*;

use crate::opportunity::OpportunityStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "opportunity_status_change")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub opportunity_id: Uuid,
    /// Null for the initial status of a new opportunity.
    pub from_status: Option<OpportunityStatus>,
    pub to_status: OpportunityStatus,
    pub changed_by: String,
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
