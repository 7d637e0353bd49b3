//! Derived state kept in memory between checkpoints: recent dedup keys and
//! recent aggregates (totals and breakdown).
//!
//! Writing one dedup key and one breakdown row per call, and every touched
//! totals row, into the engine on every commit costs more than everything
//! else a commit does (two skip-list inserts per call). So a commit writes
//! only the call blocks and a `block_log` entry per block, in one atomic,
//! synced batch; the dedup keys and aggregates of those calls stay in memory.
//! Every few seconds the writer queues a checkpoint job behind its commits;
//! once they are durable the syncer hands it to the checkpointer thread,
//! which writes the dedup keys as a table, then the aggregates together with
//! the removal of the `block_log` entries they came from in one batch, and
//! syncs. After a crash, the blocks still in `block_log` are replayed into
//! memory and checkpointed before the store opens (`recover`), so nothing
//! acknowledged is lost, nothing is counted twice (the blocks are the truth,
//! the rest derives from them), and a start replays only the calls since the
//! last checkpoint, however many crashes came before.
//!
//! The memory this takes is bounded by the checkpoint thresholds, not by the
//! number of stored calls.

use super::{Engine, Shared};
use crate::aggregate::{self, CallFlags, Counters, TotalsDims};
use crate::codec::{self, CallView};
use crate::disk;
use crate::failpoint;
use crate::keys;
use crate::options::LatePolicy;
use crate::StoreError;
use callmeter_model::{bucket_of, DedupKey};
use chrono::{DateTime, Utc};
use rustc_hash::FxHasher;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::hash::{BuildHasherDefault, Hasher};
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::{mpsc, Arc};
use std::time::Duration;

// A checkpoint reads and rewrites every aggregate row its calls touched and
// adds one sorted table of dedup keys, so its cost grows with rows and tables,
// not calls: rarer, bigger checkpoints fold many calls into each row write
// and leave fewer tables for the dedup lookups to probe. The price is memory
// (bounded by these constants: about 100 bytes per key and per row) and the
// block log replayed after a crash (at most MAX_RECENT_KEYS calls).

/// The writer hands over at least every `StoreOptions::checkpoint_interval`
/// when there is something to hand over, or once this many dedup keys are in memory...
pub(crate) const MAX_RECENT_KEYS: usize = 1 << 22;

/// ...or once this many breakdown rows are pending.
pub(crate) const MAX_PENDING_ROWS: usize = 1_000_000;

/// Key tables the dedup keyspace's first level may hold before a checkpoint
/// waits for compaction. Each checkpoint adds its keys as one new table (a
/// new run) there, and random keys make merging them slow: with checkpoints
/// every few milliseconds under load the level grew past 255 runs, which the
/// engine's version file records in one byte, and the store could no longer
/// open. Waiting here keeps it far below that.
pub(crate) const MAX_FIRST_LEVEL_KEY_TABLES: usize = 32;

/// How long a checkpoint waits for compaction before it fails (and is retried).
const COMPACTION_WAIT: Duration = Duration::from_secs(10);

/// How long a start waits for compaction to checkpoint what it replayed: as
/// long as any checkpoint. Giving up is safe (the calls wait in memory and
/// the block log for the first checkpoint after the start), but in a crash
/// loop it is the start's wait that lets a compaction finish at all: each
/// kill cuts the others short. With a 1 s wait, a 1,000-round crash run
/// left the replay to later checkpoints in half its starts, and the replay
/// grew to 1.4 M calls (2.2 s a start) by round 200.
const RECOVERY_COMPACTION_WAIT: Duration = COMPACTION_WAIT;

/// Dedup keys are already uniform random bits: hashing them again is waste.
#[derive(Default)]
pub(crate) struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // `[u8; 16]` hashes as its length, then its bytes: keep the first 8 key bytes.
        for chunk in bytes.chunks(8) {
            let mut word = [0u8; 8];
            word[..chunk.len()].copy_from_slice(chunk);
            self.0 = self.0.rotate_left(5) ^ u64::from_le_bytes(word);
        }
    }
}

/// A set of dedup keys.
pub(crate) type KeySet = HashSet<DedupKey, BuildHasherDefault<KeyHasher>>;

/// Counts of one account bucket that the engine does not hold yet.
#[derive(Debug, Default, Clone)]
pub(crate) struct BucketCounts {
    /// Calls by (interface, operation, flags): a handful of entries.
    pub totals: Vec<(TotalsDims, u64)>,
    /// Breakdown counters by the breakdown key's part after the bucket key.
    pub breakdown: HashMap<Vec<u8>, Counters, BuildHasherDefault<FxHasher>>,
}

impl BucketCounts {
    /// Adds `n` calls to a totals entry.
    pub fn add_total(&mut self, dims: TotalsDims, n: u64) {
        add_entry(&mut self.totals, dims, n);
    }
}

/// Adds `n` to the entry for `dims` in a totals list.
pub(crate) fn add_entry(entries: &mut Vec<(TotalsDims, u64)>, dims: TotalsDims, n: u64) {
    match entries.iter_mut().find(|(d, _)| *d == dims) {
        Some((_, calls)) => *calls += n,
        None => entries.push((dims, n)),
    }
}

/// Counts not yet in the engine, by bucket key (account, bucket).
pub(crate) type Aggregates = BTreeMap<Vec<u8>, BucketCounts>;

/// Aggregates committed but not yet checkpointed into the engine. Readers
/// add them to what the engine holds.
#[derive(Default)]
pub(crate) struct PendingAggregates {
    /// Added to by every commit.
    pub current: Aggregates,
    /// Handed to the checkpointer; emptied once the engine holds it. Shared,
    /// so that the checkpointer reads it without holding the lock.
    pub flushing: Arc<Aggregates>,
}

impl PendingAggregates {
    /// Both generations' counts for the bucket keys in `start..end`, for readers.
    pub fn range<'a>(
        &'a self,
        start: &'a [u8],
        end: &'a [u8],
    ) -> impl Iterator<Item = (&'a Vec<u8>, &'a BucketCounts)> + 'a {
        let range = (std::ops::Bound::Included(start), std::ops::Bound::Excluded(end));
        self.current.range::<[u8], _>(range).chain(self.flushing.range::<[u8], _>(range))
    }

    /// Breakdown rows: every generation's.
    pub fn rows(&self) -> usize {
        self.current.values().map(|b| b.breakdown.len()).sum()
    }
}

/// Counts stored calls into [`Aggregates`], reusing its key buffers so that
/// counting a call into a bucket and row it has seen allocates nothing.
#[derive(Default)]
pub(crate) struct CallCounter {
    bucket_key: Vec<u8>,
    suffix: Vec<u8>,
}

impl CallCounter {
    /// Counts calls of one account, sorted by time, into `aggs`: each call's
    /// bucket totals and breakdown, and, for a late call billed in the open
    /// period, a carried entry in the bucket of `arrival`. Sorted calls come
    /// in runs of one bucket, so the bucket is looked up once per run.
    pub fn count_sorted<'c>(
        &mut self,
        aggs: &mut Aggregates,
        account: &str,
        calls: impl Iterator<Item = CallView<'c>> + Clone,
        arrival: DateTime<Utc>,
        late_calls: LatePolicy,
    ) {
        let mut rest = calls.clone().peekable();
        while let Some(first) = rest.next() {
            let bucket = bucket_of(first.event.time);
            let counts = self.bucket(aggs, account, bucket);
            Self::add(&mut self.suffix, counts, first);
            while let Some(call) = rest.next_if(|c| bucket_of(c.event.time) == bucket) {
                Self::add(&mut self.suffix, counts, call);
            }
        }
        if late_calls == LatePolicy::BillInOpenPeriod {
            let mut carried = calls.filter(|c| c.late && c.billable).peekable();
            if carried.peek().is_some() {
                let counts = self.bucket(aggs, account, bucket_of(arrival));
                for call in carried {
                    let flags = CallFlags { billable: true, late: true, carried: true };
                    Self::add_with(&mut self.suffix, counts, call, flags);
                }
            }
        }
    }

    /// Adds one call to its bucket's totals and breakdown row.
    fn add(suffix: &mut Vec<u8>, counts: &mut BucketCounts, call: CallView<'_>) {
        let flags = CallFlags { billable: call.billable, late: call.late, carried: false };
        Self::add_with(suffix, counts, call, flags);
    }

    /// Adds one call with these flags. A carried entry (a late call billed
    /// in the open period) only bills: it carries no errors or bytes, which
    /// its own bucket's entry has.
    fn add_with(suffix: &mut Vec<u8>, counts: &mut BucketCounts, call: CallView<'_>, flags: CallFlags) {
        let e = call.event;
        counts.add_total(aggregate::totals_dims(e.interface, e.operation, flags), 1);
        suffix.clear();
        aggregate::push_breakdown_suffix(
            suffix,
            e.interface,
            e.operation,
            flags,
            e.api_key.as_deref().unwrap_or(""),
            e.user.as_deref().unwrap_or(""),
        );
        let add = if flags.carried {
            Counters { calls: 1, errors: 0, bytes: 0 }
        } else {
            Counters { calls: 1, errors: e.status.is_some_and(|s| s >= 400) as u64, bytes: e.bytes.unwrap_or(0) }
        };
        match counts.breakdown.get_mut(suffix.as_slice()) {
            Some(c) => c.add(&add),
            None => {
                counts.breakdown.insert(suffix.clone(), add);
            }
        }
    }

    fn bucket<'a>(&mut self, aggs: &'a mut Aggregates, account: &str, bucket: i64) -> &'a mut BucketCounts {
        self.bucket_key.clear();
        keys::push_bucket_key(&mut self.bucket_key, account, bucket);
        if !aggs.contains_key(self.bucket_key.as_slice()) {
            aggs.insert(self.bucket_key.clone(), BucketCounts::default());
        }
        aggs.get_mut(self.bucket_key.as_slice()).expect("inserted above")
    }
}

/// What one checkpoint writes.
pub(crate) struct CheckpointJob {
    /// Dedup keys of the calls since the previous checkpoint.
    pub keys: Arc<KeySet>,
    /// `block_log` sequences those calls came from.
    pub seqs: Vec<u64>,
    /// Every block below this sequence is checkpointed once this job is.
    pub below_seq: u64,
}

/// A `block_log` value: the block's key and when its commit happened (the
/// arrival time of its calls, which decides where carried late calls count).
pub(crate) fn block_log_value(block_key: &[u8], committed_at: DateTime<Utc>) -> Vec<u8> {
    let mut v = Vec::with_capacity(block_key.len() + 8);
    keys::push_i64(&mut v, codec::time_ns(committed_at));
    v.extend_from_slice(block_key);
    v
}

/// What replaying the block log recovered.
pub(crate) struct Replayed {
    /// Dedup keys of the calls in the replayed blocks.
    pub keys: KeySet,
    /// The replayed blocks' sequences.
    pub seqs: Vec<u64>,
}

/// Recovers from a stop without a final checkpoint (a crash): replays the
/// block log into memory and checkpoints it at once, so that the next start
/// does not replay it again. What stays for the writer to hand over (nothing,
/// unless that checkpoint failed, say on a full disk: then the replayed keys
/// and blocks, as before the stop).
pub(crate) fn recover(
    engine: &Engine,
    shared: &Shared,
    path: &std::path::Path,
    min_free_bytes: u64,
    late_calls: LatePolicy,
    next_seq: u64,
) -> Result<Replayed, StoreError> {
    let started = std::time::Instant::now();
    let replayed = replay_block_log(engine, shared, late_calls)?;
    let calls = replayed.keys.len() as u64;
    shared.replay.blocks.store(replayed.seqs.len() as u64, Ordering::Relaxed);
    shared.replay.calls.store(calls, Ordering::Relaxed);
    if replayed.seqs.is_empty() {
        shared.checkpointed_below_seq.store(next_seq, Ordering::Release);
        return Ok(replayed);
    }
    {
        let mut pending = shared.pending_aggregates.write();
        pending.flushing = Arc::new(std::mem::take(&mut pending.current));
    }
    let job = CheckpointJob { keys: Arc::new(replayed.keys), seqs: replayed.seqs, below_seq: next_seq };
    match checkpoint(engine, shared, path, min_free_bytes, &job, RECOVERY_COMPACTION_WAIT) {
        Ok(()) => {
            tracing::info!(
                blocks = job.seqs.len(),
                calls,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "recovered the calls since the last checkpoint"
            );
            Ok(Replayed { keys: KeySet::default(), seqs: Vec::new() })
        }
        Err(e) => {
            tracing::warn!(error = %e, "cannot checkpoint the replayed calls now; they stay in memory and the block log");
            shared.replay.waiting.store(calls, Ordering::Relaxed);
            let mut pending = shared.pending_aggregates.write();
            pending.current = std::mem::take(Arc::make_mut(&mut pending.flushing));
            let keys = Arc::try_unwrap(job.keys).unwrap_or_else(|shared| (*shared).clone());
            Ok(Replayed { keys, seqs: job.seqs })
        }
    }
}

/// Puts the dedup keys and breakdown counts of every block committed since
/// the last checkpoint back into memory, as they were before the process stopped.
fn replay_block_log(engine: &Engine, shared: &Shared, late_calls: LatePolicy) -> Result<Replayed, StoreError> {
    let mut out = Replayed { keys: KeySet::default(), seqs: Vec::new() };
    let mut pending = shared.pending_aggregates.write();
    let mut counter = CallCounter::default();
    for item in engine.block_log.iter() {
        let (seq, value) = item.into_inner()?;
        let bad = || StoreError::Corrupt("block log entry".into());
        out.seqs.push(keys::read_u64(&seq).ok_or_else(bad)?);
        let arrival = keys::read_i64(&value).map(DateTime::from_timestamp_nanos).ok_or_else(bad)?;
        let key = &value[8..];
        let account = keys::read_account(key).ok_or_else(bad)?;
        // A block removed since (retention) has nothing left to count.
        let Some(block) = engine.blocks.get(key)? else { continue };
        let calls = codec::decode_block(account, &block)?;
        for call in &calls {
            out.keys.insert(DedupKey::of(&call.event.account, &call.event.id));
        }
        counter.count_sorted(
            &mut pending.current,
            account,
            calls.iter().map(codec::StoredCall::view),
            arrival,
            late_calls,
        );
    }
    Ok(out)
}

/// Waits, at most `wait`, while the dedup keyspace's first level holds too many key tables.
fn wait_for_compaction(engine: &Engine, wait: Duration) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    while engine.dedup.l0_table_count() >= MAX_FIRST_LEVEL_KEY_TABLES {
        if started.elapsed() >= wait {
            return Err(StoreError::Unavailable("the dedup keys' compaction is behind; the checkpoint waits".into()));
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    super::warn_if_slow("checkpoint waiting for compaction", started, 0);
    Ok(())
}

/// Starts the checkpointer thread. It ends when `jobs` closes.
pub(crate) fn start_checkpointer(
    engine: Engine,
    shared: Arc<Shared>,
    path: PathBuf,
    min_free_bytes: u64,
    jobs: mpsc::Receiver<CheckpointJob>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    let guard = super::WritesStopOnPanic(shared.clone());
    std::thread::Builder::new().name("callmeter-checkpoint".into()).spawn(move || {
        let _guard = guard;
        while let Ok(job) = jobs.recv() {
            loop {
                match checkpoint(&engine, &shared, &path, min_free_bytes, &job, COMPACTION_WAIT) {
                    Ok(()) => break,
                    Err(e) => {
                        tracing::warn!(error = %e, "checkpoint failed; retrying in a second");
                        // Leaving it undone is safe: the block log replays it on the next start.
                        if matches!(jobs.try_recv(), Err(mpsc::TryRecvError::Disconnected)) {
                            return;
                        }
                        std::thread::sleep(Duration::from_secs(1));
                    }
                }
            }
            shared.checkpoints_done.fetch_add(1, Ordering::Release);
        }
    })
}

/// Writes one checkpoint: the flushing breakdown merged into the engine's
/// rows, the dedup keys, and the removal of their block log entries, in one batch.
fn checkpoint(
    engine: &Engine,
    shared: &Shared,
    path: &std::path::Path,
    min_free_bytes: u64,
    job: &CheckpointJob,
    compaction_wait: Duration,
) -> Result<(), StoreError> {
    let check_space = || disk::require_free(path, min_free_bytes);
    // First the dedup keys, on their own and without any lock: writing a key
    // twice is harmless, so they may reach the engine before the block log
    // entries they came from are gone (a replay then adds them to memory again).
    // They are written as sorted tables straight into the tree (bulk
    // ingestion, synced before it returns): no memtable, no journal.
    // Sorted as big-endian integers: the same order as the bytes, and far
    // cheaper than comparing slices through references.
    let mut keys: Vec<u128> = job.keys.iter().map(|k| u128::from_be_bytes(k.0)).collect();
    keys.sort_unstable();
    check_space()?;
    wait_for_compaction(engine, compaction_wait)?;
    let started = std::time::Instant::now();
    let mut ingestion = engine.dedup.start_ingestion()?;
    let half = keys.len() / 2;
    for (i, key) in keys.into_iter().enumerate() {
        if i == half {
            failpoint::check("checkpoint.keys_half_written")?;
        }
        ingestion.write(&key.to_be_bytes()[..], &[][..])?;
    }
    let written = std::time::Instant::now();
    // Finishing takes the engine's journal lock: every write waits meanwhile.
    ingestion.finish()?;
    super::warn_if_slow("dedup key table registered", written, 0);
    let keys_ms = started.elapsed().as_millis() as u64;
    failpoint::check("checkpoint.after_keys")?;

    // Then the aggregates and the block log, together. Only this thread
    // changes `flushing` while a job runs (the writer fills it before sending
    // the job), so reading it now and clearing it later is consistent.
    let aggs = shared.pending_aggregates.read().flushing.clone();
    let mut batch = engine.db.batch();
    for (bucket_key, counts) in aggs.iter() {
        let mut totals = match engine.totals.get(bucket_key)? {
            Some(v) => aggregate::decode_totals(&v)?,
            None => Vec::new(),
        };
        for (dims, n) in &counts.totals {
            add_entry(&mut totals, *dims, *n);
        }
        batch.insert(&engine.totals, bucket_key.as_slice(), aggregate::encode_totals(&totals));
        let mut key = bucket_key.clone();
        for (suffix, delta) in &counts.breakdown {
            key.truncate(bucket_key.len());
            key.extend_from_slice(suffix);
            let mut counters = match engine.breakdown.get(&key)? {
                Some(v) => Counters::decode(&v)?,
                None => Counters::default(),
            };
            counters.add(delta);
            batch.insert(&engine.breakdown, key.as_slice(), counters.encode());
        }
    }
    for seq in &job.seqs {
        batch.remove(&engine.block_log, seq.to_be_bytes());
    }
    check_space()?;
    failpoint::check("checkpoint.before_commit")?;
    // Readers must never see these counts both in the engine and in memory.
    let mut pending = shared.pending_aggregates.write();
    let started = std::time::Instant::now();
    batch.commit()?;
    super::warn_if_slow("checkpoint commit", started, 0);
    pending.flushing = Arc::default();
    drop(pending);
    failpoint::hit("checkpoint.after_commit");
    // Durable now, not at the writer's next sync: after a clean stop there is
    // nothing to replay even if the machine then loses power.
    engine.db.persist(fjall::PersistMode::SyncAll)?;
    shared.checkpointed_below_seq.fetch_max(job.below_seq, Ordering::AcqRel);
    tracing::debug!(keys = job.keys.len(), blocks = job.seqs.len(), keys_ms, "checkpoint written");
    Ok(())
}

#[cfg(test)]
mod tests;
