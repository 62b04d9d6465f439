//! The dealership's rules as pure functions over plain types: no database,
//! no GraphQL, no clock (time is always a parameter).

pub mod adf;
pub mod contact;
pub mod expiry;
pub mod lead_intake;
pub mod money;
pub mod open_files;
pub mod search;
pub mod status;
