//! The single writer and its group commit.
//!
//! Every change to the store passes through one thread, in order. The writer
//! takes whatever requests have queued up (up to `max_requests_per_commit`
//! ingest requests), decides each event (duplicate, rejected, or accepted and
//! counted), and writes all of it as one atomic engine batch. A second
//! thread, the syncer, then makes the journal durable with one sync for every
//! batch committed since its last sync, and only then answers the requests.
//! So many requests share one sync, the writer prepares the next batch while
//! the syncer waits on the disk, and nothing is acknowledged before it is on disk.

use super::derived::{self, CallCounter, CheckpointJob, KeySet};
use super::{warn_if_slow, Engine, Shared};
use crate::codec::{self, CallView};
use crate::disk;
use crate::keys;
use crate::options::StoreOptions;
use crate::records::{AccountRecord, Adjustment, Outcome, TokenRecord};
use crate::store::{AccountChange, IngestTicket};
use crate::StoreError;
use callmeter_model::{CallEvent, DedupKey, RejectReason};
use chrono::{DateTime, Utc};
use fjall::PersistMode;
use rustc_hash::FxHashMap;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Calls per stored block: large enough to compress well, small enough that
/// a request-log page does not decode much more than it shows.
const MAX_BLOCK_CALLS: usize = 4096;

const NEXT_SEQ_KEY: &str = "next_seq";

/// The dedup keys of a request's events and whether the engine held each,
/// looked up on the caller's thread so that the writer need not.
pub(crate) struct DiskCheck {
    /// Checkpoints finished when the lookups began: they saw every key those wrote.
    pub epoch: u64,
    /// One key per event.
    pub keys: Vec<DedupKey>,
    /// One answer per event.
    pub on_disk: Vec<bool>,
}

impl DiskCheck {
    /// Looks up the key of every event in the engine.
    pub fn run(engine: &Engine, shared: &Shared, events: &[CallEvent]) -> Result<DiskCheck, StoreError> {
        let epoch = shared.checkpoints_done.load(Ordering::Acquire);
        let keys: Vec<DedupKey> = events.iter().map(|e| DedupKey::of(&e.account, &e.id)).collect();
        let started = std::time::Instant::now();
        let on_disk = keys.iter().map(|k| engine.dedup.contains_key(k.0)).collect::<Result<_, _>>()?;
        warn_if_slow("dedup lookups", started, 1);
        Ok(DiskCheck { epoch, keys, on_disk })
    }
}

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Ingest { events: Vec<CallEvent>, checked: DiskCheck, reply: Reply<Vec<Outcome>> },
    UpsertAccount { name: String, change: AccountChange, reply: Reply<AccountRecord> },
    AddAdjustment { adjustment: Adjustment, reply: Reply<()> },
    PutToken { token: TokenRecord, reply: Reply<()> },
    DeleteToken { id: String, reply: Reply<bool> },
}

/// Called once the commit it belongs to is durable, or has failed.
type Completion = Box<dyn FnOnce(Result<(), &StoreError>) + Send>;

/// The way into the writer thread.
pub(crate) struct WriterHandle {
    tx: parking_lot::Mutex<Option<mpsc::Sender<Command>>>,
    threads: parking_lot::Mutex<Vec<JoinHandle<()>>>,
}

pub(crate) fn start(
    engine: Engine,
    shared: Arc<Shared>,
    options: StoreOptions,
    path: PathBuf,
) -> Result<WriterHandle, StoreError> {
    let next_seq = match engine.meta.get(NEXT_SEQ_KEY)? {
        Some(v) => keys::read_u64(&v).ok_or_else(|| StoreError::Corrupt("next_seq".into()))?,
        None => 0,
    };
    let replayed = derived::replay_block_log(&engine, &shared, options.late_calls)?;
    let (tx, rx) = mpsc::channel::<Command>();
    let (job_tx, job_rx) = mpsc::channel::<CheckpointJob>();
    let checkpointer =
        derived::start_checkpointer(engine.clone(), shared.clone(), path.clone(), options.min_free_bytes, job_rx)?;
    let (sync_tx, sync_rx) = mpsc::channel::<Completion>();
    let syncer = {
        let db = engine.db.clone();
        let shared = shared.clone();
        std::thread::Builder::new().name("callmeter-syncer".into()).spawn(move || sync_loop(db, shared, sync_rx))?
    };
    let writer = Writer {
        engine,
        shared,
        options,
        path,
        next_seq,
        recent: replayed.keys,
        counter: CallCounter::default(),
        flushing: None,
        unlogged: replayed.seqs,
        handed: 0,
        forgotten: 0,
        last_handoff: std::time::Instant::now(),
        block_buf: Vec::new(),
        checkpoint_tx: job_tx,
        sync_tx,
    };
    let writer = std::thread::Builder::new().name("callmeter-writer".into()).spawn(move || writer.run(rx))?;
    Ok(WriterHandle {
        tx: parking_lot::Mutex::new(Some(tx)),
        threads: parking_lot::Mutex::new(vec![writer, syncer, checkpointer]),
    })
}

impl WriterHandle {
    fn send<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> oneshot::Receiver<Result<T, StoreError>> {
        let (reply, rx) = oneshot::channel();
        let cmd = make(reply);
        if let Some(tx) = self.tx.lock().as_ref() {
            // A send error drops the command and its reply sender: the receiver then reads ShuttingDown.
            let _ = tx.send(cmd);
        }
        rx
    }

    fn call<T>(&self, make: impl FnOnce(Reply<T>) -> Command) -> Result<T, StoreError> {
        self.send(make).blocking_recv().unwrap_or(Err(StoreError::ShuttingDown))
    }

    pub fn ingest(&self, events: Vec<CallEvent>, checked: DiskCheck) -> IngestTicket {
        IngestTicket(self.send(|reply| Command::Ingest { events, checked, reply }))
    }

    pub fn upsert_account(&self, name: String, change: AccountChange) -> Result<AccountRecord, StoreError> {
        self.call(|reply| Command::UpsertAccount { name, change, reply })
    }

    pub fn add_adjustment(&self, adjustment: Adjustment) -> Result<(), StoreError> {
        self.call(|reply| Command::AddAdjustment { adjustment, reply })
    }

    pub fn put_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        self.call(|reply| Command::PutToken { token, reply })
    }

    pub fn delete_token(&self, id: String) -> Result<bool, StoreError> {
        self.call(|reply| Command::DeleteToken { id, reply })
    }

    /// Closes the queue and waits for the writer and syncer to finish what they hold.
    pub fn stop(&self) {
        self.tx.lock().take();
        for t in self.threads.lock().drain(..) {
            let _ = t.join();
        }
    }
}

impl Drop for WriterHandle {
    fn drop(&mut self) {
        self.stop();
    }
}

fn sync_loop(db: fjall::Database, shared: Arc<Shared>, rx: mpsc::Receiver<Completion>) {
    while let Ok(first) = rx.recv() {
        let mut waiting = vec![first];
        waiting.extend(rx.try_iter());
        let started = std::time::Instant::now();
        let result = db.persist(PersistMode::SyncAll).map_err(StoreError::from);
        warn_if_slow("sync", started, waiting.len());
        if let Err(e) = &result {
            tracing::error!(error = %e, "sync failed; the store takes no more writes until restarted");
            shared.writable.store(false, Ordering::Relaxed);
        }
        for done in waiting {
            done(result.as_ref().map(|_| ()));
        }
    }
}

struct Writer {
    engine: Engine,
    shared: Arc<Shared>,
    options: StoreOptions,
    path: PathBuf,
    next_seq: u64,
    /// Dedup keys committed since the last hand-over to the checkpointer
    /// (and, while a commit is gathered, the keys of its accepted calls).
    recent: KeySet,
    /// Counts committed calls into the pending aggregates.
    counter: CallCounter,
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
    checkpoint_tx: mpsc::Sender<CheckpointJob>,
    sync_tx: mpsc::Sender<Completion>,
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
    completions: Vec<Completion>,
}

/// An accepted call of a commit: where its event lies in `Commit::requests`,
/// its time (the sort key), and what metering decided.
#[derive(Debug, Clone, Copy)]
struct Accepted {
    time_ns: i64,
    request: u32,
    index: u32,
    billable: bool,
    late: bool,
}

impl Accepted {
    fn view(self, requests: &[Vec<CallEvent>]) -> CallView<'_> {
        CallView {
            event: &requests[self.request as usize][self.index as usize],
            billable: self.billable,
            late: self.late,
        }
    }
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
    fn run(mut self, rx: mpsc::Receiver<Command>) {
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
            completions: Vec::with_capacity(commands.len()),
        };
        let result = self.gather(&mut c, commands).and_then(|()| self.write(&mut c));
        match result {
            Ok(()) => {
                let _ = c.completions.drain(..).try_for_each(|done| self.sync_tx.send(done));
            }
            Err(e) => {
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
                Command::Ingest { events, checked, reply } => {
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
                    c.completions.push(complete_with(reply, outcomes));
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
                    c.batch.insert(&self.engine.adjustments, key, to_json(&adjustment));
                    c.completions.push(complete_with(reply, ()));
                }
                Command::PutToken { token, reply } => {
                    c.batch.insert(&self.engine.tokens, token.id.as_bytes(), to_json(&token));
                    c.completions.push(complete_with(reply, ()));
                }
                Command::DeleteToken { id, reply } => {
                    let existed = self.engine.tokens.contains_key(id.as_bytes())?;
                    if existed {
                        c.batch.remove(&self.engine.tokens, id.as_bytes());
                    }
                    c.completions.push(complete_with(reply, existed));
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
        if e.time < c.now - self.options.retention {
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
        let existing = self.shared.accounts.read().get(&e.account).cloned();
        let rec = match existing {
            Some(rec) => rec,
            None if self.options.auto_create_accounts => {
                let tz = self.options.default_timezone;
                let anchor = e.time.with_timezone(&tz).date_naive();
                let schedule = self.options.schedule_for(&self.options.default_plan, tz, anchor);
                let rec = AccountRecord { name: e.account.clone(), schedule, created_at: c.now, max_block_span_ns: 0 };
                c.batch.insert(&self.engine.accounts, e.account.as_bytes(), to_json(&rec));
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
        let existing =
            c.accounts.get(name).map(|a| a.rec.clone()).or_else(|| self.shared.accounts.read().get(name).cloned());
        let rec = match existing {
            Some(mut rec) => {
                rec.schedule.schedule_change(c.now, change.plan, change.timezone, change.anchor, &self.options.plans);
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
                }
            }
        };
        c.batch.insert(&self.engine.accounts, name.as_bytes(), to_json(&rec));
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
            || self.last_handoff.elapsed() >= derived::CHECKPOINT_INTERVAL;
        if !due {
            return;
        }
        {
            let mut pending = self.shared.pending_aggregates.write();
            pending.flushing = Arc::new(std::mem::take(&mut pending.current));
        }
        let keys = Arc::new(std::mem::take(&mut self.recent));
        self.flushing = Some(keys.clone());
        self.handed += 1;
        self.last_handoff = std::time::Instant::now();
        let job = CheckpointJob { keys, seqs: std::mem::take(&mut self.unlogged) };
        if self.checkpoint_tx.send(job).is_err() {
            tracing::error!("checkpointer stopped; recent calls stay in the block log until restart");
        }
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    /// Adds the blocks and aggregates to the batch, commits it, and publishes what changed.
    fn write(&mut self, c: &mut Commit) -> Result<(), StoreError> {
        let seq_before = self.next_seq;
        let mut logged = Vec::new();
        let requests = &c.requests;
        for (account, a) in c.accounts.iter_mut() {
            // Calls at one instant keep their arrival order.
            a.calls.sort_unstable_by_key(|call| (call.time_ns, call.request, call.index));
            for chunk in a.calls.chunks(MAX_BLOCK_CALLS) {
                let min = chunk[0].time_ns;
                let max = chunk[chunk.len() - 1].time_ns;
                let seq = self.take_seq();
                let key = keys::block_key(account, min, seq);
                c.batch.insert(&self.engine.block_log, seq.to_be_bytes(), derived::block_log_value(&key, c.now));
                logged.push(seq);
                codec::encode_block(chunk.iter().map(|call| call.view(requests)), &mut self.block_buf);
                c.batch.insert(&self.engine.blocks, key, self.block_buf.as_slice());
                let rec = &mut a.rec;
                if max.saturating_sub(min) > rec.max_block_span_ns {
                    rec.max_block_span_ns = max.saturating_sub(min);
                    c.batch.insert(&self.engine.accounts, account.as_bytes(), to_json(&*rec));
                }
            }
        }
        if self.next_seq != seq_before {
            c.batch.insert(&self.engine.meta, NEXT_SEQ_KEY, self.next_seq.to_be_bytes());
        }

        if c.batch.is_empty() {
            return Ok(());
        }
        if let Err(e) = disk::require_free(&self.path, self.options.min_free_bytes) {
            self.next_seq = seq_before;
            return Err(e);
        }
        let batch = std::mem::replace(&mut c.batch, self.engine.db.batch());
        let started = std::time::Instant::now();
        let committed = batch.commit();
        warn_if_slow("engine commit", started, c.completions.len());
        if let Err(e) = committed {
            self.next_seq = seq_before;
            self.shared.writable.store(false, Ordering::Relaxed);
            return Err(e.into());
        }
        // Counted once committed, so readers never see a call that is not in
        // the engine; one account at a time, so a reader of an account sees
        // all of a commit's calls or none, and waits for one account at most.
        for (account, a) in &c.accounts {
            if !a.calls.is_empty() {
                let mut pending = self.shared.pending_aggregates.write();
                let calls = a.calls.iter().map(|call| call.view(&c.requests));
                self.counter.count_sorted(&mut pending.current, account, calls, c.now, self.options.late_calls);
            }
        }
        c.new_keys.clear();
        self.unlogged.extend(logged);
        self.hand_over(false);

        // Committed: publish the new state.
        if !c.accounts.is_empty() {
            let mut shared = self.shared.accounts.write();
            for (name, a) in c.accounts.drain() {
                shared.insert(name, a.rec);
            }
        }
        if !c.requests.is_empty() {
            // Freeing a commit's calls (a dozen strings each) is left to the
            // syncer, which mostly waits on the disk, not the writer.
            let garbage = std::mem::take(&mut c.requests);
            c.completions.push(Box::new(move |_| drop(garbage)));
        }
        Ok(())
    }
}

fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialize")
}

fn complete_with<T: Send + 'static>(reply: Reply<T>, value: T) -> Completion {
    Box::new(move |r: Result<(), &StoreError>| {
        let _ = reply.send(match r {
            Ok(()) => Ok(value),
            Err(e) => Err(copy_error(e)),
        });
    })
}

/// A completion that can only fail: for commands not gathered at all.
fn fail_only(cmd: Command) -> Completion {
    fn fail<T: Send + 'static>(reply: Reply<T>) -> Completion {
        Box::new(move |r: Result<(), &StoreError>| {
            let _ = reply.send(Err(r.err().map_or(StoreError::ShuttingDown, copy_error)));
        })
    }
    match cmd {
        Command::Ingest { reply, .. } => fail(reply),
        Command::UpsertAccount { reply, .. } => fail(reply),
        Command::AddAdjustment { reply, .. } | Command::PutToken { reply, .. } => fail(reply),
        Command::DeleteToken { reply, .. } => fail(reply),
    }
}

/// The same error for every request of a failed commit.
fn copy_error(e: &StoreError) -> StoreError {
    match e {
        StoreError::DiskFull(m) => StoreError::DiskFull(m.clone()),
        other => StoreError::Unavailable(other.to_string()),
    }
}
