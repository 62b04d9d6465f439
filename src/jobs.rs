//! Background jobs run by `crm serve`.
pub mod expiry_sweep;
