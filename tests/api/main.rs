//! Integration tests: the real server on a random port, a fresh database per
//! test (SQLite file, or a PostgreSQL database when DATABASE_URL is
//! `postgres://...`), real HTTP.

mod adf;
mod auth;
mod cli;
mod cors;
mod crm_credit_requests;
mod crm_n_plus_one;
mod crm_open_files;
#[path = "../support/crm_process.rs"]
mod crm_process;
mod crm_roles;
mod crm_saved_views;
mod crm_service_cases;
mod crm_support;
mod expiry;
mod graphiql;
mod helpers;
mod hostile;
mod hostile_process;
mod intake_statements;
mod introspection;
mod lead_intake;
mod limits;
mod migrations;
mod observability;
mod opportunities;
mod opportunity_order;
mod partners;
mod pool;
mod privacy;
mod schema;
mod secrecy;
mod subscriptions;
