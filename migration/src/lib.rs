//! Schema migrations, run unchanged on PostgreSQL and SQLite. `crm migrate`
//! (and `crm serve` at start) applies them; there is no seed data here.
pub use sea_orm_migration::prelude::*;

mod m20261127_000001_create_client_tables;
mod m20261127_000002_create_opportunity_tables;
mod m20261127_000003_create_lead_table;
mod m20261128_000001_create_partner_tables;
mod m20261128_000002_create_crm_tables;
mod m20261128_000003_create_privacy_event_table;
mod m20261128_000004_create_credit_request_access_table;
mod m20261128_000010_check_stored_values;
mod m20261128_000011_index_opportunity_activity;
mod tables;

pub use m20261128_000010_check_stored_values::STORED_VALUES;

pub struct Migrator;

#[async_trait::async_trait]
impl MigratorTrait for Migrator {
    fn migrations() -> Vec<Box<dyn MigrationTrait>> {
        vec![
            Box::new(m20261127_000001_create_client_tables::Migration),
            Box::new(m20261127_000002_create_opportunity_tables::Migration),
            Box::new(m20261127_000003_create_lead_table::Migration),
            Box::new(m20261128_000001_create_partner_tables::Migration),
            Box::new(m20261128_000002_create_crm_tables::Migration),
            Box::new(m20261128_000003_create_privacy_event_table::Migration),
            Box::new(m20261128_000004_create_credit_request_access_table::Migration),
            Box::new(m20261128_000010_check_stored_values::Migration),
            Box::new(m20261128_000011_index_opportunity_activity::Migration),
        ]
    }
}
