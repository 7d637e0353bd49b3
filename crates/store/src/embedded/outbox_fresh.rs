//! Fresh outbox rows: the pending rows the change processor has just made,
//! handed to the delivery engine in memory instead of through `outbox` and
//! `outbox_due` (docs/adr/0002-delivery-path-cost.md).
//!
//! A fresh row is written nowhere but in its processor batch's one `meta`
//! entry (`outbox_fresh/`, the batch's first delivery id), which holds the
//! key and value of each of the batch's fresh rows. The rows wait in a
//! bounded queue under the outbox lock, each counted as claimed (so that a
//! resend meanwhile is one: `outbox.rs`), until a claim takes them. Per
//! delivery that saves the row's own entry and its index entry, which the
//! processor wrote, the claim's scan of the index and its read of the
//! change, and the index entry's removal at the completion.
//!
//! Until it is done with, a fresh row is in memory too ([`FreshRows`]): the
//! listings and resends (`outbox_lookup.rs`) read it there when `outbox` has no
//! row of its key. It is *done with* once what follows is in the store,
//! each of which writes the row to `outbox`: its attempt recorded with its
//! next state (`outbox_complete::complete`; delivered, the row is held by
//! its attempt instead, in one entry), an index entry written for it
//! (a claim with no room for it, or the claim after a completion that could
//! not be written), it held (its subscription disabled) or resent (a
//! replay, a redelivery). One is dropped, written nowhere, when its
//! subscription was deleted. The batch's entry is removed in the write that
//! does the last of its rows. After a crash the open writes the rows of the
//! entries left that neither `outbox` nor an attempt holds, with their
//! index entries ([`recover`]), and they are claimed like any due row: sent
//! again, with their ids, at least once, as before.
//!
//! Past [`QUEUE_LIMIT`] waiting rows (no engine runs, or it is behind) the
//! processor writes rows with their index entries, as it did before.

use super::outbox::{self, OutboxLocked, Verdict};
use super::outbox_batch_entry::{self, KEY_PREFIX};
use super::outbox_lookup;
use super::{outbox_rows, Engine, Shared};
use crate::webhook_records::{ClaimedDelivery, Delivery, DeliveryState, Subscription};
use crate::StoreError;
use chrono::{DateTime, Utc};
use std::collections::{HashMap, VecDeque};
use std::sync::Arc;

/// Fresh rows waiting for a claim at most: ~0.5 KiB each with its change.
pub(crate) const QUEUE_LIMIT: usize = 8_192;

/// The fresh rows not yet done with, under the outbox lock.
#[derive(Default)]
pub(crate) struct FreshRows {
    /// Rows waiting for a claim, oldest first, with their outbox keys.
    queue: VecDeque<(Vec<u8>, ClaimedDelivery)>,
    /// Rows whose completion could not be written, with their keys: the
    /// next claim writes them with their index entries (they are no longer
    /// queued or claimed).
    pub unindexed: Vec<(Vec<u8>, Delivery)>,
    /// Every fresh row not yet done with, by delivery id.
    rows: HashMap<u64, FreshRow>,
    /// Per batch (by its first delivery id), its rows not yet done with.
    batches: HashMap<u64, usize>,
}

/// A fresh row not yet done with, as its batch entry holds it.
struct FreshRow {
    /// Its batch's first delivery id.
    batch: u64,
    /// Its subscription's number.
    number: u32,
    row: Delivery,
}

/// Fresh rows a write does with, and the batch entries it removes for that.
#[derive(Default)]
pub(crate) struct Done {
    ids: Vec<u64>,
    finished: Vec<u64>,
}

impl FreshRows {
    /// Whether `n` more rows fit in the queue.
    pub fn has_room(&self, n: usize) -> bool {
        self.queue.len() + self.unindexed.len() + n <= QUEUE_LIMIT
    }

    /// Whether the row `id` is fresh and not yet done with.
    pub fn is_fresh(&self, id: u64) -> bool {
        self.rows.contains_key(&id)
    }

    /// The fresh row `id` of subscription `number`, as its batch made it (a
    /// resend may have written it to `outbox` since: that one stands).
    pub fn row(&self, number: u32, id: u64) -> Option<&Delivery> {
        self.rows.get(&id).filter(|f| f.number == number).map(|f| &f.row)
    }

    /// The fresh rows of subscription `number`, in no order.
    pub fn rows_of(&self, number: u32) -> impl Iterator<Item = &Delivery> {
        self.rows.values().filter(move |f| f.number == number).map(|f| &f.row)
    }

    /// Queues the fresh rows of a batch whose entry (`first_id`) is written.
    pub fn add_batch(&mut self, first_id: u64, rows: impl IntoIterator<Item = (Vec<u8>, ClaimedDelivery)>) {
        let before = self.queue.len();
        for (key, c) in rows {
            assert_eq!(c.delivery.state, DeliveryState::Pending, "a fresh row is pending");
            let fresh = FreshRow { batch: first_id, number: outbox::number_of(&key), row: c.delivery.clone() };
            let known = self.rows.insert(c.delivery.id, fresh);
            assert!(known.is_none(), "a delivery id made fresh twice");
            self.queue.push_back((key, c));
        }
        let n = self.queue.len() - before;
        assert!(n > 0, "a batch entry lists some row");
        assert!(self.batches.insert(first_id, n).is_none(), "a batch entry written twice");
    }

    /// What doing with `ids` (fresh or not) in one write means: the batch
    /// entries it must remove. Nothing changes until [`apply`](Self::apply),
    /// once that write is in.
    pub fn plan(&self, ids: impl IntoIterator<Item = u64>) -> Done {
        let mut left: HashMap<u64, usize> = HashMap::new();
        let mut done = Done::default();
        for id in ids {
            let Some(FreshRow { batch, .. }) = self.rows.get(&id) else { continue };
            let n = left.entry(*batch).or_insert_with(|| self.batches[batch]);
            assert!(*n > 0, "a fresh row done with twice in one write");
            *n -= 1;
            if *n == 0 {
                done.finished.push(*batch);
            }
            done.ids.push(id);
        }
        done
    }

    /// [`plan`](Self::plan), with the removal of the batch entries it ends
    /// added to `batch`, the write that does with `ids`.
    pub fn plan_in(
        &self,
        engine: &Engine,
        batch: &mut fjall::OwnedWriteBatch,
        ids: impl IntoIterator<Item = u64>,
    ) -> Done {
        let done = self.plan(ids);
        for first_id in &done.finished {
            batch.remove(&engine.meta, outbox_batch_entry::batch_key(*first_id));
        }
        done
    }

    /// When the earliest row waiting for a claim (queued, or to be indexed) was due.
    pub fn earliest(&self) -> Option<DateTime<Utc>> {
        let queued = self.queue.front().map(|(_, c)| c.delivery.next_attempt_at);
        queued.into_iter().chain(self.unindexed.iter().map(|(_, row)| row.next_attempt_at)).min()
    }

    /// Counts the rows of `done` as done with: its write is in.
    pub fn apply(&mut self, done: Done) {
        for id in done.ids {
            let batch = self.rows.remove(&id).expect("planned rows are fresh").batch;
            let n = self.batches.get_mut(&batch).expect("a fresh row's batch is counted");
            *n -= 1;
            if *n == 0 {
                self.batches.remove(&batch);
                debug_assert!(done.finished.contains(&batch), "a batch ended that its write did not remove");
            }
        }
    }
}

/// What becomes of a queued row a claim looked at.
enum Taken {
    /// Claimed, with its subscription as it is now.
    Claimed(Arc<Subscription>),
    /// Left queued, for the next claim.
    Kept,
    /// Done with by the claim's write: indexed, held or dropped.
    Released,
}

/// What a claim made of the fresh rows, before its write is in.
pub(crate) struct Looked {
    /// For the queue's first rows, in order.
    verdicts: Vec<Taken>,
    /// How many of them were admitted.
    pub admitted: usize,
    /// Index entries the write puts in: claims must scan from them on.
    indexed: Vec<Vec<u8>>,
    done: Done,
}

/// Writes the rows whose completion could not be written, with their
/// index entries, before a claim looks for due rows: that claim finds them.
pub(crate) fn index_unindexed(engine: &Engine, locked: &mut OutboxLocked) -> Result<(), StoreError> {
    if locked.fresh.unindexed.is_empty() {
        return Ok(());
    }
    let mut batch = engine.db.batch();
    let mut indexed = Vec::new();
    for (key, row) in &locked.fresh.unindexed {
        // As it is now: a resend may have written it (its entry is then this same one).
        match engine.outbox.get(key)? {
            Some(value) => indexed.extend(index_if_pending(engine, &mut batch, key, value)?),
            None => indexed.push(write_pending(engine, &mut batch, key, row)),
        }
    }
    let done =
        locked.fresh.plan_in(engine, &mut batch, locked.fresh.unindexed.iter().map(|(key, _)| outbox::id_of(key)));
    crate::failpoint::check("outbox.fresh.index")?;
    batch.commit()?;
    locked.fresh.unindexed.clear();
    locked.fresh.apply(done);
    for due in &indexed {
        locked.scan_from_at_most(due);
    }
    Ok(())
}

/// A claim's look at the queued fresh rows, in order, while fewer than
/// `limit` are admitted. Adds to `cleanup` what becomes of the rows not
/// admitted and not kept, and the batch entries that ends; changes nothing
/// in memory until [`take`]. A row `admit` has no room for stays queued
/// when its subscription's last attempt succeeded: the next claim takes it
/// from memory, where an index entry would put it behind every row due
/// before it (a backlog of hanging receivers' rows, which claims step over
/// 1,024 at a time). A failing subscription's row gets its index entry: it
/// would only fill the queue. Dropped or held when its subscription was
/// deleted or disabled.
pub(crate) fn look(
    engine: &Engine,
    shared: &Shared,
    locked: &OutboxLocked,
    limit: usize,
    admit: &mut dyn FnMut(&Subscription) -> bool,
    cleanup: &mut fjall::OwnedWriteBatch,
) -> Result<Looked, StoreError> {
    let fresh = &locked.fresh;
    let mut looked = Looked { verdicts: Vec::new(), admitted: 0, indexed: Vec::new(), done: Done::default() };
    let mut done = Vec::new();
    // Room only shrinks in a claim: a subscription refused once is refused for the rest of it.
    let mut refused: HashMap<u32, bool> = HashMap::new();
    for (key, c) in &fresh.queue {
        if looked.admitted >= limit {
            break;
        }
        let number = outbox::number_of(key);
        let verdict = match refused.get(&number) {
            Some(proven) => Verdict::Refused { proven: *proven },
            None => outbox::verdict(shared, number, admit),
        };
        if let Verdict::Refused { proven } = verdict {
            refused.insert(number, proven);
        }
        let resent = locked.resent.contains(&c.delivery.id);
        match verdict {
            Verdict::Admitted(sub) => {
                looked.verdicts.push(Taken::Claimed(sub));
                looked.admitted += 1;
                continue;
            }
            Verdict::Refused { proven: true } if !resent => {
                looked.verdicts.push(Taken::Kept);
                continue;
            }
            _ => {}
        }
        if resent {
            // Resent while queued: the resend wrote the row and its index
            // entry, which claims skipped while it was held; released, it
            // is found there (and dropped, held or claimed as it should be).
            if let Some((due, _)) = stored_due(engine, key)? {
                looked.indexed.push(due);
            }
        } else {
            match verdict {
                Verdict::Refused { .. } => looked.indexed.push(write_pending(engine, cleanup, key, &c.delivery)),
                // Its subscription was deleted: nothing will ever send it, and it is written nowhere.
                Verdict::Deleted => {}
                // Kept, for a replay.
                Verdict::Disabled => {
                    let mut held = c.delivery.clone();
                    held.state = DeliveryState::Held;
                    cleanup.insert(&engine.outbox, key.clone(), outbox_rows::to_value(&held));
                }
                Verdict::Admitted(_) => unreachable!("admitted rows are taken above"),
            }
        }
        looked.verdicts.push(Taken::Released);
        done.push(c.delivery.id);
    }
    looked.done = fresh.plan_in(engine, cleanup, done);
    Ok(looked)
}

/// Writes a pending row that `outbox` does not hold, with its index entry
/// (whose key it returns), into `batch`.
fn write_pending(engine: &Engine, batch: &mut fjall::OwnedWriteBatch, key: &[u8], row: &Delivery) -> Vec<u8> {
    outbox::put_row_at(engine, batch, key, row).expect("a fresh row is pending")
}

/// Puts the index entry of the row `outbox` holds at `key` (its value
/// `value`) into `batch` when it is pending; its key.
fn index_if_pending(
    engine: &Engine,
    batch: &mut fjall::OwnedWriteBatch,
    key: &[u8],
    value: fjall::Slice,
) -> Result<Option<Vec<u8>>, StoreError> {
    let due = due_if_pending(key, &value)?;
    if let Some(due) = &due {
        batch.insert(&engine.outbox_due, due.clone(), value);
    }
    Ok(due)
}

/// The index entry of the row at `key` whose value is `value`, if it is
/// pending (a damaged row has none: no claim will stop at it; said once).
fn due_if_pending(key: &[u8], value: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
    let row = outbox_rows::or_step_over(outbox_rows::decode(value), key)?;
    Ok(row.filter(|row| row.state == DeliveryState::Pending).map(|row| outbox::due_key(row.next_attempt_at, key)))
}

/// The index entry of the row stored at `key` and its value, if it is pending.
fn stored_due(engine: &Engine, key: &[u8]) -> Result<Option<(Vec<u8>, fjall::Slice)>, StoreError> {
    let Some(value) = engine.outbox.get(key)? else { return Ok(None) };
    Ok(due_if_pending(key, &value)?.map(|due| (due, value)))
}

/// Once the claim's write is in: the rows it looked at leave the queue,
/// the admitted ones into `out` (still claimed), the others released.
pub(crate) fn take(locked: &mut OutboxLocked, looked: Looked, out: &mut Vec<ClaimedDelivery>) {
    let mut kept = Vec::new();
    for verdict in looked.verdicts {
        let (key, mut c) = locked.fresh.queue.pop_front().expect("a claim looks at queued rows");
        match verdict {
            Taken::Claimed(sub) => {
                c.subscription = sub;
                out.push(c);
            }
            Taken::Kept => kept.push((key, c)),
            Taken::Released => {
                locked.claimed.remove(&c.delivery.id);
                locked.resent.remove(&c.delivery.id);
            }
        }
    }
    // Back at the front, in their order.
    for row in kept.into_iter().rev() {
        locked.fresh.queue.push_front(row);
    }
    for due in &looked.indexed {
        locked.scan_from_at_most(due);
    }
    locked.fresh.apply(looked.done);
}

/// Writes every queued row with its index entry, as a claim does to a failing
/// subscription's rows it has no room for (tests of what claims find in
/// the index).
#[cfg(test)]
pub(crate) fn index_queue(engine: &Engine, locked: &mut OutboxLocked) {
    let mut batch = engine.db.batch();
    let ids: Vec<u64> = locked.fresh.queue.iter().map(|(_, c)| c.delivery.id).collect();
    for (key, c) in &locked.fresh.queue {
        write_pending(engine, &mut batch, key, &c.delivery);
    }
    let done = locked.fresh.plan_in(engine, &mut batch, ids);
    batch.commit().unwrap();
    for (key, c) in std::mem::take(&mut locked.fresh.queue) {
        locked.claimed.remove(&c.delivery.id);
        locked.scan_from_at_most(&outbox::due_key(c.delivery.next_attempt_at, &key));
    }
    locked.fresh.apply(done);
}

/// At open, before the processor starts: the pending rows of the batch
/// entries a crash (or a stop with rows unsent) left are written, or for
/// those `outbox` holds already, indexed, as the processor would have
/// written them, and the entries go, in one batch. A row `outbox` holds was
/// done with (it is not pending, or has an entry already: the same) or
/// resent (its entry is the same too); one an attempt holds was delivered
/// (its attempts are read from the entry's `attempts_from` on). A damaged
/// entry does not stop the open: said, and then every pending row in
/// `outbox` gets its entry (the same again for those that have one); the
/// rows only it held are lost. How many rows were indexed.
pub(crate) fn recover(engine: &Engine) -> Result<usize, StoreError> {
    let mut batch = engine.db.batch();
    let mut entries = Vec::new();
    let mut damaged = false;
    for item in engine.meta.prefix(KEY_PREFIX) {
        let (k, v) = item.into_inner()?;
        batch.remove(&engine.meta, k.to_vec());
        entries.push(v);
    }
    // The rows held by attempts since the earliest entry, by subscription.
    let mut attempts_from: HashMap<u32, u64> = HashMap::new();
    let mut read = Vec::new();
    for v in &entries {
        match outbox_batch_entry::entry(v) {
            Ok(e) => {
                // An entry with no attempt id was written before attempts held rows.
                for (key, _) in e.rows.iter().filter(|(_, held)| held.is_some() && e.attempts_from.is_some()) {
                    let from = attempts_from.entry(outbox::number_of(key)).or_insert(u64::MAX);
                    *from = (*from).min(e.attempts_from.unwrap_or(u64::MAX));
                }
                read.push(e);
            }
            Err(e) => {
                tracing::error!(error = %e, "a fresh outbox batch entry cannot be read: every pending row is made due");
                damaged = true;
            }
        }
    }
    let mut delivered = std::collections::HashSet::new();
    for (number, from) in attempts_from {
        let after = from.checked_sub(1).map(|before| outbox::row_key(number, before));
        let (rows, _) = outbox_lookup::delivered_rows(engine, number, after.as_deref(), None)?;
        delivered.extend(rows.into_iter().map(|(_, row)| row.id));
    }
    let mut indexed = 0;
    for (key, held) in read.iter().flat_map(|e| e.rows.iter().copied()) {
        match (engine.outbox.get(key)?, held) {
            (Some(value), _) => indexed += index_if_pending(engine, &mut batch, key, value)?.is_some() as usize,
            // Delivered, the attempt holding it.
            (None, Some(_)) if delivered.contains(&outbox::id_of(key)) => {}
            (None, Some(value)) => {
                // Never written but here: still pending, unless damaged (said, and left out).
                if let Some(row) = outbox_rows::or_step_over(outbox_rows::decode(value), key)? {
                    write_pending(engine, &mut batch, key, &row);
                    indexed += 1;
                }
            }
            // Format 6, and the row gone: its subscription's rows were dropped.
            (None, None) => {}
        }
    }
    if damaged {
        for item in engine.outbox.iter() {
            let (key, value) = item.into_inner()?;
            indexed += index_if_pending(engine, &mut batch, &key, value)?.is_some() as usize;
        }
    }
    if !entries.is_empty() {
        batch.commit()?;
        tracing::info!(entries = entries.len(), indexed, "fresh webhook deliveries left by the last run are due again");
    }
    Ok(indexed)
}

#[cfg(test)]
mod tests {
    use super::{FreshRow, FreshRows};
    use crate::embedded::outbox_batch_entry::tests::row;

    /// A batch's entry goes with the write that does its last row, and only
    /// once that write is applied; rows of other batches and non-fresh ids
    /// do not count.
    #[test]
    fn a_batch_is_finished_by_its_last_row() {
        let mut fresh = FreshRows::default();
        fresh
            .rows
            .extend([(1, 1), (2, 1), (3, 3)].map(|(id, batch)| (id, FreshRow { batch, number: 3, row: row(id) })));
        fresh.batches.extend([(1, 2), (3, 1)]);
        let plan = fresh.plan([1, 99]);
        assert!(plan.finished.is_empty());
        let again = fresh.plan([1, 2, 3]);
        assert_eq!(again.finished, vec![1, 3], "planned from the counts as they are, not the plan before");
        fresh.apply(plan);
        assert!(!fresh.is_fresh(1) && fresh.is_fresh(2));
        let last = fresh.plan([2]);
        assert_eq!(last.finished, vec![1]);
        fresh.apply(last);
        assert!(!fresh.batches.contains_key(&1) && fresh.batches[&3] == 1);
    }
}
