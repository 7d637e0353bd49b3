//! The audit engine: fed one call at a time, it answers with the report of
//! DESIGN §6.
//!
//! Calls go through three stages:
//!
//! 1. a reorder buffer: calls may arrive up to `reorder_window_secs` out of
//!    order (several log files, SFTP opens logged at their close) and come
//!    out in time order;
//! 2. the repeat detector's short lookahead line, which marks each call a
//!    duplicate, a retry after a failed answer, or neither ([`crate::repeats`]);
//! 3. the analyses, in precedence order: a duplicate is counted as a
//!    duplicate and nothing else; a listing that an upload batch takes is
//!    list-after-write and never polling; polling counts what is left. A
//!    retry after a failed answer is counted in `retries_after_errors` and
//!    seen by no analysis: it is never avoidable. So every avoidable call is
//!    in one finding only and `what_if` never subtracts a call twice.
//!
//! Memory grows with the number of distinct sources, paths and values (for
//! `top_sources`), and with the calls of the last few seconds held in the
//! first two stages; never with the number of calls.

use crate::call::Call;
use crate::changes::{is_change, ChangeTracker};
use crate::config::AuditConfig;
use crate::duplicates::DuplicateTally;
use crate::error::AuditError;
use crate::failed_answer::is_failed_answer;
use crate::list_after_write::UploadBatches;
use crate::paths::PathTable;
use crate::polling::PollStreams;
use crate::repeats::{RepeatDetector, Verdict};
use crate::report::AuditReport;
use crate::source::SourceTable;
use crate::timeline::TimelineCounts;
use crate::top_sources::TopSourceCounts;
use crate::what_if::what_if;
use callmeter_model::{BillingRules, CallEvent, Plan};
use chrono::{DateTime, Utc};
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// The audit of one account: feed it calls with [`Auditor::push`], then [`Auditor::finish`].
#[derive(Debug)]
pub struct Auditor {
    config: AuditConfig,
    account: Option<String>,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    rules: BillingRules,
    plans: Vec<Plan>,

    paths: PathTable,
    sources: SourceTable,
    top: TopSourceCounts,
    timeline: TimelineCounts,
    calls: u64,
    billable: u64,
    skipped: u64,
    first: Option<DateTime<Utc>>,
    last: Option<DateTime<Utc>>,

    seq: u64,
    newest: i64,
    /// The caller promised time order: calls skip the reorder buffer.
    in_time_order: bool,
    reorder: BinaryHeap<Reverse<Call>>,
    repeats: RepeatDetector,
    released: Vec<(Call, Verdict)>,
    retries_after_errors: u64,

    changes: ChangeTracker,
    duplicates: DuplicateTally,
    batches: UploadBatches,
    polling: PollStreams,
}

impl Auditor {
    /// An auditor with these settings, the platform's default billing rules and no plans.
    pub fn new(config: AuditConfig) -> Result<Auditor, AuditError> {
        config.validate()?;
        let repeats = RepeatDetector::new(&config);
        Ok(Auditor {
            config,
            account: None,
            from: None,
            to: None,
            rules: BillingRules::platform_default(),
            plans: Vec::new(),
            paths: PathTable::default(),
            sources: SourceTable::default(),
            top: TopSourceCounts::default(),
            timeline: TimelineCounts::default(),
            calls: 0,
            billable: 0,
            skipped: 0,
            first: None,
            last: None,
            seq: 0,
            newest: i64::MIN,
            in_time_order: false,
            reorder: BinaryHeap::new(),
            repeats,
            released: Vec::new(),
            retries_after_errors: 0,
            changes: ChangeTracker::default(),
            duplicates: DuplicateTally::default(),
            batches: UploadBatches::default(),
            polling: PollStreams::default(),
        })
    }

    /// Audits only this account's calls (the others are counted as skipped).
    /// Without it, the account of the first call is audited.
    pub fn account(mut self, account: impl Into<String>) -> Auditor {
        self.account = Some(account.into());
        self
    }

    /// Audits only calls in `[from, to)`; either end may be open.
    pub fn range(mut self, from: Option<DateTime<Utc>>, to: Option<DateTime<Utc>>) -> Auditor {
        self.from = from;
        self.to = to;
        self.timeline = TimelineCounts::starting_at(from.map(|t| t.timestamp_micros()));
        self
    }

    /// The calls will come in time order (a store's request log), so they
    /// need no reorder buffer; a call that breaks the promise is analysed
    /// where it comes.
    pub fn in_time_order(mut self) -> Auditor {
        self.in_time_order = true;
        self
    }

    /// The billing rules that say which calls are billable (default: the platform's).
    pub fn billing_rules(mut self, rules: BillingRules) -> Auditor {
        self.rules = rules;
        self
    }

    /// The plans `what_if` picks from.
    pub fn plans(mut self, plans: &[Plan]) -> Auditor {
        self.plans = plans.to_vec();
        self
    }

    /// The settings in use.
    pub fn config(&self) -> &AuditConfig {
        &self.config
    }

    /// Calls audited so far.
    pub fn calls(&self) -> u64 {
        self.calls
    }

    /// Takes one call. Calls should come in time order; up to
    /// `reorder_window_secs` out of order they are put back in order, later
    /// ones are analysed where they come.
    pub fn push(&mut self, e: &CallEvent) {
        match &self.account {
            Some(a) if *a != e.account => {
                self.skipped += 1;
                return;
            }
            Some(_) => {}
            None => self.account = Some(e.account.clone()),
        }
        if self.from.is_some_and(|f| e.time < f) || self.to.is_some_and(|t| e.time >= t) {
            self.skipped += 1;
            return;
        }
        let billable = self.rules.is_billable(e.interface, e.time);
        let source = self.sources.id_of(e);
        let path = e.path.as_deref().map(|p| self.paths.intern(p));
        let destination = e.destination.as_deref().map(|p| self.paths.intern(p));
        self.top.add(e, source, path.map(|p| self.paths.name(p)), self.config.path_prefix_depth);
        self.calls += 1;
        self.billable += u64::from(billable);
        self.first = Some(self.first.map_or(e.time, |f| f.min(e.time)));
        self.last = Some(self.last.map_or(e.time, |l| l.max(e.time)));
        let time = e.time.timestamp_micros();
        self.timeline.add(time, source);
        self.seq += 1;
        let call = Call {
            seq: self.seq,
            time,
            source,
            operation: e.operation,
            method: e.method.as_deref().map(Into::into),
            path,
            destination,
            cursor: e.cursor.as_deref().map(Into::into),
            result_count: e.result_count,
            billable,
            failed: is_failed_answer(e.interface, e.status),
        };
        if self.in_time_order {
            self.repeats.push(call, &self.paths, &mut self.released);
            self.analyse_released();
            return;
        }
        self.reorder.push(Reverse(call));
        self.newest = self.newest.max(time);
        let ready = self.newest.saturating_sub(self.config.reorder_window_us());
        while self.reorder.peek().is_some_and(|Reverse(c)| c.time <= ready) {
            if let Some(Reverse(c)) = self.reorder.pop() {
                self.repeats.push(c, &self.paths, &mut self.released);
            }
        }
        self.analyse_released();
    }

    /// Stage 3 for the calls the duplicate detector let go.
    fn analyse_released(&mut self) {
        for (call, verdict) in self.released.drain(..) {
            if is_change(call.operation) {
                for p in [call.path, call.destination].into_iter().flatten() {
                    self.changes.record(&self.paths, p, call.time);
                }
            }
            match verdict {
                Verdict::Duplicate => {
                    self.duplicates.add(&call, &self.paths);
                    continue;
                }
                // DESIGN §6: a retry is never avoidable, whatever detector would see it: polling
                // and list-after-write never see it, so it is counted once, here.
                Verdict::RetryAfterError => {
                    self.retries_after_errors += 1;
                    continue;
                }
                Verdict::Fresh => {}
            }
            let claimed = self.batches.observe(&call, &self.paths, &self.config);
            self.polling.observe(&call, claimed, &self.changes, &self.config);
        }
    }

    /// The report: every call analysed, findings biggest waste first.
    pub fn finish(mut self) -> AuditReport {
        while let Some(Reverse(c)) = self.reorder.pop() {
            self.repeats.push(c, &self.paths, &mut self.released);
        }
        self.repeats.finish(&mut self.released);
        self.analyse_released();

        let mut findings = self.duplicates.findings(&self.sources, &self.config);
        findings.extend(self.batches.findings(&self.paths, &self.sources, &self.config));
        findings.extend(self.polling.findings(&self.paths, &self.sources, &self.config));
        findings.retain(|f| f.avoidable_calls >= self.config.min_avoidable_calls);
        findings.sort_by(|a, b| {
            b.avoidable_calls
                .cmp(&a.avoidable_calls)
                .then_with(|| a.kind().cmp(&b.kind()))
                .then_with(|| a.path.cmp(&b.path))
                .then_with(|| a.source.key.cmp(&b.source.key))
        });
        let sources = &self.sources;
        let top = self.top.top(self.config.top_n, self.calls, |id| sources.get(id).key.to_string());
        let timeline = self.timeline.finish(self.config.top_n, |id| sources.get(id).key.to_string());
        // Listings logged as one line cost their pages in the findings: in the totals too.
        let beyond = self.polling.listed_beyond_events(self.config.list_page_size);
        let (calls, billable) = (self.calls + beyond.calls, self.billable + beyond.billable);
        let what_if = what_if(calls, billable, self.config.list_page_size, &findings, &self.plans);
        AuditReport {
            account: self.account,
            from: self.from.or(self.first),
            to: self.to.or(self.last),
            calls: self.calls,
            billable_calls: self.billable,
            findings,
            top_sources: top,
            what_if,
            skipped_calls: self.skipped,
            timeline,
            retries_after_errors: self.retries_after_errors,
        }
    }
}

#[cfg(test)]
mod tests;
