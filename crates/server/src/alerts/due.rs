//! When an alert is due, from the figures alone (no store, no clock): the
//! thresholds usage has reached, an overage the projection foresees, and a
//! day that spikes. `evaluate.rs` reads the figures and fires what is due;
//! the store fires each alert once, so "due" here is "due at all", not "due
//! and not yet fired".

use callmeter_model::UsagePeriod;
use chrono::{DateTime, Utc};

/// The thresholds reached by `billed` of `included` calls: every listed one
/// at or below the usage, and, of those a step apart above 100 %
/// (`100 + step`, `100 + 2 × step` …), only the highest reached: a jump
/// from 90 % to 400 % says 100 % and 400 %, not twelve alerts at once.
/// None when the plan includes no calls (no percentage of nothing). In
/// `u64`: a threshold above 100 % is only bounded by the usage (with 100
/// calls included, it reaches `u64::MAX` % past 10^17 calls, where it stays).
pub fn thresholds_reached(list: &[u32], overage_step: u32, billed: u64, included: u64) -> Vec<u64> {
    if included == 0 {
        return Vec::new();
    }
    let reached = |t: u32| u128::from(billed) * 100 >= u128::from(t) * u128::from(included);
    let mut out: Vec<u64> = list.iter().copied().filter(|t| reached(*t)).map(u64::from).collect();
    if overage_step > 0 && reached(100) {
        let above = u128::from(billed) * 100 - 100 * u128::from(included);
        let steps = above / (u128::from(overage_step) * u128::from(included));
        if steps > 0 {
            let highest = 100 + steps.saturating_mul(u128::from(overage_step));
            out.push(u64::try_from(highest).unwrap_or(u64::MAX));
        }
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// `billed` as a percentage of `included`, to a tenth (0 when nothing is included).
pub fn percent_of(billed: u64, included: u64) -> f64 {
    if included == 0 {
        return 0.0;
    }
    (billed as f64 * 1_000.0 / included as f64).round() / 10.0
}

/// An overage the projection foresees.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ForeseenOverage {
    /// Billed calls expected by the period's end.
    pub projected_calls: u64,
    /// When the included calls run out at the pace so far.
    pub runs_out_at: DateTime<Utc>,
}

/// Whether the projection of an open period passes its included calls
/// while the calls billed so far do not yet: `metered` billable calls so far,
/// `billed` with the adjustments, `projected_calls` as the usage report
/// projects them. Not before `after` of the period has passed: the first
/// calls of a period would project anything.
pub fn foreseen_overage(
    period: UsagePeriod,
    now: DateTime<Utc>,
    after: chrono::Duration,
    (metered, billed, projected_calls): (u64, u64, u64),
    included: u64,
) -> Option<ForeseenOverage> {
    if !period.contains(now) || now - period.start < after || billed >= included || projected_calls <= included {
        return None;
    }
    if metered == 0 {
        return None;
    }
    let elapsed = (now - period.start).num_milliseconds().max(1) as f64;
    let per_ms = metered as f64 / elapsed;
    let left_ms = ((included - billed) as f64 / per_ms).ceil().min(i64::MAX as f64) as i64;
    let runs_out_at = now.checked_add_signed(chrono::Duration::milliseconds(left_ms)).unwrap_or(period.end);
    Some(ForeseenOverage { projected_calls, runs_out_at: runs_out_at.min(period.end) })
}

/// A day's calls against the 7 days before it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spike {
    /// The day's calls.
    pub day_calls: u64,
    /// The median of the 7 days before.
    pub trailing_median: f64,
}

/// Whether `day_calls` spike: above `factor` times the median of
/// `trailing` (the 7 days before, a day without calls counting 0) and at
/// least `min_calls`.
pub fn spike(trailing: &[u64; 7], day_calls: u64, factor: f64, min_calls: u64) -> Option<Spike> {
    let mut sorted = *trailing;
    sorted.sort_unstable();
    let median = sorted[3] as f64;
    (day_calls >= min_calls && day_calls as f64 > factor * median)
        .then_some(Spike { day_calls, trailing_median: median })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_thresholds_each_and_only_the_highest_step_above_100() {
        let t = |billed| thresholds_reached(&[50, 80, 100], 25, billed, 1_000);
        assert_eq!(t(499), Vec::<u64>::new());
        assert_eq!(t(500), [50]);
        assert_eq!(t(1_000), [50, 80, 100], "one batch past 50, 80 and 100 %: three");
        assert_eq!(t(1_249), [50, 80, 100]);
        assert_eq!(t(1_250), [50, 80, 100, 125]);
        assert_eq!(t(4_100), [50, 80, 100, 400], "the highest step, not every step");
        assert_eq!(thresholds_reached(&[50, 150], 25, 1_600, 1_000), [50, 150]);
        assert_eq!(thresholds_reached(&[90], 0, 5_000, 1_000), [90], "no steps");
        assert!(thresholds_reached(&[50], 25, 5, 0).is_empty(), "nothing included: no percentage");
        assert_eq!(thresholds_reached(&[100], 25, u64::MAX, 1), [100, u64::MAX], "never overflows");
        // Past u32's percentages (10^12 calls of a 100-call plan), and a step further.
        assert_eq!(thresholds_reached(&[100], 25, 1_000_000_000_000, 100), [100, 1_000_000_000_000]);
        assert_eq!(thresholds_reached(&[100], 25, 2_000_000_000_000, 100), [100, 2_000_000_000_000]);
        assert_eq!(percent_of(812, 1_000), 81.2);
        assert_eq!(percent_of(5, 0), 0.0);
    }

    fn t(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    #[test]
    fn an_overage_is_foreseen_once_enough_of_the_period_has_passed() {
        let p = UsagePeriod { start: t("2026-11-01T00:00:00Z"), end: t("2026-12-01T00:00:00Z") };
        let day = chrono::Duration::hours(24);
        // 600 calls in 10 days of 30: 1,800 projected, 1,000 included; they run out on day 16⅔.
        let now = t("2026-11-11T00:00:00Z");
        let f = foreseen_overage(p, now, day, (600, 600, 1_800), 1_000).unwrap();
        assert_eq!(f.projected_calls, 1_800);
        assert_eq!(f.runs_out_at, t("2026-11-17T16:00:00Z"));
        assert_eq!(foreseen_overage(p, now, day, (600, 600, 900), 1_000), None, "under the allowance");
        assert_eq!(foreseen_overage(p, now, day, (1_200, 1_200, 3_600), 1_000), None, "already over: no forecast");
        let early = t("2026-11-01T06:00:00Z");
        assert_eq!(foreseen_overage(p, early, day, (100, 100, 12_000), 1_000), None, "too early to say");
        assert_eq!(foreseen_overage(p, t("2026-12-02T00:00:00Z"), day, (600, 600, 1_800), 1_000), None, "over");
        // Adjustments count in what is billed but not in the pace.
        let f = foreseen_overage(p, now, day, (600, 800, 2_000), 1_000).unwrap();
        assert_eq!(f.runs_out_at, t("2026-11-14T08:00:00Z"));
    }

    #[test]
    fn a_spike_is_past_the_factor_and_the_floor() {
        let week = [100, 120, 90, 110, 0, 95, 105];
        assert_eq!(spike(&week, 316, 3.0, 100), Some(Spike { day_calls: 316, trailing_median: 100.0 }));
        assert_eq!(spike(&week, 300, 3.0, 100), None, "not above 3× the median");
        assert_eq!(spike(&[0; 7], 99, 3.0, 100), None, "under the floor");
        assert_eq!(spike(&[0; 7], 100, 3.0, 100).map(|s| s.trailing_median), Some(0.0));
    }
}
