//! sea-orm entities of the CRM, one module per table. Plain data only: the
//! domain rules live in the `crm` crate and GraphQL types are built there too.

pub mod client;
pub mod client_contact;
pub mod credit_request;
pub mod credit_request_access;
pub mod credit_request_status_change;
pub mod lead;
pub mod opportunity;
pub mod opportunity_expiry_event;
pub mod opportunity_status_change;
pub mod privacy_event;
pub mod revoked_subject;
pub mod saved_view;
pub mod service_case;
pub mod service_case_status_change;
