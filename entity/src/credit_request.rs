//! A credit request ("demande de crédit", department FINANCEMENT). The
//! amount is held in integer cents: exact on every database.
use sea_orm::entity::prelude::*;

/// Stored status of a credit request.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum CreditRequestStatus {
    #[sea_orm(string_value = "RECUE")]
    Recue,
    #[sea_orm(string_value = "SOUMISE")]
    Soumise,
    #[sea_orm(string_value = "APPROUVEE")]
    Approuvee,
    #[sea_orm(string_value = "REFUSEE")]
    Refusee,
    #[sea_orm(string_value = "ANNULEE")]
    Annulee,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "credit_request")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: Uuid,
    pub opportunity_id: Uuid,
    /// The `CRE` lead that created it, if any.
    pub lead_id: Option<Uuid>,
    pub status: CreditRequestStatus,
    pub amount_cents: Option<i64>,
    pub term_months: Option<i32>,
    pub lender: Option<String>,
    pub notes: Option<String>,
    pub created_by: String,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
