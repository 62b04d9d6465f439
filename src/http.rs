//! HTTP endpoints outside GraphQL.

pub mod adf;
