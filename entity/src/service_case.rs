//! An after-sales service case (department SERVICE).
use sea_orm::entity::prelude::*;

/// Stored status of a service case.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ServiceCaseStatus {
    #[sea_orm(string_value = "OUVERT")]
    Ouvert,
    #[sea_orm(string_value = "EN_COURS")]
    EnCours,
    #[sea_orm(string_value = "FERME")]
    Ferme,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "service_case")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: Uuid,
    pub subject: String,
    pub description: String,
    pub status: ServiceCaseStatus,
    pub assignee: Option<String>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
