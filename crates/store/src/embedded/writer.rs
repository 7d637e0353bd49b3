//! The single writer and its group commit.
//!
//! Every change to the store passes through one thread, in order. The writer
//! takes whatever requests have queued up (up to `max_requests_per_commit`
//! ingest requests), decides each event (duplicate, rejected, or accepted),
//! and writes all of it as one atomic engine batch. A second thread, the
//! syncer (`syncer.rs`), then makes the journal durable with one sync for
//! every batch committed since its last sync, and only then counts the
//! calls, publishes the accounts and answers the requests. So many requests
//! share one sync, the writer prepares the next batch while the syncer waits
//! on the disk, and nothing is acknowledged, counted or shown before it is on disk.
//!
//! The writer's own view of accounts and dedup keys runs ahead of what
//! readers see: it includes the commits still waiting for their sync, so
//! that a repeat within them is a duplicate and an account is created once.

use super::changelog::{self, ChangeAppender};
use super::derived::{self, CheckpointJob, KeySet};
use super::requests::{complete_with, fail_only, Command, QueuedEvents, WriterHandle};
use super::subscriptions::{Staged, WriterSubscriptions};
use super::syncer::{Accepted, Committed, Completion, SyncItem, Syncer};
use super::undo::UndoEntry;
use super::{warn_if_slow, Engine, Shared, WritesStopOnPanic};
use crate::codec;
use crate::disk;
use crate::failpoint;
use crate::keys;
use crate::options::StoreOptions;
use crate::records::{AccountRecord, Outcome};
use crate::store::AccountChange;
use crate::StoreError;
use callmeter_model::{CallEvent, DedupKey, RejectReason};
use chrono::{DateTime, Utc};
use rustc_hash::FxHashMap;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;

/// Calls per stored block: large enough to compress well, small enough that
/// a request-log page does not decode much more than it shows.
const MAX_BLOCK_CALLS: usize = 4096;

/// The widest time span of one block. A request-log page starts its scan the
/// account's widest block span before the wanted time (a block keyed by its
/// earliest call may reach that far), and the retention sweep keeps a block
/// until its latest call expires: a bound keeps one old call committed beside
/// current ones (a backfill) from widening either for good. An hour leaves
/// the blocks of live traffic and of imported logs whole (a commit rarely
/// spans more) while no account's scans reach back further.
pub(crate) const MAX_BLOCK_SPAN_NS: i64 = 3_600 * 1_000_000_000;

pub(crate) const NEXT_SEQ_KEY: &str = "next_seq";

pub(crate) fn start(
    engine: Engine,
    shared: Arc<Shared>,
    options: StoreOptions,
    path: PathBuf,
    format: u32,
) -> Result<WriterHandle, StoreError> {
    let mut next_seq = match engine.meta.get(NEXT_SEQ_KEY)? {
        Some(v) => keys::read_u64(&v).ok_or_else(|| StoreError::Corrupt("next_seq".into()))?,
        None => 0,
    };
    let replayed = derived::recover(&engine, &shared, &path, options.min_free_bytes, options.late_calls, next_seq)?;
    if replayed.seqs.is_empty() {
        super::upgrade::upgrade(&engine, &shared, format, &mut next_seq)?;
    }
    shared.visible_below_seq.store(next_seq, Ordering::Release);
    // Every change on disk at open is durable.
    let next_change_seq = changelog::next_seq(&engine, super::processor::cursor(&engine)?)?;
    shared.changes.publish(next_change_seq);
    let subscriptions = {
        let published = shared.subscriptions.read();
        let numbers = published.iter().map(|(_, listed)| listed.number);
        WriterSubscriptions::new(&published, super::subscription_index::next_number(&engine, numbers)?)
    };
    let accounts = shared.accounts.read().clone();
    let handle_shared = shared.clone();
    let (tx, rx) = mpsc::channel::<Command>();
    let queued = Arc::new(QueuedEvents { events: Default::default(), limit: options.max_queued_events });
    let (job_tx, job_rx) = mpsc::channel::<CheckpointJob>();
    let checkpointer =
        derived::start_checkpointer(engine.clone(), shared.clone(), path.clone(), options.min_free_bytes, job_rx)?;
    let (sync_tx, sync_rx) = mpsc::channel::<SyncItem>();
    let syncer = {
        let syncer = Syncer::new(engine.db.clone(), shared.clone(), path.clone(), options.late_calls, job_tx);
        let guard = WritesStopOnPanic(shared.clone());
        std::thread::Builder::new().name("callmeter-syncer".into()).spawn(move || {
            // The queue outlives the guard (locals drop in reverse order): a
            // request sent after a panic is refused only once writes are stopped.
            let sync_rx = sync_rx;
            let _guard = guard;
            syncer.run(&sync_rx)
        })?
    };
    let guard = WritesStopOnPanic(shared.clone());
    let writer = Writer {
        engine,
        shared,
        options,
        path,
        next_seq,
        accounts,
        recent: replayed.keys,
        flushing: None,
        unlogged: replayed.seqs,
        handed: 0,
        forgotten: 0,
        last_handoff: std::time::Instant::now(),
        block_buf: Vec::new(),
        sync_tx,
        subscriptions,
        changes: ChangeAppender::new(next_change_seq),
    };
    let writer = std::thread::Builder::new().name("callmeter-writer".into()).spawn(move || {
        // As the syncer's: the queue is dropped after the guard has stopped writes.
        let rx = rx;
        let _guard = guard;
        writer.run(&rx)
    })?;
    Ok(WriterHandle {
        tx: parking_lot::Mutex::new(Some(tx)),
        threads: parking_lot::Mutex::new(vec![writer, syncer, checkpointer]),
        queued,
        shared: handle_shared,
    })
}

struct Writer {
    engine: Engine,
    shared: Arc<Shared>,
    options: StoreOptions,
    path: PathBuf,
    next_seq: u64,
    /// Every account as committed, including commits not yet durable; the
    /// readers' `Shared::accounts` follows once they are.
    accounts: HashMap<String, AccountRecord>,
    /// Dedup keys committed since the last hand-over to the checkpointer
    /// (and, while a commit is gathered, the keys of its accepted calls).
    recent: KeySet,
    /// Keys handed over and not yet in the engine.
    flushing: Option<Arc<KeySet>>,
    /// Sequences of the blocks committed since the last hand-over (their `block_log` entries).
    unlogged: Vec<u64>,
    /// Checkpoints handed over so far.
    handed: u64,
    /// Checkpoints whose keys the writer no longer holds: a [`DiskCheck`] older
    /// than that may have missed them.
    forgotten: u64,
    last_handoff: std::time::Instant,
    /// The block being encoded, reused from block to block.
    block_buf: Vec<u8>,
    /// Commits and checkpoint jobs, in order, to the syncer.
    sync_tx: mpsc::Sender<SyncItem>,
    /// Webhook subscriptions as committed: which accounts' reads are changes.
    subscriptions: WriterSubscriptions,
    /// Appends changes to the change log.
    changes: ChangeAppender,
}

/// Everything one commit will write, gathered before the engine sees any of it.
struct Commit {
    now: DateTime<Utc>,
    batch: fjall::OwnedWriteBatch,
    /// Dedup keys of the accepted calls, already in `Writer::recent`: taken
    /// out again if the commit fails.
    new_keys: Vec<DedupKey>,
    /// The events of the commit's ingest requests, where they arrived:
    /// accepted calls point into these rather than move out of them.
    requests: Vec<Vec<CallEvent>>,
    accounts: FxHashMap<String, CommitAccount>,
    /// Account records written, to publish once durable.
    written_accounts: Vec<String>,
    /// How to take the commit back if its sync fails.
    undo: Vec<UndoEntry>,
    completions: Vec<Completion>,
    /// Subscription records written, to publish once durable.
    subscriptions: Staged,
    /// Accounts with an adjustment in the commit (their usage changed).
    adjusted: Vec<String>,
}

/// One account's part of a commit.
struct CommitAccount {
    rec: AccountRecord,
    /// Calls before this instant fall in a period already closed at commit
    /// time: they are late. Periods tile time, so one comparison per call
    /// replaces a period lookup per call.
    late_before: DateTime<Utc>,
    /// The calls accepted for it; in time order once the commit is written.
    calls: Vec<Accepted>,
}

impl CommitAccount {
    fn new(rec: AccountRecord, now: DateTime<Utc>, grace: chrono::Duration) -> CommitAccount {
        let closed_until = now.checked_sub_signed(grace).unwrap_or(now);
        let late_before = rec.schedule.period_containing(closed_until).0.start;
        CommitAccount { rec, late_before, calls: Vec::new() }
    }
}

impl Writer {
    fn run(mut self, rx: &mpsc::Receiver<Command>) {
        while let Ok(first) = rx.recv() {
            let mut commands = vec![first];
            let mut ingests = 1;
            while ingests < self.options.max_requests_per_commit {
                match rx.try_recv() {
                    Ok(cmd) => {
                        ingests += matches!(cmd, Command::Ingest { .. }) as usize;
                        commands.push(cmd);
                    }
                    Err(_) => break,
                }
            }
            self.commit(commands);
        }
        self.checkpoint_on_stop();
        tracing::debug!("writer stopped");
    }

    fn commit(&mut self, commands: Vec<Command>) {
        let mut c = Commit {
            now: Utc::now(),
            batch: self.engine.db.batch(),
            new_keys: Vec::new(),
            requests: Vec::new(),
            accounts: FxHashMap::default(),
            written_accounts: Vec::new(),
            undo: Vec::new(),
            completions: Vec::with_capacity(commands.len()),
            subscriptions: Vec::new(),
            adjusted: Vec::new(),
        };
        let seq_before = self.next_seq;
        let change_seq_before = self.changes.next_seq;
        match self.gather(&mut c, commands).and_then(|()| self.write(&mut c)) {
            Ok(committed) => {
                // Even a commit that wrote nothing (all duplicates) waits for
                // the sync: its answers may rest on calls not yet durable.
                if self.sync_tx.send(SyncItem::Commit(Box::new(committed))).is_err() {
                    tracing::error!("syncer stopped; the commit is not answered");
                }
                self.hand_over(false);
            }
            Err(e) => {
                self.next_seq = seq_before;
                self.changes.next_seq = change_seq_before;
                for key in c.new_keys.drain(..) {
                    self.recent.remove(&key);
                }
                if !matches!(e, StoreError::DiskFull(_)) {
                    tracing::error!(error = %e, "commit failed");
                }
                for done in c.completions.drain(..) {
                    done(Err(&e));
                }
            }
        }
    }

    fn gather(&mut self, c: &mut Commit, commands: Vec<Command>) -> Result<(), StoreError> {
        if !self.shared.writable.load(Ordering::Relaxed) {
            // Answer everything with the error, gathering nothing.
            for cmd in commands {
                c.completions.push(fail_only(cmd));
            }
            return Err(StoreError::Unavailable("a sync failed earlier; restart the server".into()));
        }
        for cmd in commands {
            match cmd {
                Command::Ingest { events, checked, reply, reserved } => {
                    if self.recent.len() >= derived::MAX_RECENT_KEYS * 2 {
                        // Checkpoints are behind (the engine's compaction is): refuse
                        // rather than grow the keys held in memory without bound.
                        let busy = "checkpoints are behind: too many recent calls held in memory";
                        let _ = reply.send(Err(StoreError::Busy(busy.into())));
                        drop(reserved);
                        continue;
                    }
                    let mut outcomes = Vec::with_capacity(events.len());
                    // A check made before the writer forgot some checkpoint's keys
                    // may have missed them: look those events up again.
                    let trusted = checked.epoch >= self.forgotten;
                    let request = c.requests.len() as u32;
                    for (index, ((e, key), on_disk)) in events.iter().zip(checked.keys).zip(checked.on_disk).enumerate()
                    {
                        let on_disk = if trusted { on_disk } else { self.engine.dedup.contains_key(key.0)? };
                        outcomes.push(self.ingest_event(c, e, (request, index as u32), key, on_disk)?);
                    }
                    c.requests.push(events);
                    let answer = complete_with(reply, outcomes);
                    // The events' room in the queue is given back once they are answered.
                    c.completions.push(Box::new(move |result| {
                        answer(result);
                        drop(reserved);
                    }));
                }
                Command::UpsertAccount { name, change, reply } => match self.upsert_account(c, &name, change) {
                    Ok(rec) => c.completions.push(complete_with(reply, rec)),
                    Err(e) => {
                        let _ = reply.send(Err(e));
                    }
                },
                Command::AddAdjustment { adjustment, reply } => {
                    let seq = self.take_seq();
                    let key = keys::adjustment_key(&adjustment.account, codec::time_ns(adjustment.period_start), seq);
                    c.batch.insert(&self.engine.adjustments, key.as_slice(), to_json(&adjustment));
                    c.undo.push(UndoEntry::created("adjustments", key));
                    c.adjusted.push(adjustment.account.clone());
                    c.completions.push(complete_with(reply, ()));
                }
                Command::PutToken { token, reply } => {
                    let previous = self.engine.tokens.get(token.id.as_bytes())?.map(|v| v.to_vec());
                    c.batch.insert(&self.engine.tokens, token.id.as_bytes(), to_json(&token));
                    c.undo.push(UndoEntry { keyspace: "tokens", key: token.id.clone().into_bytes(), previous });
                    c.completions.push(complete_with(reply, ()));
                }
                Command::DeleteToken { id, reply } => {
                    let previous = self.engine.tokens.get(id.as_bytes())?.map(|v| v.to_vec());
                    let existed = previous.is_some();
                    if existed {
                        c.batch.remove(&self.engine.tokens, id.as_bytes());
                        c.undo.push(UndoEntry { keyspace: "tokens", key: id.into_bytes(), previous });
                    }
                    c.completions.push(complete_with(reply, existed));
                }
                cmd @ (Command::CreateSubscription { .. }
                | Command::UpdateSubscription { .. }
                | Command::DeleteSubscription { .. }) => {
                    let (batch, undo, staged) = (&mut c.batch, &mut c.undo, &mut c.subscriptions);
                    if let Some(done) = self.subscriptions.command(&self.engine, batch, undo, staged, cmd, c.now) {
                        c.completions.push(done);
                    }
                }
            }
        }
        Ok(())
    }

    /// Decides one event, found at `(request, index)` once the commit's
    /// requests are gathered. `on_disk` says whether its key was found in the engine.
    fn ingest_event(
        &mut self,
        c: &mut Commit,
        e: &CallEvent,
        (request, index): (u32, u32),
        key: DedupKey,
        on_disk: bool,
    ) -> Result<Outcome, StoreError> {
        // DESIGN §3: deduplication comes first, so a late or expired copy of a counted call is a duplicate.
        if on_disk || self.recent.contains(&key) || self.flushing.as_ref().is_some_and(|f| f.contains(&key)) {
            return Ok(Outcome::Duplicate);
        }
        // Older than the retention, or than the oldest call whose dedup key the
        // store still holds (an earlier, shorter retention expired the keys
        // before it; a later, longer one must not let their repeats count).
        let keys_from = DateTime::from_timestamp_nanos(self.shared.keys_complete_from_ns.load(Ordering::Acquire));
        if e.time < c.now - self.options.retention || e.time < keys_from {
            return Ok(Outcome::Rejected(RejectReason::OlderThanRetention));
        }
        let billable = self.options.rules.is_billable(e.interface, e.time);
        let account = match c.accounts.get_mut(e.account.as_str()) {
            Some(account) => account,
            None => match self.load_account(c, e) {
                Some(account) => account,
                None => return Ok(Outcome::Rejected(RejectReason::UnknownAccount)),
            },
        };
        let late = e.time < account.late_before;
        account.calls.push(Accepted { time_ns: codec::time_ns(e.time), request, index, billable, late });
        self.recent.insert(key);
        c.new_keys.push(key);
        Ok(Outcome::Accepted)
    }

    /// Puts the account of an event into the commit, created on first sight
    /// when the options allow; `None` when there is no such account.
    fn load_account<'c>(&self, c: &'c mut Commit, e: &CallEvent) -> Option<&'c mut CommitAccount> {
        let rec = match self.accounts.get(&e.account) {
            Some(rec) => rec.clone(),
            None if self.options.auto_create_accounts => {
                let tz = self.options.default_timezone;
                let anchor = e.time.with_timezone(&tz).date_naive();
                let schedule = self.options.schedule_for(&self.options.default_plan, tz, anchor);
                let rec = AccountRecord {
                    name: e.account.clone(),
                    schedule,
                    created_at: c.now,
                    max_block_span_ns: 0,
                    list_page_size: None,
                    alert_thresholds: None,
                };
                self.put_account(c, &rec);
                tracing::info!(account = %e.account, plan = %self.options.default_plan, "account created");
                rec
            }
            None => return None,
        };
        let account = CommitAccount::new(rec, c.now, self.options.grace);
        Some(c.accounts.entry(e.account.clone()).insert_entry(account).into_mut())
    }

    fn upsert_account(&self, c: &mut Commit, name: &str, change: AccountChange) -> Result<AccountRecord, StoreError> {
        if let Some(plan) = &change.plan {
            if !self.options.plans.iter().any(|p| &p.name == plan) {
                return Err(StoreError::UnknownPlan(plan.clone()));
            }
        }
        let existing = c.accounts.get(name).map(|a| a.rec.clone()).or_else(|| self.accounts.get(name).cloned());
        let rec = match existing {
            Some(mut rec) => {
                rec.schedule.schedule_change(c.now, change.plan, change.timezone, change.anchor, &self.options.plans);
                rec.list_page_size = change.list_page_size.or(rec.list_page_size);
                if let Some(thresholds) = change.alert_thresholds {
                    rec.alert_thresholds = (!thresholds.is_empty()).then_some(thresholds);
                }
                rec
            }
            None => {
                let tz = change.timezone.unwrap_or(self.options.default_timezone);
                let anchor = change.anchor.unwrap_or_else(|| c.now.with_timezone(&tz).date_naive());
                let plan = change.plan.unwrap_or_else(|| self.options.default_plan.clone());
                AccountRecord {
                    name: name.to_owned(),
                    schedule: self.options.schedule_for(&plan, tz, anchor),
                    created_at: c.now,
                    max_block_span_ns: 0,
                    list_page_size: change.list_page_size,
                    alert_thresholds: change.alert_thresholds.filter(|t| !t.is_empty()),
                }
            }
        };
        self.put_account(c, &rec);
        let fresh = CommitAccount::new(rec.clone(), c.now, self.options.grace);
        match c.accounts.get_mut(name) {
            // Calls already gathered keep their account (and the periods they
            // were judged by: a change never moves a period that has begun).
            Some(a) => a.rec = fresh.rec,
            None => {
                c.accounts.insert(name.to_owned(), fresh);
            }
        }
        Ok(rec)
    }

    /// On a clean stop, hands everything over once the checkpoint under way
    /// is done, so that the next open has no block log to replay. A
    /// checkpoint that keeps failing (a full disk) is not waited for longer
    /// than a few seconds: the block log replays it on the next open.
    fn checkpoint_on_stop(&mut self) {
        if !self.shared.writable.load(Ordering::Acquire) {
            return; // a failed sync or commit: nothing more is written, the next open undoes and replays
        }
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while self.flushing.is_some() && self.shared.checkpoints_done.load(Ordering::Acquire) < self.handed {
            if std::time::Instant::now() > deadline {
                return;
            }
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        self.hand_over(true);
    }

    /// Hands the recent keys and breakdown to the checkpointer when they are
    /// big or old enough (or `now`) and no checkpoint is under way; forgets
    /// the keys of a finished checkpoint, which the engine now holds.
    fn hand_over(&mut self, now: bool) {
        if self.flushing.is_some() {
            if self.shared.checkpoints_done.load(Ordering::Acquire) < self.handed {
                return;
            }
            self.flushing = None;
            self.forgotten = self.handed;
        }
        if self.unlogged.is_empty() {
            return;
        }
        let rows = self.shared.pending_aggregates.read().rows();
        let due = now
            || self.recent.len() >= derived::MAX_RECENT_KEYS
            || rows >= derived::MAX_PENDING_ROWS
            || self.last_handoff.elapsed() >= self.options.checkpoint_interval;
        if !due {
            return;
        }
        let keys = Arc::new(std::mem::take(&mut self.recent));
        self.flushing = Some(keys.clone());
        self.handed += 1;
        self.last_handoff = std::time::Instant::now();
        // Through the syncer, behind the commits it covers: forwarded to the
        // checkpointer once they are durable (`syncer.rs`).
        let job = CheckpointJob { keys, seqs: std::mem::take(&mut self.unlogged), below_seq: self.next_seq };
        if self.sync_tx.send(SyncItem::Checkpoint(job)).is_err() {
            tracing::error!("syncer stopped; recent calls stay in the block log until restart");
        }
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    /// Writes an account record into the commit, with its undo (the record
    /// before the commit: a second write in one commit needs none).
    fn put_account(&self, c: &mut Commit, rec: &AccountRecord) {
        c.batch.insert(&self.engine.accounts, rec.name.as_bytes(), to_json(rec));
        if !c.written_accounts.contains(&rec.name) {
            let previous = self.accounts.get(&rec.name).map(to_json);
            c.undo.push(UndoEntry { keyspace: "accounts", key: rec.name.clone().into_bytes(), previous });
            c.written_accounts.push(rec.name.clone());
        }
    }

    /// Adds the blocks to the batch and commits it; what the syncer is to
    /// publish once the commit is durable.
    fn write(&mut self, c: &mut Commit) -> Result<Committed, StoreError> {
        let seq_before = self.next_seq;
        self.changes.begin();
        let mut logged = Vec::new();
        let mut widened = Vec::new();
        for (account, a) in c.accounts.iter_mut() {
            // Calls at one instant keep their arrival order.
            a.calls.sort_unstable_by_key(|call| (call.time_ns, call.request, call.index));
            // One more small insert per change, in this batch: the change and
            // its call are durable, or undone, together. Only for an account
            // with a folder webhook: the others pay nothing for webhooks.
            if self.subscriptions.folders_watched(account) {
                let reads = self.subscriptions.reads_watched(account);
                let (batch, undo) = (&mut c.batch, &mut c.undo);
                self.changes.append(&self.engine, (batch, undo), (&a.calls, &c.requests), c.now, reads);
            }
            let span_before = a.rec.max_block_span_ns;
            for chunk in blocks_of(&a.calls) {
                let min = chunk[0].time_ns;
                let max = chunk[chunk.len() - 1].time_ns;
                debug_assert!(max.saturating_sub(min) <= MAX_BLOCK_SPAN_NS, "a block spans at most MAX_BLOCK_SPAN_NS");
                let seq = self.next_seq;
                self.next_seq += 1;
                let key = keys::block_key(account, min, seq);
                c.batch.insert(&self.engine.block_log, seq.to_be_bytes(), derived::block_log_value(&key, c.now));
                c.undo.push(UndoEntry::created("block_log", seq.to_be_bytes()));
                logged.push(seq);
                codec::encode_block(chunk.iter().map(|call| call.view(&c.requests)), &mut self.block_buf);
                c.batch.insert(&self.engine.blocks, key.as_slice(), self.block_buf.as_slice());
                c.undo.push(UndoEntry::created("blocks", key));
                a.rec.max_block_span_ns = a.rec.max_block_span_ns.max(max.saturating_sub(min));
            }
            if a.rec.max_block_span_ns != span_before {
                widened.push(account.clone());
            }
        }
        for account in widened {
            let rec = c.accounts[&account].rec.clone();
            self.put_account(c, &rec);
        }
        if self.next_seq != seq_before {
            c.batch.insert(&self.engine.meta, NEXT_SEQ_KEY, self.next_seq.to_be_bytes());
        }

        if !c.batch.is_empty() {
            disk::require_free(&self.path, self.options.min_free_bytes)?;
            let batch = std::mem::replace(&mut c.batch, self.engine.db.batch());
            let started = std::time::Instant::now();
            let committed = failpoint::check("commit").and_then(|()| Ok(batch.commit()?));
            warn_if_slow("engine commit", started, c.completions.len());
            if let Err(e) = committed {
                // The engine refuses writes after a failed one (it is poisoned): so do we.
                self.shared.writable.store(false, Ordering::Release);
                return Err(e);
            }
            failpoint::hit("commit.after_engine");
        }
        // Committed: the writer's own view moves on; readers' follows after the sync.
        c.new_keys.clear();
        self.subscriptions.committed(&c.subscriptions);
        self.unlogged.extend(logged);
        let mut accounts = Vec::with_capacity(c.written_accounts.len());
        for name in c.written_accounts.drain(..) {
            let rec = c.accounts[&name].rec.clone();
            self.accounts.insert(name, rec.clone());
            accounts.push(rec);
        }
        let calls = c.accounts.drain().filter(|(_, a)| !a.calls.is_empty()).map(|(n, a)| (n, a.calls)).collect();
        Ok(Committed {
            at: c.now,
            requests: std::mem::take(&mut c.requests),
            calls,
            accounts,
            end_seq: self.next_seq,
            end_change_seq: self.changes.next_seq,
            changes: std::mem::take(&mut self.changes.appended),
            subscriptions: std::mem::take(&mut c.subscriptions),
            adjusted: std::mem::take(&mut c.adjusted),
            undo: std::mem::take(&mut c.undo),
            completions: std::mem::take(&mut c.completions),
        })
    }
}

/// Splits an account's sorted calls into blocks of at most
/// [`MAX_BLOCK_CALLS`] calls spanning at most [`MAX_BLOCK_SPAN_NS`].
fn blocks_of(calls: &[Accepted]) -> impl Iterator<Item = &[Accepted]> {
    let mut rest = calls;
    std::iter::from_fn(move || {
        let first = rest.first()?.time_ns;
        let end = rest
            .iter()
            .take(MAX_BLOCK_CALLS)
            .position(|c| c.time_ns.saturating_sub(first) > MAX_BLOCK_SPAN_NS)
            .unwrap_or(rest.len().min(MAX_BLOCK_CALLS));
        let (block, after) = rest.split_at(end);
        rest = after;
        Some(block)
    })
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialize")
}

#[cfg(test)]
mod tests;
