//! A lead as submitted, and its validation: trimmed text within limits,
//! normalized contact points, warnings for what was kept raw.
use crate::domain::contact::{ContactError, ContactPoint, Email, Phone, bidi_control};

/// What kind of request a lead is, and the vehicle's condition: stored with
/// the lead (see `entity::lead`).
pub use entity::lead::{LeadType, VehicleCondition};

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
    trim_texts(&mut s)?;
    let mut warnings = Vec::new();
    if let Some(vehicle) = s.vehicle.as_mut() {
        check_vehicle(vehicle, &mut warnings)?;
    }
    let (email, phone) = contact_points(s.email.as_deref(), s.phone.as_deref(), &mut warnings)?;
    Ok(ValidLead {
        submission: s,
        email,
        phone,
        warnings,
    })
}

/// Trim every text field (blank becomes absent), refusing NUL characters
/// and text over its limit.
fn trim_text(
    field: &'static str,
    value: &mut Option<String>,
    max: usize,
) -> Result<(), InvalidLead> {
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
}

/// The submission's own text fields, trimmed; names free of bidirectional
/// controls.
fn trim_texts(s: &mut LeadSubmission) -> Result<(), InvalidLead> {
    trim_text("firstName", &mut s.first_name, limits::NAME)?;
    trim_text("lastName", &mut s.last_name, limits::NAME)?;
    for (field, name) in [("firstName", &s.first_name), ("lastName", &s.last_name)] {
        if let Some(c) = name.as_deref().and_then(bidi_control) {
            return Err(InvalidLead {
                field,
                message: format!(
                    "holds a bidirectional-control character (U+{:04X})",
                    u32::from(c)
                ),
            });
        }
    }
    trim_text("email", &mut s.email, limits::EMAIL_RAW)?;
    trim_text("phone", &mut s.phone, limits::PHONE_RAW)?;
    trim_text("message", &mut s.message, limits::MESSAGE)?;
    trim_text("source", &mut s.source, limits::SOURCE)?;
    trim_text(
        "idempotencyKey",
        &mut s.idempotency_key,
        limits::IDEMPOTENCY_KEY,
    )
}

/// The vehicle's text trimmed, its year plausible; a VIN that is not one is
/// kept (upper-cased) with a warning.
fn check_vehicle(
    vehicle: &mut VehicleOfInterest,
    warnings: &mut Vec<LeadWarning>,
) -> Result<(), InvalidLead> {
    trim_text("vehicle.make", &mut vehicle.make, limits::VEHICLE_TEXT)?;
    trim_text("vehicle.model", &mut vehicle.model, limits::VEHICLE_TEXT)?;
    trim_text("vehicle.trim", &mut vehicle.trim, limits::VEHICLE_TEXT)?;
    trim_text(
        "vehicle.stockNumber",
        &mut vehicle.stock_number,
        limits::VEHICLE_TEXT,
    )?;
    trim_text("vehicle.vin", &mut vehicle.vin, limits::VIN)?;
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
    Ok(())
}

/// The normalized email and phone: at least one valid; the other, if
/// invalid, kept raw with a warning. A hidden character refuses the lead.
fn contact_points(
    email: Option<&str>,
    phone: Option<&str>,
    warnings: &mut Vec<LeadWarning>,
) -> Result<(Option<Email>, Option<Phone>), InvalidLead> {
    let email = email.map(Email::parse);
    let phone = phone.map(Phone::parse);
    // A hidden character is an attempt to dodge duplicate detection, not a
    // typo: the whole lead is refused, whatever the other contact point.
    for (field, parsed) in [
        ("email", email.as_ref().and_then(|r| r.as_ref().err())),
        ("phone", phone.as_ref().and_then(|r| r.as_ref().err())),
    ] {
        if let Some(e @ ContactError::HiddenCharacter(_)) = parsed {
            return Err(InvalidLead {
                field,
                message: e.to_string(),
            });
        }
    }
    let refused = |field, e: &ContactError| InvalidLead {
        field,
        message: e.to_string(),
    };
    match (&email, &phone) {
        (None, None) => {
            return Err(InvalidLead {
                field: "email",
                message: "at least one valid email or phone is required".into(),
            });
        }
        (Some(Err(e)), None | Some(Err(_))) => return Err(refused("email", e)),
        (None, Some(Err(e))) => return Err(refused("phone", e)),
        _ => {}
    }
    let mut kept_raw = |field: &str, e: ContactError, other: &str| {
        warnings.push(LeadWarning {
            field: field.into(),
            message: format!("{e}; kept as submitted, the lead was matched on the {other}"),
        });
    };
    let email = match email {
        Some(Err(e)) => {
            kept_raw("email", e, "phone");
            None
        }
        other => other.and_then(Result::ok),
    };
    let phone = match phone {
        Some(Err(e)) => {
            kept_raw("phone", e, "email");
            None
        }
        other => other.and_then(Result::ok),
    };
    Ok((email, phone))
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
}
