use super::super::test_event;
use super::*;
use crate::{CallFilter, EmbeddedStore, Store, StoreOptions};

fn accepted(time_ns: i64) -> Accepted {
    Accepted { time_ns, request: 0, index: 0, billable: true, late: false }
}

#[test]
fn blocks_are_cut_by_count_and_by_span() {
    let h = MAX_BLOCK_SPAN_NS;
    let calls: Vec<Accepted> = [0, 1, h, h + 1, h + 2, 3 * h].map(accepted).to_vec();
    let sizes: Vec<usize> = blocks_of(&calls).map(<[Accepted]>::len).collect();
    assert_eq!(sizes, [3, 2, 1], "the first block takes a call exactly an hour after its first");
    let many: Vec<Accepted> = (0..MAX_BLOCK_CALLS as i64 * 2 + 5).map(accepted).collect();
    let sizes: Vec<usize> = blocks_of(&many).map(<[Accepted]>::len).collect();
    assert_eq!(sizes, [MAX_BLOCK_CALLS, MAX_BLOCK_CALLS, 5]);
    assert_eq!(blocks_of(&[]).count(), 0);
}

/// A backfill: one call 300 days old in the same request as current ones.
/// It gets a block of its own, and the account's widest block span (where
/// request-log pages and the retention sweep start their scans) stays what
/// it is without it.
#[test]
fn an_old_call_beside_current_ones_does_not_widen_the_account() {
    let now = Utc::now() - chrono::Duration::seconds(10);
    let current = || (0..200).map(|i| test_event(format!("c{i}"), now + chrono::Duration::milliseconds(i)));
    let spans: Vec<(i64, usize)> = [false, true]
        .into_iter()
        .map(|with_old| {
            let dir = tempfile::tempdir().unwrap();
            let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
            let mut events: Vec<CallEvent> = current().collect();
            if with_old {
                events.insert(100, test_event("old".into(), now - chrono::Duration::days(300)));
            }
            let outcomes = store.ingest(events).wait_blocking().unwrap();
            assert!(outcomes.iter().all(|o| *o == Outcome::Accepted));
            let span = store.account("acme").unwrap().max_block_span_ns;
            let recent = CallFilter { from: Some(now), ..CallFilter::default() };
            let page = store.calls("acme", &recent, None, 1000).unwrap();
            assert_eq!(page.calls.len(), 200, "the current calls, from where they start");
            let blocks = store.engine.blocks.len().unwrap();
            store.shutdown();
            (span, blocks)
        })
        .collect();
    assert_eq!(spans[0].0, 199_000_000, "the current calls' block spans their 199 ms");
    assert_eq!(spans[1].0, spans[0].0, "the old call does not widen the account");
    assert_eq!(spans[1].1, spans[0].1 + 1, "the old call has a block of its own");
}
