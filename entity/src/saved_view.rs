//! A saved list filter ("filtre") of one module.
use sea_orm::entity::prelude::*;

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(32))")]
pub enum ViewModule {
    #[sea_orm(string_value = "OPPORTUNITIES")]
    Opportunities,
    #[sea_orm(string_value = "SERVICE_CASES")]
    ServiceCases,
    #[sea_orm(string_value = "CREDIT_REQUESTS")]
    CreditRequests,
}

#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, EnumIter, DeriveActiveEnum)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::N(16))")]
pub enum ViewVisibility {
    #[sea_orm(string_value = "PRIVATE")]
    Private,
    #[sea_orm(string_value = "SHARED")]
    Shared,
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "saved_view")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub module: ViewModule,
    pub name: String,
    pub visibility: ViewVisibility,
    pub owner: String,
    /// The filter names an admin-only field: the view exists for admins only.
    pub admin_only: bool,
    pub filter: Json,
    pub sort_order: Option<Json>,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
