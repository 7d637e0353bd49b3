//! `timeline`: calls over time, in total and for the biggest sources, so that a
//! report can draw them (the HTML report's chart) without the calls.
//!
//! Buckets start at one minute and grow (5 min, 15 min, 30 min, 1 h, 3 h, 6 h,
//! 12 h, 1 day, then doubling) whenever the range would need more than
//! [`MAX_BUCKETS`]: the bucket counts are merged, never recounted, so one pass
//! over the calls is enough and memory stays bounded by the bucket count.

use serde::{Deserialize, Serialize};

/// Most buckets a timeline holds: enough for a chart, small per source.
pub const MAX_BUCKETS: usize = 240;

/// Bucket widths in seconds; each divides the next, so counts can be merged.
const LADDER: [i64; 9] = [60, 300, 900, 1_800, 3_600, 10_800, 21_600, 43_200, 86_400];

/// Calls per time bucket.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Timeline {
    /// Start of the first bucket (the range's start, else the first call's minute).
    pub start: Option<chrono::DateTime<chrono::Utc>>,
    /// Width of each bucket, in seconds.
    pub bucket_secs: u64,
    /// Calls in each bucket, all sources together.
    pub calls: Vec<u64>,
    /// The sources with most calls, each with its calls per bucket (as long as
    /// `calls`), and, last, `other sources` for the rest when there are more.
    pub sources: Vec<SourceSeries>,
}

impl Default for Timeline {
    fn default() -> Self {
        Timeline { start: None, bucket_secs: LADDER[0] as u64, calls: Vec::new(), sources: Vec::new() }
    }
}

/// One source's calls over time.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SourceSeries {
    /// The source, in plain words (as in `top_sources.source`).
    pub source: String,
    /// Its calls in all buckets together.
    pub total: u64,
    /// Its calls in each bucket.
    pub calls: Vec<u64>,
}

/// The counts as they are gathered: per source, runs of (bucket, calls), so a
/// source seen a few times costs a few entries, a busy one at most `MAX_BUCKETS`.
#[derive(Debug)]
pub(crate) struct TimelineCounts {
    start_us: Option<i64>,
    step: usize,
    bucket_us: i64,
    total: Vec<u64>,
    per_source: Vec<Vec<(u32, u32)>>,
}

impl Default for TimelineCounts {
    fn default() -> Self {
        TimelineCounts {
            start_us: None,
            step: 0,
            bucket_us: LADDER[0] * 1_000_000,
            total: Vec::new(),
            per_source: Vec::new(),
        }
    }
}

impl TimelineCounts {
    /// Counts from `start_us` (the range's start), instead of the first call's minute.
    pub fn starting_at(start_us: Option<i64>) -> TimelineCounts {
        TimelineCounts { start_us, ..TimelineCounts::default() }
    }

    /// Counts one call of source `source` at `time_us`.
    pub fn add(&mut self, time_us: i64, source: u32) {
        let start = *self.start_us.get_or_insert_with(|| time_us.div_euclid(60_000_000) * 60_000_000);
        // A call slightly before the first one (out of order) goes into the first bucket.
        let mut idx = (time_us.saturating_sub(start).max(0) / self.bucket_us) as usize;
        while idx >= MAX_BUCKETS {
            self.widen();
            idx = (time_us.saturating_sub(start).max(0) / self.bucket_us) as usize;
        }
        if self.total.len() <= idx {
            self.total.resize(idx + 1, 0);
        }
        self.total[idx] += 1;
        let s = source as usize;
        if self.per_source.len() <= s {
            self.per_source.resize_with(s + 1, Vec::new);
        }
        let runs = &mut self.per_source[s];
        match runs.last_mut() {
            Some((b, n)) if *b as usize == idx => *n = n.saturating_add(1),
            // Out of order by a bucket or more: rare, found by a short search back.
            _ => match runs.iter_mut().rev().take(4).find(|(b, _)| *b as usize == idx) {
                Some((_, n)) => *n = n.saturating_add(1),
                None => runs.push((idx as u32, 1)),
            },
        }
    }

    /// The next bucket width up the ladder, with every count merged into it.
    fn widen(&mut self) {
        let old = self.bucket_us / 1_000_000;
        let new = LADDER.get(self.step + 1).copied().unwrap_or(old * 2);
        self.step += 1;
        let ratio = (new / old) as usize;
        self.bucket_us = new * 1_000_000;
        let mut total = vec![0u64; self.total.len().div_ceil(ratio)];
        for (i, n) in self.total.iter().enumerate() {
            total[i / ratio] += n;
        }
        self.total = total;
        for runs in &mut self.per_source {
            let mut merged: Vec<(u32, u32)> = Vec::with_capacity(runs.len());
            for (b, n) in runs.iter() {
                let b = b / ratio as u32;
                match merged.iter_mut().rev().take(4).find(|(m, _)| *m == b) {
                    Some((_, m)) => *m = m.saturating_add(*n),
                    None => merged.push((b, *n)),
                }
            }
            *runs = merged;
        }
    }

    /// The timeline with the `n` sources of most calls by name, the rest as `other sources`.
    pub fn finish(&self, n: usize, source_name: impl Fn(u32) -> String) -> Timeline {
        let len = self.total.len();
        let series = |runs: &[(u32, u32)]| {
            let mut calls = vec![0u64; len];
            for (b, c) in runs {
                calls[*b as usize] += u64::from(*c);
            }
            calls
        };
        let mut totals: Vec<(u32, u64)> = self
            .per_source
            .iter()
            .enumerate()
            .map(|(id, runs)| (id as u32, runs.iter().map(|(_, c)| u64::from(*c)).sum::<u64>()))
            .filter(|(_, t)| *t > 0)
            .collect();
        totals.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        let mut sources: Vec<SourceSeries> = totals
            .iter()
            .take(n)
            .map(|(id, total)| SourceSeries {
                source: source_name(*id),
                total: *total,
                calls: series(&self.per_source[*id as usize]),
            })
            .collect();
        if totals.len() > n {
            let mut calls = self.total.clone();
            for s in &sources {
                for (c, own) in calls.iter_mut().zip(&s.calls) {
                    *c -= own;
                }
            }
            let total = calls.iter().sum();
            sources.push(SourceSeries { source: "other sources".into(), total, calls });
        }
        Timeline {
            start: self.start_us.and_then(chrono::DateTime::from_timestamp_micros),
            bucket_secs: (self.bucket_us / 1_000_000) as u64,
            calls: self.total.clone(),
            sources,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIN: i64 = 60_000_000;

    #[test]
    fn minutes_until_the_range_needs_wider_buckets() {
        let mut t = TimelineCounts::default();
        for i in 0..100 {
            t.add(i * MIN + 5, (i % 2) as u32);
        }
        let tl = t.finish(10, |id| format!("s{id}"));
        assert_eq!((tl.bucket_secs, tl.calls.len()), (60, 100));
        assert_eq!(tl.sources.len(), 2);
        assert_eq!(tl.sources[0].calls.iter().sum::<u64>(), 50);

        // Two days of calls every minute: 15-minute buckets, 192 of them.
        let mut t = TimelineCounts::default();
        for i in 0..2 * 24 * 60 {
            t.add(i * MIN, 0);
        }
        let tl = t.finish(10, |_| "s".into());
        assert_eq!(tl.bucket_secs, 900);
        assert_eq!(tl.calls.len(), 192);
        assert!(tl.calls.iter().all(|c| *c == 15));
        assert_eq!(tl.sources[0].calls, tl.calls);
    }

    #[test]
    fn the_rest_is_other_sources_and_sums_add_up() {
        let mut t = TimelineCounts::starting_at(Some(0));
        for i in 0..1_000i64 {
            t.add(i * 7 * MIN, (i % 5) as u32);
        }
        let tl = t.finish(2, |id| format!("s{id}"));
        assert_eq!(tl.sources.len(), 3);
        assert_eq!(tl.sources[2].source, "other sources");
        let sum: u64 = tl.sources.iter().map(|s| s.total).sum();
        assert_eq!(sum, 1_000);
        for b in 0..tl.calls.len() {
            assert_eq!(tl.sources.iter().map(|s| s.calls[b]).sum::<u64>(), tl.calls[b]);
        }
        assert!(tl.calls.len() <= MAX_BUCKETS);
    }
}
