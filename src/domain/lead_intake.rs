//! The routing decision of an incoming lead: which client it belongs to, and
//! whether it merges into an existing opportunity or opens a new one. The
//! submission and its validation live in [`submission`].
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::expiry::{ExpiryPolicy, ExpiryState, ExpiryVerdict};

mod submission;
pub use submission::{
    InvalidLead, LeadSubmission, LeadType, LeadWarning, ValidLead, VehicleCondition,
    VehicleOfInterest, limits, validate,
};

/// Which contact point identified the client.
#[derive(Copy, Clone, Debug, PartialEq, Eq)]
pub enum MatchedBy {
    Email,
    Phone,
}

/// The client a lead goes to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientResolution {
    /// A known client, found by `matched_by`. `conflicting_client` is set when
    /// the phone belongs to another client than the email: the email wins and
    /// the two clients are never merged silently.
    Existing {
        client_id: Uuid,
        matched_by: MatchedBy,
        conflicting_client: Option<Uuid>,
    },
    /// Nobody matches: a new client is created.
    New,
}

/// Resolve the client from what the lead's email and phone point to.
/// Email match wins over phone match.
pub fn resolve_client(email_owner: Option<Uuid>, phone_owner: Option<Uuid>) -> ClientResolution {
    match (email_owner, phone_owner) {
        (Some(email_client), phone) => ClientResolution::Existing {
            client_id: email_client,
            matched_by: MatchedBy::Email,
            conflicting_client: phone.filter(|p| *p != email_client),
        },
        (None, Some(phone_client)) => ClientResolution::Existing {
            client_id: phone_client,
            matched_by: MatchedBy::Phone,
            conflicting_client: None,
        },
        (None, None) => ClientResolution::New,
    }
}

/// An opportunity of the client, as the rule sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OpportunitySnapshot {
    pub id: Uuid,
    pub state: ExpiryState,
}

/// Where the lead goes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Route {
    /// Append to this live opportunity.
    Merge { opportunity_id: Uuid },
    /// Open a new `NOUVEAU` opportunity.
    Open,
}

/// The full plan for the client's opportunities at the lead's time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IntakePlan {
    /// Opportunities the rule expires now (before routing).
    pub to_expire: Vec<Uuid>,
    /// The candidate considered and its verdict, if the client had any
    /// opportunity not expired before this lead.
    pub candidate: Option<(Uuid, ExpiryVerdict)>,
    pub route: Route,
}

/// Apply the expiry rule at `now` to the client's opportunities not yet
/// expired, then route: the most recently created one still live takes the
/// lead; if none is live, a new opportunity is opened.
pub fn plan(
    opportunities: &[OpportunitySnapshot],
    policy: &ExpiryPolicy,
    now: DateTime<Utc>,
) -> IntakePlan {
    let mut to_expire = Vec::new();
    let mut live: Option<&OpportunitySnapshot> = None;
    let mut newest: Option<(&OpportunitySnapshot, ExpiryVerdict)> = None;
    for opp in opportunities.iter().filter(|o| !o.state.expiree) {
        let verdict = policy.evaluate(&opp.state, now);
        if verdict == ExpiryVerdict::ExpiresNow {
            to_expire.push(opp.id);
        } else if live.is_none_or(|l| newer(opp, l)) {
            live = Some(opp);
        }
        if newest.is_none_or(|(n, _)| newer(opp, n)) {
            newest = Some((opp, verdict));
        }
    }
    let candidate = live
        .map(|l| (l.id, ExpiryVerdict::Live))
        .or_else(|| newest.map(|(n, v)| (n.id, v)));
    let route = match live {
        Some(l) => Route::Merge {
            opportunity_id: l.id,
        },
        None => Route::Open,
    };
    IntakePlan {
        to_expire,
        candidate,
        route,
    }
}

/// Creation order, ties broken by the time-ordered id.
fn newer(a: &OpportunitySnapshot, b: &OpportunitySnapshot) -> bool {
    (a.state.created_at, a.id) > (b.state.created_at, b.id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::OpportunityStatus::{self, *};
    use chrono::{Duration, TimeZone};

    /// The rule at `t0` with the default policy.
    fn plan_now(opportunities: &[OpportunitySnapshot]) -> IntakePlan {
        plan(opportunities, &ExpiryPolicy::default(), t0())
    }

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 2, 9, 0, 0).unwrap()
    }

    fn opp(
        id: u128,
        age_days: i64,
        status: OpportunityStatus,
        expiree: bool,
    ) -> OpportunitySnapshot {
        OpportunitySnapshot {
            id: Uuid::from_u128(id),
            state: ExpiryState {
                created_at: t0() - Duration::days(age_days),
                status,
                expiree,
            },
        }
    }

    #[test]
    fn email_match_wins_over_phone_match_and_the_conflict_is_recorded() {
        let (a, b) = (Uuid::from_u128(1), Uuid::from_u128(2));
        assert_eq!(
            resolve_client(Some(a), Some(b)),
            ClientResolution::Existing {
                client_id: a,
                matched_by: MatchedBy::Email,
                conflicting_client: Some(b)
            }
        );
    }

    #[test]
    fn email_and_phone_of_the_same_client_are_no_conflict() {
        let a = Uuid::from_u128(1);
        assert_eq!(
            resolve_client(Some(a), Some(a)),
            ClientResolution::Existing {
                client_id: a,
                matched_by: MatchedBy::Email,
                conflicting_client: None
            }
        );
    }

    #[test]
    fn a_phone_alone_finds_its_client() {
        let b = Uuid::from_u128(2);
        assert_eq!(
            resolve_client(None, Some(b)),
            ClientResolution::Existing {
                client_id: b,
                matched_by: MatchedBy::Phone,
                conflicting_client: None
            }
        );
    }

    #[test]
    fn nobody_matching_means_a_new_client() {
        assert_eq!(resolve_client(None, None), ClientResolution::New);
    }

    #[test]
    fn a_client_without_opportunities_gets_a_new_one() {
        let plan = plan_now(&[]);
        assert_eq!(plan.route, Route::Open);
        assert_eq!(plan.candidate, None);
    }

    #[test]
    fn a_lead_for_a_live_opportunity_merges_into_it() {
        let plan = plan_now(&[opp(1, 10, Nouveau, false)]);
        assert_eq!(
            plan.route,
            Route::Merge {
                opportunity_id: Uuid::from_u128(1)
            }
        );
        assert!(plan.to_expire.is_empty());
    }

    #[test]
    fn a_lead_for_an_expired_opportunity_opens_a_new_one() {
        let plan = plan_now(&[opp(1, 100, Nouveau, true)]);
        assert_eq!(plan.route, Route::Open);
        assert_eq!(plan.candidate, None);
    }

    #[test]
    fn a_lead_at_exactly_eight_weeks_expires_the_candidate_and_opens_a_new_one() {
        let plan = plan_now(&[opp(1, 56, Nouveau, false)]);
        assert_eq!(plan.to_expire, [Uuid::from_u128(1)]);
        assert_eq!(
            plan.candidate,
            Some((Uuid::from_u128(1), ExpiryVerdict::ExpiresNow))
        );
        assert_eq!(plan.route, Route::Open);
    }

    #[test]
    fn a_lead_one_second_before_eight_weeks_still_merges() {
        let mut o = opp(1, 56, Nouveau, false);
        o.state.created_at += Duration::seconds(1);
        let plan = plan(&[o], &ExpiryPolicy::default(), t0());
        assert_eq!(
            plan.route,
            Route::Merge {
                opportunity_id: Uuid::from_u128(1)
            }
        );
    }

    #[test]
    fn a_protected_old_opportunity_still_takes_the_lead() {
        for status in [PrisEnCharge, VenduNonLivre, SuiviLongTerme] {
            let plan = plan_now(&[opp(1, 300, status, false)]);
            assert_eq!(
                plan.route,
                Route::Merge {
                    opportunity_id: Uuid::from_u128(1)
                },
                "{status}"
            );
        }
    }

    #[test]
    fn the_most_recent_live_opportunity_is_the_candidate() {
        let opps = [
            opp(1, 30, Nouveau, false),
            opp(2, 5, PrisEnCharge, false),
            opp(3, 100, Nouveau, false),
        ];
        let plan = plan(&opps, &ExpiryPolicy::default(), t0());
        assert_eq!(
            plan.route,
            Route::Merge {
                opportunity_id: Uuid::from_u128(2)
            }
        );
        assert_eq!(plan.to_expire, [Uuid::from_u128(3)]);
    }

    #[test]
    fn every_due_opportunity_of_the_client_expires_with_the_lead() {
        let opps = [opp(1, 60, Perdu, false), opp(2, 57, VenduLivre, false)];
        let plan = plan(&opps, &ExpiryPolicy::default(), t0());
        assert_eq!(plan.to_expire, [Uuid::from_u128(1), Uuid::from_u128(2)]);
        assert_eq!(plan.route, Route::Open);
    }
}
