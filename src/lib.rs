//! Car-dealership CRM back end: a GraphQL API over PostgreSQL or SQLite
//! around the dealership's eight-week opportunity rule.

pub mod auth;
pub mod cli;
pub mod clock;
pub mod config;
pub mod cors;
pub mod domain;
pub mod error;
pub mod events;
pub mod graphiql;
pub mod graphql;
pub mod http;
pub mod http_log;
pub mod intake;
pub mod jobs;
pub mod live;
pub mod metrics;
pub mod partners;
pub mod startup;
pub mod store;
pub mod telemetry;
