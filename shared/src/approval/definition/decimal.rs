//! Decimals as definitions and conditions write them: plain digits, never floats.

use rust_decimal::Decimal;

/// A decimal written plainly: digits, an optional sign and one dot (no exponent, no `_`).
pub fn strict_decimal(text: &str) -> Option<Decimal> {
    let t = text.trim();
    let digits = t.strip_prefix('-').unwrap_or(t);
    let (whole, fraction) = digits.split_once('.').unwrap_or((digits, ""));
    let plain = !whole.is_empty()
        && whole.len() <= 15
        && fraction.len() <= 10
        && whole.bytes().all(|b| b.is_ascii_digit())
        && fraction.bytes().all(|b| b.is_ascii_digit())
        && !(digits.contains('.') && fraction.is_empty());
    plain.then(|| t.parse::<Decimal>().ok()).flatten()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_are_written_plainly() {
        for (text, ok) in [
            ("1", true),
            ("0.01", true),
            ("-1.5", true),
            ("1e3", false),
            (".5", false),
            ("1.", false),
            ("1_000", false),
            ("NaN", false),
            ("", false),
        ] {
            assert_eq!(strict_decimal(text).is_some(), ok, "{text}");
        }
    }
}
