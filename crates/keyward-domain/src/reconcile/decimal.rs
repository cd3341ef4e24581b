//! Exact decimal amounts read from provider exports. Amounts never pass through floating point:
//! a JSON number is read back as the text serde_json prints for it (the shortest text that
//! round-trips), then scaled in integers.

use serde_json::Value;

/// Longest digit string accepted: far beyond any amount or token count, well inside `i128`.
const MAX_DIGITS: usize = 30;

/// `text` × 10^`scale`, rounded half away from zero: `scaled("0.0032", 6)` = 3200. Accepts an
/// optional sign, a fraction and an exponent (`1e-7`); `None` for anything else.
pub(crate) fn scaled(text: &str, scale: u32) -> Option<i128> {
    let text = text.trim();
    let (negative, unsigned) = match text.as_bytes().first()? {
        b'-' => (true, &text[1..]),
        b'+' => (false, &text[1..]),
        _ => (false, text),
    };
    let (number, exponent) = match unsigned.find(['e', 'E']) {
        Some(at) => (&unsigned[..at], unsigned[at + 1..].parse::<i32>().ok()?),
        None => (unsigned, 0),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    if whole.is_empty() && fraction.is_empty() {
        return None;
    }
    let digits: String = whole.chars().chain(fraction.chars()).collect();
    if !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let digits = digits.trim_start_matches('0');
    if digits.len() > MAX_DIGITS {
        return None;
    }
    let mantissa: i128 = if digits.is_empty() {
        0
    } else {
        digits.parse().ok()?
    };
    // value = mantissa × 10^(exponent − fraction digits); scaled = value × 10^scale.
    let fraction_digits = i32::try_from(fraction.len()).ok()?;
    let shift = exponent
        .checked_sub(fraction_digits)?
        .checked_add(i32::try_from(scale).ok()?)?;
    let magnitude = if shift >= 0 {
        mantissa.checked_mul(10_i128.checked_pow(u32::try_from(shift).ok()?)?)?
    } else {
        let divisor = 10_i128.checked_pow(shift.unsigned_abs());
        match divisor {
            // More than 38 digits of shift: rounds to zero.
            None => 0,
            Some(divisor) => (mantissa + divisor / 2) / divisor,
        }
    };
    Some(if negative { -magnitude } else { magnitude })
}

/// A JSON number or numeric string (some exports quote amounts) × 10^`scale`.
pub(crate) fn scaled_json(value: &Value, scale: u32) -> Option<i128> {
    match value {
        Value::Number(number) => scaled(&number.to_string(), scale),
        Value::String(text) => scaled(text, scale),
        _ => None,
    }
}

/// An amount (`text` × 10^`scale`) that fits the ledger's i64 micro-dollars.
pub(crate) fn amount(text: &str, scale: u32) -> Option<i64> {
    i64::try_from(scaled(text, scale)?).ok()
}

/// [`amount`] of a JSON number or numeric string.
pub(crate) fn amount_json(value: &Value, scale: u32) -> Option<i64> {
    i64::try_from(scaled_json(value, scale)?).ok()
}

/// A non-negative count × 10^`scale` (`count("30.0", 3)` = 30 000 tokens from thousands).
pub(crate) fn count(text: &str, scale: u32) -> Option<u64> {
    u64::try_from(scaled(text, scale)?).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scales_exactly_without_floating_point() {
        assert_eq!(scaled("0.0032", 6), Some(3200));
        assert_eq!(scaled("12.50", 6), Some(12_500_000));
        assert_eq!(scaled("123.45", 4), Some(1_234_500));
        assert_eq!(scaled("-0.5", 0), Some(-1));
        assert_eq!(scaled("0.4999999", 0), Some(0));
        assert_eq!(scaled("1e-7", 6), Some(0));
        assert_eq!(scaled("6e-7", 6), Some(1));
        assert_eq!(scaled("2.5E3", 0), Some(2500));
        assert_eq!(scaled(".5", 1), Some(5));
        assert_eq!(scaled("30.0", 3), Some(30_000));
        // 0.1 + 0.2 as floats is 0.30000000000000004; as text it stays exact.
        assert_eq!(scaled_json(&serde_json::json!(0.012), 6), Some(12_000));
        assert_eq!(scaled_json(&serde_json::json!("0.0066"), 6), Some(6_600));
    }

    #[test]
    fn refuses_what_is_not_a_number() {
        for text in [
            "",
            ".",
            "-",
            "1.2.3",
            "abc",
            "1e",
            "0x10",
            "1 000",
            "NaN",
            "1e999999999999",
        ] {
            assert_eq!(scaled(text, 6), None, "{text}");
        }
        assert_eq!(scaled(&"9".repeat(40), 0), None);
        // An extreme exponent rounds to zero instead of overflowing.
        assert_eq!(scaled("1e-2147483648", 0), Some(0));
        assert_eq!(scaled_json(&serde_json::json!(null), 6), None);
    }
}
