//! When a failed delivery is tried again (DESIGN §7).
//!
//! The first attempt is at once; after a failure, the next waits 5 s, then
//! 5 min, 30 min, 2 h, 5 h, 10 h, 14 h, 20 h and 24 h (ten attempts over
//! about three days), each stretched by up to a tenth at random so that many
//! deliveries failing together do not come back together, and never earlier
//! than the target's `Retry-After`. After the tenth failure the delivery has
//! failed. A subscription whose deliveries have failed for five days without
//! a success in between is disabled; a 410 disables it at once.

use chrono::{DateTime, Duration, Utc};
use rand::Rng;

/// The waits after the 1st, 2nd, … failed attempt.
pub const RETRY_DELAYS_SECS: [i64; 9] = [5, 300, 1_800, 7_200, 18_000, 36_000, 50_400, 72_000, 86_400];

/// Attempts a delivery gets at most.
pub const MAX_ATTEMPTS: u32 = RETRY_DELAYS_SECS.len() as u32 + 1;

/// How long a subscription's deliveries may fail before it is disabled.
pub fn disable_after() -> Duration {
    Duration::days(5)
}

/// The longest wait a `Retry-After` may ask for.
pub fn longest_retry_after() -> Duration {
    Duration::hours(24)
}

/// When to try again after the `attempts`-th failed attempt (1 = the first)
/// failed at `now`; `None` when that was the last. `jitter` is in `[0, 1)`.
pub fn next_attempt(
    attempts: u32,
    now: DateTime<Utc>,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<DateTime<Utc>> {
    let base = *RETRY_DELAYS_SECS.get(usize::try_from(attempts).ok()?.checked_sub(1)?)?;
    let stretched = Duration::milliseconds((base as f64 * 1_000.0 * (1.0 + jitter.clamp(0.0, 1.0) / 10.0)) as i64);
    let wait = match retry_after {
        Some(asked) => stretched.max(asked.min(longest_retry_after())),
        None => stretched,
    };
    Some(now + wait)
}

/// A random jitter in `[0, 1)`.
pub fn jitter() -> f64 {
    rand::thread_rng().gen()
}

/// The wait a `Retry-After` value asks for: seconds, or an HTTP date.
pub fn parse_retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    // Delay-seconds is digits only; more of them than a u64 holds is a long
    // wait still (the schedule caps it), not no wait.
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        let secs = value.parse::<u64>().unwrap_or(u64::MAX).min(1 << 32);
        return Some(Duration::seconds(secs as i64));
    }
    let at = DateTime::parse_from_rfc2822(value).ok()?.with_timezone(&Utc);
    Some((at - now).max(Duration::zero()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_schedule_of_design_section_7_with_jitter_and_retry_after() {
        let t0: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        let waits: Vec<i64> =
            (1..MAX_ATTEMPTS).map(|n| (next_attempt(n, t0, None, 0.0).unwrap() - t0).num_seconds()).collect();
        assert_eq!(waits, RETRY_DELAYS_SECS);
        assert_eq!(next_attempt(MAX_ATTEMPTS, t0, None, 0.0), None, "ten attempts in all");
        assert_eq!(next_attempt(0, t0, None, 0.0), None);
        let total: i64 = RETRY_DELAYS_SECS.iter().sum();
        assert!((3 * 86_400..4 * 86_400).contains(&total), "over about three days: {total}");
        let stretched = next_attempt(2, t0, None, 0.999).unwrap() - t0;
        assert!(stretched > Duration::seconds(300) && stretched < Duration::seconds(331), "{stretched}");
        let asked = next_attempt(1, t0, Some(Duration::seconds(120)), 0.0).unwrap() - t0;
        assert_eq!(asked, Duration::seconds(120), "a longer Retry-After wins");
        let short = next_attempt(3, t0, Some(Duration::seconds(1)), 0.0).unwrap() - t0;
        assert_eq!(short, Duration::seconds(1_800), "a shorter one does not hurry the schedule");
        let huge = next_attempt(1, t0, Some(Duration::days(30)), 0.0).unwrap() - t0;
        assert_eq!(huge, Duration::hours(24), "at most a day");
    }

    #[test]
    fn retry_after_is_seconds_or_an_http_date() {
        let now: DateTime<Utc> = "2026-12-01T00:00:00Z".parse().unwrap();
        assert_eq!(parse_retry_after("120", now), Some(Duration::seconds(120)));
        assert_eq!(parse_retry_after("Tue, 01 Dec 2026 00:01:00 GMT", now), Some(Duration::seconds(60)));
        assert_eq!(parse_retry_after("Mon, 30 Nov 2026 00:00:00 GMT", now), Some(Duration::zero()));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-5", now), None);
        assert_eq!(parse_retry_after("99999999999999999999", now), Some(Duration::seconds(1 << 32)), "past u64: long");
    }
}
