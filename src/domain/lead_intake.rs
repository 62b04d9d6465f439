//! The routing decision of an incoming lead: which client it belongs to, and
//! whether it merges into an existing opportunity or opens a new one.
use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::contact::{ContactPoint, Email, Phone};
use super::expiry::{ExpiryPolicy, ExpiryState, ExpiryVerdict};

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

/// What kind of request a lead is.
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, serde::Serialize)]
pub enum LeadType {
    /// Internet sales lead.
    #[default]
    Lead,
    /// Renewal of a lease or loan.
    Ren,
    /// Credit application.
    Cre,
}

impl LeadType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Lead => "LEAD",
            Self::Ren => "REN",
            Self::Cre => "CRE",
        }
    }

    /// The type `as_str` wrote, or `None` for any other text.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::Lead, Self::Ren, Self::Cre]
            .into_iter()
            .find(|t| t.as_str() == s)
    }
}

/// New or used vehicle.
#[derive(Copy, Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub enum VehicleCondition {
    New,
    Used,
}

impl VehicleCondition {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::New => "NEW",
            Self::Used => "USED",
        }
    }

    /// The condition `as_str` wrote, or `None` for any other text.
    pub fn parse(s: &str) -> Option<Self> {
        [Self::New, Self::Used]
            .into_iter()
            .find(|c| c.as_str() == s)
    }
}

/// The vehicle of interest, as submitted (every part optional).
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct VehicleOfInterest {
    pub year: Option<i32>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub trim: Option<String>,
    pub vin: Option<String>,
    pub stock_number: Option<String>,
    pub condition: Option<VehicleCondition>,
}

/// A lead exactly as a partner or agent submitted it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct LeadSubmission {
    pub first_name: Option<String>,
    pub last_name: Option<String>,
    pub email: Option<String>,
    pub phone: Option<String>,
    pub message: Option<String>,
    pub source: Option<String>,
    pub lead_type: LeadType,
    pub vehicle: Option<VehicleOfInterest>,
    pub idempotency_key: Option<String>,
}

/// Length limits of submitted fields, in characters.
pub mod limits {
    pub const NAME: usize = 100;
    pub const EMAIL_RAW: usize = 320;
    pub const PHONE_RAW: usize = 64;
    pub const MESSAGE: usize = 5000;
    pub const SOURCE: usize = 200;
    pub const VEHICLE_TEXT: usize = 64;
    pub const VIN: usize = 17;
    pub const IDEMPOTENCY_KEY: usize = 200;
    pub const YEAR_MIN: i32 = 1900;
    pub const YEAR_MAX: i32 = 2100;
}

/// A submitted field the lead cannot be accepted with.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{field}: {message}")]
pub struct InvalidLead {
    pub field: &'static str,
    pub message: String,
}

/// Something wrong with a secondary value that did not stop the lead.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LeadWarning {
    pub field: String,
    pub message: String,
}

/// A lead that passed validation: trimmed text, normalized contact points,
/// and warnings about what was kept raw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValidLead {
    pub submission: LeadSubmission,
    pub email: Option<Email>,
    pub phone: Option<Phone>,
    pub warnings: Vec<LeadWarning>,
}

impl ValidLead {
    /// The normalized contact points, email first.
    pub fn contact_points(&self) -> Vec<ContactPoint> {
        let mut points = Vec::new();
        if let Some(email) = &self.email {
            points.push(ContactPoint::Email(email.clone()));
        }
        if let Some(phone) = &self.phone {
            points.push(ContactPoint::Phone(phone.clone()));
        }
        points
    }
}

/// Validate and normalize a submission. At least one valid email or phone
/// is required; an invalid secondary value is kept raw with a warning.
pub fn validate(submission: LeadSubmission) -> Result<ValidLead, InvalidLead> {
    let mut s = submission;
    let text = |field: &'static str, value: &mut Option<String>, max: usize| {
        let trimmed = value.as_deref().map(str::trim).filter(|v| !v.is_empty());
        if trimmed.is_some_and(|v| v.contains('\0')) {
            return Err(InvalidLead {
                field,
                message: "NUL characters are not allowed".into(),
            });
        }
        match trimmed {
            Some(v) if v.chars().count() > max => Err(InvalidLead {
                field,
                message: format!("is longer than {max} characters"),
            }),
            other => {
                *value = other.map(str::to_owned);
                Ok(())
            }
        }
    };
    text("firstName", &mut s.first_name, limits::NAME)?;
    text("lastName", &mut s.last_name, limits::NAME)?;
    for (field, name) in [("firstName", &s.first_name), ("lastName", &s.last_name)] {
        if let Some(c) = name.as_deref().and_then(super::contact::bidi_control) {
            return Err(InvalidLead {
                field,
                message: format!(
                    "holds a bidirectional-control character (U+{:04X})",
                    u32::from(c)
                ),
            });
        }
    }
    text("email", &mut s.email, limits::EMAIL_RAW)?;
    text("phone", &mut s.phone, limits::PHONE_RAW)?;
    text("message", &mut s.message, limits::MESSAGE)?;
    text("source", &mut s.source, limits::SOURCE)?;
    text(
        "idempotencyKey",
        &mut s.idempotency_key,
        limits::IDEMPOTENCY_KEY,
    )?;
    let mut warnings = Vec::new();
    if let Some(vehicle) = s.vehicle.as_mut() {
        text("vehicle.make", &mut vehicle.make, limits::VEHICLE_TEXT)?;
        text("vehicle.model", &mut vehicle.model, limits::VEHICLE_TEXT)?;
        text("vehicle.trim", &mut vehicle.trim, limits::VEHICLE_TEXT)?;
        text(
            "vehicle.stockNumber",
            &mut vehicle.stock_number,
            limits::VEHICLE_TEXT,
        )?;
        text("vehicle.vin", &mut vehicle.vin, limits::VIN)?;
        if let Some(year) = vehicle.year
            && !(limits::YEAR_MIN..=limits::YEAR_MAX).contains(&year)
        {
            return Err(InvalidLead {
                field: "vehicle.year",
                message: format!(
                    "must be between {} and {}",
                    limits::YEAR_MIN,
                    limits::YEAR_MAX
                ),
            });
        }
        if let Some(vin) = vehicle.vin.as_mut() {
            *vin = vin.to_ascii_uppercase();
            if !is_plausible_vin(vin) {
                warnings.push(LeadWarning {
                    field: "vehicle.vin".into(),
                    message: "is not a 17-character VIN; kept as submitted".into(),
                });
            }
        }
    }

    let email = s.email.as_deref().map(Email::parse);
    let phone = s.phone.as_deref().map(Phone::parse);
    // A hidden character is an attempt to dodge duplicate detection, not a
    // typo: the whole lead is refused, whatever the other contact point.
    for (field, parsed) in [
        ("email", email.as_ref().and_then(|r| r.as_ref().err())),
        ("phone", phone.as_ref().and_then(|r| r.as_ref().err())),
    ] {
        if let Some(e @ super::contact::ContactError::HiddenCharacter(_)) = parsed {
            return Err(InvalidLead {
                field,
                message: e.to_string(),
            });
        }
    }
    let (email, phone) = match (email, phone) {
        (None, None) => {
            return Err(InvalidLead {
                field: "email",
                message: "at least one valid email or phone is required".into(),
            });
        }
        (Some(Err(e)), None | Some(Err(_))) => {
            return Err(InvalidLead {
                field: "email",
                message: e.to_string(),
            });
        }
        (None, Some(Err(e))) => {
            return Err(InvalidLead {
                field: "phone",
                message: e.to_string(),
            });
        }
        (email, phone) => (email, phone),
    };
    let email = match email {
        Some(Err(e)) => {
            warnings.push(LeadWarning {
                field: "email".into(),
                message: format!("{e}; kept as submitted, the lead was matched on the phone"),
            });
            None
        }
        other => other.and_then(Result::ok),
    };
    let phone = match phone {
        Some(Err(e)) => {
            warnings.push(LeadWarning {
                field: "phone".into(),
                message: format!("{e}; kept as submitted, the lead was matched on the email"),
            });
            None
        }
        other => other.and_then(Result::ok),
    };
    Ok(ValidLead {
        submission: s,
        email,
        phone,
        warnings,
    })
}

/// 17 characters, digits and capital letters except I, O and Q.
fn is_plausible_vin(vin: &str) -> bool {
    vin.len() == 17
        && vin.chars().all(|c| {
            c.is_ascii_digit() || (c.is_ascii_uppercase() && !matches!(c, 'I' | 'O' | 'Q'))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::status::OpportunityStatus::{self, *};
    use chrono::{Duration, TimeZone};

    fn submission(email: Option<&str>, phone: Option<&str>) -> LeadSubmission {
        LeadSubmission {
            email: email.map(str::to_owned),
            phone: phone.map(str::to_owned),
            ..LeadSubmission::default()
        }
    }

    #[test]
    fn a_lead_without_email_or_phone_is_refused_naming_the_field() {
        let err = validate(submission(None, Some("   "))).unwrap_err();
        assert_eq!(err.field, "email");
        assert!(err.message.contains("at least one valid email or phone"));
    }

    #[test]
    fn a_lead_whose_only_contact_is_invalid_is_refused() {
        assert_eq!(
            validate(submission(Some("nope"), None)).unwrap_err().field,
            "email"
        );
        assert_eq!(
            validate(submission(None, Some("123"))).unwrap_err().field,
            "phone"
        );
        assert_eq!(
            validate(submission(Some("nope"), Some("123")))
                .unwrap_err()
                .field,
            "email"
        );
    }

    #[test]
    fn a_bad_phone_beside_a_good_email_is_kept_raw_with_a_warning() {
        let valid = validate(submission(Some("Marie@Example.com"), Some("555"))).unwrap();
        assert_eq!(valid.email.unwrap().as_str(), "marie@example.com");
        assert_eq!(valid.phone, None);
        assert_eq!(valid.submission.phone.as_deref(), Some("555"));
        assert_eq!(valid.warnings.len(), 1);
        assert_eq!(valid.warnings[0].field, "phone");
    }

    #[test]
    fn an_over_long_field_is_refused_with_its_limit() {
        let mut s = submission(Some("a@b.ca"), None);
        s.message = Some("x".repeat(limits::MESSAGE + 1));
        let err = validate(s).unwrap_err();
        assert_eq!(err.field, "message");
        assert!(err.message.contains("5000"));
    }

    #[test]
    fn an_impossible_vehicle_year_is_refused() {
        let mut s = submission(Some("a@b.ca"), None);
        s.vehicle = Some(VehicleOfInterest {
            year: Some(1492),
            ..Default::default()
        });
        assert_eq!(validate(s).unwrap_err().field, "vehicle.year");
    }

    #[test]
    fn text_is_trimmed_and_blank_text_is_absent() {
        let mut s = submission(Some(" a@b.ca "), None);
        s.first_name = Some("  Marie ".into());
        s.last_name = Some("   ".into());
        let valid = validate(s).unwrap();
        assert_eq!(valid.submission.first_name.as_deref(), Some("Marie"));
        assert_eq!(valid.submission.last_name, None);
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
        let plan = plan(&[], &ExpiryPolicy::default(), t0());
        assert_eq!(plan.route, Route::Open);
        assert_eq!(plan.candidate, None);
    }

    #[test]
    fn a_lead_for_a_live_opportunity_merges_into_it() {
        let plan = plan(
            &[opp(1, 10, Nouveau, false)],
            &ExpiryPolicy::default(),
            t0(),
        );
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
        let plan = plan(
            &[opp(1, 100, Nouveau, true)],
            &ExpiryPolicy::default(),
            t0(),
        );
        assert_eq!(plan.route, Route::Open);
        assert_eq!(plan.candidate, None);
    }

    #[test]
    fn a_lead_at_exactly_eight_weeks_expires_the_candidate_and_opens_a_new_one() {
        let plan = plan(
            &[opp(1, 56, Nouveau, false)],
            &ExpiryPolicy::default(),
            t0(),
        );
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
            let plan = plan(
                &[opp(1, 300, status, false)],
                &ExpiryPolicy::default(),
                t0(),
            );
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
