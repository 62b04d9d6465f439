//! Opportunity statuses, in the dealership's own (French) words.
//!
//! The type lives with the table that stores it (`entity::opportunity`), so
//! a stored status is typed from the row up; the rules below are the
//! domain's.
pub use entity::opportunity::{OpportunityStatus, UnknownStatus};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_round_trips_through_its_name() {
        for status in OpportunityStatus::ALL {
            assert_eq!(status.as_str().parse(), Ok(status));
        }
    }

    #[test]
    fn an_unknown_name_is_rejected() {
        assert!("EXPIREE".parse::<OpportunityStatus>().is_err());
    }

    #[test]
    fn only_sold_delivered_and_lost_are_closed() {
        let closed: Vec<_> = OpportunityStatus::ALL
            .into_iter()
            .filter(|s| s.is_closed())
            .collect();
        assert_eq!(
            closed,
            [OpportunityStatus::VenduLivre, OpportunityStatus::Perdu]
        );
    }
}
