//! One read of a credit request (Law 25 access log).
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_request_access")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub credit_request_id: Uuid,
    pub principal: String,
    pub role: String,
    /// How it was read: `SINGLE`, `LIST`, `LEAD`, `OPEN_FILES`.
    pub via: String,
    pub at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
