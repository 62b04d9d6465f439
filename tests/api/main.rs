//! Integration tests: the real server on a random port, a fresh database per
//! test (SQLite file, or a PostgreSQL database when DATABASE_URL is
//! `postgres://...`), real HTTP.

mod auth;
mod cli;
mod expiry;
mod helpers;
mod lead_intake;
mod limits;
mod opportunities;
mod schema;
mod secrecy;
mod subscriptions;
