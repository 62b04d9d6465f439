//! Car-dealership CRM back end: a GraphQL API over PostgreSQL or SQLite
//! around the dealership's eight-week opportunity rule.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphql;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod startup;
pub mod store;
pub mod telemetry;
