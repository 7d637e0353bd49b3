//! Numbers, money and times as the dashboard writes them: thousands
//! separated, prices in the plan's currency, and every time in the account's
//! own zone with the zone named (DESIGN §2: periods are local days).

use callmeter_model::Money;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;

/// `1234567` as `1,234,567`.
pub fn count(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A signed count: `+1,000`, `-20`.
pub fn signed(n: i64) -> String {
    let sign = if n < 0 { "-" } else { "+" };
    format!("{sign}{}", count(n.unsigned_abs()))
}

/// A price in minor units, as money in its currency.
pub fn money(minor: u64, currency: &str) -> String {
    Money::new(minor, currency).to_string()
}

/// A share, `0.423` as `42.3 %`.
pub fn percent(share: f64) -> String {
    if share.is_finite() {
        format!("{:.1} %", share * 100.0)
    } else {
        "–".into()
    }
}

/// A duration in plain words: `45 s`, `15 min`, `2.5 h`, `3 days`.
pub fn duration(secs: f64) -> String {
    let round = |v: f64| if v >= 10.0 || v.fract() < 0.05 { format!("{v:.0}") } else { format!("{v:.1}") };
    if secs < 100.0 {
        format!("{} s", round(secs))
    } else if secs < 5_400.0 {
        format!("{} min", round(secs / 60.0))
    } else if secs < 172_800.0 {
        format!("{} h", round(secs / 3_600.0))
    } else {
        format!("{} days", round(secs / 86_400.0))
    }
}

/// A time to the second, in the zone, with the zone's abbreviation.
pub fn time(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M:%S %Z").to_string()
}

/// A time to the minute, in the zone.
pub fn minute(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d %H:%M %Z").to_string()
}

/// A date, in the zone.
pub fn date(t: DateTime<Utc>, tz: Tz) -> String {
    t.with_timezone(&tz).format("%Y-%m-%d").to_string()
}

/// A `datetime-local` input's value (`2026-11-27T10:00`, seconds optional) read in the zone;
/// a time that the zone skips (a spring-forward hour) is read an hour later.
pub fn parse_datetime_local(v: &str, tz: Tz) -> Option<DateTime<Utc>> {
    use chrono::offset::LocalResult;
    use chrono::{NaiveDateTime, TimeZone};
    let naive = NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M")
        .or_else(|_| NaiveDateTime::parse_from_str(v, "%Y-%m-%dT%H:%M:%S"))
        .ok()?;
    match tz.from_local_datetime(&naive) {
        LocalResult::Single(t) | LocalResult::Ambiguous(t, _) => Some(t.with_timezone(&Utc)),
        LocalResult::None => {
            tz.from_local_datetime(&(naive + chrono::Duration::hours(1))).earliest().map(|t| t.with_timezone(&Utc))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(count(0), "0");
        assert_eq!(count(1_000), "1,000");
        assert_eq!(count(11_000_000), "11,000,000");
        assert_eq!(signed(-1_500), "-1,500");
        assert_eq!(signed(0), "+0");
        assert_eq!(percent(0.4234), "42.3 %");
        assert_eq!(percent(f64::NAN), "–");
        assert_eq!(money(1_250, "USD"), "$12.50");
        assert_eq!(duration(60.0), "60 s");
        assert_eq!(duration(900.0), "15 min");
        assert_eq!(duration(9_000.0), "2.5 h");
        assert_eq!(duration(86_400.0 * 3.0), "3 days");
    }

    #[test]
    fn times_are_in_the_zone() {
        let t = DateTime::parse_from_rfc3339("2026-11-27T10:00:00Z").unwrap().with_timezone(&Utc);
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        assert_eq!(time(t, berlin), "2026-11-27 11:00:00 CET");
        assert_eq!(parse_datetime_local("2026-11-27T11:00", berlin), Some(t));
        assert_eq!(parse_datetime_local("2026-11-27T11:00:00", berlin), Some(t));
        assert_eq!(parse_datetime_local("yesterday", berlin), None);
        // 02:30 does not exist in Berlin on 2026-03-29: read as 03:30 CEST.
        let skipped = parse_datetime_local("2026-03-29T02:30", berlin).unwrap();
        assert_eq!(skipped.to_rfc3339(), "2026-03-29T01:30:00+00:00");
    }
}
