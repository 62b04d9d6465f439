//! Opportunity statuses, in the dealership's own (French) words.
use std::fmt;
use std::str::FromStr;

/// The status of an opportunity.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum OpportunityStatus {
    /// Nouveau: just created, nobody has taken it yet.
    Nouveau,
    /// Pris en charge: an agent is handling it.
    PrisEnCharge,
    /// Vendu non-livré: sold, vehicle not delivered yet.
    VenduNonLivre,
    /// Suivi long terme: long-term follow-up.
    SuiviLongTerme,
    /// Vendu livré: sold and delivered.
    VenduLivre,
    /// Perdu: lost.
    Perdu,
}

impl OpportunityStatus {
    /// Every status, in the dealership's order.
    pub const ALL: [OpportunityStatus; 6] = [
        Self::Nouveau,
        Self::PrisEnCharge,
        Self::VenduNonLivre,
        Self::SuiviLongTerme,
        Self::VenduLivre,
        Self::Perdu,
    ];

    /// The stored and public name (`NOUVEAU`, `PRIS_EN_CHARGE`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Nouveau => "NOUVEAU",
            Self::PrisEnCharge => "PRIS_EN_CHARGE",
            Self::VenduNonLivre => "VENDU_NON_LIVRE",
            Self::SuiviLongTerme => "SUIVI_LONG_TERME",
            Self::VenduLivre => "VENDU_LIVRE",
            Self::Perdu => "PERDU",
        }
    }

    /// A closed file: sold and delivered, or lost. Everything else is open.
    pub fn is_closed(self) -> bool {
        matches!(self, Self::VenduLivre | Self::Perdu)
    }
}

impl fmt::Display for OpportunityStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A status name that is not one of the six.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("unknown opportunity status `{0}`")]
pub struct UnknownStatus(pub String);

impl FromStr for OpportunityStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

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
