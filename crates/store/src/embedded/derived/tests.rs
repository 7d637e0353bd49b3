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

/// A measurement, not a check (run it by hand, in release):
/// `cargo test --release -p callmeter-store --lib -- --ignored key_compaction_under_load --nocapture`.
/// Two writers ingest CALLMETER_MEASURE_CALLS calls (default 10 M) with a
/// checkpoint every 100 ms, as the crash test runs; every 5 s it prints
/// the ingest rate, the dedup keyspace's first-level and total tables, and
/// the longest time checkpoints waited for compaction (`DEDUP_TABLE_BYTES`).
#[test]
#[ignore]
fn key_compaction_under_load() {
    let total: u64 = std::env::var("CALLMETER_MEASURE_CALLS").map(|v| v.parse().unwrap()).unwrap_or(10_000_000);
    let dir = tempfile::tempdir().unwrap();
    let options = StoreOptions { checkpoint_interval: Duration::from_millis(100), ..StoreOptions::default() };
    let store = std::sync::Arc::new(EmbeddedStore::open(dir.path(), options).unwrap());
    let now = chrono::Utc::now() - chrono::Duration::minutes(1);
    let sent = std::sync::Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let (store, sent) = (store.clone(), sent.clone());
            std::thread::spawn(move || {
                let mut n = 0u64;
                while sent.load(Ordering::Relaxed) < total {
                    let events = (0..2000).map(|i| super::super::test_event(format!("w{w}-{n}-{i}"), now)).collect();
                    store.ingest(events).wait_blocking().unwrap();
                    sent.fetch_add(2000, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    let started = std::time::Instant::now();
    let (mut stall_start, mut longest_stall, mut last_print, mut last_sent) = (None, Duration::ZERO, started, 0);
    while sent.load(Ordering::Relaxed) < total {
        let l0 = store.engine.dedup.l0_table_count();
        if l0 >= MAX_FIRST_LEVEL_KEY_TABLES {
            let s = *stall_start.get_or_insert(std::time::Instant::now());
            longest_stall = longest_stall.max(s.elapsed());
        } else {
            stall_start = None;
        }
        if last_print.elapsed() >= Duration::from_secs(5) {
            let now_sent = sent.load(Ordering::Relaxed);
            eprintln!(
                "{:>5.0}s sent {:>9} rate {:>7.0}/s l0 {:>2} tables {:>3} longest stall {:?}",
                started.elapsed().as_secs_f64(),
                now_sent,
                (now_sent - last_sent) as f64 / last_print.elapsed().as_secs_f64(),
                l0,
                store.engine.dedup.table_count(),
                longest_stall
            );
            longest_stall = Duration::ZERO;
            last_print = std::time::Instant::now();
            last_sent = now_sent;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    for w in writers {
        w.join().unwrap();
    }
    eprintln!("total {:?}", started.elapsed());
}
