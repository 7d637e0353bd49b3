//! The syncer: makes commits durable, and only then lets them count.
//!
//! The writer commits a batch into the engine and hands the syncer what the
//! commit decided ([`Committed`]). The syncer makes the journal durable with
//! one sync for every commit that queued up meanwhile, and then, in commit
//! order, for each one: counts its calls into the pending aggregates,
//! publishes its account records to readers, and answers its requests. So a
//! reader never sees a call that could still be lost, and many requests
//! share one sync.
//!
//! Checkpoints pass through here too: the writer queues a checkpoint job
//! after the last commit it covers, and the syncer forwards it only once
//! that commit is durable, moving the aggregates counted so far to the
//! checkpoint at the same moment. A checkpoint therefore never writes a
//! dedup key of a call that is not on disk: a crash can lose an unanswered
//! call, but never leave its key behind to answer a retry `duplicate`.
//!
//! When a sync fails, nothing of its commits counts (DESIGN §3): they are
//! answered with the error, their undo records are written outside the
//! engine for the next open (`undo.rs`), their blocks never show in the
//! request log (it shows blocks of published commits only), and the store
//! takes no more writes until it is reopened.

use super::derived::{CallCounter, CheckpointJob};
use super::undo::{self, UndoEntry};
use super::{warn_if_slow, Shared};
use crate::codec::CallView;
use crate::failpoint;
use crate::options::LatePolicy;
use crate::records::AccountRecord;
use crate::StoreError;
use callmeter_model::CallEvent;
use chrono::{DateTime, Utc};
use fjall::PersistMode;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};

/// Called once the commit it belongs to is durable, or has failed.
pub(crate) type Completion = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// An accepted call of a commit: where its event lies in the commit's
/// requests, its time (the sort key), and what metering decided.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Accepted {
    pub time_ns: i64,
    pub request: u32,
    pub index: u32,
    pub billable: bool,
    pub late: bool,
}

impl Accepted {
    /// The call, found in the commit's requests.
    pub fn view(self, requests: &[Vec<CallEvent>]) -> CallView<'_> {
        CallView {
            event: &requests[self.request as usize][self.index as usize],
            billable: self.billable,
            late: self.late,
        }
    }
}

/// What one engine commit decided, for the syncer to publish once it is durable.
pub(crate) struct Committed {
    /// When the commit was made: the arrival time of its calls.
    pub at: DateTime<Utc>,
    /// The events of its ingest requests; accepted calls point into them.
    pub requests: Vec<Vec<CallEvent>>,
    /// Per account, its accepted calls in time order.
    pub calls: Vec<(String, Vec<Accepted>)>,
    /// Account records the commit wrote, to publish.
    pub accounts: Vec<AccountRecord>,
    /// The block sequence after the commit's last: the request log shows
    /// blocks below it once the commit is durable.
    pub end_seq: u64,
    /// The change sequence after the commit's last: the change processor
    /// reads changes below it once the commit is durable.
    pub end_change_seq: u64,
    /// Its changes, as the log stores them, for the processor.
    pub changes: Vec<super::changelog::Encoded>,
    /// Webhook subscriptions the commit wrote (`None`: deleted), to publish.
    pub subscriptions: super::subscriptions::Staged,
    /// Accounts with an adjustment in the commit.
    pub adjusted: Vec<String>,
    /// How to take the commit back if its sync fails.
    pub undo: Vec<UndoEntry>,
    /// The answers to its requests, in order.
    pub completions: Vec<Completion>,
}

/// What the writer queues for the syncer, in commit order.
pub(crate) enum SyncItem {
    /// A commit to make durable and publish.
    Commit(Box<Committed>),
    /// A checkpoint of everything committed before it, to forward once that is durable.
    Checkpoint(CheckpointJob),
}

pub(crate) struct Syncer {
    pub db: fjall::Database,
    pub shared: Arc<Shared>,
    pub data: PathBuf,
    pub late_calls: LatePolicy,
    pub checkpoints: mpsc::Sender<CheckpointJob>,
    counter: CallCounter,
    /// The first failed sync's error: every later commit fails with it.
    failed: Option<StoreError>,
}

impl Syncer {
    pub fn new(
        db: fjall::Database,
        shared: Arc<Shared>,
        data: PathBuf,
        late_calls: LatePolicy,
        checkpoints: mpsc::Sender<CheckpointJob>,
    ) -> Syncer {
        Syncer { db, shared, data, late_calls, checkpoints, counter: CallCounter::default(), failed: None }
    }

    pub fn run(mut self, rx: &mpsc::Receiver<SyncItem>) {
        while let Ok(first) = rx.recv() {
            let mut items = vec![first];
            items.extend(rx.try_iter());
            let commits = items.iter().filter(|i| matches!(i, SyncItem::Commit(_))).count();
            if commits > 0 && self.failed.is_none() {
                self.sync(commits);
            }
            if commits > 0 && self.failed.is_some() {
                // Recorded before any of them is answered.
                self.record_undo(&items);
            }
            for item in items {
                match (item, &self.failed) {
                    (SyncItem::Commit(c), None) => self.publish(*c),
                    (SyncItem::Commit(c), Some(e)) => {
                        for done in c.completions {
                            done(Err(e));
                        }
                    }
                    (SyncItem::Checkpoint(job), None) => self.forward(job),
                    // It would cover failed commits: never written.
                    (SyncItem::Checkpoint(_), Some(_)) => {}
                }
            }
        }
    }

    /// One sync for the commits queued; a failure fails them and every later one.
    fn sync(&mut self, commits: usize) {
        failpoint::hit("sync.before");
        let started = std::time::Instant::now();
        let result = failpoint::check("sync").and_then(|()| Ok(self.db.persist(PersistMode::SyncAll)?));
        warn_if_slow("sync", started, commits);
        match result {
            Ok(()) => {
                failpoint::hit("sync.after");
            }
            Err(e) => {
                tracing::error!(error = %e, "sync failed: its requests are answered 503, and the store takes no more writes until restarted");
                self.shared.writable.store(false, Ordering::Release);
                self.failed = Some(StoreError::Unavailable(format!("sync failed: {e}")));
            }
        }
    }

    /// Writes the undo of the failed commits among `items`, for the next open.
    fn record_undo(&self, items: &[SyncItem]) {
        let entries: Vec<UndoEntry> = items
            .iter()
            .filter_map(|i| match i {
                SyncItem::Commit(c) => Some(c.undo.iter().cloned()),
                SyncItem::Checkpoint(_) => None,
            })
            .flatten()
            .collect();
        if entries.is_empty() {
            return;
        }
        if let Err(e) = undo::append(&self.data, &entries) {
            tracing::error!(error = %e, "cannot record the undo of failed commits: their calls may count after a restart");
        }
    }

    /// A durable commit: its calls count, its accounts show, its requests
    /// are answered, and the accounts whose usage it changed are marked for
    /// the alert evaluator.
    fn publish(&mut self, c: Committed) {
        for (account, calls) in &c.calls {
            debug_assert!(calls.windows(2).all(|w| w[0].time_ns <= w[1].time_ns), "calls of a commit are sorted");
            let mut pending = self.shared.pending_aggregates.write();
            let views = calls.iter().map(|call| call.view(&c.requests));
            self.counter.count_sorted(&mut pending.current, account, views, c.at, self.late_calls);
        }
        let written: Vec<String> = c.accounts.iter().map(|a| a.name.clone()).collect();
        if !c.accounts.is_empty() {
            let mut shared = self.shared.accounts.write();
            for rec in c.accounts {
                shared.insert(rec.name.clone(), rec);
            }
        }
        if !c.subscriptions.is_empty() {
            let mut shared = self.shared.subscriptions.write();
            for (key, sub) in c.subscriptions {
                let listed = sub.map(|(sub, number)| super::subscription_index::Listed { number, sub: sub.into() });
                shared.set(key, listed);
            }
        }
        // Marked once the calls count and the records show: the evaluator reads both.
        let changed =
            c.calls.iter().map(|(a, _)| a.as_str()).chain(c.adjusted.iter().chain(&written).map(String::as_str));
        self.shared.usage.mark(changed);
        // Its blocks show in the request log from now on, and its changes go to the change processor.
        self.shared.visible_below_seq.store(c.end_seq, Ordering::Release);
        self.shared.changes.hand_over(c.changes);
        self.shared.changes.publish(c.end_change_seq);
        for done in c.completions {
            done(Ok(()));
        }
        // The commit's events (a dozen strings each) are freed here, off the writer.
        drop(c.requests);
    }

    /// Hands a checkpoint on: everything it covers is durable and counted.
    fn forward(&mut self, job: CheckpointJob) {
        {
            let mut pending = self.shared.pending_aggregates.write();
            assert!(pending.flushing.is_empty(), "a checkpoint is handed over only once the one before is done");
            pending.flushing = Arc::new(std::mem::take(&mut pending.current));
        }
        if self.checkpoints.send(job).is_err() {
            tracing::error!("checkpointer stopped; recent calls stay in the block log until restart");
        }
    }
}
