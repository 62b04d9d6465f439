//! A sales file for one client. `expiree`/`expired_at` are system-managed and
//! sticky: a database trigger refuses to clear them.
use std::fmt;
use std::str::FromStr;

use sea_orm::entity::prelude::*;
use serde::{Deserialize, Serialize};

/// The status of an opportunity, in the dealership's own (French) words,
/// stored and published by name (in columns and in JSON records alike).
#[derive(
    Copy,
    Clone,
    Debug,
    PartialEq,
    Eq,
    Hash,
    PartialOrd,
    Ord,
    EnumIter,
    DeriveActiveEnum,
    Serialize,
    Deserialize,
)]
#[sea_orm(rs_type = "String", db_type = "String(StringLen::None)")]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OpportunityStatus {
    /// Nouveau: just created, nobody has taken it yet.
    #[sea_orm(string_value = "NOUVEAU")]
    Nouveau,
    /// Pris en charge: an agent is handling it.
    #[sea_orm(string_value = "PRIS_EN_CHARGE")]
    PrisEnCharge,
    /// Vendu non-livré: sold, vehicle not delivered yet.
    #[sea_orm(string_value = "VENDU_NON_LIVRE")]
    VenduNonLivre,
    /// Suivi long terme: long-term follow-up.
    #[sea_orm(string_value = "SUIVI_LONG_TERME")]
    SuiviLongTerme,
    /// Vendu livré: sold and delivered.
    #[sea_orm(string_value = "VENDU_LIVRE")]
    VenduLivre,
    /// Perdu: lost.
    #[sea_orm(string_value = "PERDU")]
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
#[derive(Debug, PartialEq, Eq)]
pub struct UnknownStatus(pub String);

impl fmt::Display for UnknownStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown opportunity status `{}`", self.0)
    }
}

impl std::error::Error for UnknownStatus {}

impl FromStr for OpportunityStatus {
    type Err = UnknownStatus;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|status| status.as_str() == s)
            .ok_or_else(|| UnknownStatus(s.to_owned()))
    }
}

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "opportunity")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: Uuid,
    pub client_id: Uuid,
    pub status: OpportunityStatus,
    pub created_at: DateTimeUtc,
    pub updated_at: DateTimeUtc,
    pub expiree: bool,
    pub expired_at: Option<DateTimeUtc>,
    /// Principal (`sub`) that opened it: the agent, or the lead's submitter.
    pub created_by: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
