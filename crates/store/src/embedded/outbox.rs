//! The outbox: one row per event per subscription, claimed by the delivery
//! engine when due, and every attempt made.
//!
//! | keyspace     | key                                        | value            |
//! |--------------|--------------------------------------------|------------------|
//! | `outbox`     | subscription number u32 BE, delivery id u64 BE | the row      |
//! | `outbox_due` | next attempt (ns, sortable), outbox key    | the row, or empty|
//! | `attempts`   | subscription number u32 BE, attempt id u64 BE | `Attempt`     |
//!
//! Keys begin with the subscription's number, not its account and id: 12
//! bytes a row, 20 a due entry, short enough for the engine to keep inside
//! its memtables' nodes (`subscription_index.rs`). Delivery ids are unique in
//! the store, so a claimed row is known by its id alone.
//!
//! `outbox_due` indexes the pending rows by when they are due (a PostgreSQL
//! store: a partial index on `next_attempt_at WHERE state = 'pending'`), so
//! that a claim reads only what is due, however many delivered rows are kept
//! for replay. The row and its index entry change in one batch, and the
//! entry holds the row as it put it (`outbox_rows.rs` encodes both), so a
//! claim reads rows in one scan of the index; entries of earlier builds are
//! empty, and their rows are read from `outbox`. A completion writes the row
//! it claimed, with no read: a claimed row changes only through a resend,
//! which the lock's `resent` tells.
//!
//! Rows are made by the change processor (`processor.rs`), in the batch that
//! moves its cursor, and by the alerts fired (`alerts.rs`), in the batch
//! that marks them fired. A claim marks rows as taken in memory only: this store
//! has one process, and after a crash every pending row is due again, which
//! is the at-least-once the webhooks promise (a PostgreSQL store claims with
//! `FOR UPDATE SKIP LOCKED` and a lease). One lock orders claims, completions,
//! replays and the processor's commits, so that a row and its index entry
//! never disagree.

use super::outbox_fresh::FreshRows;
use super::outbox_lookup::{self, Stored};
use super::{changelog, outbox_fresh, outbox_rows, Engine, Shared};
use crate::failpoint;
use crate::keys;
use crate::webhook_records::{
    Attempt, AttemptPage, ClaimedDelivery, DeliveredEvent, Delivery, DeliveryState, OutboxEvent, Subscription,
};
use crate::StoreError;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, HashSet};
use std::sync::Arc;

pub(crate) const NEXT_DELIVERY_ID_KEY: &str = "next_delivery_id";
pub(crate) const NEXT_ATTEMPT_ID_KEY: &str = "next_attempt_id";

/// The outbox's shared state.
pub(crate) struct OutboxState {
    pub locked: parking_lot::Mutex<OutboxLocked>,
    /// Woken when rows become due: new ones, replays, redeliveries.
    pub notify: Arc<tokio::sync::Notify>,
}

/// What the outbox lock guards.
pub(crate) struct OutboxLocked {
    /// The rows claimed and not yet completed: delivery id → subscription number.
    pub claimed: HashMap<u64, u32>,
    /// Claimed rows (by delivery id) made pending again (a redelivery, a
    /// replay) while their attempt ran: their completion records the attempt
    /// and leaves the row as the resend made it.
    pub resent: HashSet<u64>,
    pub next_delivery_id: u64,
    pub next_attempt_id: u64,
    /// Every `outbox_due` entry of a row no one holds is at or above this
    /// key, so claims and [`next_due`] start their scans here (empty: at the
    /// start). Without it each claim would step again over the removed
    /// entries of every row sent since the engine last compacted them away:
    /// a cost that grows with the rows sent, per claim. Lowered by every
    /// entry put ([`put_row`]) and by a completion that fails; raised by a
    /// claim to where it stopped.
    due_from: Vec<u8>,
    /// Where the last claim stopped for want of budget (`MAX_REFUSED_PER_CLAIM`
    /// refused rows), if it did: the next one scans from here to the end of
    /// what is due, then from `due_from` to here, so that the rows behind a
    /// backlog no one has room for are reached by the claims after it.
    resume_at: Option<Vec<u8>>,
    /// Rows the processor made and handed over in memory (`outbox_fresh.rs`).
    pub fresh: FreshRows,
}

impl OutboxLocked {
    /// Makes sure scans start at or below `due`.
    pub fn scan_from_at_most(&mut self, due: &[u8]) {
        if due < self.due_from.as_slice() {
            self.due_from = due.to_vec();
        }
    }
}

impl OutboxState {
    /// The outbox's state at open, once the fresh rows a crash left are due again.
    pub fn open(engine: &Engine) -> Result<OutboxState, StoreError> {
        outbox_fresh::recover(engine)?;
        let read = |name: &str| -> Result<u64, StoreError> {
            Ok(match engine.meta.get(name)? {
                Some(v) => keys::read_u64(&v).ok_or_else(|| StoreError::Corrupt(name.into()))?,
                None => 0,
            })
        };
        Ok(OutboxState {
            locked: parking_lot::Mutex::new(OutboxLocked {
                claimed: HashMap::new(),
                resent: HashSet::new(),
                next_delivery_id: read(NEXT_DELIVERY_ID_KEY)?,
                next_attempt_id: read(NEXT_ATTEMPT_ID_KEY)?,
                due_from: Vec::new(),
                resume_at: None,
                fresh: FreshRows::default(),
            }),
            notify: Arc::new(tokio::sync::Notify::new()),
        })
    }
}

/// The length of a row's key (and of an attempt's).
pub(crate) const ROW_KEY_LEN: usize = 12;

/// The key of a row of subscription `number` (of an attempt, with its id).
pub(crate) fn row_key(number: u32, id: u64) -> Vec<u8> {
    let mut k = Vec::with_capacity(ROW_KEY_LEN);
    k.extend_from_slice(&number.to_be_bytes());
    keys::push_u64(&mut k, id);
    k
}

/// The first key of subscription `number`'s rows (and attempts).
pub(crate) fn rows_prefix(number: u32) -> [u8; 4] {
    number.to_be_bytes()
}

/// The subscription number an outbox key begins with.
pub(crate) fn number_of(row_key: &[u8]) -> u32 {
    assert_eq!(row_key.len(), ROW_KEY_LEN, "an outbox key is a number and an id");
    keys::read_u32(row_key).expect("an outbox key begins with its subscription number")
}

/// The delivery id an outbox key ends with.
pub(crate) fn id_of(row_key: &[u8]) -> u64 {
    assert_eq!(row_key.len(), ROW_KEY_LEN, "an outbox key is a number and an id");
    keys::read_u64(&row_key[4..]).expect("an outbox key ends with its delivery id")
}

/// The index entry of a pending row.
pub(crate) fn due_key(at: DateTime<Utc>, row_key: &[u8]) -> Vec<u8> {
    let mut k = Vec::with_capacity(8 + row_key.len());
    keys::push_i64(&mut k, crate::codec::time_ns(at));
    k.extend_from_slice(row_key);
    k
}

/// The row key of an index entry's key (none when it is not of this format: damaged).
fn row_key_in(due: &[u8]) -> Option<&[u8]> {
    (due.len() == 8 + ROW_KEY_LEN).then(|| &due[8..])
}

/// Puts a row (and its index entry, when pending) into a batch; under the
/// outbox lock, which learns where the entry is.
pub(crate) fn put_row(
    engine: &Engine,
    locked: &mut OutboxLocked,
    batch: &mut fjall::OwnedWriteBatch,
    number: u32,
    d: &Delivery,
) {
    if let Some(due) = put_row_at(engine, batch, &row_key(number, d.id), d) {
        locked.scan_from_at_most(&due);
    }
}

/// Puts the row at `key` (and its index entry, when pending) into a batch;
/// the index entry's key, for the caller to tell the claims (or, at the
/// open, before any claim, no one).
pub(crate) fn put_row_at(
    engine: &Engine,
    batch: &mut fjall::OwnedWriteBatch,
    key: &[u8],
    d: &Delivery,
) -> Option<Vec<u8>> {
    let value = outbox_rows::to_value(d);
    let due = (d.state == DeliveryState::Pending).then(|| due_key(d.next_attempt_at, key));
    if let Some(due) = &due {
        batch.insert(&engine.outbox_due, due.clone(), value.as_slice());
    }
    batch.insert(&engine.outbox, key.to_vec(), value);
    due
}

pub(crate) fn read_row(engine: &Engine, key: &[u8]) -> Result<Option<Delivery>, StoreError> {
    match engine.outbox.get(key)? {
        Some(v) => Ok(Some(outbox_rows::decode(&v)?)),
        None => Ok(None),
    }
}

/// The row of a due entry: the one it holds, or the one in `outbox` when
/// the entry is empty (an earlier build's) or damaged (the row may not be).
fn row_of_entry(engine: &Engine, key: &[u8], entry: &[u8]) -> Result<Option<Delivery>, StoreError> {
    match entry.is_empty() {
        true => read_row(engine, key),
        false => match outbox_rows::decode(entry) {
            Ok(row) => Ok(Some(row)),
            Err(e) => {
                tracing::error!(error = %e, "an outbox index entry cannot be read: its row is read instead");
                read_row(engine, key)
            }
        },
    }
}

/// Removes a row's index entry, when it has one.
pub(crate) fn unindex(engine: &Engine, batch: &mut fjall::OwnedWriteBatch, key: &[u8], d: &Delivery) {
    if d.state == DeliveryState::Pending {
        batch.remove(&engine.outbox_due, due_key(d.next_attempt_at, key));
    }
}

/// Rows `admit` refuses that one claim steps over at most: past them it
/// stops, so that a large backlog of a saturated target costs a bounded scan.
pub(crate) const MAX_REFUSED_PER_CLAIM: usize = 1_024;

/// What a claim makes of a due row, from its subscription alone.
pub(crate) enum Verdict {
    Admitted(Arc<Subscription>),
    /// No room: whether its last attempt succeeded (not failing since).
    Refused {
        proven: bool,
    },
    Deleted,
    Disabled,
}

/// The verdict on a row of the subscription numbered `number`: room is
/// asked of `admit` last, so that a refused row costs no read of its own.
pub(crate) fn verdict(shared: &Shared, number: u32, admit: &mut dyn FnMut(&Subscription) -> bool) -> Verdict {
    match shared.subscriptions.read().numbered(number) {
        None => Verdict::Deleted,
        Some(sub) if !sub.enabled => Verdict::Disabled,
        Some(sub) if admit(sub) => Verdict::Admitted(sub.clone()),
        Some(sub) => Verdict::Refused { proven: sub.failing_since.is_none() },
    }
}

/// Claims up to `limit` rows due at `now` that no one holds and `admit`
/// takes. On the way, rows of deleted subscriptions go, and rows of disabled
/// ones are held; rows `admit` refuses stay, in view of the next claim.
pub(crate) fn claim(
    engine: &Engine,
    shared: &Shared,
    now: DateTime<Utc>,
    limit: usize,
    admit: &mut dyn FnMut(&Subscription) -> bool,
) -> Result<Vec<ClaimedDelivery>, StoreError> {
    let mut locked = shared.outbox.locked.lock();
    // Room for a claim's usual take: growing a vector of claimed rows costs more than its reads.
    let mut out = Vec::with_capacity(limit.min(256));
    match claim_into(engine, shared, &mut locked, now, limit, admit, &mut out) {
        Ok(()) => Ok(out),
        Err(e) => {
            // The rows taken before the error go back: no one would complete them.
            for c in &out {
                locked.claimed.remove(&c.delivery.id);
            }
            Err(e)
        }
    }
}

/// [`claim`], under the outbox lock, into `out`.
fn claim_into(
    engine: &Engine,
    shared: &Shared,
    locked: &mut OutboxLocked,
    now: DateTime<Utc>,
    limit: usize,
    admit: &mut dyn FnMut(&Subscription) -> bool,
    out: &mut Vec<ClaimedDelivery>,
) -> Result<(), StoreError> {
    failpoint::check("outbox.claim")?;
    outbox_fresh::index_unindexed(engine, locked)?;
    let mut end = Vec::new();
    keys::push_i64(&mut end, crate::codec::time_ns(now).saturating_add(1));
    let mut cleanup = engine.db.batch();
    // The fresh rows first (`outbox_fresh.rs`): taken once the cleanup is in.
    // At most three quarters of the room: under a load that fills every
    // claim the indexed rows (retries, redeliveries, alerts) get the rest.
    let fresh = outbox_fresh::look(engine, shared, locked, limit - limit / 4, admit, &mut cleanup)?;
    let limit = limit - fresh.admitted;
    // The first entry (in key order) this claim leaves for others: where the
    // next claims start once every due entry has been looked at (claimed
    // rows are never scanned for: a completion or a failed one puts their
    // entries back in view).
    let mut first_left: Option<Vec<u8>> = None;
    let mut refused = 0;
    let mut refused_subscriptions: HashSet<u32> = HashSet::new();
    // (A clock moved back may ask for less than was scanned: nothing then.)
    let start = locked.due_from.clone().min(end.clone());
    let resume = locked.resume_at.take().filter(|r| *r > start && *r < end).unwrap_or_else(|| start.clone());
    // The wrapped-around part only when there is one: each range costs a look at every table.
    let wrapped = (resume > start).then(|| engine.outbox_due.range(start..resume.clone()));
    let scan = engine.outbox_due.range(resume..end.clone()).chain(wrapped.into_iter().flatten());
    let mut scanned_all = true;
    for item in scan {
        let (due, entry) = item.into_inner()?;
        if out.len() >= limit || refused >= MAX_REFUSED_PER_CLAIM {
            scanned_all = false;
            locked.resume_at = Some(due.to_vec());
            break;
        }
        let mut leave = || {
            if first_left.as_ref().is_none_or(|f| due.as_ref() < f.as_slice()) {
                first_left = Some(due.to_vec());
            }
        };
        let Some(key) = row_key_in(&due) else {
            tracing::error!(entry = ?due, "an outbox index entry's key is not one: dropped");
            cleanup.remove(&engine.outbox_due, due.to_vec());
            continue;
        };
        if locked.claimed.contains_key(&id_of(key)) {
            continue;
        }
        let number = number_of(key);
        // A subscription refused once in a claim is refused for the rest of
        // it (its room only shrinks): its other rows cost no read.
        if refused_subscriptions.contains(&number) {
            leave();
            refused += 1;
            continue;
        }
        let subscription = match verdict(shared, number, admit) {
            Verdict::Admitted(subscription) => subscription,
            Verdict::Refused { .. } => {
                // Left pending where it is: the next claims start here at the latest.
                leave();
                refused += 1;
                refused_subscriptions.insert(number);
                continue;
            }
            Verdict::Deleted => {
                // Its subscription was deleted: nothing will ever send it.
                cleanup.remove(&engine.outbox_due, due.to_vec());
                cleanup.remove(&engine.outbox, key.to_vec());
                continue;
            }
            Verdict::Disabled => {
                cleanup.remove(&engine.outbox_due, due.to_vec());
                // A damaged row is left as it is (as below), not held: no claim stops at it.
                let row = outbox_rows::or_step_over(row_of_entry(engine, key, &entry), key)?.flatten();
                if let Some(mut d) = row.filter(|d| d.state == DeliveryState::Pending) {
                    d.state = DeliveryState::Held;
                    cleanup.insert(&engine.outbox, key.to_vec(), outbox_rows::to_value(&d));
                }
                continue;
            }
        };
        // A damaged row or event is left out of every later claim, said once,
        // rather than fail each claim at it and stop every delivery behind it.
        let Some(row) = outbox_rows::or_step_over(row_of_entry(engine, key, &entry), key)? else {
            cleanup.remove(&engine.outbox_due, due.to_vec());
            continue;
        };
        let Some(d) = row.filter(|d| d.state == DeliveryState::Pending) else {
            // Sent or held meanwhile: its entry is stale.
            cleanup.remove(&engine.outbox_due, due.to_vec());
            continue;
        };
        let event = match d.event {
            OutboxEvent::Change { seq, action } => match engine.changes.get(changelog::key(seq))? {
                Some(v) => changelog::decode(seq, &v).map(|c| Some(DeliveredEvent::Change(c, action))),
                None => Ok(None),
            },
            OutboxEvent::Alert { id } => {
                super::alerts::get(engine, &d.account, id).map(|a| a.map(DeliveredEvent::Alert))
            }
        };
        let event = match event {
            Err(StoreError::Corrupt(why)) => {
                tracing::error!(%why, delivery = d.id, "a webhook event cannot be read: its delivery has failed");
                Ok(None)
            }
            event => event,
        }?;
        let Some(event) = event else {
            // Expired before it could be sent (a retention shorter than the schedule).
            cleanup.remove(&engine.outbox_due, due.to_vec());
            let mut d = d;
            d.state = DeliveryState::Failed;
            cleanup.insert(&engine.outbox, key.to_vec(), outbox_rows::to_value(&d));
            continue;
        };
        locked.claimed.insert(d.id, number);
        out.push(ClaimedDelivery { delivery: d, subscription, event });
    }
    if !cleanup.is_empty() {
        failpoint::check("outbox.claim.cleanup")?;
        cleanup.commit()?;
    }
    // Only once the cleanup is in: were it not, its entries would stay below.
    // Past a scan cut short, entries not looked at may lie anywhere: keep it.
    if scanned_all {
        locked.due_from = first_left.unwrap_or(end).max(locked.due_from.clone());
    }
    // After the floor above: the index entries written for fresh rows lie below it.
    outbox_fresh::take(locked, fresh, out);
    Ok(())
}

/// Makes rows of subscription `number` pending again, due at `now`, with
/// no attempts: `pick` says which.
fn resend(
    engine: &Engine,
    shared: &Shared,
    number: u32,
    now: DateTime<Utc>,
    pick: impl Fn(&Delivery) -> bool,
    only: Option<u64>,
) -> Result<u64, StoreError> {
    // The rows attempts hold, read before the lock (a long scan), and
    // under it those written meanwhile; none for one delivery `outbox`
    // holds (a row written there stays there, the newest of its states).
    let scan = match only {
        Some(id) => read_row(engine, &row_key(number, id))?.is_none(),
        None => true,
    };
    let (mut delivered, seen) = match scan {
        true => outbox_lookup::delivered_rows(engine, number, None, only)?,
        false => Default::default(),
    };
    let mut locked = shared.outbox.locked.lock();
    if scan {
        delivered.extend(outbox_lookup::delivered_rows(engine, number, seen.as_deref(), only)?.0);
    }
    let mut batch = engine.db.batch();
    let mut n = 0;
    let mut resent = Vec::new();
    let rows = match only {
        Some(id) => {
            let fresh = locked.fresh.row(number, id);
            outbox_lookup::row_with_key(engine, fresh, number, id, delivered)?.into_iter().collect()
        }
        None => outbox_lookup::rows_with_keys(engine, number, delivered, locked.fresh.rows_of(number).cloned())?,
    };
    for (key, stored) in rows {
        let (written, mut d) = match stored {
            Stored::Written(d) => (true, d),
            Stored::Fresh(d) => (false, d),
        };
        if !pick(&d) {
            continue;
        }
        // A fresh row has no index entry to remove.
        if written {
            unindex(engine, &mut batch, &key, &d);
        }
        d.state = DeliveryState::Pending;
        d.attempts = 0;
        d.next_attempt_at = now;
        put_row(engine, &mut locked, &mut batch, number, &d);
        if locked.claimed.contains_key(&d.id) {
            resent.push(d.id);
        }
        n += 1;
    }
    if n > 0 {
        failpoint::check("outbox.resend")?;
        batch.commit()?;
        // Only once the rows are written: a claimed row marked resent is
        // taken to be in `outbox` (a fresh one would be counted done with).
        locked.resent.extend(resent);
        shared.outbox.notify.notify_one();
    }
    Ok(n)
}

/// Sends again the events of a subscription that arrived at or after `since`.
pub(crate) fn replay(
    engine: &Engine,
    shared: &Shared,
    number: u32,
    since: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    resend(engine, shared, number, now, |d| d.created_at >= since, None)
}

/// Sends one delivery again; false when the subscription has no such delivery.
pub(crate) fn redeliver(
    engine: &Engine,
    shared: &Shared,
    number: u32,
    id: u64,
    now: DateTime<Utc>,
) -> Result<bool, StoreError> {
    Ok(resend(engine, shared, number, now, |_| true, Some(id))? == 1)
}

/// A page of a subscription's attempts, newest first, before the attempt id `before`.
pub(crate) fn attempts(
    engine: &Engine,
    number: u32,
    before: Option<u64>,
    limit: usize,
) -> Result<AttemptPage, StoreError> {
    let start = rows_prefix(number).to_vec();
    let end = row_key(number, before.unwrap_or(u64::MAX));
    let mut attempts = Vec::new();
    for item in engine.attempts.range(start..end).rev() {
        let (k, v) = item.into_inner()?;
        if attempts.len() == limit {
            let next_before = attempts.last().map(|a: &Attempt| a.id);
            return Ok(AttemptPage { attempts, next_before });
        }
        attempts.extend(outbox_rows::or_step_over(outbox_rows::decode_attempt(&v), &k)?);
    }
    Ok(AttemptPage { attempts, next_before: None })
}

/// When the earliest pending row no one holds is due.
pub(crate) fn next_due(engine: &Engine, shared: &Shared) -> Result<Option<DateTime<Utc>>, StoreError> {
    let locked = shared.outbox.locked.lock();
    if let Some(at) = locked.fresh.earliest() {
        return Ok(Some(at));
    }
    for item in engine.outbox_due.range(locked.due_from.clone()..) {
        let due = item.key()?;
        if row_key_in(&due).is_none_or(|key| locked.claimed.contains_key(&id_of(key))) {
            continue;
        }
        let ns = keys::read_i64(&due).ok_or_else(|| StoreError::Corrupt("outbox due key".into()))?;
        return Ok(Some(DateTime::from_timestamp_nanos(ns)));
    }
    Ok(None)
}

pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Vec<u8> {
    serde_json::to_vec(v).expect("records serialize")
}
