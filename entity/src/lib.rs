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

#[cfg(test)]
mod tests {
    use sea_orm::{ActiveEnum, Iterable};

    fn names_agree<E: ActiveEnum<Value = String> + Iterable>(as_str: fn(E) -> &'static str) {
        for variant in E::iter() {
            let stored = variant.to_value();
            assert_eq!(as_str(variant), stored);
        }
    }

    #[test]
    fn each_as_str_gives_the_stored_name() {
        names_agree(crate::client_contact::ContactKind::as_str);
        names_agree(crate::lead::LeadOutcome::as_str);
        names_agree(crate::lead::LeadType::as_str);
        names_agree(crate::lead::VehicleCondition::as_str);
        names_agree(crate::opportunity::OpportunityStatus::as_str);
    }

    #[test]
    fn every_opportunity_status_is_in_all() {
        use crate::opportunity::OpportunityStatus;
        assert_eq!(
            OpportunityStatus::ALL.to_vec(),
            OpportunityStatus::iter().collect::<Vec<_>>()
        );
    }
}
