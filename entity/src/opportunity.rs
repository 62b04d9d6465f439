//! A sales file for one client. `expiree`/`expired_at` are system-managed and
//! sticky: a database trigger refuses to clear them.
use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "opportunity")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: Uuid,
    /// One of the `OpportunityStatus` names (`NOUVEAU`, `PRIS_EN_CHARGE`, ...).
    pub status: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub expiree: bool,
    pub expired_at: Option<DateTimeUtc>,
    /// Principal (`sub`) that opened it: the agent, or the lead's submitter.
    pub created_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
