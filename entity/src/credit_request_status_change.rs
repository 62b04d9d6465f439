//! One status change of a credit request: from, to, who, when.
use sea_orm::entity::prelude::*;

use crate::credit_request::CreditRequestStatus;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_request_status_change")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub credit_request_id: Uuid,
    /// Null for the status the request was created with.
    pub from_status: Option<CreditRequestStatus>,
    pub to_status: CreditRequestStatus,
    pub changed_by: String,
    pub changed_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
