//! Damaged and earlier-build outbox records: each costs itself alone, and
//! rows of an earlier build (JSON rows, empty index entries) are sent as
//! this build's are.

use super::tests::{attempt_of, call, index_fresh, rows, sub};
use crate::embedded::outbox::{due_key, row_key};
use crate::webhook_records::{DeliveryState, NextStep, OutboxEvent};
use crate::{AttemptStatus, Completion, Delivery, EmbeddedStore, Store, StoreOptions};
use callmeter_model::{Action, Operation};
use chrono::Utc;

/// A store in `dir` with a folder webhook on `/in` for each of `subs`, and
/// `writes` new files there: each subscription's rows, oldest first.
fn store_with_rows(dir: &std::path::Path, subs: &[&str], writes: usize) -> (EmbeddedStore, Vec<Vec<Delivery>>) {
    let store = EmbeddedStore::open(dir, StoreOptions::default()).unwrap();
    for id in subs {
        store.create_subscription(sub(id, "/in", &[Action::Create])).unwrap();
    }
    let events = (1..=writes).map(|i| call(&i.to_string(), Operation::Write, &format!("/in/{i}"), |_| {}));
    store.ingest(events.collect()).wait_blocking().unwrap();
    let made = subs.iter().map(|id| rows(&store, id, writes)).collect();
    index_fresh(&store);
    (store, made)
}

/// A row's key in `outbox` and its entry's key in `outbox_due`.
fn keys_of(store: &EmbeddedStore, d: &Delivery) -> (Vec<u8>, Vec<u8>) {
    let key = row_key(store.known_number(&d.account, &d.subscription).unwrap(), d.id);
    let entry = due_key(d.next_attempt_at, &key);
    (key, entry)
}

/// A store of an earlier build holds JSON rows and empty index entries:
/// its rows are claimed, completed and listed as this build's are.
#[test]
fn rows_of_an_earlier_build_are_claimed_and_completed() {
    let dir = tempfile::tempdir().unwrap();
    let (store, made) = store_with_rows(dir.path(), &["wh"], 1);
    let made = &made[0];
    let (key, entry) = keys_of(&store, &made[0]);
    store.engine.outbox_due.insert(entry, []).unwrap();
    store.engine.outbox.insert(&key, serde_json::to_vec(&made[0]).unwrap()).unwrap();

    let claimed = store.claim_deliveries(Utc::now() + chrono::Duration::hours(1), 10, &mut |_| true).unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].delivery, made[0]);
    let completion = Completion { delivery: claimed[0].delivery.clone(), attempt: None, next: NextStep::Delivered };
    store.complete_deliveries(&[completion]).unwrap();
    let after = store.deliveries("acme", "wh").unwrap();
    assert_eq!((after[0].id, after[0].state), (made[0].id, DeliveryState::Delivered));
    assert!(store.next_delivery_due().unwrap().is_none(), "its entry went with the completion");
    store.shutdown();
}

/// A damaged row or attempt costs itself alone: listings, replays and
/// expiry step over it, and what else the subscription holds stays in reach.
#[test]
fn a_damaged_record_is_stepped_over_by_listings_replays_and_expiry() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = store_with_rows(dir.path(), &["wh"], 2);
    let claimed = store.claim_deliveries(Utc::now() + chrono::Duration::hours(1), 10, &mut |_| true).unwrap();
    let done = claimed.iter().map(|c| Completion {
        delivery: c.delivery.clone(),
        attempt: Some(attempt_of(c, AttemptStatus::Delivered, 204)),
        next: NextStep::Delivered,
    });
    store.complete_deliveries(&done.collect::<Vec<_>>()).unwrap();
    let number = store.known_number("acme", "wh").unwrap();
    let first_attempt = store.delivery_attempts("acme", "wh", None, 10).unwrap().attempts[1].id;
    store.engine.attempts.insert(row_key(number, first_attempt), "{not json").unwrap();
    store.engine.outbox.insert(keys_of(&store, &claimed[0].delivery).0, [9u8; 5]).unwrap();

    assert_eq!(store.delivery_attempts("acme", "wh", None, 10).unwrap().attempts.len(), 1);
    assert_eq!(store.deliveries("acme", "wh").unwrap().len(), 1);
    assert_eq!(store.replay("acme", "wh", Utc::now() - chrono::Duration::hours(1), Utc::now()).unwrap(), 1);
    let later = Utc::now() + chrono::Duration::hours(1);
    assert_eq!(
        crate::embedded::expiry::expire_webhook_records(&store.engine, &store.shared, later).unwrap(),
        2 + 1,
        "two processed changes, the readable attempt; the replayed row is pending"
    );
    store.shutdown();
}

/// A damaged outbox row, or a damaged change a row carries, costs that
/// row alone: claims go on past it (the row is left as it is; the
/// other's delivery fails), and the rows behind are sent.
#[test]
fn a_damaged_row_or_event_stops_no_claim() {
    let dir = tempfile::tempdir().unwrap();
    let (store, made) = store_with_rows(dir.path(), &["wh"], 3);
    let made = &made[0];
    // Damaged where a claim reads it (its index entry holds the row) and in `outbox`.
    let (damaged, entry) = keys_of(&store, &made[0]);
    assert!(store.engine.outbox_due.get(&entry).unwrap().is_some_and(|v| !v.is_empty()), "the entry holds the row");
    store.engine.outbox_due.insert(entry, "{not json").unwrap();
    store.engine.outbox.insert(damaged, "{not json").unwrap();
    let OutboxEvent::Change { seq, .. } = made[1].event else { panic!("a change") };
    store.engine.changes.insert(crate::embedded::changelog::key(seq), [0xFFu8; 3]).unwrap();

    let ahead = Utc::now() + chrono::Duration::hours(1);
    let claimed = store.claim_deliveries(ahead, 10, &mut |_| true).unwrap();
    assert_eq!(claimed.iter().map(|c| c.delivery.id).collect::<Vec<_>>(), [made[2].id]);
    assert!(store.claim_deliveries(ahead, 10, &mut |_| true).unwrap().is_empty(), "nothing left to stop at");
    let row = store.engine.outbox.get(keys_of(&store, &made[1]).0).unwrap().unwrap();
    let row: crate::Delivery = crate::embedded::outbox_rows::decode(&row).unwrap();
    assert_eq!(row.state, DeliveryState::Failed, "the row whose change is damaged has failed");
    store.shutdown();
}

/// A damaged index entry costs nothing when its row is whole: the claim
/// reads the row instead and sends it; one with a damaged key is dropped.
#[test]
fn a_damaged_index_entry_of_a_whole_row_is_sent() {
    let dir = tempfile::tempdir().unwrap();
    let (store, made) = store_with_rows(dir.path(), &["wh"], 1);
    let made = &made[0];
    store.engine.outbox_due.insert(keys_of(&store, &made[0]).1, [7u8; 3]).unwrap();
    // An entry whose key is not one of a row: no next due, dropped by the claim.
    let mut bad_key = keys_of(&store, &made[0]).1;
    bad_key.push(0);
    store.engine.outbox_due.insert(&bad_key, [7u8; 3]).unwrap();

    let claimed = store.claim_deliveries(Utc::now() + chrono::Duration::hours(1), 10, &mut |_| true).unwrap();
    assert_eq!(claimed.iter().map(|c| &c.delivery).collect::<Vec<_>>(), [&made[0]]);
    assert!(store.engine.outbox_due.get(&bad_key).unwrap().is_none(), "the entry with a bad key is gone");
    store.shutdown();
}

/// A damaged row of a disabled subscription is stepped over, not held, and
/// stops no claim: the other subscription's row is sent.
#[test]
fn a_damaged_row_of_a_disabled_subscription_stops_no_claim() {
    let dir = tempfile::tempdir().unwrap();
    let (store, made) = store_with_rows(dir.path(), &["wh_off", "wh_on"], 1);
    let disable = crate::SubscriptionUpdate { enabled: Some(false), ..Default::default() };
    store.update_subscription("acme", "wh_off", disable).unwrap();
    let (key, entry) = keys_of(&store, &made[0][0]);
    store.engine.outbox_due.insert(entry, [7u8; 3]).unwrap();
    store.engine.outbox.insert(&key, [7u8; 3]).unwrap();

    let ahead = Utc::now() + chrono::Duration::hours(1);
    let claimed = store.claim_deliveries(ahead, 10, &mut |_| true).unwrap();
    assert_eq!(claimed.iter().map(|c| c.subscription.id.as_str()).collect::<Vec<_>>(), ["wh_on"]);
    assert!(store.claim_deliveries(ahead, 10, &mut |_| true).unwrap().is_empty(), "its entry is gone");
    assert_eq!(store.engine.outbox.get(&key).unwrap().unwrap().as_ref(), [7u8; 3], "left as it is");
    store.shutdown();
}
