//! `duplicate_requests` (DESIGN §6): identical requests (source, method,
//! path, cursor) repeated within a short window with nothing in between:
//! retries of answers that did not fail, or loops. Which calls are duplicates
//! is decided in [`crate::repeats`] (the pages of one listing differ in their
//! cursor and are never duplicates; a repeat after a failed answer is a retry,
//! not a duplicate); here they are counted into one finding per source.

use crate::call::Call;
use crate::config::AuditConfig;
use crate::listing::Tally;
use crate::paths::{common_path, PathId, PathTable};
use crate::report::{thousands, Finding, FindingDetails};
use crate::source::{SourceId, SourceTable};
use crate::Map;
use callmeter_model::Operation;

/// The duplicates of each source, for its finding.
#[derive(Debug, Default)]
pub(crate) struct DuplicateTally {
    by_source: Map<SourceId, SourceDuplicates>,
}

#[derive(Debug)]
struct SourceDuplicates {
    avoidable: Tally,
    /// Runs of identical requests that held duplicates: each has one first request that was needed.
    runs: u64,
    /// The request of the last duplicate: the next one of the same request is in its run.
    last: (Operation, Option<PathId>, Option<Box<str>>),
    /// The folder every duplicated path is at or under.
    path: String,
    operation: Option<Operation>,
}

impl DuplicateTally {
    /// Counts one duplicate call.
    pub fn add(&mut self, call: &Call, paths: &PathTable) {
        let path = call.path.map_or("/", |p| paths.name(p));
        let request = (call.operation, call.path, call.cursor.clone());
        let d = self.by_source.entry(call.source).or_insert_with(|| SourceDuplicates {
            avoidable: Tally::default(),
            runs: 0,
            last: request.clone(),
            path: path.to_owned(),
            operation: Some(call.operation),
        });
        if d.avoidable.calls == 0 || d.last != request {
            d.runs += 1;
            d.last = request;
        }
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
                    "{} repeated {} requests within {} s of the same request with nothing in between (a loop, or \
                     retries of answers that had not failed), under {}. Make it wait for each answer and retry only \
                     on errors, with backoff: {} calls fewer.",
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
                    calls: n + d.runs,
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
