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

use super::{Engine, Shared};
use crate::aggregate::{self, CallFlags, Counters, TotalsDims};
use crate::codec::{self, StoredCall};
use crate::disk;
use crate::keys;
use crate::options::{LatePolicy, StoreOptions};
use crate::records::{AccountRecord, Adjustment, Outcome, TokenRecord};
use crate::store::{AccountChange, IngestTicket};
use crate::StoreError;
use callmeter_model::{bucket_of, CallEvent, DedupKey, RejectReason};
use chrono::{DateTime, Utc};
use fjall::PersistMode;
use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::mpsc;
use std::sync::Arc;
use std::thread::JoinHandle;
use tokio::sync::oneshot;

/// Calls per stored block: large enough to compress well, small enough that
/// a request-log page does not decode much more than it shows.
const MAX_BLOCK_CALLS: usize = 4096;

/// Aggregate values the writer keeps in memory before it reads them again from the engine.
const MAX_CACHED_AGGREGATES: usize = 1 << 20;

const NEXT_SEQ_KEY: &str = "next_seq";

type Reply<T> = oneshot::Sender<Result<T, StoreError>>;

enum Command {
    Ingest { events: Vec<CallEvent>, reply: Reply<Vec<Outcome>> },
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
    let (tx, rx) = mpsc::channel::<Command>();
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
        totals_cache: HashMap::new(),
        breakdown_cache: HashMap::new(),
        sync_tx,
    };
    let writer = std::thread::Builder::new().name("callmeter-writer".into()).spawn(move || writer.run(rx))?;
    Ok(WriterHandle { tx: parking_lot::Mutex::new(Some(tx)), threads: parking_lot::Mutex::new(vec![writer, syncer]) })
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

    pub fn ingest(&self, events: Vec<CallEvent>) -> IngestTicket {
        IngestTicket(self.send(|reply| Command::Ingest { events, reply }))
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
        let result = db.persist(PersistMode::SyncAll).map_err(StoreError::from);
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
    /// Totals values as last committed, by key.
    totals_cache: HashMap<Vec<u8>, Vec<(TotalsDims, u64)>>,
    /// Breakdown values as last committed, by key.
    breakdown_cache: HashMap<Vec<u8>, Counters>,
    sync_tx: mpsc::Sender<Completion>,
}

/// Everything one commit will write, gathered before the engine sees any of it.
struct Commit {
    now: DateTime<Utc>,
    batch: fjall::OwnedWriteBatch,
    keys_seen: HashSet<DedupKey>,
    accounts: HashMap<String, AccountRecord>,
    calls: HashMap<String, Vec<StoredCall>>,
    totals: HashMap<Vec<u8>, HashMap<TotalsDims, u64>>,
    breakdown: HashMap<Vec<u8>, Counters>,
    completions: Vec<Completion>,
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
        tracing::debug!("writer stopped");
    }

    fn commit(&mut self, commands: Vec<Command>) {
        let mut c = Commit {
            now: Utc::now(),
            batch: self.engine.db.batch(),
            keys_seen: HashSet::new(),
            accounts: HashMap::new(),
            calls: HashMap::new(),
            totals: HashMap::new(),
            breakdown: HashMap::new(),
            completions: Vec::with_capacity(commands.len()),
        };
        let result = self.gather(&mut c, commands).and_then(|()| self.write(&mut c));
        match result {
            Ok(()) => {
                let _ = c.completions.drain(..).try_for_each(|done| self.sync_tx.send(done));
            }
            Err(e) => {
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
                Command::Ingest { events, reply } => {
                    let mut outcomes = Vec::with_capacity(events.len());
                    for e in events {
                        outcomes.push(self.ingest_event(c, e)?);
                    }
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

    fn ingest_event(&mut self, c: &mut Commit, e: CallEvent) -> Result<Outcome, StoreError> {
        // DESIGN §3: deduplication comes first, so a late or expired copy of a counted call is a duplicate.
        let key = DedupKey::of(&e.account, &e.id);
        if c.keys_seen.contains(&key) || self.engine.dedup.contains_key(key.0)? {
            return Ok(Outcome::Duplicate);
        }
        if e.time < c.now - self.options.retention {
            return Ok(Outcome::Rejected(RejectReason::OlderThanRetention));
        }
        let Some(account) = self.account_for(c, &e) else {
            return Ok(Outcome::Rejected(RejectReason::UnknownAccount));
        };
        let billable = self.options.rules.is_billable(e.interface, e.time);
        let (period, _) = account.schedule.period_containing(e.time);
        let late = period.closes_at(self.options.grace) <= c.now;
        let flags = CallFlags { billable, late, carried: false };

        c.keys_seen.insert(key);
        c.batch.insert(&self.engine.dedup, key.0, []);
        let bucket = bucket_of(e.time);
        let tkey = keys::bucket_key(&e.account, bucket);
        *c.totals
            .entry(tkey)
            .or_default()
            .entry(aggregate::totals_dims(e.interface, e.operation, flags))
            .or_default() += 1;
        if late && billable && self.options.late_calls == LatePolicy::BillInOpenPeriod {
            let carried = CallFlags { billable, late, carried: true };
            let arrival = keys::bucket_key(&e.account, bucket_of(c.now));
            *c.totals
                .entry(arrival)
                .or_default()
                .entry(aggregate::totals_dims(e.interface, e.operation, carried))
                .or_default() += 1;
        }
        let bkey = aggregate::breakdown_key(
            &e.account,
            bucket,
            e.interface,
            e.operation,
            flags,
            e.api_key.as_deref().unwrap_or(""),
            e.user.as_deref().unwrap_or(""),
        );
        c.breakdown.entry(bkey).or_default().add(&Counters {
            calls: 1,
            errors: e.status.is_some_and(|s| s >= 400) as u64,
            bytes: e.bytes.unwrap_or(0),
        });
        let account = e.account.clone();
        c.calls.entry(account).or_default().push(StoredCall { event: e, billable, late });
        Ok(Outcome::Accepted)
    }

    /// The account of an event, created on first sight when the options allow.
    fn account_for<'c>(&self, c: &'c mut Commit, e: &CallEvent) -> Option<&'c AccountRecord> {
        if !c.accounts.contains_key(&e.account) {
            let existing = self.shared.accounts.read().get(&e.account).cloned();
            let rec = match existing {
                Some(rec) => rec,
                None if self.options.auto_create_accounts => {
                    let tz = self.options.default_timezone;
                    let anchor = e.time.with_timezone(&tz).date_naive();
                    let schedule = self.options.schedule_for(&self.options.default_plan, tz, anchor);
                    let rec =
                        AccountRecord { name: e.account.clone(), schedule, created_at: c.now, max_block_span_ns: 0 };
                    c.batch.insert(&self.engine.accounts, e.account.as_bytes(), to_json(&rec));
                    tracing::info!(account = %e.account, plan = %self.options.default_plan, "account created");
                    rec
                }
                None => return None,
            };
            c.accounts.insert(e.account.clone(), rec);
        }
        c.accounts.get(&e.account)
    }

    fn upsert_account(&self, c: &mut Commit, name: &str, change: AccountChange) -> Result<AccountRecord, StoreError> {
        if let Some(plan) = &change.plan {
            if !self.options.plans.iter().any(|p| &p.name == plan) {
                return Err(StoreError::UnknownPlan(plan.clone()));
            }
        }
        let existing = c.accounts.get(name).cloned().or_else(|| self.shared.accounts.read().get(name).cloned());
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
        c.accounts.insert(name.to_owned(), rec.clone());
        Ok(rec)
    }

    fn take_seq(&mut self) -> u64 {
        self.next_seq += 1;
        self.next_seq - 1
    }

    /// Adds the blocks and aggregates to the batch, commits it, and publishes what changed.
    fn write(&mut self, c: &mut Commit) -> Result<(), StoreError> {
        let seq_before = self.next_seq;
        for (account, mut calls) in std::mem::take(&mut c.calls) {
            calls.sort_by_key(|s| s.event.time);
            for chunk in calls.chunks(MAX_BLOCK_CALLS) {
                let min = codec::time_ns(chunk[0].event.time);
                let max = codec::time_ns(chunk[chunk.len() - 1].event.time);
                let seq = self.take_seq();
                c.batch.insert(&self.engine.blocks, keys::block_key(&account, min, seq), codec::encode_block(chunk));
                let rec = c.accounts.get_mut(&account).expect("accepted calls have an account");
                if max.saturating_sub(min) > rec.max_block_span_ns {
                    rec.max_block_span_ns = max.saturating_sub(min);
                    c.batch.insert(&self.engine.accounts, account.as_bytes(), to_json(&*rec));
                }
            }
        }
        if self.next_seq != seq_before {
            c.batch.insert(&self.engine.meta, NEXT_SEQ_KEY, self.next_seq.to_be_bytes());
        }

        let mut new_totals = Vec::with_capacity(c.totals.len());
        for (key, deltas) in std::mem::take(&mut c.totals) {
            let mut entries = match self.totals_cache.get(&key) {
                Some(v) => v.clone(),
                None => match self.engine.totals.get(&key)? {
                    Some(v) => aggregate::decode_totals(&v)?,
                    None => Vec::new(),
                },
            };
            for (dims, n) in deltas {
                match entries.iter_mut().find(|(d, _)| *d == dims) {
                    Some((_, calls)) => *calls += n,
                    None => entries.push((dims, n)),
                }
            }
            c.batch.insert(&self.engine.totals, key.as_slice(), aggregate::encode_totals(&entries));
            new_totals.push((key, entries));
        }
        let mut new_breakdown = Vec::with_capacity(c.breakdown.len());
        for (key, delta) in std::mem::take(&mut c.breakdown) {
            let mut counters = match self.breakdown_cache.get(&key) {
                Some(v) => *v,
                None => match self.engine.breakdown.get(&key)? {
                    Some(v) => Counters::decode(&v)?,
                    None => Counters::default(),
                },
            };
            counters.add(&delta);
            c.batch.insert(&self.engine.breakdown, key.as_slice(), counters.encode());
            new_breakdown.push((key, counters));
        }

        if c.batch.is_empty() {
            return Ok(());
        }
        let free = disk::available_bytes(&self.path)?;
        if free < self.options.min_free_bytes {
            self.next_seq = seq_before;
            return Err(StoreError::DiskFull(format!(
                "{free} bytes free in {}, below the {} bytes kept in reserve",
                self.path.display(),
                self.options.min_free_bytes
            )));
        }
        let batch = std::mem::replace(&mut c.batch, self.engine.db.batch());
        if let Err(e) = batch.commit() {
            self.next_seq = seq_before;
            self.shared.writable.store(false, Ordering::Relaxed);
            return Err(e.into());
        }

        // Committed: publish the new state.
        if self.totals_cache.len() + new_totals.len() > MAX_CACHED_AGGREGATES {
            self.totals_cache.clear();
        }
        self.totals_cache.extend(new_totals);
        if self.breakdown_cache.len() + new_breakdown.len() > MAX_CACHED_AGGREGATES {
            self.breakdown_cache.clear();
        }
        self.breakdown_cache.extend(new_breakdown);
        if !c.accounts.is_empty() {
            let mut shared = self.shared.accounts.write();
            for (name, rec) in c.accounts.drain() {
                shared.insert(name, rec);
            }
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
