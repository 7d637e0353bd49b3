//! Calls expire after the retention (DESIGN §3): a background thread removes,
//! every hour, the call blocks whose calls are all older than the retention,
//! and the dedup keys of their calls with them, in one batch per group of
//! blocks. The 15-minute aggregates stay, so period totals outlive the calls.
//! A repeat of an expired call is older than the retention itself, so it is
//! refused for that reason and never counted: its key is no longer needed.
//!
//! The same sweep removes webhook records older than the webhook retention
//! (`StoreOptions::webhook_retention`, 30 days by default): changes the
//! change processor has passed, outbox rows that are no longer pending
//! (delivered, failed, or held for a disabled subscription), and attempts.
//! Replay reaches back that far. Alerts of periods that ended before the
//! calls' retention go too (`alerts.rs`).
//!
//! Which blocks go is decided from keys alone: a block keyed (account,
//! earliest time, seq) starting more than the account's widest block span
//! (at most an hour, `writer::MAX_BLOCK_SPAN_NS`) before the cutoff ends
//! before it. Each expiring block is then read once, for its calls' ids.

use super::{Engine, Shared};
use crate::codec;
use crate::keys;
use crate::StoreError;
use callmeter_model::DedupKey;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How often the sweep runs.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3_600);

/// Removals per engine batch (blocks and keys), so that one sweep never holds a huge batch.
const REMOVALS_PER_BATCH: usize = 10_000;

/// The sweeping thread; stopped by [`Sweeps::stop`] or when dropped.
pub(crate) struct Sweeps {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sweeps {
    /// Starts the sweeps: one at once, then every [`SWEEP_INTERVAL`].
    /// `retention` is the calls', then the webhook records'.
    pub fn start(
        engine: Engine,
        shared: Arc<Shared>,
        (retention, webhook_retention): (chrono::Duration, chrono::Duration),
    ) -> std::io::Result<Sweeps> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("callmeter-expiry".into()).spawn(move || loop {
            let cutoff = chrono::Utc::now() - retention;
            match expire_blocks(&engine, &shared, crate::codec::time_ns(cutoff)) {
                Ok(0) => {}
                Ok(blocks) => tracing::info!(blocks, %cutoff, "expired call blocks older than the retention"),
                Err(e) => tracing::warn!(error = %e, "expiring old call blocks failed; trying again next hour"),
            }
            // An alert's "fired" mark must outlive every evaluation of its period: kept as long as calls are.
            let cutoff = chrono::Utc::now() - retention;
            match super::alerts::expire(&engine, cutoff) {
                Ok(0) => {}
                Ok(alerts) => tracing::info!(alerts, %cutoff, "expired alerts of periods older than the retention"),
                Err(e) => tracing::warn!(error = %e, "expiring old alerts failed; trying again next hour"),
            }
            let cutoff = chrono::Utc::now() - webhook_retention;
            match expire_webhook_records(&engine, &shared, cutoff) {
                Ok(0) => {}
                Ok(records) => tracing::info!(records, %cutoff, "expired webhook records older than their retention"),
                Err(e) => tracing::warn!(error = %e, "expiring old webhook records failed; trying again next hour"),
            }
            if !matches!(stopped.recv_timeout(SWEEP_INTERVAL), Err(mpsc::RecvTimeoutError::Timeout)) {
                return;
            }
        })?;
        Ok(Sweeps { stop: Some(stop), thread: Some(thread) })
    }

    /// Stops the sweeps, waiting for one under way.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sweeps {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Where the instant before which dedup keys may be gone is kept, in `meta`.
const KEYS_COMPLETE_FROM_KEY: &str = "keys_complete_from_ns";

/// The instant from which every stored call's dedup key is held (`i64::MIN`
/// before any sweep removed one).
pub(crate) fn keys_complete_from(engine: &Engine) -> Result<i64, StoreError> {
    match engine.meta.get(KEYS_COMPLETE_FROM_KEY)? {
        Some(v) => keys::read_i64(&v).ok_or_else(|| StoreError::Corrupt("keys_complete_from".into())),
        None => Ok(i64::MIN),
    }
}

/// Removes every block whose calls are all before `cutoff_ns`; the number removed.
///
/// First, durably, the store stops taking calls before the cutoff: a later,
/// longer retention (or a clock set back) must not accept again the repeat of
/// a call whose key this sweep removes.
pub(crate) fn expire_blocks(engine: &Engine, shared: &Shared, cutoff_ns: i64) -> Result<u64, StoreError> {
    {
        // Looked at, written and raised as one step: a sweep that looked
        // before another raised the floor would write a lower one over it.
        let _raising = shared.keys_floor_raise.lock();
        if cutoff_ns > shared.keys_complete_from_ns.load(std::sync::atomic::Ordering::Acquire) {
            crate::failpoint::check("expiry.floor.before_write")?;
            let mut v = Vec::with_capacity(8);
            keys::push_i64(&mut v, cutoff_ns);
            engine.meta.insert(KEYS_COMPLETE_FROM_KEY, v)?;
            engine.db.persist(fjall::PersistMode::SyncAll)?;
            shared.keys_complete_from_ns.store(cutoff_ns, std::sync::atomic::Ordering::Release);
        }
    }
    let accounts: Vec<(String, i64)> =
        shared.accounts.read().values().map(|a| (a.name.clone(), a.max_block_span_ns)).collect();
    let checkpointed_below = shared.checkpointed_below_seq.load(std::sync::atomic::Ordering::Acquire);
    let mut removed = 0;
    for (account, span) in accounts {
        let start = keys::account_prefix(&account);
        let seq_at = start.len() + 8;
        let end = keys::block_scan_start(&account, cutoff_ns.saturating_sub(span));
        let mut batch = engine.db.batch();
        for item in engine.blocks.range(start..end) {
            let (key, value) = item.into_inner()?;
            let seq = keys::read_u64(&key[seq_at..]).ok_or_else(|| StoreError::Corrupt("block key".into()))?;
            if seq >= checkpointed_below {
                continue; // not checkpointed yet: a restart would count from it; the next sweep takes it
            }
            // A block and the keys of its calls go in one batch: a crash
            // between batches leaves each block with its keys, or neither.
            for call in codec::decode_block(&account, &value)? {
                batch.remove(&engine.dedup, DedupKey::of(&call.event.account, &call.event.id).0);
            }
            batch.remove(&engine.blocks, key);
            removed += 1;
            if batch.len() >= REMOVALS_PER_BATCH {
                std::mem::replace(&mut batch, engine.db.batch()).commit()?;
            }
        }
        if !batch.is_empty() {
            batch.commit()?;
        }
    }
    Ok(removed)
}

/// Removes the webhook records from before `cutoff`: processed changes,
/// outbox rows no longer pending, attempts; how many.
pub(crate) fn expire_webhook_records(
    engine: &Engine,
    shared: &Shared,
    cutoff: chrono::DateTime<chrono::Utc>,
) -> Result<u64, StoreError> {
    use crate::webhook_records::DeliveryState;
    let cursor = super::processor::cursor(engine)?;
    let mut removed = 0;
    let mut batch = engine.db.batch();
    let flush = |batch: &mut fjall::OwnedWriteBatch, force: bool| -> Result<(), StoreError> {
        if batch.len() >= REMOVALS_PER_BATCH || (force && !batch.is_empty()) {
            std::mem::replace(batch, engine.db.batch()).commit()?;
        }
        Ok(())
    };
    // Changes are in arrival order: the old ones come first.
    for item in engine.changes.iter() {
        let (k, v) = item.into_inner()?;
        let seq = keys::read_u64(&k).ok_or_else(|| StoreError::Corrupt("change key".into()))?;
        if seq >= cursor || super::changelog::decode(seq, &v)?.arrival >= cutoff {
            break;
        }
        batch.remove(&engine.changes, k);
        removed += 1;
        flush(&mut batch, false)?;
    }
    // Outbox rows: the lock keeps a claim or a replay from rewriting a row meanwhile.
    {
        let _locked = shared.outbox.locked.lock();
        for item in engine.outbox.iter() {
            let (k, v) = item.into_inner()?;
            let Some(d) = super::outbox_rows::or_step_over(super::outbox_rows::decode(&v), &k)? else { continue };
            if d.state != DeliveryState::Pending && d.created_at < cutoff {
                batch.remove(&engine.outbox, k);
                removed += 1;
            }
        }
        flush(&mut batch, true)?;
    }
    for item in engine.attempts.iter() {
        let (k, v) = item.into_inner()?;
        let Some(a) = super::outbox_rows::or_step_over(super::outbox_rows::decode_attempt(&v), &k)? else { continue };
        // One that holds its row goes with the row's time, as the row would from `outbox`:
        // never after a copy a resend wrote there.
        let held = super::outbox_rows::row_of_attempt(&v).ok().flatten();
        if a.at.min(held.map_or(a.at, |row| row.created_at)) < cutoff {
            batch.remove(&engine.attempts, k);
            removed += 1;
            flush(&mut batch, false)?;
        }
    }
    flush(&mut batch, true)?;
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::super::test_event;
    use crate::{CallFilter, EmbeddedStore, Store, StoreOptions};
    use chrono::Utc;

    /// Two sweeps at once: the one with the lower cutoff has looked at the
    /// floor and waits (a failpoint) before writing it, while the other
    /// comes with a higher one: the floor ends at the higher, in memory and
    /// on disk, not written back down. Run in a child process of this test
    /// binary: failpoints are read once a process.
    #[cfg(feature = "failpoints")]
    #[test]
    fn two_sweeps_at_once_leave_the_higher_floor() {
        const NAME: &str = "embedded::expiry::tests::two_sweeps_at_once_leave_the_higher_floor";
        // The open's own sweep is the first to write the floor; the race's low sweep the second.
        if !crate::failpoint::in_child(NAME, "expiry.floor.before_write=2:sleep-400") {
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap());
        // Once the open's sweep has set the floor (the retention's start), both above it.
        let floor = || store.shared.keys_complete_from_ns.load(std::sync::atomic::Ordering::Acquire);
        let started = std::time::Instant::now();
        while floor() == i64::MIN && started.elapsed() < std::time::Duration::from_secs(10) {
            std::thread::sleep(std::time::Duration::from_millis(10));
        }
        let opened = floor();
        assert!(opened > i64::MIN, "the open's sweep set the floor");
        let (low, high) = (opened + 1_000, opened + 2_000);
        let first = {
            let store = store.clone();
            std::thread::spawn(move || {
                let started = std::time::Instant::now();
                super::expire_blocks(&store.engine, &store.shared, low).unwrap();
                started.elapsed()
            })
        };
        // The first has looked (low is above the floor) and sleeps 400 ms
        // before writing, holding the floor's lock: the second comes once
        // the lock is seen held, or after 300 ms (a build without the lock
        // never shows it held: the second then runs during that sleep, and
        // the first writes the floor down below it).
        let waited = std::time::Instant::now();
        while store.shared.keys_floor_raise.try_lock().is_some()
            && waited.elapsed() < std::time::Duration::from_millis(300)
        {
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
        super::expire_blocks(&store.engine, &store.shared, high).unwrap();
        let first_took = first.join().unwrap();
        assert!(
            first_took >= std::time::Duration::from_millis(350),
            "the low sweep waited at the failpoint: the race ran"
        );
        assert_eq!(floor(), high, "the floor in memory");
        assert_eq!(super::keys_complete_from(&store.engine).unwrap(), high, "the floor on disk");
    }

    /// Blocks older than the retention go; younger ones and the totals stay.
    #[test]
    fn old_blocks_go_and_totals_stay() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions { retention: chrono::Duration::hours(1), ..StoreOptions::default() };
        let store = EmbeddedStore::open(dir.path(), options).unwrap();
        let old = Utc::now() - chrono::Duration::minutes(50);
        let young = Utc::now() - chrono::Duration::minutes(5);
        store.ingest((0..30).map(|i| test_event(format!("old{i}"), old)).collect()).wait_blocking().unwrap();
        store.ingest((0..20).map(|i| test_event(format!("young{i}"), young)).collect()).wait_blocking().unwrap();
        let all = CallFilter::default();
        assert_eq!(store.calls("acme", &all, None, 1000).unwrap().calls.len(), 50);
        // A clean stop checkpoints: the dedup keys are in the engine from here on.
        store.shutdown();
        let options = StoreOptions { retention: chrono::Duration::hours(1), ..StoreOptions::default() };
        let store = EmbeddedStore::open(dir.path(), options).unwrap();

        // As if an hour had passed for the old calls but not the young ones.
        let cutoff = crate::codec::time_ns(Utc::now() - chrono::Duration::minutes(20));
        let removed = super::expire_blocks(&store.engine, &store.shared, cutoff).unwrap();
        assert_eq!(removed, 1, "the old commit's one block");
        let left = store.calls("acme", &all, None, 1000).unwrap().calls;
        assert_eq!(left.len(), 20);
        assert!(left.iter().all(|(_, c)| c.event.id.starts_with("young")));
        let bucket = callmeter_model::bucket_of;
        let rows = store.totals("acme", bucket(old), bucket(young) + 1).unwrap();
        let counted: u64 = rows.iter().map(|r| r.calls).sum();
        assert_eq!(counted, 50, "totals outlive the calls");
        let keys_left = |prefix: &str| {
            (0..30)
                .filter(|i| {
                    let key = callmeter_model::DedupKey::of("acme", &format!("{prefix}{i}"));
                    store.engine.dedup.contains_key(key.0).unwrap()
                })
                .count()
        };
        assert_eq!(keys_left("old"), 0, "the expired calls' dedup keys went with them");
        assert_eq!(keys_left("young"), 20, "the young calls' keys stay");
        // A longer retention later does not let an expired call's repeat count again.
        let again = store.ingest(vec![test_event("old3".into(), old)]).wait_blocking().unwrap();
        assert_eq!(again[0], crate::Outcome::Rejected(callmeter_model::RejectReason::OlderThanRetention));
        // A block not yet checkpointed stays, old or not: a restart would count from it.
        store.ingest((0..5).map(|i| test_event(format!("backfill{i}"), young)).collect()).wait_blocking().unwrap();
        let later = crate::codec::time_ns(Utc::now());
        assert_eq!(
            super::expire_blocks(&store.engine, &store.shared, later).unwrap(),
            1,
            "the young block, not the backfill"
        );
        assert_eq!(store.calls("acme", &all, None, 1000).unwrap().calls.len(), 5);
        store.shutdown();
        // The floor holds across a restart with a longer retention.
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let again = store.ingest(vec![test_event("young3".into(), young)]).wait_blocking().unwrap();
        assert_eq!(again[0], crate::Outcome::Rejected(callmeter_model::RejectReason::OlderThanRetention));
        store.shutdown();
    }
}
