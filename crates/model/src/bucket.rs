//! 15-minute aggregate buckets (DESIGN §2).
//!
//! Every zone offset in use is a multiple of 15 minutes (some are 30 or 45
//! minutes off the hour, like Asia/Kathmandu's +05:45), so every local
//! midnight is a bucket boundary, and local days and usage periods are exact
//! unions of buckets. (Only the local mean times of the 19th and early 20th
//! century are not.)

use chrono::{DateTime, Utc};

/// Length of a bucket, in seconds.
pub const BUCKET_SECONDS: i64 = 900;

/// The bucket holding `t`: floor(unix seconds / 900), so times before 1970
/// fall in negative buckets without rounding towards zero.
pub fn bucket_of(t: DateTime<Utc>) -> i64 {
    t.timestamp().div_euclid(BUCKET_SECONDS)
}

/// The first instant of bucket `b` (clamped to chrono's range).
pub fn bucket_start(b: i64) -> DateTime<Utc> {
    let secs = b.saturating_mul(BUCKET_SECONDS);
    DateTime::from_timestamp(secs, 0).unwrap_or(if b < 0 { DateTime::<Utc>::MIN_UTC } else { DateTime::<Utc>::MAX_UTC })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::period::local_midnight;
    use chrono::{Duration, NaiveDate};

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn buckets_floor_on_both_sides_of_the_epoch() {
        assert_eq!(bucket_of(t("1970-01-01T00:00:00Z")), 0);
        assert_eq!(bucket_of(t("1970-01-01T00:14:59.999Z")), 0);
        assert_eq!(bucket_of(t("1970-01-01T00:15:00Z")), 1);
        assert_eq!(bucket_of(t("1969-12-31T23:59:59.999Z")), -1);
        assert_eq!(bucket_of(t("1969-12-31T23:45:00Z")), -1);
        assert_eq!(bucket_of(t("1969-12-31T23:44:59Z")), -2);
        assert_eq!(bucket_start(-1), t("1969-12-31T23:45:00Z"));
        assert_eq!(bucket_start(bucket_of(t("2026-03-01T18:29:59Z"))), t("2026-03-01T18:15:00Z"));
    }

    #[test]
    fn buckets_round_trip() {
        for b in [-100_000_000, -1, 0, 1, 2_000_000, 100_000_000] {
            assert_eq!(bucket_of(bucket_start(b)), b);
            assert_eq!(bucket_of(bucket_start(b + 1) - Duration::nanoseconds(1)), b);
        }
        assert_eq!(bucket_start(i64::MAX), DateTime::<Utc>::MAX_UTC);
        assert_eq!(bucket_start(i64::MIN), DateTime::<Utc>::MIN_UTC);
    }

    #[test]
    fn kathmandu_midnights_are_bucket_boundaries() {
        let tz = chrono_tz::Asia::Kathmandu;
        let mut day = NaiveDate::from_ymd_opt(1990, 1, 1).unwrap();
        let last = NaiveDate::from_ymd_opt(2040, 1, 1).unwrap();
        while day < last {
            let m = local_midnight(tz, day);
            assert_eq!(m.timestamp() % BUCKET_SECONDS, 0, "{day}: {m}");
            assert_eq!(bucket_start(bucket_of(m)), m);
            day = day.succ_opt().unwrap();
        }
        assert_eq!(local_midnight(tz, NaiveDate::from_ymd_opt(2026, 3, 1).unwrap()), t("2026-02-28T18:15:00Z"));
    }
}
