//! Prices as people read them.
//!
//! Plans price overage in minor units of an ISO 4217 currency (DESIGN §2):
//! 1250 is $12.50 in US dollars but ¥1,250 in yen, which has no minor unit.
//! So an amount is shown with its currency's number of decimals, behind the
//! symbol of the common currencies whose symbol is unambiguous (`$12.50`,
//! `€3.00`, `£0.75`, `¥1250`), and before the code for every other
//! (`12.50 CHF`, `1.250 KWD`, `12.50 XYZ`).

use std::fmt;

/// An amount in minor units of a currency, displayed as money.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Money<'a> {
    /// The amount in the currency's minor units (cents for USD).
    pub minor: u64,
    /// The ISO 4217 code (`USD`); case does not matter.
    pub currency: &'a str,
}

impl<'a> Money<'a> {
    /// `minor` units of `currency`.
    pub fn new(minor: u64, currency: &'a str) -> Money<'a> {
        Money { minor, currency }
    }
}

/// How a currency is written: its symbol, if shown instead of the code, and
/// its decimals. Codes not listed have two decimals, as most currencies do.
fn style(code: &str) -> (Option<&'static str>, u32) {
    let mut upper = [0u8; 3];
    if code.len() == 3 {
        upper.copy_from_slice(code.as_bytes());
        upper.make_ascii_uppercase();
    }
    match &upper {
        b"USD" => (Some("$"), 2),
        b"EUR" => (Some("€"), 2),
        b"GBP" => (Some("£"), 2),
        b"JPY" => (Some("¥"), 0),
        b"INR" => (Some("₹"), 2),
        b"KRW" => (Some("₩"), 0),
        // No minor unit in use.
        b"CLP" | b"ISK" | b"VND" | b"UGX" | b"PYG" | b"XAF" | b"XOF" => (None, 0),
        // Three decimals.
        b"BHD" | b"IQD" | b"JOD" | b"KWD" | b"LYD" | b"OMR" | b"TND" => (None, 3),
        _ => (None, 2),
    }
}

/// How many decimals `currency` is written with (ISO 4217's minor unit).
pub fn minor_digits(currency: &str) -> u32 {
    style(currency).1
}

impl fmt::Display for Money<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (symbol, digits) = style(self.currency);
        let unit = 10u64.pow(digits);
        let (whole, fraction) = (self.minor / unit, self.minor % unit);
        let amount = if digits == 0 {
            whole.to_string()
        } else {
            format!("{whole}.{fraction:0width$}", width = digits as usize)
        };
        let text = match symbol {
            Some(symbol) => format!("{symbol}{amount}"),
            None if self.currency.is_empty() => amount,
            None => format!("{amount} {}", self.currency.to_ascii_uppercase()),
        };
        // Padding and alignment apply to the whole amount, as for a string.
        f.pad(&text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shown(minor: u64, currency: &str) -> String {
        Money::new(minor, currency).to_string()
    }

    #[test]
    fn common_currencies_show_their_symbol() {
        assert_eq!(shown(1250, "USD"), "$12.50");
        assert_eq!(shown(300, "EUR"), "€3.00");
        assert_eq!(shown(75, "GBP"), "£0.75");
        assert_eq!(shown(1250, "JPY"), "¥1250", "the yen has no minor unit");
        assert_eq!(shown(0, "USD"), "$0.00");
        assert_eq!(shown(5, "usd"), "$0.05", "codes in any case");
        assert_eq!(shown(123_456_789, "INR"), "₹1234567.89");
    }

    #[test]
    fn other_currencies_show_their_code() {
        assert_eq!(shown(1250, "CHF"), "12.50 CHF");
        assert_eq!(shown(1250, "XYZ"), "12.50 XYZ", "unknown codes have two decimals");
        assert_eq!(shown(1250, "KWD"), "1.250 KWD");
        assert_eq!(shown(1250, "isk"), "1250 ISK");
        assert_eq!(shown(1250, ""), "12.50");
        assert_eq!(shown(7, "DOLLARS"), "0.07 DOLLARS");
    }

    #[test]
    fn the_largest_amount_does_not_overflow() {
        assert_eq!(shown(u64::MAX, "USD"), "$184467440737095516.15");
        assert_eq!(shown(u64::MAX, "JPY"), "¥18446744073709551615");
    }

    #[test]
    fn padding_applies_to_the_whole_amount() {
        assert_eq!(format!("{:>10}", Money::new(1250, "USD")), "    $12.50");
        assert_eq!(minor_digits("JPY"), 0);
        assert_eq!(minor_digits("EUR"), 2);
        assert_eq!(minor_digits("BHD"), 3);
    }
}
