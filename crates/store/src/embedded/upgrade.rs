//! Upgrades of the store format, run once at open (DESIGN §9: the store
//! format carries a version and upgrades itself).
//!
//! - 1 → 2: blocks span at most `MAX_BLOCK_SPAN_NS`. Format 1 put an
//!   account's calls of one commit in one block however far apart they were,
//!   so a single old call committed beside current ones widened the account's
//!   block span for good (request-log pages and the retention sweep start
//!   their scans that far back). The upgrade splits every wider block into
//!   blocks of at most the bound, one old block per engine batch (its pieces
//!   in, itself out: a crash leaves either), then narrows the account.
//! - 2 → 3: the dedup keys move from the keyspace `dedup`, made with the
//!   engine's default tables, to `dedup_keys`, made with small ones (why:
//!   `DEDUP_TABLE_BYTES` in `mod.rs`). The engine keeps a keyspace's table
//!   size from its creation, so the keys are copied, in key order, as one
//!   ingestion (visible whole or not at all), and the old keyspace dropped.
//!   A crash before the new format is recorded copies them again, which
//!   is harmless: a key written twice is one key.
//! - 3 → 4: outbox rows are written in a binary form (`outbox_rows.rs`),
//!   and each due entry holds its row. Nothing is rewritten: format 3's JSON
//!   rows and empty entries are still read. The version is raised so that
//!   an earlier build, which reads JSON rows only, refuses the store rather
//!   than take this build's rows for damaged ones and drop their deliveries.
//! - 4 → 5: fresh outbox rows have no due entry, only their batch's entry
//!   in `meta` (`outbox_fresh.rs`), and attempts are written in a binary
//!   form (`outbox_rows.rs`). Nothing is rewritten: format 4's due entries and
//!   JSON attempts are still read. The version is raised so that an earlier
//!   build, which would never find the fresh rows (nor read the attempts),
//!   refuses the store rather than lose those deliveries.
//! - 5 → 6: subscriptions have numbers, and the keys of outbox rows, their
//!   due entries and attempts begin with them (`webhook_numbers.rs`). Runs
//!   first, at the open, before anything reads those keys.
//! - 6 → 7: a fresh outbox row is written only in its batch's entry in
//!   `meta`, which now holds the rows (`outbox_fresh.rs`), not in `outbox`.
//!   Nothing is rewritten: format 6's entries, which list keys of rows in
//!   `outbox`, are still read. The version is raised so that an earlier
//!   build, which would read an entry of rows as a damaged list of keys and
//!   never find those rows, refuses the store rather than lose them.

mod webhook_numbers;

pub(crate) use webhook_numbers::number_webhooks;

use super::writer::{MAX_BLOCK_SPAN_NS, NEXT_SEQ_KEY};
use super::{Engine, Shared, FORMAT_KEY, FORMAT_VERSION};
use crate::codec::{self, StoredCall};
use crate::keys;
use crate::StoreError;

/// Formats from which [`upgrade`] rewrites nothing: only the version is raised.
const REWRITES_NOTHING_FROM: u32 = 3;

/// Records [`FORMAT_VERSION`] at open, before the processor writes anything
/// of it, when [`upgrade`] has nothing to rewrite (once the webhooks are
/// numbered). `upgrade` runs only after the writer's recovery checkpoint,
/// which may fail or wait for the next start; meanwhile the processor
/// writes fresh rows as format 7 keeps them (`outbox_fresh.rs`), and a build
/// of format 6 must refuse the store rather than read them.
pub(crate) fn record_version_early(engine: &Engine, found: u32) -> Result<(), StoreError> {
    if (REWRITES_NOTHING_FROM..FORMAT_VERSION).contains(&found) {
        engine.meta.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes())?;
    }
    Ok(())
}

/// Brings a store of format `found` to [`FORMAT_VERSION`]. Runs before the
/// writer starts and after recovery, so the block log is empty (no entry
/// points at a block this replaces).
pub(crate) fn upgrade(engine: &Engine, shared: &Shared, found: u32, next_seq: &mut u64) -> Result<(), StoreError> {
    if found >= FORMAT_VERSION {
        return Ok(());
    }
    assert!(engine.block_log.is_empty()?, "upgrades run on a recovered store");
    let started = std::time::Instant::now();
    let split = if found < 2 { split_wide_blocks(engine, shared, next_seq)? } else { 0 };
    let keys_moved = if found < 3 { move_dedup_keys(engine)? } else { 0 };
    engine.meta.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes())?;
    engine.db.persist(fjall::PersistMode::SyncAll)?;
    tracing::info!(
        from = found,
        to = FORMAT_VERSION,
        blocks_split = split,
        keys_moved,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "store format upgraded"
    );
    Ok(())
}

/// Format 2's keyspace of dedup keys.
const FORMAT_2_DEDUP_KEYSPACE: &str = "dedup";

/// Copies format 2's dedup keys into the dedup keyspace and drops theirs; the number copied.
fn move_dedup_keys(engine: &Engine) -> Result<u64, StoreError> {
    if !engine.db.keyspace_exists(FORMAT_2_DEDUP_KEYSPACE) {
        return Ok(0);
    }
    let old = engine.db.keyspace(FORMAT_2_DEDUP_KEYSPACE, fjall::KeyspaceCreateOptions::default)?;
    let mut moved = 0;
    if !old.is_empty()? {
        let mut ingestion = engine.dedup.start_ingestion()?;
        for item in old.iter() {
            let key = item.key()?;
            debug_assert_eq!(key.len(), 16, "a dedup key is 16 bytes");
            ingestion.write(key, &[][..])?;
            moved += 1;
        }
        ingestion.finish()?;
    }
    engine.db.delete_keyspace(old)?;
    Ok(moved)
}

/// Splits every block wider than the bound; the number split.
fn split_wide_blocks(engine: &Engine, shared: &Shared, next_seq: &mut u64) -> Result<u64, StoreError> {
    let wide: Vec<String> = shared
        .accounts
        .read()
        .values()
        .filter(|a| a.max_block_span_ns > MAX_BLOCK_SPAN_NS)
        .map(|a| a.name.clone())
        .collect();
    let mut split = 0;
    let mut buf = Vec::new();
    for account in wide {
        let prefix = keys::account_prefix(&account);
        let skip = prefix.len();
        // Keys first, then the rewrites: the scan does not see its own writes.
        let mut to_split = Vec::new();
        let mut span = 0;
        for item in engine.blocks.prefix(&prefix) {
            let (key, value) = item.into_inner()?;
            let min = keys::read_i64(&key[skip..]).ok_or_else(|| StoreError::Corrupt("block key".into()))?;
            let width = codec::block_header(&value)?.max_time_ns.saturating_sub(min);
            if width > MAX_BLOCK_SPAN_NS {
                to_split.push(key.to_vec());
            } else {
                span = span.max(width);
            }
        }
        for key in to_split {
            let value = engine.blocks.get(&key)?.ok_or_else(|| StoreError::Corrupt("block vanished".into()))?;
            let calls = codec::decode_block(&account, &value)?;
            let mut batch = engine.db.batch();
            for piece in pieces(&calls) {
                let min = codec::time_ns(piece[0].event.time);
                span = span.max(codec::time_ns(piece[piece.len() - 1].event.time).saturating_sub(min));
                codec::encode_block(piece.iter().map(StoredCall::view), &mut buf);
                batch.insert(&engine.blocks, keys::block_key(&account, min, *next_seq), buf.as_slice());
                *next_seq += 1;
            }
            batch.remove(&engine.blocks, key);
            batch.insert(&engine.meta, NEXT_SEQ_KEY, next_seq.to_be_bytes());
            batch.commit()?;
            split += 1;
        }
        let mut accounts = shared.accounts.write();
        let rec = accounts.get_mut(&account).expect("listed above");
        rec.max_block_span_ns = span;
        engine.accounts.insert(account.as_bytes(), serde_json::to_vec(&*rec).expect("records serialize"))?;
    }
    Ok(split)
}

/// A block's calls (sorted) cut where they would span more than the bound.
fn pieces(calls: &[StoredCall]) -> Vec<&[StoredCall]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..=calls.len() {
        let ends = i == calls.len()
            || codec::time_ns(calls[i].event.time).saturating_sub(codec::time_ns(calls[start].event.time))
                > MAX_BLOCK_SPAN_NS;
        if ends {
            out.push(&calls[start..i]);
            start = i;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::test_event;
    use super::*;
    use crate::{CallFilter, EmbeddedStore, Store, StoreOptions};
    use chrono::Utc;

    /// A format-1 store with one block spanning 300 days: after the upgrade
    /// the account's span is the bound's at most, and every call is still there once.
    #[test]
    fn a_wide_block_of_format_1_is_split() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now() - chrono::Duration::minutes(1);
        let old = now - chrono::Duration::days(300);
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.ingest(vec![test_event("first".into(), now)]).wait_blocking().unwrap();
        // Written as format 1 would have: one block for calls 300 days apart.
        let calls: Vec<StoredCall> = [old, old, now, now]
            .iter()
            .enumerate()
            .map(|(i, t)| StoredCall { event: test_event(format!("w{i}"), *t), billable: true, late: false })
            .collect();
        let mut buf = Vec::new();
        codec::encode_block(calls.iter().map(StoredCall::view), &mut buf);
        store.engine.blocks.insert(keys::block_key("acme", codec::time_ns(old), 1 << 40), buf).unwrap();
        let mut rec = store.account("acme").unwrap();
        rec.max_block_span_ns = codec::time_ns(now) - codec::time_ns(old);
        store.engine.accounts.insert("acme", serde_json::to_vec(&rec).unwrap()).unwrap();
        store.engine.meta.insert(FORMAT_KEY, 1u32.to_le_bytes()).unwrap();
        store.shutdown();

        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        assert!(store.account("acme").unwrap().max_block_span_ns <= MAX_BLOCK_SPAN_NS);
        let version = store.engine.meta.get(FORMAT_KEY).unwrap().unwrap();
        assert_eq!(u32::from_le_bytes(version.as_ref().try_into().unwrap()), FORMAT_VERSION);
        let mut ids: Vec<String> = store
            .calls("acme", &CallFilter::default(), None, 100)
            .unwrap()
            .calls
            .into_iter()
            .map(|(_, c)| c.event.id)
            .collect();
        ids.sort();
        assert_eq!(ids, ["first", "w0", "w1", "w2", "w3"]);
        store.shutdown();
        // A second open has nothing to do.
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.calls("acme", &CallFilter::default(), None, 100).unwrap().calls.len(), 5);
        store.shutdown();
    }

    /// A format-2 store keeps its dedup keys in `dedup`: after the upgrade
    /// they are in `dedup_keys` (retries are still duplicates), `dedup` is
    /// gone, and the format is 3. Each state a crash during the upgrade can
    /// leave (nothing copied, copied but not dropped, dropped but the format
    /// not recorded) upgrades to the same.
    #[test]
    fn format_2_dedup_keys_move_to_their_own_keyspace() {
        use crate::Outcome;
        let now = Utc::now() - chrono::Duration::minutes(1);
        let events = || (0..300).map(|i| test_event(format!("k{i}"), now)).collect::<Vec<_>>();
        for left in ["nothing copied", "copied, not dropped", "dropped, format not recorded"] {
            let dir = tempfile::tempdir().unwrap();
            let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
            store.ingest(events()).wait_blocking().unwrap();
            store.shutdown();
            // Make it what format 2 (or a crash during its upgrade) left.
            let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
            let keys: Vec<Vec<u8>> = store.engine.dedup.iter().map(|i| i.key().unwrap().to_vec()).collect();
            assert_eq!(keys.len(), 300, "{left}");
            if left != "dropped, format not recorded" {
                let old =
                    store.engine.db.keyspace(FORMAT_2_DEDUP_KEYSPACE, fjall::KeyspaceCreateOptions::default).unwrap();
                for k in &keys {
                    old.insert(k.as_slice(), []).unwrap();
                }
            }
            if left == "nothing copied" {
                for k in &keys {
                    store.engine.dedup.remove(k.as_slice()).unwrap();
                }
            }
            store.engine.meta.insert(FORMAT_KEY, 2u32.to_le_bytes()).unwrap();
            store.shutdown();

            let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
            assert!(!store.engine.db.keyspace_exists(FORMAT_2_DEDUP_KEYSPACE), "{left}");
            assert_eq!(store.engine.dedup.iter().count(), 300, "{left}");
            let version = store.engine.meta.get(FORMAT_KEY).unwrap().unwrap();
            assert_eq!(u32::from_le_bytes(version.as_ref().try_into().unwrap()), FORMAT_VERSION);
            let outcomes = store.ingest(events()).wait_blocking().unwrap();
            assert!(outcomes.iter().all(|o| matches!(o, Outcome::Duplicate)), "{left}: {outcomes:?}");
            store.shutdown();
        }
    }

    /// A store whose upgrade rewrites nothing has its version raised at
    /// open, whether or not the writer's upgrade runs; one with rewrites to
    /// come keeps its version until they are done.
    #[test]
    fn the_version_is_raised_early_only_when_nothing_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let version =
            || u32::from_le_bytes(store.engine.meta.get(FORMAT_KEY).unwrap().unwrap().as_ref().try_into().unwrap());
        for (found, raised) in [(6u32, true), (5, true), (3, true), (2, false), (1, false)] {
            store.engine.meta.insert(FORMAT_KEY, found.to_le_bytes()).unwrap();
            super::record_version_early(&store.engine, found).unwrap();
            assert_eq!(version(), if raised { FORMAT_VERSION } else { found }, "from {found}");
        }
        store.shutdown();
    }

    /// A store of a newer format is refused before this build makes any of
    /// its keyspaces there (an older build that did left a stray one behind).
    #[test]
    fn a_newer_format_is_refused_untouched() {
        let dir = tempfile::tempdir().unwrap();
        {
            let db = fjall::Database::builder(dir.path()).open().unwrap();
            let meta = db.keyspace("meta", fjall::KeyspaceCreateOptions::default).unwrap();
            meta.insert(FORMAT_KEY, (FORMAT_VERSION + 1).to_le_bytes()).unwrap();
            db.persist(fjall::PersistMode::SyncAll).unwrap();
        }
        let refused = EmbeddedStore::open(dir.path(), StoreOptions::default());
        assert!(matches!(refused, Err(crate::StoreError::Version { .. })), "{:?}", refused.err());
        let db = fjall::Database::builder(dir.path()).open().unwrap();
        assert!(db.keyspace_exists("meta"));
        assert!(!db.keyspace_exists(super::super::engine::DEDUP_KEYSPACE), "a keyspace was made in a newer store");
    }
}
