//! A completion: the attempts of claimed rows recorded, and what becomes of
//! each row (delivered, tried again at its time, given up, held), in one
//! batch; then the claims are released (`outbox.rs` holds the layout and
//! the claims).

use super::outbox::{due_key, put_row, read_row, row_key, unindex, OutboxLocked, NEXT_ATTEMPT_ID_KEY};
use super::{outbox_rows, Engine, Shared};
use crate::failpoint;
use crate::webhook_records::{Completion, DeliveryState, NextStep};
use crate::StoreError;
use std::collections::HashSet;

/// Records attempts of claimed rows and what becomes of each, in one batch,
/// and releases the claims.
pub(crate) fn complete(engine: &Engine, shared: &Shared, done: &[Completion]) -> Result<(), StoreError> {
    let mut locked = shared.outbox.locked.lock();
    if let Some(claimed) = claimed_only(&locked, done) {
        drop(locked);
        return complete(engine, shared, &claimed);
    }
    // Each row's subscription number, from its claim, which this releases.
    let keys: Vec<(u32, Vec<u8>)> = done
        .iter()
        .map(|c| {
            let number = locked.claimed.remove(&c.delivery.id).expect("checked above: claimed");
            (number, row_key(number, c.delivery.id))
        })
        .collect();
    let any_resent = done.iter().any(|c| locked.resent.contains(&c.delivery.id));
    // A failed record, or a panic in it, leaves the rows pending where they
    // were claimed: in view again, to be sent again (at least once).
    let recorded = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| record(engine, &mut locked, &keys, done)));
    if !matches!(recorded, Ok(Ok(()))) {
        for (c, (_, key)) in done.iter().zip(&keys) {
            // No longer claimed: its next claim's completion is of the row the resend wrote.
            locked.resent.remove(&c.delivery.id);
            match locked.fresh.is_fresh(c.delivery.id) {
                // No index entry to find it by: the next claim writes one.
                true => locked.fresh.unindexed.push((key.clone(), c.delivery.clone())),
                false => locked.scan_from_at_most(&due_key(c.delivery.next_attempt_at, key)),
            }
        }
    }
    match recorded {
        Ok(recorded) => recorded?,
        Err(panic) => std::panic::resume_unwind(panic),
    }
    failpoint::hit("outbox.complete.after");
    if any_resent || done.iter().any(|c| matches!(c.next, NextStep::RetryAt(_))) {
        shared.outbox.notify.notify_one();
    }
    Ok(())
}

/// The completions of rows claimed, once each, when some of `done` are not
/// (a defect of the caller): those are left out, said, and recorded nowhere.
fn claimed_only(locked: &OutboxLocked, done: &[Completion]) -> Option<Vec<Completion>> {
    let mut seen = HashSet::new();
    let fine = |c: &Completion, seen: &mut HashSet<u64>| {
        locked.claimed.contains_key(&c.delivery.id) && seen.insert(c.delivery.id)
    };
    if done.iter().all(|c| fine(c, &mut seen)) {
        return None;
    }
    debug_assert!(false, "completions of deliveries not claimed, or twice");
    tracing::error!("completions of webhook deliveries not claimed, or twice: left out");
    seen.clear();
    Some(done.iter().filter(|c| fine(c, &mut seen)).cloned().collect())
}

/// The completions' batch: each attempt, and each row's next state.
fn record(
    engine: &Engine,
    locked: &mut OutboxLocked,
    keys: &[(u32, Vec<u8>)],
    done: &[Completion],
) -> Result<(), StoreError> {
    failpoint::check("outbox.complete")?;
    let mut batch = engine.db.batch();
    let mut next_attempt_id = locked.next_attempt_id;
    // Fresh rows have no index entry to remove, and their batch entries go with their last row.
    let fresh = locked.fresh.plan_in(engine, &mut batch, done.iter().map(|c| c.delivery.id));
    for (c, (number, key)) in done.iter().zip(keys) {
        // A redelivery or replay asked for while the attempt ran made the
        // row pending, due at once: that stands, not the schedule's retry.
        let resent = locked.resent.remove(&c.delivery.id);
        let attempt = c.attempt.as_ref().map(|attempt| {
            let mut attempt = attempt.clone();
            attempt.id = next_attempt_id;
            attempt.delivery = c.delivery.id;
            attempt.next_attempt_at = match c.next {
                NextStep::RetryAt(at) if !resent => Some(at),
                _ => None,
            };
            next_attempt_id += 1;
            (row_key(*number, attempt.id), attempt)
        });
        let attempt_alone = |batch: &mut fjall::OwnedWriteBatch| {
            if let Some((attempt_key, attempt)) = &attempt {
                batch.insert(&engine.attempts, attempt_key.clone(), outbox_rows::attempt_value(attempt));
            }
        };
        if resent {
            attempt_alone(&mut batch);
            // Its entry was stepped over while it was claimed: back in view.
            if let Some(row) = read_row(engine, key)?.filter(|r| r.state == DeliveryState::Pending) {
                locked.scan_from_at_most(&due_key(row.next_attempt_at, key));
            }
            continue;
        }
        // Not resent, the row is as it was claimed: nothing else changes
        // a claimed row (expiry leaves pending rows, a deleted
        // subscription's rows go at a claim), so it is not read again. A
        // fresh one is in no keyspace yet, and has no index entry.
        let mut row = c.delivery.clone();
        let is_fresh = locked.fresh.is_fresh(row.id);
        if cfg!(debug_assertions) {
            if let Ok(stored) = read_row(engine, key) {
                let claimed = (!is_fresh).then_some(&row);
                assert_eq!(stored.as_ref(), claimed, "a claimed row changed without a resend");
            }
            if is_fresh {
                assert_eq!(locked.fresh.row(*number, row.id), Some(&row), "a fresh row is completed as it was made");
            }
        }
        assert_eq!(row.state, DeliveryState::Pending, "a claimed row is pending");
        if !is_fresh {
            unindex(engine, &mut batch, key, &row);
        }
        row.attempts += u32::from(c.attempt.is_some());
        match c.next {
            NextStep::Delivered => row.state = DeliveryState::Delivered,
            NextStep::RetryAt(at) => {
                row.state = DeliveryState::Pending;
                row.next_attempt_at = at;
            }
            NextStep::GiveUp => row.state = DeliveryState::Failed,
            NextStep::Hold => row.state = DeliveryState::Held,
        }
        match &attempt {
            // A fresh row delivered at its first attempt: one entry, the
            // attempt holding the row, which is written nowhere else
            // (`outbox_fresh.rs` says who reads it there).
            Some((attempt_key, attempt)) if is_fresh && row.state == DeliveryState::Delivered => {
                batch.insert(&engine.attempts, attempt_key.clone(), outbox_rows::attempt_value_with_row(attempt, &row));
            }
            _ => {
                attempt_alone(&mut batch);
                put_row(engine, locked, &mut batch, *number, &row);
            }
        }
    }
    batch.insert(&engine.meta, NEXT_ATTEMPT_ID_KEY, next_attempt_id.to_be_bytes());
    batch.commit()?;
    locked.next_attempt_id = next_attempt_id;
    locked.fresh.apply(fresh);
    Ok(())
}
