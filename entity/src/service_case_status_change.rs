//! One status change of a service case: from, to, who, when.
use sea_orm::entity::prelude::*;

use crate::service_case::ServiceCaseStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "service_case_status_change")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub service_case_id: Uuid,
    /// Null for the status the case was opened with.
    pub from_status: Option<ServiceCaseStatus>,
    pub to_status: ServiceCaseStatus,
    pub changed_by: String,
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
