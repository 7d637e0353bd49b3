//! `duplicate_requests` (DESIGN §6): identical requests (source, method,
//! path, cursor) within a short window with nothing in between — no other
//! request by that source, no change at or under the path. The pages of one
//! listing differ in their cursor, so they are never duplicates.
//!
//! A poller that asks every second also repeats identical requests within
//! two seconds. What tells a retry from a poll is the pace: a retry comes
//! much sooner than the source's usual gap for that request, so a repeat is
//! a duplicate only when its gap is below `duplicate_pace_ratio` times the
//! gaps before and after it. To see the gap after, calls wait in a short
//! lookahead line (`duplicate_window_secs / duplicate_pace_ratio`) before
//! they go on to the other analyses, already marked duplicate or not.
//!
//! Uploads are begin and finish: two writes of one path. The second
//! identical write of a run is taken as the finish, not a duplicate; a
//! doubled single-request upload (FTP `STOR` twice) is therefore missed.

use crate::call::Call;
use crate::changes::{is_change, ChangeTracker};
use crate::config::{secs_to_us, AuditConfig};
use crate::listing::Tally;
use crate::paths::{common_path, PathId, PathTable};
use crate::report::{thousands, Finding, FindingDetails};
use crate::source::{SourceId, SourceTable};
use crate::Map;
use callmeter_model::Operation;
use std::collections::VecDeque;

/// A source's last request, to compare the next one with.
#[derive(Debug)]
struct LastRequest {
    /// Its place in the lookahead line.
    line_seq: u64,
    time: i64,
    operation: Operation,
    method: Option<Box<str>>,
    path: Option<PathId>,
    cursor: Option<Box<str>>,
    /// Gap to the identical request just before it, if it had one.
    gap: Option<i64>,
    /// Identical requests in a row so far, this one included.
    run: u32,
}

/// A call waiting in the lookahead line.
#[derive(Debug)]
struct Waiting {
    call: Call,
    /// Gap to the identical request before it, when it may be a duplicate.
    candidate_gap: Option<i64>,
    /// The identical request's own gap before it.
    gap_before: Option<i64>,
    /// Gap to the identical request after it, once seen.
    gap_after: Option<i64>,
}

/// Marks each call duplicate or not, in time order, with a short lookahead.
#[derive(Debug)]
pub(crate) struct RetryDetector {
    window: i64,
    lookahead: i64,
    ratio: f64,
    line: VecDeque<Waiting>,
    /// The place of the line's front; an entry is found at `line_seq − front_seq`.
    front_seq: u64,
    /// The place the next call takes.
    next_seq: u64,
    last: Map<SourceId, LastRequest>,
    /// Changes as of the calls entering the line (ahead of the analyses' own).
    changes: ChangeTracker,
}

impl RetryDetector {
    pub fn new(config: &AuditConfig) -> RetryDetector {
        let window = secs_to_us(config.duplicate_window_secs);
        let ratio = config.duplicate_pace_ratio;
        // With `ratio × lookahead = window`, a lone pair within the window always counts.
        let lookahead = if ratio > 0.0 { ((window as f64 / ratio) as i64).min(secs_to_us(600.0)) } else { 0 };
        RetryDetector {
            window,
            lookahead,
            ratio,
            line: VecDeque::new(),
            front_seq: 0,
            next_seq: 0,
            last: Map::default(),
            changes: ChangeTracker::default(),
        }
    }

    /// Takes the next call in time order; pushes the calls that leave the line, with their verdict.
    pub fn push(&mut self, call: Call, paths: &PathTable, out: &mut Vec<(Call, bool)>) {
        let mut candidate_gap = None;
        let mut gap_before = None;
        let mut run = 1;
        let mut same_gap = None;
        if let Some(last) = self.last.get(&call.source) {
            // The operation too: a copy and a move of one file are both `POST` of its path.
            let same = last.operation == call.operation
                && last.method == call.method
                && last.path == call.path
                && last.cursor == call.cursor;
            if same {
                let gap = call.time - last.time;
                same_gap = Some(gap);
                let close = (0..=self.window).contains(&gap);
                // A run is identical requests close together: the same file written again an
                // hour later starts a new one (its begin and finish are no duplicates).
                run = if close { last.run + 1 } else { 1 };
                let unchanged = call.path.is_none_or(|p| !self.changes.changed_since(p, last.time));
                // The second write of a run is the finish of an upload.
                let upload_finish = call.operation == Operation::Write && run == 2;
                if close && unchanged && !upload_finish {
                    candidate_gap = Some(gap);
                    gap_before = last.gap;
                }
                if let Some(w) = last.line_seq.checked_sub(self.front_seq).and_then(|i| self.line.get_mut(i as usize)) {
                    w.gap_after = Some(gap);
                }
            }
        }
        if is_change(call.operation) {
            for p in [call.path, call.destination].into_iter().flatten() {
                self.changes.record(paths, p, call.time);
            }
        }
        self.last.insert(
            call.source,
            LastRequest {
                line_seq: self.next_seq,
                time: call.time,
                operation: call.operation,
                method: call.method.clone(),
                path: call.path,
                cursor: call.cursor.clone(),
                gap: same_gap,
                run,
            },
        );
        let newest = call.time;
        self.next_seq += 1;
        self.line.push_back(Waiting { call, candidate_gap, gap_before, gap_after: None });
        self.release(newest - self.lookahead, out);
    }

    /// Lets every call go (end of input).
    pub fn finish(&mut self, out: &mut Vec<(Call, bool)>) {
        self.release(i64::MAX, out);
    }

    fn release(&mut self, before_or_at: i64, out: &mut Vec<(Call, bool)>) {
        while self.line.front().is_some_and(|w| w.call.time <= before_or_at) {
            let Some(w) = self.line.pop_front() else { break };
            self.front_seq += 1;
            let duplicate = w.candidate_gap.is_some_and(|gap| {
                // Pollers do not write: a write repeated beyond begin and finish is a duplicate
                // whatever the pace (the gap between begin and finish is no pace to compare with).
                if w.call.operation == Operation::Write {
                    return true;
                }
                let pace = w.gap_before.unwrap_or(i64::MAX).min(w.gap_after.unwrap_or(self.lookahead));
                (gap as f64) < self.ratio * pace as f64
            });
            out.push((w.call, duplicate));
        }
    }
}

/// The duplicates of each source, for its finding.
#[derive(Debug, Default)]
pub(crate) struct DuplicateTally {
    by_source: Map<SourceId, SourceDuplicates>,
}

#[derive(Debug)]
struct SourceDuplicates {
    avoidable: Tally,
    /// The folder every duplicated path is at or under.
    path: String,
    operation: Option<Operation>,
}

impl DuplicateTally {
    /// Counts one duplicate call.
    pub fn add(&mut self, call: &Call, paths: &PathTable) {
        let path = call.path.map_or("/", |p| paths.name(p));
        let d = self.by_source.entry(call.source).or_insert_with(|| SourceDuplicates {
            avoidable: Tally::default(),
            path: path.to_owned(),
            operation: Some(call.operation),
        });
        d.avoidable.add(Tally::one(call.billable));
        if d.path != path {
            d.path = common_path(&d.path, path);
        }
        if d.operation != Some(call.operation) {
            d.operation = None;
        }
    }

    /// One finding per source that sent duplicates.
    pub fn findings(&self, sources: &SourceTable, config: &AuditConfig) -> Vec<Finding> {
        self.by_source
            .iter()
            .map(|(source, d)| {
                let s = sources.get(*source);
                let n = d.avoidable.calls;
                let recommendation = format!(
                    "{} sent {} requests a second time within {} s with nothing in between (retries or a loop), \
                     under {}. Make it wait for each answer and retry only on errors, with backoff: {} calls fewer.",
                    s.key,
                    thousands(n),
                    config.duplicate_window_secs,
                    d.path,
                    thousands(n)
                );
                Finding {
                    source: s.clone(),
                    path: d.path.clone(),
                    operation: d.operation,
                    calls: 2 * n,
                    avoidable_calls: n,
                    avoidable_billable_calls: d.avoidable.billable,
                    recommendation,
                    details: FindingDetails::DuplicateRequests {
                        duplicates: n,
                        window_secs: config.duplicate_window_secs,
                    },
                }
            })
            .collect()
    }
}
