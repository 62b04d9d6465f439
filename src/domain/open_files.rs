//! Departments and which files are open (SPEC 6). Expiry plays no part: an
//! expired opportunity is open like any other while its status is.
use crate::domain::status::OpportunityStatus;

/// The department a file belongs to.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash)]
pub enum Department {
    /// Opportunities (sales).
    Ventes,
    /// Service cases (after-sales).
    Service,
    /// Credit requests (financing).
    Financement,
}

/// Opportunity statuses that are still open, as stored.
pub fn open_opportunity_statuses() -> Vec<&'static str> {
    OpportunityStatus::ALL
        .iter()
        .filter(|s| !s.is_closed())
        .map(|s| s.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_status_but_delivered_and_lost_is_open() {
        assert_eq!(
            open_opportunity_statuses(),
            [
                "NOUVEAU",
                "PRIS_EN_CHARGE",
                "VENDU_NON_LIVRE",
                "SUIVI_LONG_TERME"
            ]
        );
    }
}
