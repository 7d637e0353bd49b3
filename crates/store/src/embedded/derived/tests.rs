use super::*;
use crate::{EmbeddedStore, Store, StoreOptions};
use std::hash::BuildHasher;

/// Checkpoints every millisecond under load: the dedup keyspace's first
/// level never holds more key tables than the limit (it reached 264 runs
/// in minutes without it, and the store could not open again).
#[test]
fn frequent_checkpoints_wait_for_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { checkpoint_interval: Duration::from_millis(1), ..StoreOptions::default() };
    let store = std::sync::Arc::new(EmbeddedStore::open(dir.path(), options).unwrap());
    let now = chrono::Utc::now() - chrono::Duration::minutes(1);
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (store, stop) = (store.clone(), stop.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while !stop.load(Ordering::Relaxed) {
                    let events = (0..200).map(|i| super::super::test_event(format!("w{w}-{n}-{i}"), now)).collect();
                    store.ingest(events).wait_blocking().unwrap();
                    n += 1;
                }
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let mut most = 0;
    while started.elapsed() < Duration::from_secs(6) {
        most = most.max(store.engine.dedup.l0_table_count());
        std::thread::sleep(Duration::from_millis(2));
    }
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert!(store.shared.checkpoints_done.load(Ordering::Relaxed) > 50, "checkpoints happened");
    assert!(most <= MAX_FIRST_LEVEL_KEY_TABLES + 1, "{most} key tables in the first level");
}

#[test]
fn key_hasher_spreads_keys_that_differ_anywhere_in_the_first_eight_bytes() {
    let build = BuildHasherDefault::<KeyHasher>::default();
    let a = build.hash_one(DedupKey([1; 16]));
    let mut other = [1u8; 16];
    other[7] = 2;
    assert_ne!(a, build.hash_one(DedupKey(other)));
    let mut set = KeySet::default();
    set.insert(DedupKey([1; 16]));
    assert!(set.contains(&DedupKey([1; 16])));
    assert!(!set.contains(&DedupKey(other)));
}

/// A clean stop checkpoints: the next open has no block log to replay,
/// and still knows every call's dedup key and count.
#[test]
fn a_clean_stop_leaves_no_block_log() {
    use crate::Outcome;
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    let now = chrono::Utc::now() - chrono::Duration::minutes(1);
    let events = (0..100).map(|i| super::super::test_event(format!("id{i}"), now)).collect();
    store.ingest(events).wait_blocking().unwrap();
    assert!(!store.engine.block_log.is_empty().unwrap(), "not checkpointed yet");
    store.shutdown();

    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert!(store.engine.block_log.is_empty().unwrap(), "nothing to replay");
    let again = (0..100).map(|i| super::super::test_event(format!("id{i}"), now)).collect();
    let outcomes = store.ingest(again).wait_blocking().unwrap();
    assert!(outcomes.iter().all(|o| matches!(o, Outcome::Duplicate)), "{outcomes:?}");
    store.shutdown();
}

/// The dedup keyspace compacts into small tables (`DEDUP_TABLE_BYTES`):
/// once a few checkpoints' key tables are merged out of the first level,
/// about 5 MB of keys lie in several tables. With the engine's default
/// (64 MiB) they would be one.
#[test]
fn dedup_keys_compact_into_small_tables() {
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { checkpoint_interval: Duration::from_millis(10), ..StoreOptions::default() };
    let store = EmbeddedStore::open(dir.path(), options).unwrap();
    let now = chrono::Utc::now() - chrono::Duration::minutes(1);
    for batch in 0..5 {
        let done = store.shared.checkpoints_done.load(Ordering::Acquire);
        let events = (0..40_000).map(|i| super::super::test_event(format!("b{batch}-{i}"), now)).collect();
        store.ingest(events).wait_blocking().unwrap();
        wait_for("a checkpoint", || store.shared.checkpoints_done.load(Ordering::Acquire) > done);
    }
    // Five key tables in the first level: past the engine's threshold (4), it merges them down.
    wait_for("the first level merged down", || store.engine.dedup.l0_table_count() < 4);
    let tables = store.engine.dedup.table_count();
    assert!(tables >= 3, "200,000 keys in {tables} table(s): the dedup keyspace's tables are not small");
    store.shutdown();
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    while !done() {
        assert!(std::time::Instant::now() < deadline, "waited a minute for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}
