//! Amounts of money: exact decimals, stored as integer cents.
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;

/// Why an amount was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum AmountError {
    #[error("is not a decimal number of dollars such as \"32500.00\"")]
    NotDecimal,
    #[error("must not be negative")]
    Negative,
    #[error("has more than two decimal places")]
    SubCent,
    #[error("is too large")]
    TooLarge,
}

/// `"32500.00"` (or `"32500"`, `"32500.5"`) → 3_250_000 cents.
pub fn parse_cents(text: &str) -> Result<i64, AmountError> {
    let text = text.trim();
    if text.is_empty()
        || !text
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.' || c == '-')
    {
        return Err(AmountError::NotDecimal);
    }
    let amount = Decimal::from_str_exact(text).map_err(|_| AmountError::NotDecimal)?;
    if amount.is_sign_negative() && !amount.is_zero() {
        return Err(AmountError::Negative);
    }
    if amount.normalize().scale() > 2 {
        return Err(AmountError::SubCent);
    }
    (amount * Decimal::ONE_HUNDRED)
        .to_i64()
        .filter(|c| *c <= 100_000_000_000)
        .ok_or(AmountError::TooLarge)
}

/// 3_250_000 cents → `"32500.00"`.
pub fn format_cents(cents: i64) -> String {
    Decimal::new(cents, 2).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dollars_round_trip_exactly_through_cents() {
        assert_eq!(parse_cents("32500.00"), Ok(3_250_000));
        assert_eq!(parse_cents("0.10"), Ok(10));
        assert_eq!(parse_cents("19999.99"), Ok(1_999_999));
        assert_eq!(format_cents(3_250_000), "32500.00");
        assert_eq!(format_cents(10), "0.10");
        assert_eq!(format_cents(parse_cents("32500").unwrap()), "32500.00");
    }

    #[test]
    fn fractions_of_a_cent_negative_and_malformed_amounts_are_refused() {
        assert_eq!(parse_cents("1.005"), Err(AmountError::SubCent));
        assert_eq!(parse_cents("-5"), Err(AmountError::Negative));
        assert_eq!(parse_cents("1e5"), Err(AmountError::NotDecimal));
        assert_eq!(parse_cents("abc"), Err(AmountError::NotDecimal));
        assert_eq!(parse_cents("1000000000000"), Err(AmountError::TooLarge));
    }
}
