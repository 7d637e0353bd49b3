//! The change processor: one thread that reads the change log in order and
//! turns each change into the deliveries its subscriptions want.
//!
//! It reads from its cursor (`meta/change_cursor`) up to what the syncer has
//! made durable (`Shared::changes_durable_below`), waking as soon as that
//! moves: the changes the syncer handed over in memory with each durable
//! commit, and from the log what it did not hand over ([`take_changes`]).
//! For each change it asks the path index what the change is to subscribers (`create` or `update` for a write, … `paths.rs`), and puts one
//! outbox row per subscription of the account that watches the path (or the
//! destination) for that action: pending for an enabled subscription, held
//! for a disabled one (kept, to be replayed); pending rows go to the
//! delivery engine in memory and are written in one entry per batch
//! (`outbox_fresh.rs`). The index's edits, the rows
//! and the cursor past the changes go into **one atomic batch**: after a
//! crash, the changes after the cursor are processed again against the index
//! as it was, and make the same rows with the same ids, so nothing is lost
//! and nothing doubled.
//!
//! The batch is not synced on its own: the journal is one, written in order,
//! so it is durable with the next sync of anything (the syncer's, within a
//! commit), and one lost with a crash is redone from the cursor. Deliveries
//! sent from a row a crash then lost are sent again with the same
//! `webhook-id`: at least once.

use super::outbox::{self, NEXT_DELIVERY_ID_KEY};
use super::outbox_batch_entry;
use super::path_memory::PathMemory;
use super::paths::PathEdits;
use super::{changelog, Engine, Shared};
use crate::disk;
use crate::failpoint;
use crate::keys;
use crate::webhook_records::{
    Change, ClaimedDelivery, DeliveredEvent, Delivery, DeliveryState, OutboxEvent, Subscription,
};
use crate::StoreError;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

pub(crate) const CURSOR_KEY: &str = "change_cursor";

/// Changes taken into one batch at most.
const CHANGES_PER_BATCH: usize = 4_096;

/// How long the processor sleeps without a signal (a stop is signalled too).
const IDLE_WAIT: Duration = Duration::from_secs(1);

/// A batch begins this long after the one before at the earliest, unless a
/// full batch is waiting: each batch has costs of its own (the free-space
/// check, a commit, the journal's write, the engine's wake-up), and a sync
/// every few milliseconds made batches of a few changes each, with those
/// costs a change about a tenth of the processor's CPU (10 ms gathers took
/// 7.6 µs a delivery to 5.3, 25 ms to 4.3). A change waits this much longer
/// for its deliveries at most.
const GATHER: Duration = Duration::from_millis(25);

/// The processor's cursor: every change below it is processed.
pub(crate) fn cursor(engine: &Engine) -> Result<u64, StoreError> {
    Ok(match engine.meta.get(CURSOR_KEY)? {
        Some(v) => keys::read_u64(&v).ok_or_else(|| StoreError::Corrupt(CURSOR_KEY.into()))?,
        None => 0,
    })
}

/// Starts the processor thread; it ends once `shared.stopping` is raised and signalled.
pub(crate) fn start(
    engine: Engine,
    shared: Arc<Shared>,
    path: PathBuf,
    min_free_bytes: u64,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    // Read before the thread starts: the backlog (`ChangeSignal::unprocessed`)
    // counts from it at once. Unread, nothing is processed, and the backlog
    // says so: every change stored.
    let start_at = cursor(&engine);
    if let Ok(c) = &start_at {
        shared.changes.processed_below.store(*c, Ordering::Release);
    }
    std::thread::Builder::new().name("callmeter-changes".into()).spawn(move || {
        let mut scratch = Scratch::default();
        let mut cursor = match start_at {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "cannot read the change processor's cursor; webhooks are not delivered");
                return;
            }
        };
        let mut memory = PathMemory::build(&engine, &|| shared.changes.stopping.load(Ordering::Acquire));
        let mut last_batch: Option<std::time::Instant> = None;
        loop {
            if shared.changes.stopping.load(Ordering::Acquire) {
                return;
            }
            let durable = shared.changes.durable_below.load(Ordering::Acquire);
            if cursor >= durable {
                shared.changes.wait(durable, IDLE_WAIT);
                continue;
            }
            let waiting = (durable - cursor) as usize;
            if let Some(wait) = last_batch.and_then(|at| GATHER.checked_sub(at.elapsed())) {
                if waiting < CHANGES_PER_BATCH && !wait.is_zero() {
                    std::thread::sleep(wait);
                    continue;
                }
            }
            last_batch = Some(std::time::Instant::now());
            let state = (&mut scratch, &mut memory);
            match process_batch(&engine, &shared, (&path, min_free_bytes), state, cursor, durable) {
                Ok(next) => {
                    cursor = next;
                    shared.changes.processed_below.store(cursor, Ordering::Release);
                    shared.changes.batches.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    // Nothing of the batch is written; it is tried again, as after a crash.
                    tracing::warn!(error = %e, "processing changes for webhooks failed; retrying in a second");
                    shared.changes.wait(durable, IDLE_WAIT);
                }
            }
        }
    })
}

/// A batch's changes and rows, kept from batch to batch: a batch holds up
/// to [`CHANGES_PER_BATCH`] of them, and growing fresh vectors that large
/// for each one cost more than reading the changes.
#[derive(Default)]
struct Scratch {
    changes: Vec<Change>,
    rows: Vec<Row>,
}

/// A row a batch makes: its outbox key, itself, its subscription and the
/// change it is of (by its place in the batch).
struct Row {
    /// Its outbox key (`outbox::row_key`).
    key: Vec<u8>,
    /// Its subscription's number.
    number: u32,
    delivery: Delivery,
    subscription: Arc<Subscription>,
    change: usize,
}

/// The changes in `[cursor, durable)`, at most [`CHANGES_PER_BATCH`], in
/// order, into `out`: those the syncer handed over in memory
/// (`ChangeSignal::take_handed`), and from the log where it handed none
/// (past its bound, from before a restart, or a gap a failed commit left,
/// which the log has nothing for either); the cursor after them. Handed-over
/// changes taken and not used (the batch full, or failed) are read from the
/// log next time.
fn take_changes(
    engine: &Engine,
    shared: &Shared,
    cursor: u64,
    durable: u64,
    out: &mut Vec<Change>,
) -> Result<u64, StoreError> {
    let mut next = cursor;
    for (seq, value) in shared.changes.take_handed(cursor, durable, CHANGES_PER_BATCH) {
        debug_assert!(seq >= next && seq < durable, "handed-over changes come in order, durable");
        if seq > next {
            if let Some(stop) = read_log(engine, next, seq, out)? {
                return Ok(stop);
            }
        }
        if out.len() == CHANGES_PER_BATCH {
            return Ok(seq);
        }
        out.push(changelog::decode(seq, &value)?);
        next = seq + 1;
    }
    Ok(read_log(engine, next, durable, out)?.unwrap_or(durable))
}

/// Reads the log's changes in `[from, to)` into `out` while it has room;
/// where it stopped for want of room, if it did.
fn read_log(engine: &Engine, from: u64, to: u64, out: &mut Vec<Change>) -> Result<Option<u64>, StoreError> {
    for item in engine.changes.range(changelog::key(from)..changelog::key(to)) {
        let (k, v) = item.into_inner()?;
        let seq = keys::read_u64(&k).ok_or_else(|| StoreError::Corrupt("change key".into()))?;
        if out.len() == CHANGES_PER_BATCH {
            return Ok(Some(seq));
        }
        out.push(changelog::decode(seq, &v)?);
    }
    Ok(None)
}

/// Processes the changes in `[cursor, durable)`, at most [`CHANGES_PER_BATCH`]
/// of them, in one batch; the cursor after them.
fn process_batch(
    engine: &Engine,
    shared: &Shared,
    (path, min_free_bytes): (&std::path::Path, u64),
    (scratch, memory): (&mut Scratch, &mut PathMemory),
    cursor: u64,
    durable: u64,
) -> Result<u64, StoreError> {
    let Scratch { changes, rows } = scratch;
    changes.clear();
    rows.clear();
    let next_cursor = take_changes(engine, shared, cursor, durable, changes)?;
    let mut edits = PathEdits::new(engine, memory);
    {
        let subscriptions = shared.subscriptions.read();
        for (i, c) in changes.iter().enumerate() {
            let Some(action) = edits.apply(&c.account, c.operation, &c.path, c.destination.as_deref())? else {
                continue;
            };
            for listed in subscriptions.of_account(&c.account) {
                let sub = &listed.sub;
                if sub.wants(action, &c.path, c.destination.as_deref()) {
                    rows.push(Row {
                        // The key is made under the lock, with the delivery id.
                        key: Vec::new(),
                        number: listed.number,
                        delivery: delivery(sub, c.seq, action, c.arrival),
                        subscription: sub.clone(),
                        change: i,
                    });
                }
            }
        }
    }
    // Ids are taken under the outbox lock, held until the batch is in: a
    // claim never sees ids out of order, and they are never taken twice.
    let mut locked = shared.outbox.locked.lock();
    let first_id = locked.next_delivery_id;
    for (i, row) in rows.iter_mut().enumerate() {
        row.delivery.id = first_id + i as u64;
        row.key = outbox::row_key(row.number, row.delivery.id);
    }
    let next_id = first_id + rows.len() as u64;
    // Pending rows go to the engine in memory when the queue has room for them (`outbox_fresh.rs`).
    let is_pending = |r: &Row| r.delivery.state == DeliveryState::Pending;
    let pending = rows.iter().filter(|r| is_pending(r)).count();
    let fresh = pending > 0 && locked.fresh.has_room(pending);
    let mut batch = engine.db.batch();
    edits.write(&mut batch);
    // Fresh rows are written in their batch's entry alone (`outbox_fresh.rs`).
    for row in rows.iter().filter(|r| !(fresh && is_pending(r))) {
        outbox::put_row(engine, &mut locked, &mut batch, row.number, &row.delivery);
    }
    if fresh {
        let listed = rows.iter().filter(|r| is_pending(r)).map(|r| (r.key.as_slice(), &r.delivery));
        let value = outbox_batch_entry::batch_value(locked.next_attempt_id, listed);
        batch.insert(&engine.meta, outbox_batch_entry::batch_key(first_id), value);
    }
    if next_id != first_id {
        batch.insert(&engine.meta, NEXT_DELIVERY_ID_KEY, next_id.to_be_bytes());
    }
    batch.insert(&engine.meta, CURSOR_KEY, next_cursor.to_be_bytes());
    disk::require_free(path, min_free_bytes)?;
    failpoint::check("processor.before_commit")?;
    batch.commit()?;
    edits.committed();
    locked.next_delivery_id = next_id;
    if fresh {
        let queued = rows.drain(..).filter(is_pending).map(|r| {
            let event = match r.delivery.event {
                OutboxEvent::Change { action, .. } => DeliveredEvent::Change(changes[r.change].clone(), action),
                OutboxEvent::Alert { .. } => unreachable!("the processor makes rows of changes"),
            };
            // Held as claimed until a claim takes it: a resend meanwhile is then seen as one.
            locked.claimed.insert(r.delivery.id, r.number);
            (r.key, ClaimedDelivery { delivery: r.delivery, subscription: r.subscription, event })
        });
        let queued: Vec<_> = queued.collect();
        locked.fresh.add_batch(first_id, queued);
    }
    drop(locked);
    failpoint::hit("processor.after_commit");
    if pending > 0 {
        shared.outbox.notify.notify_one();
    }
    Ok(next_cursor)
}

/// A row for `sub` (its id is given under the lock).
fn delivery(
    sub: &Subscription,
    seq: u64,
    action: callmeter_model::Action,
    at: chrono::DateTime<chrono::Utc>,
) -> Delivery {
    Delivery {
        id: 0,
        account: sub.account.clone(),
        subscription: sub.id.clone(),
        event: OutboxEvent::Change { seq, action },
        state: if sub.enabled { DeliveryState::Pending } else { DeliveryState::Held },
        attempts: 0,
        next_attempt_at: at,
        created_at: at,
    }
}

#[cfg(test)]
mod tests {
    use super::GATHER;
    use crate::webhook_records::Watch;
    use crate::{EmbeddedStore, Store, StoreOptions, Subscription};
    use callmeter_model::{Action, CallEvent, Interface, Operation};
    use std::sync::atomic::Ordering;

    /// A store with a folder webhook on `acme`'s `/in`.
    fn watched_store(dir: &std::path::Path) -> EmbeddedStore {
        let store = EmbeddedStore::open(dir, StoreOptions::default()).unwrap();
        let watch = (Watch::Folder { folder: "/in".into() }, vec![Action::Create]);
        let sub = Subscription::new(("acme", "wh"), "http://127.0.0.1:9/hook", watch, "whsec_AAAA", chrono::Utc::now());
        store.create_subscription(sub).unwrap();
        store
    }

    /// Uploads `/in/{id}` to `acme`, one call.
    fn upload(store: &EmbeddedStore, id: String) {
        let mut e = CallEvent::new(id.clone(), "acme".into(), chrono::Utc::now(), Interface::Rest, Operation::Write);
        e.path = Some(format!("/in/{id}"));
        store.ingest(vec![e]).wait_blocking().unwrap();
    }

    /// Waits (10 s at most) until every durable change is processed.
    fn wait_processed(store: &EmbeddedStore) {
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while store.shared.changes.unprocessed() > 0 && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
    }

    /// Uploads from 16 threads, one call per ingest, for about a second:
    /// the store syncs them hundreds of times a second, and the processor
    /// takes their changes in a batch per `GATHER` at most (and a few), not
    /// one per sync; every change is processed.
    #[test]
    fn batches_are_gathered_under_a_stream_of_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = watched_store(dir.path());
        let started = std::time::Instant::now();
        let before = store.shared.changes.batches.load(Ordering::Relaxed);
        let uploads: usize = std::thread::scope(|scope| {
            let threads: Vec<_> = (0..16)
                .map(|t| {
                    let store = &store;
                    scope.spawn(move || {
                        let mut n = 0;
                        while started.elapsed() < std::time::Duration::from_secs(1) {
                            upload(store, format!("t{t}-{n}"));
                            n += 1;
                        }
                        n
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).sum()
        });
        wait_processed(&store);
        let elapsed = started.elapsed().as_millis();
        assert_eq!(store.deliveries("acme", "wh").unwrap().len(), uploads, "every change made its row");
        let batches = (store.shared.changes.batches.load(Ordering::Relaxed) - before) as u128;
        let most = elapsed / GATHER.as_millis() + 5;
        assert!(uploads > 2 * most as usize, "{uploads} uploads in {elapsed} ms: too few for the test to tell");
        assert!(batches <= most, "{batches} batches for {uploads} changes in {elapsed} ms (at most {most})");
        store.shutdown();
    }

    /// Changes the syncer handed over in memory and changes read from the
    /// log make one ordered run: the log fills what was not handed over
    /// (before and between them, and after), and handed-over changes below
    /// the cursor are left out.
    #[test]
    fn handed_over_changes_and_the_log_make_one_run() {
        let dir = tempfile::tempdir().unwrap();
        let store = watched_store(dir.path());
        for n in 0..20 {
            upload(&store, format!("c{n}"));
        }
        wait_processed(&store);
        // Processed: the processor's thread takes nothing more, and has taken what it was handed.
        let durable = store.shared.changes.durable_below.load(Ordering::Acquire);
        assert!(store.shared.changes.take_handed(0, u64::MAX, usize::MAX).is_empty());
        let logged: Vec<(u64, Box<[u8]>)> = store
            .engine
            .changes
            .iter()
            .map(|item| {
                let (k, v) = item.into_inner().unwrap();
                (crate::keys::read_u64(&k).unwrap(), (*v).into())
            })
            .collect();
        assert_eq!(logged.len(), 20);
        let decoded = |from: usize| -> Vec<crate::Change> {
            logged[from..].iter().map(|(seq, v)| super::changelog::decode(*seq, v).unwrap()).collect()
        };
        for (cursor, handed) in [(0, vec![3, 4, 7, 15]), (0, vec![0, 19]), (5, vec![2, 6, 7]), (0, vec![])] {
            let picked = handed.iter().map(|&i: &usize| logged[i].clone()).collect();
            store.shared.changes.hand_over(picked);
            let mut out = Vec::new();
            let next = super::take_changes(&store.engine, &store.shared, logged[cursor].0, durable, &mut out).unwrap();
            assert_eq!((next, out), (durable, decoded(cursor)), "handed {handed:?} from {cursor}");
            assert!(store.shared.changes.take_handed(0, u64::MAX, usize::MAX).is_empty(), "every one taken");
        }
        store.shutdown();
    }

    /// Handed-over changes are bounded (past the bound the log has them),
    /// and taken below the durable point only, at most as many as asked.
    #[test]
    fn handed_over_changes_are_bounded_and_taken_below_the_durable_point() {
        let signal = super::changelog::ChangeSignal::default();
        let change = |seq: u64| (seq, Box::from(&b"x"[..]));
        signal.hand_over((0..10).map(change).collect());
        signal.hand_over((10..10 + super::changelog::HANDED_LIMIT as u64).map(change).collect());
        let seqs = |v: Vec<super::changelog::Encoded>| v.into_iter().map(|(s, _)| s).collect::<Vec<_>>();
        assert_eq!(seqs(signal.take_handed(2, 6, 100)), vec![2, 3, 4, 5], "from the cursor, below the durable point");
        assert_eq!(seqs(signal.take_handed(6, 100, 2)), vec![6, 7], "at most as many as asked");
        assert_eq!(seqs(signal.take_handed(0, 100, 100)), vec![8, 9], "the commit past the bound was not kept");
    }
}
