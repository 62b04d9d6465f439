//! Contact points: how a client is recognised when a lead comes in.
//!
//! Emails are trimmed, NFKC-normalized and lowercased, their domain mapped by
//! IDNA (UTS 46); phones are E.164 with CA as the default region, parsed by
//! the `phonenumber` crate (libphonenumber's metadata). A value holding a
//! character that does not show (zero-width, soft hyphen, bidirectional
//! control, any control or format character) is refused rather than cleaned:
//! such a key is a way to dodge duplicate detection or spoof what agents see.
use std::fmt;

use icu_properties::props::{BidiControl, DefaultIgnorableCodePoint, GeneralCategory};
use icu_properties::{CodePointMapData, CodePointSetData};
use unicode_normalization::UnicodeNormalization;

/// The longest email address accepted (RFC 5321 path limit).
pub const EMAIL_MAX_LEN: usize = 254;
/// The longest raw phone input accepted.
pub const PHONE_MAX_LEN: usize = 32;

/// What kind of contact point (stored with the contact, see
/// `entity::client_contact`).
pub use entity::client_contact::ContactKind;

/// Why a contact value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContactError {
    #[error("is empty")]
    Empty,
    #[error("is longer than {0} characters")]
    TooLong(usize),
    #[error("is not a valid email address")]
    InvalidEmail,
    #[error("is not a valid phone number")]
    InvalidPhone,
    #[error("holds an invisible, control or bidirectional-control character (U+{0:04X})")]
    HiddenCharacter(u32),
}

/// The first character of `text` that does not show: controls, format
/// characters (zero-width space, soft hyphen, bidi controls...) and every
/// default-ignorable code point (Hangul fillers, variation selectors...).
pub fn hidden_character(text: &str) -> Option<char> {
    let ignorable = CodePointSetData::new::<DefaultIgnorableCodePoint>();
    let category = CodePointMapData::<GeneralCategory>::new();
    text.chars().find(|&c| {
        ignorable.contains(c)
            || matches!(
                category.get(c),
                GeneralCategory::Control
                    | GeneralCategory::Format
                    | GeneralCategory::Unassigned
                    | GeneralCategory::PrivateUse
                    | GeneralCategory::Surrogate
                    | GeneralCategory::LineSeparator
                    | GeneralCategory::ParagraphSeparator
            )
    })
}

/// The first bidirectional-control character of `text` (they can make a name
/// display as something else).
pub fn bidi_control(text: &str) -> Option<char> {
    let bidi = CodePointSetData::new::<BidiControl>();
    text.chars().find(|&c| bidi.contains(c))
}

fn refuse_hidden(text: &str) -> Result<(), ContactError> {
    match hidden_character(text) {
        Some(c) => Err(ContactError::HiddenCharacter(u32::from(c))),
        None => Ok(()),
    }
}

/// `raw` without the white space around it; `Empty` when nothing is left.
fn trimmed_non_empty(raw: &str) -> Result<&str, ContactError> {
    match raw.trim() {
        "" => Err(ContactError::Empty),
        trimmed => Ok(trimmed),
    }
}

/// `as_str` and `Display` for a normalized contact value: the text as parsed.
macro_rules! contact_text {
    ($($value:ident),*) => {$(
        impl $value {
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $value {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    )*};
}

/// A syntactically valid email, trimmed and lowercased.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Email(String);

impl Email {
    /// Parse and normalize an email address.
    pub fn parse(raw: &str) -> Result<Self, ContactError> {
        let trimmed = trimmed_non_empty(raw)?;
        refuse_hidden(trimmed)?;
        let folded: String = trimmed.nfkc().collect::<String>().to_lowercase();
        if folded.chars().count() > EMAIL_MAX_LEN {
            return Err(ContactError::TooLong(EMAIL_MAX_LEN));
        }
        let (local, domain) = folded.rsplit_once('@').ok_or(ContactError::InvalidEmail)?;
        let ascii_domain = idna::domain_to_ascii(domain).map_err(|_| ContactError::InvalidEmail)?;
        let parsed: email_address::EmailAddress = format!("{local}@{ascii_domain}")
            .parse()
            .map_err(|_| ContactError::InvalidEmail)?;
        // A bare local part ("user@localhost") is valid RFC syntax but never a
        // reachable client address.
        if !parsed.domain().contains('.') || folded.contains(['<', '>', ' ']) {
            return Err(ContactError::InvalidEmail);
        }
        // One spelling per domain: the Unicode form of its IDNA ASCII form.
        let (domain, _) = idna::domain_to_unicode(&ascii_domain);
        Ok(Self(format!("{local}@{domain}")))
    }
}

/// A valid phone number in E.164 form (`+15145550199`).
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Phone(String);

impl Phone {
    /// Parse a phone written any common way; numbers without a country code
    /// are read as Canadian.
    pub fn parse(raw: &str) -> Result<Self, ContactError> {
        let trimmed = trimmed_non_empty(raw)?;
        if trimmed.chars().count() > PHONE_MAX_LEN {
            return Err(ContactError::TooLong(PHONE_MAX_LEN));
        }
        refuse_hidden(trimmed)?;
        let folded: String = trimmed.nfkc().collect();
        let number = phonenumber::parse(Some(phonenumber::country::Id::CA), &folded)
            .map_err(|_| ContactError::InvalidPhone)?;
        if !phonenumber::is_valid(&number) {
            return Err(ContactError::InvalidPhone);
        }
        Ok(Self(
            number.format().mode(phonenumber::Mode::E164).to_string(),
        ))
    }
}

contact_text!(Email, Phone);

/// A normalized contact point: the key a client is found by.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ContactPoint {
    Email(Email),
    Phone(Phone),
}

impl ContactPoint {
    pub fn kind(&self) -> ContactKind {
        match self {
            Self::Email(_) => ContactKind::Email,
            Self::Phone(_) => ContactKind::Phone,
        }
    }

    pub fn value(&self) -> &str {
        match self {
            Self::Email(e) => e.as_str(),
            Self::Phone(p) => p.as_str(),
        }
    }

    /// A stable text key (`EMAIL:a@b.ca`), used to order and lock contact points.
    pub fn key(&self) -> String {
        format!("{}:{}", self.kind().as_str(), self.value())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_email_is_trimmed_and_lowercased() {
        let email = Email::parse("  Marie.Tremblay@Example.COM ").unwrap();
        assert_eq!(email.as_str(), "marie.tremblay@example.com");
    }

    #[test]
    fn an_email_without_at_sign_or_domain_is_rejected() {
        for bad in [
            "marie",
            "marie@",
            "@example.com",
            "marie@localhost",
            "a b@c.ca",
        ] {
            assert_eq!(Email::parse(bad), Err(ContactError::InvalidEmail), "{bad}");
        }
    }

    #[test]
    fn an_empty_email_is_empty_not_invalid() {
        assert_eq!(Email::parse("   "), Err(ContactError::Empty));
    }

    #[test]
    fn an_over_long_email_names_its_limit() {
        let long = format!("{}@example.com", "a".repeat(250));
        assert_eq!(
            Email::parse(&long),
            Err(ContactError::TooLong(EMAIL_MAX_LEN))
        );
    }

    #[test]
    fn the_four_spellings_of_the_spec_are_the_same_phone() {
        let expected = "+15145550199";
        for raw in [
            "514 555-0199",
            "(514) 555 0199",
            "+1 514-555-0199",
            "1-514-555-0199",
        ] {
            assert_eq!(Phone::parse(raw).unwrap().as_str(), expected, "{raw}");
        }
    }

    #[test]
    fn a_foreign_number_with_its_country_code_keeps_it() {
        assert_eq!(
            Phone::parse("+33 6 12 34 56 78").unwrap().as_str(),
            "+33612345678"
        );
    }

    #[test]
    fn a_number_that_cannot_exist_is_rejected() {
        for bad in ["123", "555-0199", "not a phone", "+1 000 000 0000"] {
            assert_eq!(Phone::parse(bad), Err(ContactError::InvalidPhone), "{bad}");
        }
    }

    #[test]
    fn fullwidth_letters_and_digits_are_the_same_email() {
        let plain = Email::parse("c4@example.com").unwrap();
        assert_eq!(Email::parse("ｃ４@ｅｘａｍｐｌｅ.ｃｏｍ").unwrap(), plain);
        assert_eq!(Email::parse("C4@EXAMPLE.COM").unwrap(), plain);
    }

    #[test]
    fn an_international_domain_has_one_spelling() {
        let unicode = Email::parse("marie@Québec.ca").unwrap();
        assert_eq!(unicode.as_str(), "marie@québec.ca");
        let ascii = idna::domain_to_ascii("québec.ca").unwrap();
        assert!(ascii.starts_with("xn--"), "{ascii}");
        assert_eq!(Email::parse(&format!("marie@{ascii}")).unwrap(), unicode);
    }

    #[test]
    fn an_email_with_an_invisible_character_is_refused() {
        refused_as_hidden(
            Email::parse,
            &[
                "c4\u{200B}@example.com",
                "c4@exam\u{AD}ple.com",
                "c4@example.com\u{202E}",
                "\u{2066}c4@example.com",
                "c4\u{FEFF}@example.com",
                "c4\u{0}@example.com",
                "c4\u{3164}@example.com",
            ],
        );
    }

    #[test]
    fn a_phone_with_fullwidth_digits_is_the_same_phone() {
        assert_eq!(
            Phone::parse("５１４ ５５５-０１９９").unwrap().as_str(),
            "+15145550199"
        );
    }

    #[test]
    fn a_phone_with_an_invisible_character_is_refused() {
        refused_as_hidden(
            Phone::parse,
            &[
                "514\u{200B}555-0199",
                "514 555-0199\u{202C}",
                "514\u{0}5550199",
            ],
        );
    }

    /// Each of `raws` is refused for the character that does not show.
    fn refused_as_hidden<T: std::fmt::Debug>(
        parse: fn(&str) -> Result<T, ContactError>,
        raws: &[&str],
    ) {
        for raw in raws {
            assert!(
                matches!(parse(raw), Err(ContactError::HiddenCharacter(_))),
                "{raw:?}"
            );
        }
    }

    #[test]
    fn a_name_with_a_right_to_left_override_is_spotted() {
        assert_eq!(bidi_control("Marie\u{202E}eiraM"), Some('\u{202E}'));
        assert_eq!(bidi_control("François Tremblay"), None);
    }

    #[test]
    fn contact_keys_name_their_kind() {
        let point = ContactPoint::Phone(Phone::parse("514 555-0199").unwrap());
        assert_eq!(point.key(), "PHONE:+15145550199");
    }
}
