//! What an attempt's record says of the retry after it (`next_attempt_at`).

use super::tests::{attempt_of, call, rows, sub};
use crate::webhook_records::{DeliveryState, NextStep};
use crate::{AttemptStatus, Completion, EmbeddedStore, Store, StoreOptions};
use callmeter_model::{Action, Operation};
use chrono::Utc;

/// A store in `dir` with a webhook `wh` on `/in` and one row of it (its id).
fn one_row(dir: &std::path::Path) -> (EmbeddedStore, u64) {
    let store = EmbeddedStore::open(dir, StoreOptions::default()).unwrap();
    store.create_subscription(sub("wh", "/in", &[Action::Create])).unwrap();
    store.ingest(vec![call("1", Operation::Write, "/in/a", |_| {})]).wait_blocking().unwrap();
    let id = rows(&store, "wh", 1)[0].id;
    (store, id)
}

/// A redelivery asked for while a delivery's attempt ran makes it due at
/// once: that attempt's record sets no retry, though the schedule had one;
/// the attempt after it, failed too, says when its retry comes; held (its
/// webhook disabled), none.
#[test]
fn a_resend_during_the_attempt_or_a_hold_sets_no_retry() {
    let dir = tempfile::tempdir().unwrap();
    let (store, id) = one_row(dir.path());
    let later = Utc::now() + chrono::Duration::hours(1);
    let complete = |c: &crate::ClaimedDelivery, next| {
        let done =
            Completion { delivery: c.delivery.clone(), attempt: Some(attempt_of(c, AttemptStatus::Failed, 503)), next };
        store.complete_deliveries(&[done]).unwrap();
    };

    let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    assert!(store.redeliver("acme", "wh", id, Utc::now()).unwrap(), "asked for again while claimed");
    complete(&claimed[0], NextStep::RetryAt(later));
    let newest = || store.delivery_attempts("acme", "wh", None, 1).unwrap().attempts.remove(0);
    assert_eq!(newest().next_attempt_at, None, "the redelivery stands, not the schedule's retry");
    assert_eq!(store.deliveries("acme", "wh").unwrap()[0].state, DeliveryState::Pending);

    let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    assert_eq!(claimed.len(), 1, "due at once");
    complete(&claimed[0], NextStep::RetryAt(later));
    assert_eq!(newest().next_attempt_at, Some(later));

    let claimed = store.claim_deliveries(later, 10, &mut |_| true).unwrap();
    complete(&claimed[0], NextStep::Hold);
    assert_eq!(newest().next_attempt_at, None, "held: no retry");
    assert_eq!(store.deliveries("acme", "wh").unwrap()[0].state, DeliveryState::Held);
}

/// A webhook deleted and made again with the same id is a new one: a new
/// number (also after a restart, which must not give a number again), and
/// none of the old one's rows or attempts, which no claim sends.
#[test]
fn a_webhook_made_again_with_its_id_inherits_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (store, _) = one_row(dir.path());
    let claimed = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
    let done = Completion {
        delivery: claimed[0].delivery.clone(),
        attempt: Some(attempt_of(&claimed[0], AttemptStatus::Failed, 503)),
        next: NextStep::RetryAt(Utc::now()),
    };
    store.complete_deliveries(&[done]).unwrap();
    let first = store.known_number("acme", "wh").unwrap();
    assert!(store.delete_subscription("acme", "wh").unwrap());
    store.shutdown();

    let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
    store.create_subscription(sub("wh", "/in", &[Action::Create])).unwrap();
    assert!(store.known_number("acme", "wh").unwrap() > first, "a number is never given twice");
    assert!(store.deliveries("acme", "wh").unwrap().is_empty());
    assert!(store.delivery_attempts("acme", "wh", None, 10).unwrap().attempts.is_empty());
    let later = Utc::now() + chrono::Duration::hours(1);
    assert!(store.claim_deliveries(later, 10, &mut |_| true).unwrap().is_empty(), "the old row is not sent");
    store.shutdown();
}
