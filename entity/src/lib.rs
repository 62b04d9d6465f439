//! sea-orm entities of the CRM, one module per table. Plain data only: the
//! domain rules live in the `crm` crate and GraphQL types are built there too.

/// An enum stored by name in a text column, each name written once: the
/// variants are listed as `Variant = "NAME"`, and each becomes a variant
/// stored as `NAME` (`#[sea_orm(string_value)]`) with `as_str` giving the
/// same name. The enum's own attributes (derives, `#[sea_orm(rs_type,
/// db_type)]`) are written as usual.
macro_rules! stored_names {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$variant_meta:meta])* $variant:ident = $stored:literal, )*
        }
    ) => {
        $(#[$meta])*
        $vis enum $name {
            $( $(#[$variant_meta])* #[sea_orm(string_value = $stored)] $variant, )*
        }

        impl $name {
            /// The stored name.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( Self::$variant => $stored, )*
                }
            }
        }
    };
}

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
    fn each_stored_name_is_the_name_as_str_gives() {
        names_agree(crate::client_contact::ContactKind::as_str);
        names_agree(crate::credit_request::CreditRequestStatus::as_str);
        names_agree(crate::lead::LeadOutcome::as_str);
        names_agree(crate::lead::LeadType::as_str);
        names_agree(crate::lead::VehicleCondition::as_str);
        names_agree(crate::opportunity::OpportunityStatus::as_str);
        names_agree(crate::saved_view::ViewModule::as_str);
        names_agree(crate::saved_view::ViewVisibility::as_str);
        names_agree(crate::service_case::ServiceCaseStatus::as_str);
    }

    #[test]
    fn an_opportunity_status_is_stored_by_its_french_name() {
        use crate::opportunity::OpportunityStatus;
        assert_eq!(OpportunityStatus::PrisEnCharge.to_value(), "PRIS_EN_CHARGE");
        assert_eq!(OpportunityStatus::ALL.len(), 6);
    }
}
