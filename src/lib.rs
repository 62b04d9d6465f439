//! Car-dealership CRM back end: a GraphQL API over PostgreSQL or SQLite
//! around the dealership's eight-week opportunity rule.

/// mimalloc for every binary built on this crate: the server, its tests
/// and the benchmarks, which run the server in process and so measure it
/// as it is deployed. At c=32 it took the server's CPU per lead about 9%
/// lower than glibc's allocator in six of six alternating pairs, for a peak
/// RSS of about 47 MB instead of 30 (README, Performance).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

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
