//! Every threshold of the audit in one struct, so that the server's config
//! file can embed it as an `[audit]` table and the CLI can read the same table.

use crate::error::AuditError;
use callmeter_model::DEFAULT_LIST_PAGE_SIZE;
use serde::{Deserialize, Serialize};

/// The audit's settings. Every field has a default; unknown fields are refused
/// so that a misspelt setting is an error, not silently the default.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuditConfig {
    /// Entries one list request returns on this platform or account: a listing
    /// event whose `result_count` needs more pages than were seen (a log that
    /// records one line per listing) is costed `ceil(result_count / list_page_size)`
    /// calls. Default 10,000 (some platforms use 2,500).
    pub list_page_size: u64,
    /// How late a call may arrive behind a later one and still be put back in
    /// time order, in seconds. Calls held this long before they are analysed;
    /// later stragglers are analysed as they come. Default 10.
    pub reorder_window_secs: f64,

    /// Fewest intervals between repeats of one (source, operation, path) before
    /// it can be called polling (pauses not counted). Default 12: fewer, and
    /// a person's random revisits now and then look regular by chance.
    pub polling_min_intervals: usize,
    /// Lowest regularity score (0–1: the mean of the Bowley-skew score, the
    /// median-absolute-deviation score and the fit) for a stream to be
    /// polling. Default 0.6: Bowley skew is noisy on uniformly jittered
    /// intervals, and random revisits are already kept out by `polling_min_fit`.
    pub polling_min_score: f64,
    /// Lowest fit: the share of intervals (pauses left out) within
    /// `polling_jitter_tolerance` of one period. People who revisit a folder at
    /// random moments fail this; a poller missing 10 % of its polls passes. Default 0.7.
    pub polling_min_fit: f64,
    /// How far an interval (divided by its number of periods) may stray from the
    /// period and still fit it, as a fraction of the period. Default 0.25
    /// (pollers jitter up to ±20 %).
    pub polling_jitter_tolerance: f64,
    /// Intervals up to this many periods are missed polls (folded back onto the
    /// period); longer ones are pauses and left out of the score. Default 3.
    pub polling_max_missed_periods: u32,
    /// The relative median absolute deviation (MAD / median) at which the MAD
    /// score falls to 0. Default 0.5.
    pub polling_max_relative_mad: f64,
    /// Intervals kept per stream (a reservoir sample): memory per stream is
    /// bounded by this, whatever the number of calls. Default 256.
    pub polling_interval_samples: usize,

    /// Longest gap between two uploads of one source into one folder that
    /// still belong to one batch, in seconds. Default 60.
    pub batch_gap_secs: f64,
    /// Writes by one source to the same path this close together are one upload
    /// (begin and finish), in seconds. Default 5.
    pub same_upload_secs: f64,
    /// Fewest uploads in a batch for its listings to be looked at. Default 2.
    pub min_batch_uploads: u64,

    /// Identical requests (source, method, path, cursor) this close together,
    /// with nothing in between, are duplicates, in seconds. Default 2.
    pub duplicate_window_secs: f64,
    /// A repeat is a duplicate only when it comes sooner than this fraction of
    /// the source's pace for that request (the shorter of the gaps before and
    /// after it): a poller that asks every second is polling, not retrying,
    /// even between two missed polls. Calls wait `duplicate_window_secs /
    /// duplicate_pace_ratio` before analysis to see the gap after. Default 0.25.
    pub duplicate_pace_ratio: f64,

    /// Entries in each `top_sources` list. Default 10.
    pub top_n: usize,
    /// Path segments that make a `top_sources` path prefix (`/a/b` at 2). Default 2.
    pub path_prefix_depth: usize,
    /// Findings with fewer avoidable calls are left out. Default 1; 0 keeps
    /// pollers whose every repeat found a change (no waste, but worth knowing).
    pub min_avoidable_calls: u64,
}

impl Default for AuditConfig {
    fn default() -> Self {
        AuditConfig {
            list_page_size: DEFAULT_LIST_PAGE_SIZE,
            reorder_window_secs: 10.0,
            polling_min_intervals: 12,
            polling_min_score: 0.6,
            polling_min_fit: 0.7,
            polling_jitter_tolerance: 0.25,
            polling_max_missed_periods: 3,
            polling_max_relative_mad: 0.5,
            polling_interval_samples: 256,
            batch_gap_secs: 60.0,
            same_upload_secs: 5.0,
            min_batch_uploads: 2,
            duplicate_window_secs: 2.0,
            duplicate_pace_ratio: 0.25,
            top_n: 10,
            path_prefix_depth: 2,
            min_avoidable_calls: 1,
        }
    }
}

impl AuditConfig {
    /// Checks that every setting makes sense; the error names the first that does not.
    pub fn validate(&self) -> Result<(), AuditError> {
        let bad = |field: &'static str, why: &str| Err(AuditError::Config { field, why: why.to_owned() });
        let secs = [
            ("reorder_window_secs", self.reorder_window_secs),
            ("batch_gap_secs", self.batch_gap_secs),
            ("same_upload_secs", self.same_upload_secs),
            ("duplicate_window_secs", self.duplicate_window_secs),
        ];
        for (field, v) in secs {
            if !v.is_finite() || !(0.0..=86_400.0).contains(&v) {
                return bad(field, "must be between 0 and 86400 seconds");
            }
        }
        let fractions = [
            ("polling_min_score", self.polling_min_score),
            ("polling_min_fit", self.polling_min_fit),
            ("polling_jitter_tolerance", self.polling_jitter_tolerance),
            ("duplicate_pace_ratio", self.duplicate_pace_ratio),
        ];
        for (field, v) in fractions {
            if !v.is_finite() || !(0.0..=1.0).contains(&v) {
                return bad(field, "must be between 0 and 1");
            }
        }
        if !self.polling_max_relative_mad.is_finite() || self.polling_max_relative_mad <= 0.0 {
            return bad("polling_max_relative_mad", "must be above 0");
        }
        if self.list_page_size == 0 {
            return bad("list_page_size", "must be at least 1");
        }
        if self.polling_min_intervals < 2 {
            return bad("polling_min_intervals", "must be at least 2");
        }
        if self.polling_interval_samples < self.polling_min_intervals {
            return bad("polling_interval_samples", "must be at least polling_min_intervals");
        }
        if self.polling_max_missed_periods == 0 {
            return bad("polling_max_missed_periods", "must be at least 1");
        }
        Ok(())
    }

    /// `reorder_window_secs` in microseconds.
    pub(crate) fn reorder_window_us(&self) -> i64 {
        secs_to_us(self.reorder_window_secs)
    }
}

/// Seconds (from the config) to the microseconds the audit counts time in.
pub(crate) fn secs_to_us(s: f64) -> i64 {
    (s * 1e6).round() as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_table_is_the_defaults() {
        let c: AuditConfig = serde_json::from_str("{}").unwrap();
        assert_eq!(c, AuditConfig::default());
        assert_eq!(c.list_page_size, 10_000);
        c.validate().unwrap();
    }

    #[test]
    fn unknown_fields_are_refused() {
        let e = serde_json::from_str::<AuditConfig>(r#"{"batch_gap":60}"#).unwrap_err();
        assert!(e.to_string().contains("unknown field `batch_gap`"), "{e}");
    }

    #[test]
    fn bad_values_name_their_field() {
        let c = AuditConfig { duplicate_pace_ratio: 2.0, ..AuditConfig::default() };
        assert_eq!(
            c.validate().unwrap_err().to_string(),
            "bad audit setting duplicate_pace_ratio: must be between 0 and 1"
        );
        let c = AuditConfig { list_page_size: 0, ..AuditConfig::default() };
        assert!(c.validate().is_err());
        let c = AuditConfig { batch_gap_secs: f64::NAN, ..AuditConfig::default() };
        assert!(c.validate().is_err());
    }
}
