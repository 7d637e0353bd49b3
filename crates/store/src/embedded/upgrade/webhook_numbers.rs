//! 5 → 6: subscriptions get numbers, and the outbox's and the attempts'
//! keys begin with them instead of the account and id
//! (`subscription_index.rs`).
//!
//! Runs at open before anything reads those keyspaces (the published
//! subscriptions, the fresh rows' recovery), in steps that a crash may cut
//! anywhere: the next open goes on where it stopped. A key of format 5
//! begins with its account's length (1 to 64), one of format 6 with a number
//! whose first byte is 0 (this numbers fewer than 2^24 subscriptions), so
//! each step rewrites only what is still of format 5:
//!
//! 1. every subscription without a number gets the next one, in one batch;
//! 2. each row is written under its new key and its old one removed, in the
//!    same batch, with its index entry when it is pending: the rows are the
//!    truth, and every pending row is due again, as after a crash
//!    (`outbox_fresh::recover`); rows of subscriptions deleted go;
//! 3. the old index entries go; 4. attempts move like rows.
//!
//! The fresh rows' batch entries stay: those of format 5 list keys no row
//! has any more, and `outbox_fresh::recover` drops them (their pending rows
//! were indexed by 2); those a run of this build wrote (an open of an older
//! store whose other upgrades wait, `upgrade.rs`, runs this again) hold
//! rows of new keys that only that recovery writes.
//!
//! Step 1's batch records format 6 (when the store was of format 5), so that
//! a build of format 5 refuses a store whose rewrite a crash cut, rather than
//! read its new keys as keys of deleted subscriptions; and it marks the
//! rewrite begun (`NUMBERING_KEY`), which its end unmarks: a store of format
//! 6 with the mark is finished at its next open.

use super::super::outbox::{self, ROW_KEY_LEN};
use super::super::subscription_index::{self, NEXT_NUMBER_KEY};
use super::super::{outbox_rows, Engine, FORMAT_KEY};
use crate::keys;
use crate::webhook_records::DeliveryState;
use crate::StoreError;
use std::collections::HashMap;

/// The format this step brings a store to.
const NUMBERED_FORMAT: u32 = 6;

/// The `meta` key present while the rewrite is begun and not finished.
const NUMBERING_KEY: &str = "webhook_numbering_begun";

/// Entries rewritten in one engine batch.
const PER_BATCH: usize = 10_000;

/// What the step did, for the open's log.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Numbered {
    pub subscriptions: u64,
    pub rows: u64,
    pub attempts: u64,
    /// Rows and attempts of deleted subscriptions, dropped.
    pub dropped: u64,
}

/// Brings the webhooks' keys of a store of format `found` (5 or earlier) to
/// format 6; records format 6 when `found` is 5 (an older store's other
/// upgrades run later, `upgrade`, which records it then).
pub(crate) fn number_webhooks(engine: &Engine, found: u32) -> Result<Numbered, StoreError> {
    if found >= NUMBERED_FORMAT && engine.meta.get(NUMBERING_KEY)?.is_none() {
        return Ok(Numbered::default());
    }
    let started = std::time::Instant::now();
    let mut done = Numbered::default();
    let numbers = number_subscriptions(engine, found, &mut done)?;
    let new_key = |old: &[u8]| -> Option<Vec<u8>> {
        let (sub_key, id) = old.split_at(old.len().checked_sub(8)?);
        Some(outbox::row_key(*numbers.get(sub_key)?, keys::read_u64(id)?))
    };
    rewrite(engine, &engine.outbox, 0, |batch, old, value| {
        let Some(key) = new_key(old) else {
            done.dropped += 1;
            return;
        };
        let row = outbox_rows::or_step_over(outbox_rows::decode(value), old).ok().flatten();
        if let Some(row) = row.filter(|r| r.state == DeliveryState::Pending) {
            batch.insert(&engine.outbox_due, outbox::due_key(row.next_attempt_at, &key), value);
        }
        batch.insert(&engine.outbox, key, value);
        done.rows += 1;
    })?;
    rewrite(engine, &engine.outbox_due, 8, |_, _, _| {})?;
    rewrite(engine, &engine.attempts, 0, |batch, old, value| match new_key(old) {
        Some(key) => {
            batch.insert(&engine.attempts, key, value);
            done.attempts += 1;
        }
        None => done.dropped += 1,
    })?;
    engine.meta.remove(NUMBERING_KEY)?;
    engine.db.persist(fjall::PersistMode::SyncAll)?;
    tracing::info!(?done, elapsed_ms = started.elapsed().as_millis() as u64, "webhook keys numbered");
    Ok(done)
}

/// Step 1: every subscription's number, by key; those without one get the
/// next. Records format 6 when it was 5.
fn number_subscriptions(engine: &Engine, found: u32, done: &mut Numbered) -> Result<HashMap<Vec<u8>, u32>, StoreError> {
    let mut numbers = HashMap::new();
    let mut unnumbered = Vec::new();
    for item in engine.webhooks.iter() {
        let (k, v) = item.into_inner()?;
        match subscription_index::read_record(&v)? {
            (_, Some(number)) => {
                numbers.insert(k.to_vec(), number);
            }
            (sub, None) => unnumbered.push((k.to_vec(), sub)),
        }
    }
    let mut next = subscription_index::next_number(engine, numbers.values().copied())?;
    let mut batch = engine.db.batch();
    batch.insert(&engine.meta, NUMBERING_KEY, []);
    if found == NUMBERED_FORMAT - 1 {
        batch.insert(&engine.meta, FORMAT_KEY, NUMBERED_FORMAT.to_le_bytes());
    }
    for (k, sub) in unnumbered {
        batch.insert(&engine.webhooks, k.as_slice(), subscription_index::record(&sub, next));
        numbers.insert(k, next);
        next += 1;
        done.subscriptions += 1;
    }
    if next >= 1 << 24 {
        return Err(StoreError::Corrupt(format!("{next} webhooks to number: more than this upgrade can tell apart")));
    }
    batch.insert(&engine.meta, NEXT_NUMBER_KEY, next.to_be_bytes());
    batch.commit()?;
    Ok(numbers)
}

/// Removes every format 5 entry of `keyspace` (its byte at `at` not 0: an
/// account's length), `PER_BATCH` a batch, each removal in the batch of
/// what `put` writes for it.
fn rewrite(
    engine: &Engine,
    keyspace: &fjall::Keyspace,
    at: usize,
    mut put: impl FnMut(&mut fjall::OwnedWriteBatch, &[u8], &[u8]),
) -> Result<(), StoreError> {
    let is_old = |key: &[u8]| key.len() != at + ROW_KEY_LEN || key.get(at).is_some_and(|b| *b != 0);
    let mut from: Vec<u8> = Vec::new();
    loop {
        let mut batch = engine.db.batch();
        let mut n = 0;
        let mut last = None;
        for item in keyspace.range(from.clone()..) {
            let (key, value) = item.into_inner()?;
            if n == PER_BATCH {
                break;
            }
            last = Some(key.to_vec());
            if is_old(&key) {
                put(&mut batch, &key, &value);
                batch.remove(keyspace, key.to_vec());
                n += 1;
            }
        }
        if n > 0 {
            batch.commit()?;
        }
        match last {
            // On after the last key looked at (its successor: the key and a 0 byte).
            Some(mut key) if n == PER_BATCH => {
                key.push(0);
                from = key;
            }
            _ => return Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::super::outbox_batch_entry;
    use super::*;
    use crate::embedded::webhook_store::tests::{attempt_of, call, rows, sub};
    use crate::embedded::EmbeddedStore;
    use crate::webhook_records::{AttemptStatus, Completion, NextStep};
    use crate::{Store, StoreOptions};
    use callmeter_model::{Action, Operation};
    use chrono::Utc;

    /// Rewrites the webhooks' entries `pick` chooses as format 5 wrote them
    /// (keys with the account and id), and the records too (no numbers)
    /// unless `records_numbered`, as step 1 of a cut upgrade leaves them.
    fn to_format_5(
        engine: &Engine,
        sub_keys: &HashMap<u32, Vec<u8>>,
        records_numbered: bool,
        pick: impl Fn(&[u8]) -> bool,
    ) {
        let old_key = |key: &[u8]| {
            let mut k = sub_keys[&outbox::number_of(key)].clone();
            k.extend_from_slice(&key[4..]);
            k
        };
        let mut batch = engine.db.batch();
        for item in engine.webhooks.iter().filter(|_| !records_numbered) {
            let (k, v) = item.into_inner().unwrap();
            let (sub, _) = subscription_index::read_record(&v).unwrap();
            batch.insert(&engine.webhooks, k.to_vec(), serde_json::to_vec(&sub).unwrap());
        }
        // Format 5 wrote a delivered row to `outbox`, and its attempt alone.
        for item in engine.attempts.iter() {
            let (k, v) = item.into_inner().unwrap();
            let Some(row) = outbox_rows::row_of_attempt(&v).unwrap() else { continue };
            let attempt = outbox_rows::attempt_value(&outbox_rows::decode_attempt(&v).unwrap());
            batch.insert(&engine.attempts, k.to_vec(), attempt);
            let key = outbox::row_key(outbox::number_of(&k), row.id);
            batch.insert(&engine.outbox, key, outbox_rows::to_value(&row));
        }
        batch.commit().unwrap();
        let mut batch = engine.db.batch();
        for keyspace in [&engine.outbox, &engine.attempts] {
            for item in keyspace.iter() {
                let (k, v) = item.into_inner().unwrap();
                if pick(&k) {
                    batch.remove(keyspace, k.to_vec());
                    batch.insert(keyspace, old_key(&k), v.to_vec());
                }
            }
        }
        for item in engine.outbox_due.iter() {
            let (k, v) = item.into_inner().unwrap();
            if pick(&k[8..]) {
                batch.remove(&engine.outbox_due, k.to_vec());
                let mut old = k[..8].to_vec();
                old.extend_from_slice(&old_key(&k[8..]));
                batch.insert(&engine.outbox_due, old, v.to_vec());
            }
        }
        // Format 5 wrote fresh rows to `outbox` too, and listed their keys.
        for item in engine.meta.prefix(outbox_batch_entry::KEY_PREFIX) {
            let (k, v) = item.into_inner().unwrap();
            let mut listed = Vec::new();
            for (key, held) in outbox_batch_entry::listed(&v).unwrap() {
                let old = if pick(key) { old_key(key) } else { key.to_vec() };
                if let Some(value) = held.filter(|_| engine.outbox.get(key).unwrap().is_none()) {
                    batch.insert(&engine.outbox, old.clone(), value.to_vec());
                }
                listed.push(old);
            }
            batch.insert(
                &engine.meta,
                k.to_vec(),
                outbox_batch_entry::format_6_value(listed.iter().map(Vec::as_slice)),
            );
        }
        // As step 1 leaves a store of format 5: format 6, the rewrite begun.
        match records_numbered {
            true => batch.insert(&engine.meta, NUMBERING_KEY, []),
            false => batch.remove(&engine.meta, NEXT_NUMBER_KEY),
        }
        let format: u32 = if records_numbered { 6 } else { 5 };
        batch.insert(&engine.meta, FORMAT_KEY, format.to_le_bytes());
        batch.commit().unwrap();
    }

    /// A format 5 store with rows in every state (delivered, pending with an
    /// index entry, fresh, of a deleted subscription): the open numbers it;
    /// each row and attempt is where it was. `half`: as a crash during the
    /// upgrade leaves it, format 6 and the rewrite begun, the records
    /// numbered and some keys of the remaining subscription rewritten (a
    /// deleted one's are only dropped).
    fn upgrades(half: bool) {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        for id in ["wh", "gone"] {
            store.create_subscription(sub(id, "/in", &[Action::Create])).unwrap();
        }
        let writes = ["a", "b", "c"].map(|id| call(id, Operation::Write, &format!("/in/{id}"), |_| {}));
        store.ingest(writes.to_vec()).wait_blocking().unwrap();
        rows(&store, "wh", 3);
        rows(&store, "gone", 3);
        let later = Utc::now() + chrono::Duration::hours(1);
        let claimed = store.claim_deliveries(later, 10, &mut |s| s.id == "wh").unwrap();
        assert_eq!(claimed.len(), 3);
        // The first delivered, the second to be tried again later, the third left claimed (fresh).
        let done: Vec<Completion> = claimed
            .iter()
            .zip([NextStep::Delivered, NextStep::RetryAt(later)])
            .map(|(c, next)| Completion {
                delivery: c.delivery.clone(),
                attempt: Some(attempt_of(c, AttemptStatus::Failed, 500)),
                next,
            })
            .collect();
        store.complete_deliveries(&done).unwrap();
        let rows_before = store.deliveries("acme", "wh").unwrap();
        let attempts_before = store.delivery_attempts("acme", "wh", None, 10).unwrap().attempts;
        let sub_keys: HashMap<u32, Vec<u8>> = ["wh", "gone"]
            .map(|id| (store.known_number("acme", id).unwrap(), keys::subscription_key("acme", id)))
            .into();
        let gone = store.known_number("acme", "gone").unwrap();
        store.delete_subscription("acme", "gone").unwrap();
        // A row and its index entry are rewritten together (step 2): picked by the key.
        to_format_5(&store.engine, &sub_keys, half, |key| {
            !half || outbox::number_of(key) == gone || outbox::id_of(key).is_multiple_of(4)
        });
        store.shutdown();

        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let version = store.engine.meta.get(FORMAT_KEY).unwrap().unwrap();
        assert_eq!(u32::from_le_bytes(version.as_ref().try_into().unwrap()), crate::embedded::FORMAT_VERSION);
        assert_eq!(store.deliveries("acme", "wh").unwrap(), rows_before);
        assert_eq!(store.delivery_attempts("acme", "wh", None, 10).unwrap().attempts, attempts_before);
        assert_eq!(store.engine.outbox.len().unwrap(), 3, "the deleted subscription's rows went");
        assert_eq!(store.engine.attempts.len().unwrap(), 2);
        assert!(store.engine.meta.prefix(outbox_batch_entry::KEY_PREFIX).next().is_none(), "batch entries went");
        assert!(store.engine.meta.get(NUMBERING_KEY).unwrap().is_none(), "the rewrite is finished");
        // The two pending rows are due again, with their ids.
        let claimed_again = store.claim_deliveries(later, 10, &mut |_| true).unwrap();
        let mut ids: Vec<u64> = claimed_again.iter().map(|c| c.delivery.id).collect();
        ids.sort();
        assert_eq!(ids, [claimed[1].delivery.id, claimed[2].delivery.id]);
        // A subscription made now takes its own number, and none of the rows.
        store.create_subscription(sub("new", "/in", &[Action::Create])).unwrap();
        assert_ne!(store.known_number("acme", "new").unwrap(), store.known_number("acme", "wh").unwrap());
        assert!(store.deliveries("acme", "new").unwrap().is_empty());
        assert_eq!(store.deliveries("acme", "wh").unwrap(), rows_before);
        store.shutdown();
    }

    #[test]
    fn a_format_5_store_is_numbered() {
        upgrades(false);
    }

    #[test]
    fn a_store_left_half_numbered_by_a_crash_is_numbered() {
        upgrades(true);
    }
}
