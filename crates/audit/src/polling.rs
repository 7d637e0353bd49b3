//! `polling` (DESIGN §6): one source repeating list, stat or read of one path
//! at a regular interval.
//!
//! Each (source, operation, path) is a stream of polls (a multi-page listing
//! is one poll). Its intervals are kept in a bounded sample; at the end they
//! are scored the way beacon detectors (RITA) score connection intervals:
//!
//! - the period is the median interval;
//! - an interval of about 2 or 3 periods is missed polls: it is divided by its
//!   number of periods ("folded") before scoring, so up to 10 % missed polls
//!   cost nothing; a longer one is a pause and is left out, so pauses of hours
//!   do not spoil the score;
//! - the score is the mean of `1 − |Bowley skew|` and a median-absolute-
//!   deviation score (`1 − (MAD / median) / polling_max_relative_mad`) of the
//!   folded intervals, and the "fit": the share of intervals (pauses left
//!   out) within `polling_jitter_tolerance` of one period.
//!
//! The fit is what sets a poller apart from a person who opens the same
//! folder often but at random moments: a person's intervals spread over
//! orders of magnitude and few land near their median, while a poller that
//! misses one poll in ten still has nine intervals in ten at one period.
//!
//! Avoidable calls are the repeats that saw no change at or under the path
//! since the poll before (by anyone), each costing all its pages. Listings
//! the list-after-write analysis took are not counted here, nor are
//! duplicates: each avoidable call is in one finding only.

use crate::call::Call;
use crate::changes::ChangeTracker;
use crate::config::AuditConfig;
use crate::intervals::{bowley_skew, median_abs_deviation, quantile, IntervalSample};
use crate::listing::{Listing, Tally};
use crate::paths::{parent_path, PathId, PathTable};
use crate::report::{duration_words, thousands, Finding, FindingDetails, ProposedWebhook};
use crate::source::{SourceId, SourceTable};
use crate::Map;
use callmeter_model::Operation;

/// How regular a stream's intervals are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Regularity {
    /// The period: the median interval, in seconds.
    pub period_secs: f64,
    /// The score, 0–1.
    pub score: f64,
    /// Bowley skew of the folded intervals.
    pub bowley_skew: f64,
    /// MAD of the folded intervals over their median.
    pub relative_mad: f64,
    /// Share of the (non-pause) intervals within tolerance of one period.
    pub fit: f64,
    /// Intervals left out as pauses.
    pub pauses: u64,
}

impl Regularity {
    /// Whether these intervals are polling by the config's thresholds.
    pub fn is_polling(&self, config: &AuditConfig) -> bool {
        self.score >= config.polling_min_score && self.fit >= config.polling_min_fit
    }
}

/// Scores intervals (seconds, any order). `None` when there are too few, once
/// pauses are left out, to say anything.
pub fn regularity(intervals: &[f64], config: &AuditConfig) -> Option<Regularity> {
    let mut sorted: Vec<f64> = intervals.iter().copied().filter(|v| v.is_finite() && *v >= 0.0).collect();
    sorted.sort_by(f64::total_cmp);
    let period = quantile(&sorted, 0.5)?;
    if period <= 0.0 {
        return None;
    }
    let max_k = f64::from(config.polling_max_missed_periods);
    let mut folded = Vec::with_capacity(sorted.len());
    let mut fits = 0usize;
    let mut pauses = 0u64;
    for v in &sorted {
        let k = (v / period).round().max(1.0);
        if k > max_k {
            pauses += 1;
            continue;
        }
        let u = v / k;
        // Only single periods fit: random gaps land near some multiple of their median half the
        // time, but near the median itself rarely; a poller missing 10 % of its polls still has
        // some 90 % single periods.
        if k == 1.0 && (u / period - 1.0).abs() <= config.polling_jitter_tolerance {
            fits += 1;
        }
        folded.push(u);
    }
    if folded.len() < config.polling_min_intervals {
        return None;
    }
    folded.sort_by(f64::total_cmp);
    let skew = bowley_skew(&folded);
    let median = quantile(&folded, 0.5).unwrap_or(period);
    let relative_mad = if median > 0.0 { median_abs_deviation(&folded) / median } else { 1.0 };
    let mad_score = (1.0 - relative_mad / config.polling_max_relative_mad).clamp(0.0, 1.0);
    let fit = fits as f64 / folded.len() as f64;
    let score = ((1.0 - skew.abs()) + mad_score + fit) / 3.0;
    Some(Regularity { period_secs: period, score, bowley_skew: skew, relative_mad, fit, pauses })
}

/// One poll: its first call and the pages after it.
#[derive(Debug)]
struct Poll {
    listing: Listing,
    /// Not the stream's first poll.
    repeat: bool,
    /// A change at or under the path since the poll before.
    changed: bool,
    /// Taken by the list-after-write analysis.
    claimed: bool,
}

#[derive(Debug)]
struct Stream {
    last_poll: Option<i64>,
    current: Option<Poll>,
    polls: u64,
    polls_with_change: u64,
    calls: Tally,
    avoidable: Tally,
    /// What its listings logged as one line took beyond their one call.
    beyond_seen: Tally,
    intervals: IntervalSample,
}

/// A stream's first poll. Most (source, operation, path) streams have only
/// one (a file downloaded once, a folder opened once), and a stream needs
/// repeats to be polling, so only a second poll gives it the full [`Stream`].
#[derive(Debug)]
struct FirstPoll {
    time: i64,
    listing: Listing,
    claimed: bool,
}

impl Stream {
    fn new(key: (SourceId, Operation, PathId)) -> Stream {
        Stream {
            last_poll: None,
            current: None,
            polls: 0,
            polls_with_change: 0,
            calls: Tally::default(),
            avoidable: Tally::default(),
            beyond_seen: Tally::default(),
            intervals: IntervalSample::new(seed_of(key)),
        }
    }

    /// The stream as it stood after its first poll.
    fn after_first(key: (SourceId, Operation, PathId), first: FirstPoll) -> Stream {
        Stream {
            last_poll: Some(first.time),
            current: Some(Poll { listing: first.listing, repeat: false, changed: false, claimed: first.claimed }),
            polls: 1,
            ..Stream::new(key)
        }
    }

    /// One call of the stream: a later page of the current poll, or the next poll.
    fn observe(&mut self, call: &Call, path: PathId, claimed: bool, changes: &ChangeTracker, config: &AuditConfig) {
        if call.is_later_page() {
            match &mut self.current {
                Some(p) => p.listing.page(call.billable, call.result_count),
                // The listing began before the audited range: a call, but no poll.
                None => self.calls.add(Tally::one(call.billable)),
            }
            return;
        }
        self.close_current(config.list_page_size);
        let changed = self.last_poll.is_some_and(|t| changes.changed_since(path, t));
        if let Some(t) = self.last_poll {
            self.intervals.push((call.time - t) as f64 / 1e6, config.polling_interval_samples);
        }
        self.polls += 1;
        self.polls_with_change += u64::from(changed);
        self.current = Some(Poll {
            listing: Listing::first(call.billable, call.result_count),
            repeat: self.last_poll.is_some(),
            changed,
            claimed,
        });
        self.last_poll = Some(call.time);
    }

    fn close_current(&mut self, page_size: u64) {
        if let Some(p) = self.current.take() {
            let cost = p.listing.cost(page_size);
            self.calls.add(cost);
            self.beyond_seen.add(p.listing.beyond_seen(page_size));
            if p.repeat && !p.changed && !p.claimed {
                self.avoidable.add(cost);
            }
        }
    }
}

/// Every (source, operation, path) stream of list, stat and read calls.
#[derive(Debug, Default)]
pub(crate) struct PollStreams {
    /// Streams with two polls or more.
    streams: Map<(SourceId, Operation, PathId), Stream>,
    /// Streams with one poll so far.
    first_polls: Map<(SourceId, Operation, PathId), FirstPoll>,
}

/// Whether polling is looked for in calls of this operation.
pub(crate) fn is_pollable(op: Operation) -> bool {
    matches!(op, Operation::List | Operation::Stat | Operation::Read)
}

impl PollStreams {
    /// One call that is not a duplicate; `claimed` when list-after-write took it.
    pub fn observe(&mut self, call: &Call, claimed: bool, changes: &ChangeTracker, config: &AuditConfig) {
        let Some(path) = call.path else { return };
        if !is_pollable(call.operation) {
            return;
        }
        let key = (call.source, call.operation, path);
        // The common case first, with one lookup: a stream that repeats.
        if let Some(s) = self.streams.get_mut(&key) {
            s.observe(call, path, claimed, changes, config);
            return;
        }
        let later_page = call.is_later_page();
        let s = match self.first_polls.get_mut(&key) {
            Some(first) if later_page => {
                first.listing.page(call.billable, call.result_count);
                return;
            }
            Some(_) => {
                let first = self.first_polls.remove(&key).expect("just found");
                self.streams.entry(key).insert_entry(Stream::after_first(key, first)).into_mut()
            }
            // The listing began before the audited range: a call, but no poll.
            None if later_page => self.streams.entry(key).insert_entry(Stream::new(key)).into_mut(),
            None => {
                let first =
                    FirstPoll { time: call.time, listing: Listing::first(call.billable, call.result_count), claimed };
                self.first_polls.insert(key, first);
                return;
            }
        };
        s.observe(call, path, claimed, changes, config);
    }

    /// What the listings logged as one line took beyond their one call, all
    /// streams together, for `what_if`'s calls (after [`PollStreams::findings`]
    /// has closed the last poll of each stream).
    pub fn listed_beyond_events(&self, page_size: u64) -> Tally {
        let mut t = Tally::default();
        for s in self.streams.values() {
            t.add(s.beyond_seen);
        }
        for f in self.first_polls.values() {
            t.add(f.listing.beyond_seen(page_size));
        }
        t
    }

    /// The pollers, scored; streams that are not regular give nothing.
    pub fn findings(&mut self, paths: &PathTable, sources: &SourceTable, config: &AuditConfig) -> Vec<Finding> {
        let mut out = Vec::new();
        for ((source, op, path), s) in &mut self.streams {
            s.close_current(config.list_page_size);
            let Some(r) = regularity(&s.intervals.values(), config) else { continue };
            if !r.is_polling(config) {
                continue;
            }
            let path = paths.name(*path);
            let src = sources.get(*source);
            let unchanged = s.polls.saturating_sub(1).saturating_sub(s.polls_with_change);
            let (verb, folder) = match op {
                Operation::List => ("lists", path),
                Operation::Stat => ("checks", parent_path(path).unwrap_or("/")),
                _ => ("downloads", parent_path(path).unwrap_or("/")),
            };
            let recommendation = format!(
                "{} {} {} every {} ({} times); {} of those repeats found nothing new. Subscribe a webhook to {} \
                 (create, update, destroy, move, copy) and {} {} only when it fires: about {} calls fewer.",
                src.key,
                verb,
                path,
                duration_words(r.period_secs),
                thousands(s.polls),
                thousands(unchanged),
                folder,
                verb.trim_end_matches('s'),
                path,
                thousands(s.avoidable.calls)
            );
            out.push(Finding {
                source: src.clone(),
                path: path.to_owned(),
                operation: Some(*op),
                calls: s.calls.calls,
                avoidable_calls: s.avoidable.calls,
                avoidable_billable_calls: s.avoidable.billable,
                recommendation,
                details: FindingDetails::Polling {
                    interval_secs: r.period_secs,
                    polls: s.polls,
                    polls_with_change: s.polls_with_change,
                    // Counted in the sample: scaled to all the intervals.
                    pauses: (r.pauses as f64 * s.intervals.seen() as f64 / s.intervals.len().max(1) as f64).round()
                        as u64,
                    regularity: r.score,
                    bowley_skew: r.bowley_skew,
                    relative_mad: r.relative_mad,
                    fit: r.fit,
                    webhook: Some(ProposedWebhook::on(folder)),
                },
            });
        }
        out
    }
}

/// A per-stream seed, so that streams sample their intervals independently but reproducibly.
fn seed_of((source, op, path): (SourceId, Operation, PathId)) -> u64 {
    (u64::from(source) << 40) ^ (u64::from(op.code()) << 32) ^ u64::from(path) ^ 0x9E37_79B9_7F4A_7C15
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic stand-in for randomness in these tests.
    fn noise(i: usize) -> f64 {
        let x = ((i as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 11) as f64 / (1u64 << 53) as f64;
        2.0 * x - 1.0
    }

    #[test]
    fn jittered_pollers_with_misses_and_pauses_are_regular() {
        let c = AuditConfig::default();
        for period in [1.0, 60.0, 900.0, 3_600.0] {
            let mut v: Vec<f64> = (0..200).map(|i| period * (1.0 + 0.2 * noise(i))).collect();
            for i in (0..200).step_by(10) {
                v[i] = 2.0 * period * (1.0 + 0.2 * noise(i + 1000)); // 10 % missed polls
            }
            v[50] = 5.0 * 3_600.0; // pauses of hours
            v[150] = 3.0 * 3_600.0 + 17.0;
            let r = regularity(&v, &c).unwrap();
            assert!(r.is_polling(&c), "period {period}: {r:?}");
            assert!((r.period_secs / period - 1.0).abs() < 0.1, "{r:?}");
        }
    }

    #[test]
    fn random_revisits_are_not_regular() {
        let c = AuditConfig::default();
        // Log-uniform between 20 s and 3 h: a person opening a folder now and then.
        let v: Vec<f64> = (0..60).map(|i| 20.0 * (540.0f64).powf((noise(i) + 1.0) / 2.0)).collect();
        let r = regularity(&v, &c).unwrap();
        assert!(!r.is_polling(&c), "{r:?}");
        // Exponential gaps (a Poisson visitor) neither.
        let v: Vec<f64> = (0..60).map(|i| -600.0 * ((noise(i) + 1.0) / 2.0 + 1e-9).ln()).collect();
        assert!(!regularity(&v, &c).unwrap().is_polling(&c));
    }

    #[test]
    fn too_few_intervals_say_nothing() {
        let c = AuditConfig::default();
        assert_eq!(regularity(&[60.0; 5], &c), None);
        assert_eq!(regularity(&[], &c), None);
        assert_eq!(regularity(&[0.0; 20], &c), None);
    }
}
