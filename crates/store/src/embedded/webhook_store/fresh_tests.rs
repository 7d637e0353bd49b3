//! Fresh rows (`outbox_fresh.rs`): handed to the engine in memory, with
//! no index entry and one batch entry, and due again after a stop, a
//! failed completion or a claim with no room for them.

use super::tests::{attempt_of, call, rows, sub};
use crate::embedded::outbox_fresh::QUEUE_LIMIT;
use crate::webhook_records::{ClaimedDelivery, DeliveryState, NextStep};
use crate::{AttemptStatus, Completion, EmbeddedStore, Store, StoreOptions};
use callmeter_model::{Action, Operation};
use chrono::Utc;

/// A store in `dir` with a folder webhook on `/in` and `writes` new files there.
fn store_with(dir: &std::path::Path, writes: usize) -> EmbeddedStore {
    let store = EmbeddedStore::open(dir, StoreOptions::default()).unwrap();
    store.create_subscription(sub("wh", "/in", &[Action::Create])).unwrap();
    let events = (1..=writes).map(|i| call(&i.to_string(), Operation::Write, &format!("/in/{i}"), |_| {}));
    store.ingest(events.collect()).wait_blocking().unwrap();
    rows(&store, "wh", writes);
    store
}

fn batch_entries(store: &EmbeddedStore) -> usize {
    store.engine.meta.prefix(b"outbox_fresh/").count()
}

fn ids(claimed: &[ClaimedDelivery]) -> Vec<u64> {
    let mut ids: Vec<u64> = claimed.iter().map(|c| c.delivery.id).collect();
    ids.sort_unstable();
    ids
}

fn delivered(store: &EmbeddedStore, claimed: &[ClaimedDelivery]) -> Result<(), crate::StoreError> {
    let done: Vec<Completion> = claimed
        .iter()
        .map(|c| Completion {
            delivery: c.delivery.clone(),
            attempt: Some(attempt_of(c, AttemptStatus::Delivered, 204)),
            next: NextStep::Delivered,
        })
        .collect();
    store.complete_deliveries(&done)
}

fn later() -> chrono::DateTime<Utc> {
    Utc::now() + chrono::Duration::hours(1)
}

/// New rows have no index entry and one batch entry; a claim takes them
/// from memory, with their changes; once each is completed the batch entry
/// is gone and nothing is due.
#[test]
fn fresh_rows_are_claimed_from_memory_and_leave_nothing_behind() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 3);
    assert!(store.engine.outbox_due.is_empty().unwrap(), "no index entries");
    assert!(store.engine.outbox.is_empty().unwrap(), "no rows but in the batch entry");
    assert_eq!(batch_entries(&store), 1);
    assert!(store.next_delivery_due().unwrap().is_some(), "due");
    let listed: Vec<DeliveryState> = store.deliveries("acme", "wh").unwrap().iter().map(|d| d.state).collect();
    assert_eq!(listed, [DeliveryState::Pending; 3], "listed from memory");

    let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    assert_eq!(claimed.len(), 3);
    assert!(claimed
        .iter()
        .all(|c| matches!(&c.event, crate::DeliveredEvent::Change(ch, Action::Create) if ch.path.starts_with("/in/"))));
    assert!(store.claim_deliveries(later(), 10, &mut |_| true).unwrap().is_empty(), "claimed once");
    delivered(&store, &claimed[..2]).unwrap();
    assert_eq!(batch_entries(&store), 1, "one row of the batch is not done with");
    delivered(&store, &claimed[2..]).unwrap();
    assert_eq!(batch_entries(&store), 0);
    assert!(store.engine.outbox_due.is_empty().unwrap());
    assert_eq!(store.next_delivery_due().unwrap(), None);
    let states: Vec<DeliveryState> = store.deliveries("acme", "wh").unwrap().iter().map(|d| d.state).collect();
    assert_eq!(states, [DeliveryState::Delivered; 3]);
    store.shutdown();
}

/// A fresh row delivered at its first attempt is written once, in its
/// attempt: no `outbox` row. It is listed, delivered, from there, and a
/// replay or a redelivery finds it there and sends it again.
#[test]
fn a_delivered_fresh_row_is_held_by_its_attempt_alone() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 2);
    let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    delivered(&store, &claimed).unwrap();
    assert!(store.engine.outbox.is_empty().unwrap(), "no outbox row");
    assert_eq!(store.engine.attempts.len().unwrap(), 2);
    let rows = store.deliveries("acme", "wh").unwrap();
    assert_eq!(rows.iter().map(|d| (d.state, d.attempts)).collect::<Vec<_>>(), [(DeliveryState::Delivered, 1); 2]);
    assert_eq!(store.delivery_attempts("acme", "wh", None, 10).unwrap().attempts.len(), 2);
    assert!(store.redeliver("acme", "wh", claimed[1].delivery.id, Utc::now()).unwrap());
    assert!(!store.redeliver("acme", "wh", claimed[1].delivery.id + 100, Utc::now()).unwrap(), "no such delivery");
    let again = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(ids(&again), ids(&claimed[1..]));
    delivered(&store, &again).unwrap();
    let epoch = chrono::DateTime::UNIX_EPOCH;
    assert_eq!(
        store.replay("acme", "wh", epoch, Utc::now()).unwrap(),
        2,
        "the one in outbox and the one its attempt holds"
    );
    let replayed = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(ids(&replayed), ids(&claimed));
    delivered(&store, &replayed).unwrap();
    let rows = store.deliveries("acme", "wh").unwrap();
    assert_eq!(rows.iter().map(|d| d.state).collect::<Vec<_>>(), [DeliveryState::Delivered; 2]);
    store.shutdown();
}

/// Rows claimed and never completed (a stop, a crash) are due after the
/// next open, with their ids; the one completed is not sent again.
#[test]
fn fresh_rows_not_completed_are_due_after_the_next_open() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 3);
    let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    delivered(&store, &claimed[..1]).unwrap();
    store.shutdown();

    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(batch_entries(&store), 0, "the open indexed them");
    let again = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(ids(&again), ids(&claimed[1..]));
    delivered(&store, &again).unwrap();
    assert_eq!(store.next_delivery_due().unwrap(), None);
    assert!(store.engine.outbox_due.is_empty().unwrap());
    store.shutdown();
}

/// A redelivery asked for while a row waits in memory is one: the row is
/// claimed once, and once its attempt is recorded, due again (as the
/// redelivery asked), then done.
#[test]
fn a_fresh_row_resent_while_queued_is_claimed_once_then_again() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 1);
    let id = store.deliveries("acme", "wh").unwrap()[0].id;
    assert!(store.redeliver("acme", "wh", id, Utc::now()).unwrap());
    let claimed = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(ids(&claimed), [id], "once, not from memory and from the index");
    delivered(&store, &claimed).unwrap();
    assert_eq!(store.deliveries("acme", "wh").unwrap()[0].state, DeliveryState::Pending, "the redelivery stands");
    let again = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(ids(&again), [id]);
    delivered(&store, &again).unwrap();
    assert_eq!(store.next_delivery_due().unwrap(), None);
    assert!(store.engine.outbox_due.is_empty().unwrap());
    assert_eq!(batch_entries(&store), 0);
    store.shutdown();
}

/// A replay while fresh rows are out with the engine (claimed, in no
/// keyspace yet) resends each of them once, also when asked twice; once
/// their attempts are recorded they are due again, and then done.
#[test]
fn a_replay_of_fresh_rows_in_flight_resends_each_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 2);
    let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    assert_eq!(claimed.len(), 2);
    let epoch = chrono::DateTime::UNIX_EPOCH;
    assert_eq!(store.replay("acme", "wh", epoch, Utc::now()).unwrap(), 2);
    assert_eq!(store.replay("acme", "wh", epoch, Utc::now()).unwrap(), 2, "each once, not from memory and outbox");
    assert!(store.claim_deliveries(later(), 10, &mut |_| true).unwrap().is_empty(), "still claimed");
    delivered(&store, &claimed).unwrap();
    assert_eq!(batch_entries(&store), 0, "resent rows are written: done with");
    let again = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(ids(&again), ids(&claimed));
    delivered(&store, &again).unwrap();
    assert_eq!(store.next_delivery_due().unwrap(), None);
    let states: Vec<DeliveryState> = store.deliveries("acme", "wh").unwrap().iter().map(|d| d.state).collect();
    assert_eq!(states, [DeliveryState::Delivered; 2]);
    store.shutdown();
}

/// Refused for want of room, a fresh row of a subscription whose last
/// attempt succeeded stays queued, in its place, and a failing one's gets
/// its index entry; both are claimed later. Of a disabled subscription it
/// is held, of a deleted one dropped.
#[test]
fn fresh_rows_refused_kept_held_or_dropped_by_a_claim() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    for id in ["wh_full", "wh_failing", "wh_off", "wh_gone"] {
        store.create_subscription(sub(id, "/in", &[Action::Create])).unwrap();
    }
    let failing = crate::SubscriptionUpdate { failing_since: Some(Some(Utc::now())), ..Default::default() };
    store.update_subscription("acme", "wh_failing", failing).unwrap();
    store.ingest(vec![call("1", Operation::Write, "/in/a", |_| {})]).wait_blocking().unwrap();
    rows(&store, "wh_gone", 1);
    let disable = crate::SubscriptionUpdate { enabled: Some(false), ..Default::default() };
    store.update_subscription("acme", "wh_off", disable).unwrap();
    store.delete_subscription("acme", "wh_gone").unwrap();

    assert!(store.claim_deliveries(Utc::now(), 10, &mut |_| false).unwrap().is_empty());
    assert_eq!(store.engine.outbox_due.len().unwrap(), 1, "the failing subscription's row's entry");
    assert_eq!(store.deliveries("acme", "wh_off").unwrap()[0].state, DeliveryState::Held);
    assert_eq!(batch_entries(&store), 1, "the kept row is not done with");
    assert!(store.claim_deliveries(Utc::now(), 10, &mut |_| false).unwrap().is_empty(), "kept again");
    let claimed = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    let mut subs: Vec<&str> = claimed.iter().map(|c| c.subscription.id.as_str()).collect();
    subs.sort_unstable();
    assert_eq!(subs, ["wh_failing", "wh_full"]);
    delivered(&store, &claimed).unwrap();
    assert!(store.engine.outbox_due.is_empty().unwrap());
    assert_eq!(batch_entries(&store), 0, "every row of the batch done with");
    assert_eq!(store.next_delivery_due().unwrap(), None);
    store.shutdown();
}

/// Rows kept for want of room keep their order, and the rows behind them
/// are still looked at: a claim with room for another subscription's rows
/// takes those, and the kept ones come first in the next.
#[test]
fn kept_rows_keep_their_order_and_hold_back_no_one() {
    let dir = tempfile::tempdir().unwrap();
    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_subscription(sub("wh_a", "/a", &[Action::Create])).unwrap();
    store.create_subscription(sub("wh_b", "/b", &[Action::Create])).unwrap();
    let a = (0..3).map(|i| call(&format!("a{i}"), Operation::Write, &format!("/a/{i}"), |_| {}));
    store.ingest(a.collect()).wait_blocking().unwrap();
    store.ingest(vec![call("b0", Operation::Write, "/b/0", |_| {})]).wait_blocking().unwrap();
    rows(&store, "wh_a", 3);
    rows(&store, "wh_b", 1);
    let only_b = store.claim_deliveries(Utc::now(), 10, &mut |s| s.id == "wh_b").unwrap();
    assert_eq!(only_b.iter().map(|c| c.subscription.id.as_str()).collect::<Vec<_>>(), ["wh_b"]);
    let rest = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    let a_ids: Vec<u64> = store.deliveries("acme", "wh_a").unwrap().iter().map(|d| d.id).collect();
    assert_eq!(rest.iter().map(|c| c.delivery.id).collect::<Vec<_>>(), a_ids, "in their order");
    assert!(store.engine.outbox_due.is_empty().unwrap(), "kept in memory, not indexed");
    store.shutdown();
}

/// Past the queue's bound, the processor writes rows with their index
/// entries, as without fresh rows: all are claimed, none twice.
#[test]
fn past_the_queue_bound_rows_are_indexed() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), QUEUE_LIMIT - 2);
    assert!(store.engine.outbox_due.is_empty().unwrap());
    let events = (0..7).map(|i| call(&format!("x{i}"), Operation::Write, &format!("/in/x{i}"), |_| {}));
    store.ingest(events.collect()).wait_blocking().unwrap();
    rows(&store, "wh", QUEUE_LIMIT + 5);
    assert_eq!(store.engine.outbox_due.len().unwrap(), 7, "the batch that did not fit");
    let claimed = store.claim_deliveries(later(), usize::MAX, &mut |_| true).unwrap();
    let mut all = ids(&claimed);
    all.dedup();
    assert_eq!(all.len(), QUEUE_LIMIT + 5);
    assert_eq!(claimed.len(), QUEUE_LIMIT + 5);
    store.shutdown();
}

/// A completion that cannot be written leaves fresh rows with no entry to
/// be found by: the next claim indexes and takes them (at least once), and
/// an index write that fails too leaves them for the claim after.
#[cfg(feature = "failpoints")]
#[test]
fn fresh_rows_whose_completion_failed_are_claimed_again() {
    const NAME: &str = "embedded::webhook_store::fresh_tests::fresh_rows_whose_completion_failed_are_claimed_again";
    if !crate::failpoint::in_child(NAME, "outbox.complete=1:error,outbox.fresh.index=1:error") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 2);
    let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    assert!(delivered(&store, &claimed).is_err(), "the failpoint");
    assert!(store.next_delivery_due().unwrap().is_some(), "due again");
    assert!(store.claim_deliveries(later(), 10, &mut |_| true).is_err(), "the index write's failpoint");
    let again = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(ids(&again), ids(&claimed));
    delivered(&store, &again).unwrap();
    assert_eq!(store.next_delivery_due().unwrap(), None);
    assert!(store.engine.outbox_due.is_empty().unwrap());
    assert_eq!(batch_entries(&store), 0);
    store.shutdown();
}

/// A redelivery whose write fails changes nothing: the fresh row it asked
/// for, queued or out with the engine, is still sent once (found by a
/// review: marked resent before the write, a queued row was counted done
/// with, its batch entry removed, and the row written nowhere).
#[cfg(feature = "failpoints")]
fn a_resend_that_fails_loses_no_fresh_row(name: &str, of_the_row_in_flight: bool) {
    if !crate::failpoint::in_child(name, "outbox.resend=1:error") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 2);
    let rows = store.deliveries("acme", "wh").unwrap();
    let in_flight = store.claim_deliveries(Utc::now(), 1, &mut |_| true).unwrap();
    assert_eq!(in_flight.len(), 1);
    let queued = rows.iter().find(|r| r.id != in_flight[0].delivery.id).unwrap().id;
    let asked = if of_the_row_in_flight { in_flight[0].delivery.id } else { queued };
    assert!(store.redeliver("acme", "wh", asked, Utc::now()).is_err(), "the failpoint");
    let claimed = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(ids(&claimed), [queued], "the queued row, from memory");
    delivered(&store, &claimed).unwrap();
    delivered(&store, &in_flight).unwrap();
    let states: Vec<DeliveryState> = store.deliveries("acme", "wh").unwrap().iter().map(|d| d.state).collect();
    assert_eq!(states, [DeliveryState::Delivered; 2]);
    assert_eq!(store.next_delivery_due().unwrap(), None, "the failed redelivery asked for nothing");
    assert_eq!(batch_entries(&store), 0);
    store.shutdown();
}

#[cfg(feature = "failpoints")]
#[test]
fn a_resend_of_a_queued_row_that_fails_loses_nothing() {
    let name = "embedded::webhook_store::fresh_tests::a_resend_of_a_queued_row_that_fails_loses_nothing";
    a_resend_that_fails_loses_no_fresh_row(name, false);
}

#[cfg(feature = "failpoints")]
#[test]
fn a_resend_of_a_row_in_flight_that_fails_loses_nothing() {
    let name = "embedded::webhook_store::fresh_tests::a_resend_of_a_row_in_flight_that_fails_loses_nothing";
    a_resend_that_fails_loses_no_fresh_row(name, true);
}

/// A claim whose write fails (a refused row's index entry) takes nothing
/// from memory: the rows are looked at again by the next.
#[cfg(feature = "failpoints")]
#[test]
fn a_claim_that_fails_leaves_the_fresh_rows_queued() {
    const NAME: &str = "embedded::webhook_store::fresh_tests::a_claim_that_fails_leaves_the_fresh_rows_queued";
    if !crate::failpoint::in_child(NAME, "outbox.claim.cleanup=1:error") {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 3);
    // Failing: the rows it has no room for get index entries (a proven one's stay queued).
    let failing = crate::SubscriptionUpdate { failing_since: Some(Some(Utc::now())), ..Default::default() };
    store.update_subscription("acme", "wh", failing).unwrap();
    let mut first = true;
    let mut one_refused = |_: &crate::Subscription| !std::mem::replace(&mut first, false);
    assert!(store.claim_deliveries(Utc::now(), 10, &mut one_refused).is_err(), "the failpoint");
    assert!(store.engine.outbox_due.is_empty().unwrap(), "no entry written");
    let claimed = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(claimed.len(), 3, "all still queued, none lost or taken twice");
    delivered(&store, &claimed).unwrap();
    assert_eq!(batch_entries(&store), 0);
    store.shutdown();
}

/// Under a load that fills every claim with fresh rows, a row due from the
/// index (a redelivery, a retry, an alert) still gets a place in each claim.
#[test]
fn indexed_rows_get_room_beside_a_stream_of_fresh_ones() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 1);
    let first = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    delivered(&store, &first).unwrap();
    assert!(store.redeliver("acme", "wh", first[0].delivery.id, Utc::now()).unwrap());
    let events = (0..20).map(|i| call(&format!("n{i}"), Operation::Write, &format!("/in/n{i}"), |_| {}));
    store.ingest(events.collect()).wait_blocking().unwrap();
    rows(&store, "wh", 21);
    let claimed = store.claim_deliveries(later(), 4, &mut |_| true).unwrap();
    assert_eq!(claimed.len(), 4);
    assert!(ids(&claimed).contains(&first[0].delivery.id), "the redelivery is not starved: {:?}", ids(&claimed));
    store.shutdown();
}

/// A damaged batch entry does not stop the open: it goes, said, and every
/// pending row `outbox` holds is made due (once, whether or not it had its
/// entry), the others are not. A row only the entry held is lost with it
/// (the engine's checksums make that damage a failing disk's, not a crash's).
#[test]
fn a_damaged_batch_entry_makes_every_pending_row_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 3);
    let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    delivered(&store, &claimed[..1]).unwrap();
    let retry = Completion {
        delivery: claimed[1].delivery.clone(),
        attempt: Some(attempt_of(&claimed[1], AttemptStatus::Failed, 500)),
        next: NextStep::RetryAt(Utc::now()),
    };
    store.complete_deliveries(&[retry]).unwrap();
    let entry = store.engine.meta.prefix(b"outbox_fresh/").next().unwrap().key().unwrap();
    store.engine.meta.insert(entry, [0xFFu8; 3]).unwrap();
    store.shutdown();

    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(batch_entries(&store), 0, "the damaged entry is gone");
    let again = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(ids(&again), ids(&claimed[1..2]), "the pending row, not the delivered one");
    store.shutdown();
}

/// A batch entry of format 6 lists the keys of rows in `outbox`: after an
/// upgrade its pending rows are due, the others are not.
#[test]
fn a_format_6_batch_entry_makes_its_pending_rows_due() {
    let dir = tempfile::tempdir().unwrap();
    let store = store_with(dir.path(), 2);
    let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    delivered(&store, &claimed[..1]).unwrap();
    // As format 6 left it: the pending row written, its key listed.
    let entry = store.engine.meta.prefix(b"outbox_fresh/").next().unwrap().key().unwrap();
    let number = store.known_number("acme", "wh").unwrap();
    let keys = claimed.iter().map(|c| crate::embedded::outbox::row_key(number, c.delivery.id)).collect::<Vec<_>>();
    let pending = crate::embedded::outbox_rows::to_value(&claimed[1].delivery);
    store.engine.outbox.insert(&keys[1], pending).unwrap();
    let listed = crate::embedded::outbox_batch_entry::format_6_value(keys.iter().map(Vec::as_slice));
    store.engine.meta.insert(entry, listed).unwrap();
    store.shutdown();

    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    assert_eq!(batch_entries(&store), 0);
    let again = store.claim_deliveries(later(), 10, &mut |_| true).unwrap();
    assert_eq!(ids(&again), ids(&claimed[1..]));
    store.shutdown();
}
