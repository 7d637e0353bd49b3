//! What each repeated request is (DESIGN §6): a duplicate, a retry after a
//! failed answer, or neither. Calls pass through here in time order and come
//! out, a little later, with their [`Verdict`].
//!
//! A **repeat** is a request identical to the one its source sent just
//! before (same operation, method, path and cursor, nothing else by that
//! source in between). It is a *candidate* duplicate when it comes within
//! `duplicate_window_secs` and nothing changed at or under its path since.
//!
//! - A repeat of a request whose answer failed (408, 429, 5xx, no answer:
//!   [`crate::failed_answer`]) is a **retry**, which the recommendation itself
//!   asks for, whatever its delay (a fixed 3 s, a backoff of minutes, a
//!   poller's next poll through an outage): never avoidable, counted apart,
//!   and left out of every other analysis ([`crate::auditor`]).
//! - A **run** is identical requests in a row, none more than `chain_gap`
//!   after the one before (`max(lookahead, 4 × duplicate_window_secs)`: a
//!   poller missing a poll or two stays in its run). A run with fewer repeats
//!   than polling needs (`polling_min_intervals`) cannot be polling, so its
//!   candidates are duplicates whatever their pace: a client fetching each
//!   file three times a second apart wastes two calls of three.
//! - In a longer run, a poller that asks every second also repeats within two
//!   seconds, so the pace tells a retry from a poll: a candidate is a duplicate
//!   only when its gap is below `duplicate_pace_ratio` times the gaps before
//!   and after it.
//! - Uploads are begin and finish, two writes of one path: the second identical
//!   write of a run (within the window) is the finish, and writes beyond it are
//!   duplicates whatever the pace (pollers do not write). A doubled
//!   single-request upload (FTP `STOR` twice) is therefore missed.
//!
//! To see the gap after a call and whether its run grows long, calls wait in
//! a line for `lookahead` (`duplicate_window_secs / duplicate_pace_ratio`)
//! after their own time; a candidate whose run is still short and going on
//! waits until the run ends or grows long enough: at most about
//! `polling_min_intervals × chain_gap`, so the line stays short.

use crate::call::Call;
use crate::changes::{is_change, ChangeTracker};
use crate::config::{secs_to_us, AuditConfig};
use crate::paths::{PathId, PathTable};
use crate::source::SourceId;
use crate::Map;
use callmeter_model::Operation;
use std::collections::VecDeque;

/// What a call is, once the detector has seen enough after it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Not a duplicate: it goes on to the other analyses.
    Fresh,
    /// A duplicate: avoidable, and in the duplicate finding only.
    Duplicate,
    /// A repeat after a failed answer: not avoidable, counted apart, and seen by no other analysis.
    RetryAfterError,
}

/// Whether a candidate's run turned out too short to be polling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RunLength {
    /// Still going, and short so far.
    Unknown,
    /// Ended with fewer repeats than polling needs.
    Short,
    /// Reached as many repeats as polling needs: judged by its pace.
    Long,
}

/// What is known of a waiting call.
#[derive(Debug)]
enum Pending {
    Decided(Verdict),
    /// A repeat within the window with no change since: a duplicate unless its
    /// run is long and its pace is that of a poller.
    Candidate {
        gap: i64,
        /// The gap of the identical pair before it.
        gap_before: Option<i64>,
        /// The gap to the identical request after it, once seen.
        gap_after: Option<i64>,
        run: RunLength,
    },
}

/// A call waiting in the line.
#[derive(Debug)]
struct Waiting {
    call: Call,
    pending: Pending,
}

/// The identical requests in a row that a source's last request belongs to.
#[derive(Debug, Default)]
struct Run {
    /// Requests in it so far.
    len: u32,
    /// As many repeats as polling needs.
    long: bool,
    /// Its candidates waiting to know whether it is long: their places in the line.
    undecided: Vec<u64>,
}

/// A source's last request, to compare the next one with.
#[derive(Debug)]
struct LastRequest {
    /// Its place in the line.
    line_seq: u64,
    time: i64,
    operation: Operation,
    method: Option<Box<str>>,
    path: Option<PathId>,
    cursor: Option<Box<str>>,
    failed: bool,
    /// Gap to the identical request just before it, if it had one.
    gap: Option<i64>,
    /// Identical writes in a row within the window since the last failure (begin and finish are two).
    writes: u32,
    run: Run,
}

/// Gives each call its verdict, in time order, with a short lookahead.
#[derive(Debug)]
pub(crate) struct RepeatDetector {
    window: i64,
    lookahead: i64,
    chain_gap: i64,
    ratio: f64,
    /// Requests a run needs to be judged by its pace: one more than polling's intervals.
    long_run: u32,
    line: VecDeque<Waiting>,
    /// The place of the line's front; an entry is found at `line_seq − front_seq`.
    front_seq: u64,
    /// The place the next call takes.
    next_seq: u64,
    /// The time of the newest call taken.
    newest: i64,
    last: Map<SourceId, LastRequest>,
    /// Changes as of the calls entering the line (ahead of the analyses' own).
    changes: ChangeTracker,
}

impl RepeatDetector {
    pub fn new(config: &AuditConfig) -> RepeatDetector {
        let window = secs_to_us(config.duplicate_window_secs);
        let ratio = config.duplicate_pace_ratio;
        // With `ratio × lookahead = window`, a lone pair within the window always counts.
        let lookahead = if ratio > 0.0 { ((window as f64 / ratio) as i64).min(secs_to_us(600.0)) } else { 0 };
        RepeatDetector {
            window,
            lookahead,
            chain_gap: lookahead.max(4 * window),
            ratio,
            long_run: u32::try_from(config.polling_min_intervals).unwrap_or(u32::MAX).saturating_add(1),
            line: VecDeque::new(),
            front_seq: 0,
            next_seq: 0,
            newest: i64::MIN,
            last: Map::default(),
            changes: ChangeTracker::default(),
        }
    }

    /// The waiting call at `line_seq`, if it is still in the line.
    fn waiting(&mut self, line_seq: u64) -> Option<&mut Waiting> {
        line_seq.checked_sub(self.front_seq).and_then(|i| self.line.get_mut(i as usize))
    }

    /// Settles the run length of a run's undecided candidates.
    fn settle(&mut self, undecided: Vec<u64>, length: RunLength) {
        for seq in undecided {
            if let Some(Waiting { pending: Pending::Candidate { run, .. }, .. }) = self.waiting(seq) {
                *run = length;
            }
        }
    }

    /// Takes the next call in time order; pushes the calls that leave the line, with their verdict.
    pub fn push(&mut self, call: Call, paths: &PathTable, out: &mut Vec<(Call, Verdict)>) {
        let line_seq = self.next_seq;
        self.next_seq += 1;
        self.newest = self.newest.max(call.time);
        let previous = self.last.remove(&call.source);
        let mut pending = Pending::Decided(Verdict::Fresh);
        let (mut gap_to_previous, mut writes, mut run) = (None, 1, Run::default());
        if let Some(mut last) = previous {
            // The operation too: a copy and a move of one file are both `POST` of its path.
            let same = last.operation == call.operation
                && last.method == call.method
                && last.path == call.path
                && last.cursor == call.cursor;
            let gap = call.time - last.time;
            // A repeat of a failed request is its retry, however long the client waited (a fixed
            // delay of 3 s, a backoff of minutes, a poller through an outage): never avoidable.
            if same && last.failed {
                pending = Pending::Decided(Verdict::RetryAfterError);
            }
            if same && gap <= self.chain_gap {
                gap_to_previous = Some(gap);
                if let Some(w) = self.waiting(last.line_seq) {
                    if let Pending::Candidate { gap_after, .. } = &mut w.pending {
                        *gap_after = Some(gap);
                    }
                }
                run = std::mem::take(&mut last.run);
                let close = (0..=self.window).contains(&gap);
                // The same file written again an hour later is a new upload (begin and finish again).
                writes = if close && !last.failed { last.writes + 1 } else { 1 };
                let unchanged = call.path.is_none_or(|p| !self.changes.changed_since(p, last.time));
                // The second write of a run is the finish of an upload.
                let upload_finish = call.operation == Operation::Write && writes == 2;
                if close && unchanged && !upload_finish && !last.failed {
                    pending = if call.operation == Operation::Write {
                        // Pollers do not write: a write repeated beyond begin and finish is a
                        // duplicate whatever the pace (begin to finish is no pace to compare with).
                        Pending::Decided(Verdict::Duplicate)
                    } else {
                        let length = if run.long { RunLength::Long } else { RunLength::Unknown };
                        Pending::Candidate { gap, gap_before: last.gap, gap_after: None, run: length }
                    };
                }
            } else {
                // Another request, or a silence: the run has ended short unless it was long.
                let undecided = std::mem::take(&mut last.run.undecided);
                self.settle(undecided, RunLength::Short);
            }
        }
        run.len += 1;
        if matches!(pending, Pending::Candidate { run: RunLength::Unknown, .. }) {
            run.undecided.push(line_seq);
        }
        if !run.long && run.len >= self.long_run {
            run.long = true;
            let undecided = std::mem::take(&mut run.undecided);
            if let Pending::Candidate { run: length @ RunLength::Unknown, .. } = &mut pending {
                *length = RunLength::Long;
            }
            self.settle(undecided, RunLength::Long);
        }
        if is_change(call.operation) {
            for p in [call.path, call.destination].into_iter().flatten() {
                self.changes.record(paths, p, call.time);
            }
        }
        self.last.insert(
            call.source,
            LastRequest {
                line_seq,
                time: call.time,
                operation: call.operation,
                method: call.method.clone(),
                path: call.path,
                cursor: call.cursor.clone(),
                failed: call.failed,
                gap: gap_to_previous,
                writes,
                run,
            },
        );
        let ready = self.newest.saturating_sub(self.lookahead);
        self.line.push_back(Waiting { call, pending });
        self.release(ready, false, out);
    }

    /// Lets every call go (end of input): runs still going have ended.
    pub fn finish(&mut self, out: &mut Vec<(Call, Verdict)>) {
        self.release(i64::MAX, true, out);
    }

    fn release(&mut self, before_or_at: i64, at_end: bool, out: &mut Vec<(Call, Verdict)>) {
        while let Some(front) = self.line.front() {
            if front.call.time > before_or_at {
                break;
            }
            if let Pending::Candidate { run: RunLength::Unknown, .. } = front.pending {
                let source = front.call.source;
                // Its run is its source's current one (any other request would have ended it).
                let quiet = self.last.get(&source).is_none_or(|l| self.newest - l.time > self.chain_gap);
                if !(quiet || at_end) {
                    break; // the run is short and going on: wait to see how long it gets
                }
                let undecided = self.last.get_mut(&source).map(|l| std::mem::take(&mut l.run.undecided));
                self.settle(undecided.unwrap_or_default(), RunLength::Short);
            }
            let Some(w) = self.line.pop_front() else { break };
            self.front_seq += 1;
            let verdict = match w.pending {
                Pending::Decided(v) => v,
                Pending::Candidate { run: RunLength::Short | RunLength::Unknown, .. } => Verdict::Duplicate,
                Pending::Candidate { gap, gap_before, gap_after, run: RunLength::Long } => {
                    let pace = gap_before.unwrap_or(i64::MAX).min(gap_after.unwrap_or(self.lookahead));
                    if (gap as f64) < self.ratio * pace as f64 {
                        Verdict::Duplicate
                    } else {
                        Verdict::Fresh
                    }
                }
            };
            out.push((w.call, verdict));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::paths::PathTable;

    /// Verdicts of reads by source 0 of `path` at `times` (seconds), with their statuses.
    fn verdicts(calls: &[(f64, &str, u16)]) -> Vec<Verdict> {
        let config = AuditConfig::default();
        let mut paths = PathTable::default();
        let mut d = RepeatDetector::new(&config);
        let mut out = Vec::new();
        for (i, (t, path, status)) in calls.iter().enumerate() {
            let path = paths.intern(path);
            let call = Call {
                seq: i as u64,
                time: secs_to_us(*t),
                source: 0,
                operation: Operation::Read,
                method: Some("GET".into()),
                path: Some(path),
                destination: None,
                cursor: None,
                result_count: None,
                billable: true,
                failed: crate::failed_answer::is_failed_answer(
                    callmeter_model::Interface::Rest,
                    Some(i64::from(*status)),
                ),
            };
            d.push(call, &paths, &mut out);
        }
        d.finish(&mut out);
        assert!(out.windows(2).all(|w| w[0].0.seq < w[1].0.seq), "in order");
        out.into_iter().map(|(_, v)| v).collect()
    }

    use Verdict::{Duplicate as D, Fresh as F, RetryAfterError as R};

    #[test]
    fn a_fixed_delay_loop_is_duplicates_whatever_its_pace() {
        for gap in [0.2, 1.0, 2.0] {
            let mut calls = Vec::new();
            for (k, file) in ["/a", "/b", "/c"].iter().enumerate() {
                for i in 0..3 {
                    calls.push((100.0 * k as f64 + gap * i as f64, *file, 200));
                }
            }
            assert_eq!(verdicts(&calls), vec![F, D, D, F, D, D, F, D, D], "gap {gap}");
        }
        // A loop that ends in silence, and one that goes on right into the next file.
        let calls = [(0.0, "/a", 200), (1.5, "/a", 200), (3.0, "/a", 200), (4.0, "/b", 200), (5.5, "/b", 200)];
        assert_eq!(verdicts(&calls), vec![F, D, D, F, D]);
    }

    #[test]
    fn a_poller_asking_every_second_is_not_duplicates() {
        let calls: Vec<(f64, &str, u16)> = (0..40).map(|i| (f64::from(i) * 1.0, "/status", 200)).collect();
        assert!(verdicts(&calls).iter().all(|v| *v == F));
        // But a retry inside its long run is: it comes much sooner than its pace.
        let mut calls: Vec<(f64, &str, u16)> = (0..40).map(|i| (f64::from(i) * 1.0, "/status", 200)).collect();
        calls.insert(21, (20.1, "/status", 200));
        let v = verdicts(&calls);
        assert_eq!(v.iter().filter(|v| **v == D).count(), 1, "{v:?}");
        assert_eq!(v[21], D);
    }

    #[test]
    fn a_repeat_after_a_failed_answer_is_a_retry() {
        let calls = [(0.0, "/f", 503), (1.0, "/f", 429), (2.0, "/f", 200), (30.0, "/g", 500), (30.5, "/g", 200)];
        assert_eq!(verdicts(&calls), vec![F, R, R, F, R]);
        // A repeat after the success is a duplicate again; a 404 is no reason to retry.
        let calls = [(0.0, "/f", 503), (1.0, "/f", 200), (1.5, "/f", 200), (10.0, "/g", 404), (10.5, "/g", 404)];
        assert_eq!(verdicts(&calls), vec![F, R, D, F, D]);
    }

    #[test]
    fn a_retry_is_a_retry_whatever_its_delay() {
        for delay in [2.5, 3.0, 10.0, 60.0, 600.0] {
            // Thirty tries at a fixed delay, the last one answered.
            let calls: Vec<(f64, &str, u16)> =
                (0..30).map(|i| (delay * f64::from(i), "/z", if i < 29 { 503 } else { 200 })).collect();
            let v = verdicts(&calls);
            assert_eq!(v[0], F, "the first try");
            assert!(v[1..].iter().all(|v| *v == R), "delay {delay}: {v:?}");
        }
        // A backoff, doubling from 1 s; then the answer, and a repeat of the answered request is judged again.
        let mut t = 0.0;
        let mut calls = Vec::new();
        for (i, wait) in [1.0, 2.0, 4.0, 8.0, 16.0, 32.0].into_iter().enumerate() {
            calls.push((t, "/c", if i < 5 { 429 } else { 200 }));
            t += wait;
        }
        calls.push((t - 32.0 + 0.5, "/c", 200));
        assert_eq!(verdicts(&calls), vec![F, R, R, R, R, R, D]);
        // Something else by the source in between: a new request, not a retry.
        let calls = [(0.0, "/z", 503), (3.0, "/y", 200), (6.0, "/z", 200)];
        assert_eq!(verdicts(&calls), vec![F, F, F]);
    }
}
