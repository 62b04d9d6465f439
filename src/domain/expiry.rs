//! The eight-week rule ("politique de création d'opportunité dans les 8
//! semaines"): an opportunity expires once it is `window` old, unless its
//! status is protected at that moment. Expiry is sticky.
use std::collections::BTreeSet;

use chrono::{DateTime, Duration, Utc};

use super::status::OpportunityStatus;

/// Default window: eight weeks.
pub const DEFAULT_WINDOW_DAYS: i64 = 56;

/// The policy in force: how long an opportunity lives, and which statuses
/// keep it alive past that.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryPolicy {
    pub window: Duration,
    pub protected: BTreeSet<OpportunityStatus>,
}

impl Default for ExpiryPolicy {
    fn default() -> Self {
        Self::with_window_days(DEFAULT_WINDOW_DAYS)
    }
}

impl ExpiryPolicy {
    /// The dealership's protected statuses with a window of `days`.
    pub fn with_window_days(days: i64) -> Self {
        Self {
            window: Duration::days(days),
            protected: BTreeSet::from([
                OpportunityStatus::PrisEnCharge,
                OpportunityStatus::VenduNonLivre,
                OpportunityStatus::SuiviLongTerme,
            ]),
        }
    }

    /// Whether `status` keeps an opportunity from expiring.
    pub fn is_protected(&self, status: OpportunityStatus) -> bool {
        self.protected.contains(&status)
    }

    /// The latest creation time that is old enough to expire at `now`:
    /// `now >= created_at + window` ⇔ `created_at <= now - window`.
    /// The sweep's SQL compares against this value.
    pub fn created_on_or_before(&self, now: DateTime<Utc>) -> DateTime<Utc> {
        now - self.window
    }

    /// Whether an opportunity not yet expired must expire at `now`.
    pub fn is_due(
        &self,
        created_at: DateTime<Utc>,
        status: OpportunityStatus,
        now: DateTime<Utc>,
    ) -> bool {
        created_at <= self.created_on_or_before(now) && !self.is_protected(status)
    }

    /// The rule applied to an opportunity's current state.
    pub fn evaluate(&self, state: &ExpiryState, now: DateTime<Utc>) -> ExpiryVerdict {
        if state.expiree {
            ExpiryVerdict::AlreadyExpired
        } else if self.is_due(state.created_at, state.status, now) {
            ExpiryVerdict::ExpiresNow
        } else {
            ExpiryVerdict::Live
        }
    }

    /// The protected statuses as stored in audit records (`A,B,C`).
    pub fn protected_names(&self) -> String {
        self.protected
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// What the rule needs to know about an opportunity.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpiryState {
    pub created_at: DateTime<Utc>,
    pub status: OpportunityStatus,
    pub expiree: bool,
}

/// The rule's answer for one opportunity at one instant.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum ExpiryVerdict {
    /// Not old enough, or protected: stays open to new leads.
    Live,
    /// Must be flagged now.
    ExpiresNow,
    /// Flagged before; stays flagged forever.
    AlreadyExpired,
}

#[cfg(test)]
mod tests {
    use super::OpportunityStatus::*;
    use super::*;
    use chrono::TimeZone;

    fn created() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 1, 5, 14, 30, 0).unwrap()
    }

    fn open(status: OpportunityStatus) -> ExpiryState {
        ExpiryState {
            created_at: created(),
            status,
            expiree: false,
        }
    }

    fn eight_weeks_later() -> DateTime<Utc> {
        created() + Duration::days(56)
    }

    #[test]
    fn one_second_before_eight_weeks_nothing_expires() {
        let policy = ExpiryPolicy::default();
        for status in OpportunityStatus::ALL {
            let verdict =
                policy.evaluate(&open(status), eight_weeks_later() - Duration::seconds(1));
            assert_eq!(verdict, ExpiryVerdict::Live, "{status}");
        }
    }

    #[test]
    fn at_exactly_eight_weeks_only_unprotected_statuses_expire() {
        let policy = ExpiryPolicy::default();
        let expected = [
            (Nouveau, ExpiryVerdict::ExpiresNow),
            (PrisEnCharge, ExpiryVerdict::Live),
            (VenduNonLivre, ExpiryVerdict::Live),
            (SuiviLongTerme, ExpiryVerdict::Live),
            (VenduLivre, ExpiryVerdict::ExpiresNow),
            (Perdu, ExpiryVerdict::ExpiresNow),
        ];
        for (status, verdict) in expected {
            assert_eq!(
                policy.evaluate(&open(status), eight_weeks_later()),
                verdict,
                "{status}"
            );
        }
    }

    #[test]
    fn a_protected_opportunity_expires_the_moment_it_leaves_the_protected_set() {
        let policy = ExpiryPolicy::default();
        let much_later = eight_weeks_later() + Duration::days(30);
        assert_eq!(
            policy.evaluate(&open(PrisEnCharge), much_later),
            ExpiryVerdict::Live
        );
        // An agent moves it to PERDU: the very next evaluation expires it.
        assert_eq!(
            policy.evaluate(&open(Perdu), much_later),
            ExpiryVerdict::ExpiresNow
        );
    }

    #[test]
    fn expiry_is_sticky_whatever_the_status_and_time() {
        let policy = ExpiryPolicy::default();
        for status in OpportunityStatus::ALL {
            let state = ExpiryState {
                expiree: true,
                ..open(status)
            };
            assert_eq!(
                policy.evaluate(&state, created()),
                ExpiryVerdict::AlreadyExpired
            );
        }
    }

    #[test]
    fn the_window_is_configurable() {
        let policy = ExpiryPolicy::with_window_days(7);
        assert!(policy.is_due(created(), Nouveau, created() + Duration::days(7)));
        assert!(!policy.is_due(
            created(),
            Nouveau,
            created() + Duration::days(7) - Duration::seconds(1)
        ));
    }

    #[test]
    fn the_sql_cutoff_is_the_same_boundary() {
        let policy = ExpiryPolicy::default();
        assert_eq!(policy.created_on_or_before(eight_weeks_later()), created());
    }
}
