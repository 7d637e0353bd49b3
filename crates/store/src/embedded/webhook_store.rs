//! The webhook half of [`Store`](crate::Store) for the embedded store:
//! subscriptions read from the published view, the outbox from `outbox.rs`.
//! `mod.rs` forwards the trait's methods here, so that it stays about calls.

use super::subscription_index::Listed;
use super::{outbox, outbox_complete, outbox_lookup, EmbeddedStore};
use crate::keys;
use crate::webhook_records::{AttemptPage, ClaimedDelivery, Completion, Delivery, Subscription};
use crate::StoreError;
use chrono::{DateTime, Utc};

impl EmbeddedStore {
    pub(super) fn find_subscription(&self, account: &str, id: &str) -> Option<std::sync::Arc<Subscription>> {
        self.find_listed(account, id).map(|l| l.sub)
    }

    fn find_listed(&self, account: &str, id: &str) -> Option<Listed> {
        if id.len() > keys::MAX_SUBSCRIPTION_ID_LEN {
            return None;
        }
        self.shared.subscriptions.read().get(&keys::subscription_key(account, id)).cloned()
    }

    pub(super) fn list_subscriptions(&self, account: &str) -> Vec<Subscription> {
        let all = self.shared.subscriptions.read();
        let mut out: Vec<Subscription> = all.of_account(account).map(|l| (*l.sub).clone()).collect();
        out.sort_by(|a, b| a.id.cmp(&b.id));
        out
    }

    /// The number of a subscription that exists (its rows' and attempts' keys begin with it).
    pub(super) fn known_number(&self, account: &str, id: &str) -> Result<u32, StoreError> {
        let listed = self.find_listed(account, id);
        listed.map(|l| l.number).ok_or_else(|| StoreError::UnknownSubscription(id.to_owned()))
    }

    pub(super) fn claim(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        admit: &mut dyn FnMut(&Subscription) -> bool,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        outbox::claim(&self.engine, &self.shared, now, limit, admit)
    }

    pub(super) fn complete(&self, done: &[Completion]) -> Result<(), StoreError> {
        outbox_complete::complete(&self.engine, &self.shared, done)
    }

    pub(super) fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        outbox::next_due(&self.engine, &self.shared)
    }

    pub(super) fn attempts_of(
        &self,
        account: &str,
        id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<AttemptPage, StoreError> {
        outbox::attempts(&self.engine, self.known_number(account, id)?, before, limit)
    }

    pub(super) fn rows_of(&self, account: &str, id: &str) -> Result<Vec<Delivery>, StoreError> {
        outbox_lookup::rows(&self.engine, &self.shared, self.known_number(account, id)?)
    }

    pub(super) fn redeliver_one(
        &self,
        account: &str,
        id: &str,
        delivery: u64,
        now: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        outbox::redeliver(&self.engine, &self.shared, self.known_number(account, id)?, delivery, now)
    }

    pub(super) fn replay_since(
        &self,
        account: &str,
        id: &str,
        since: DateTime<Utc>,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        outbox::replay(&self.engine, &self.shared, self.known_number(account, id)?, since, now)
    }
}

#[cfg(test)]
mod attempt_tests;
#[cfg(test)]
mod damaged_tests;
#[cfg(test)]
mod fresh_tests;
#[cfg(test)]
mod path_tests;

#[cfg(test)]
pub(crate) mod tests {
    use crate::webhook_records::{DeliveryState, NextStep, OutboxEvent, SubscriptionUpdate, Watch};
    use crate::{Attempt, AttemptStatus, Completion, EmbeddedStore, Outcome, Store, StoreOptions, Subscription};
    use callmeter_model::{Action, CallEvent, Interface, Operation};
    use chrono::Utc;
    use std::time::Duration;

    pub(crate) fn sub(id: &str, folder: &str, actions: &[Action]) -> Subscription {
        let watch = (Watch::Folder { folder: folder.into() }, actions.to_vec());
        Subscription::new(("acme", id), "http://127.0.0.1:9/hook", watch, "whsec_AAAA", Utc::now())
    }

    pub(crate) fn call(id: &str, op: Operation, path: &str, extra: impl FnOnce(&mut CallEvent)) -> CallEvent {
        let mut e = CallEvent::new(id.into(), "acme".into(), Utc::now(), Interface::Rest, op);
        e.path = Some(path.into());
        extra(&mut e);
        e
    }

    /// An attempt of a claimed row, as the engine makes one: its status and response code.
    pub(crate) fn attempt_of(c: &crate::ClaimedDelivery, status: AttemptStatus, code: u16) -> Attempt {
        Attempt {
            id: 0,
            delivery: 0,
            webhook_id: c.delivery.webhook_id(),
            at: Utc::now(),
            status,
            response_code: Some(code),
            latency_ms: 1,
            error: None,
            next_attempt_at: None,
        }
    }

    /// Waits until the processor has made `n` rows for `id`, then claims what is due.
    pub(crate) fn rows(store: &EmbeddedStore, id: &str, n: usize) -> Vec<crate::Delivery> {
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        loop {
            let rows = store.deliveries("acme", id).unwrap();
            if rows.len() >= n || std::time::Instant::now() > deadline {
                assert_eq!(rows.len(), n, "{rows:?}");
                return rows;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Gives the fresh rows their index entries, as a claim with no room for
    /// a failing subscription's does (`outbox_fresh.rs`): for the tests of
    /// what claims find there.
    pub(super) fn index_fresh(store: &EmbeddedStore) {
        let mut locked = store.shared.outbox.locked.lock();
        crate::embedded::outbox_fresh::index_queue(&store.engine, &mut locked);
        assert!(locked.fresh.earliest().is_none(), "every fresh row is indexed");
    }

    pub(super) fn actions(rows: &[crate::Delivery]) -> Vec<Action> {
        rows.iter()
            .map(|d| match d.event {
                OutboxEvent::Change { action, .. } => action,
                OutboxEvent::Alert { .. } => panic!("no alerts here"),
            })
            .collect()
    }

    fn change(claimed: &crate::ClaimedDelivery) -> &crate::Change {
        match &claimed.event {
            crate::DeliveredEvent::Change(change, _) => change,
            crate::DeliveredEvent::Alert(_) => panic!("no alerts here"),
        }
    }

    /// An id longer than a key holds (from a URL) is no subscription, for
    /// every operation, and never reaches the writer: the store goes on
    /// taking writes.
    #[test]
    fn an_id_too_long_to_store_is_no_subscription() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_subscription(sub("wh_in", "/in", &[Action::Create])).unwrap();
        let long = "w".repeat(crate::keys::MAX_SUBSCRIPTION_ID_LEN + 1);
        assert!(store.subscription("acme", &long).is_none());
        assert_eq!(store.update_subscription("acme", &long, SubscriptionUpdate::default()).unwrap(), None);
        assert!(!store.delete_subscription("acme", &long).unwrap());
        assert!(matches!(
            store.delivery_attempts("acme", &long, None, 10),
            Err(crate::StoreError::UnknownSubscription(_))
        ));
        assert!(matches!(store.deliveries("acme", &long), Err(crate::StoreError::UnknownSubscription(_))));
        assert!(matches!(
            store.redeliver("acme", &long, 1, Utc::now()),
            Err(crate::StoreError::UnknownSubscription(_))
        ));
        assert!(matches!(
            store.replay("acme", &long, Utc::now(), Utc::now()),
            Err(crate::StoreError::UnknownSubscription(_))
        ));
        assert!(store.is_writable());
        let outcomes = store.ingest(vec![call("1", Operation::Write, "/in/a.csv", |_| {})]).wait_blocking().unwrap();
        assert_eq!(outcomes, vec![Outcome::Accepted]);
        assert!(store.delete_subscription("acme", "wh_in").unwrap());
        store.shutdown();
    }

    /// The change stream of DESIGN §7, from ingest to the outbox: create then
    /// update, destroy, move (by its destination too), mkdir; nothing for a
    /// failed, duplicate or read call, a path outside the folder, or an
    /// action not asked for.
    #[test]
    fn changes_become_deliveries_classified_by_the_path_index() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let all = [Action::Create, Action::Update, Action::Destroy, Action::Move, Action::Copy];
        store.create_subscription(sub("wh_in", "/in", &all)).unwrap();
        store.create_subscription(sub("wh_creates", "/", &[Action::Create])).unwrap();
        assert!(store.create_subscription(sub("wh_in", "/x", &all)).is_err(), "ids are unique");
        let events = vec![
            call("1", Operation::Write, "/in/a.csv", |_| {}),
            call("2", Operation::Write, "/in/a.csv", |e| e.status = Some(201)),
            call("3", Operation::Write, "/in/b.csv", |e| e.status = Some(500)),
            call("4", Operation::Read, "/in/a.csv", |_| {}),
            call("5", Operation::Write, "/elsewhere/c.csv", |_| {}),
            call("6", Operation::Move, "/elsewhere/c.csv", |e| e.destination = Some("/in/c.csv".into())),
            call("7", Operation::Delete, "/in/a.csv", |_| {}),
            call("8", Operation::Mkdir, "/in/sub/", |_| {}),
            call("9", Operation::List, "/in", |_| {}),
        ];
        let outcomes = store.ingest(events.clone()).wait_blocking().unwrap();
        assert!(outcomes.iter().all(|o| *o == Outcome::Accepted));
        let again = store.ingest(events[..2].to_vec()).wait_blocking().unwrap();
        assert_eq!(again, vec![Outcome::Duplicate; 2], "duplicates are no changes");
        let in_rows = rows(&store, "wh_in", 5);
        assert_eq!(actions(&in_rows), [Action::Create, Action::Update, Action::Move, Action::Destroy, Action::Create]);
        let creates = rows(&store, "wh_creates", 3);
        assert_eq!(actions(&creates), [Action::Create; 3], "/in/a.csv, /elsewhere/c.csv, /in/sub");
        assert!(in_rows.iter().all(|d| d.state == DeliveryState::Pending && d.attempts == 0));

        // Claimed once; completed rows leave the due index.
        let claimed = store.claim_deliveries(Utc::now(), 100, &mut |_| true).unwrap();
        assert_eq!(claimed.len(), 8);
        assert!(
            store.claim_deliveries(Utc::now(), 100, &mut |_| true).unwrap().is_empty(),
            "claimed rows are not claimed twice"
        );
        let moved = claimed.iter().find(|c| change(c).call_id == "6" && c.subscription.id == "wh_in").unwrap();
        assert_eq!(change(moved).destination.as_deref(), Some("/in/c.csv"));
        for (i, c) in claimed.iter().enumerate() {
            let attempt = attempt_of(c, AttemptStatus::Delivered, 200);
            let next =
                if i == 0 { NextStep::RetryAt(Utc::now() + chrono::Duration::hours(1)) } else { NextStep::Delivered };
            store
                .complete_deliveries(&[Completion { delivery: c.delivery.clone(), attempt: Some(attempt), next }])
                .unwrap();
        }
        assert!(store.claim_deliveries(Utc::now(), 100, &mut |_| true).unwrap().is_empty());
        let later = store.next_delivery_due().unwrap().expect("the retry is due later");
        assert!(later > Utc::now() + chrono::Duration::minutes(59));
        assert_eq!(store.claim_deliveries(later, 100, &mut |_| true).unwrap().len(), 1, "due at its time");
        let page = store.delivery_attempts("acme", "wh_in", None, 2).unwrap();
        assert_eq!(page.attempts.len(), 2);
        assert!(page.attempts[0].id > page.attempts[1].id, "newest first");
        let rest = store.delivery_attempts("acme", "wh_in", page.next_before, 100).unwrap();
        assert_eq!(rest.attempts.len(), 3);
        assert!(rest.next_before.is_none());
        store.shutdown();

        // After a reopen: the subscriptions, the rows and the cursor hold; nothing is made twice.
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        assert_eq!(store.subscriptions("acme").len(), 2);
        store.ingest(vec![call("10", Operation::Write, "/in/c.csv", |_| {})]).wait_blocking().unwrap();
        let in_rows = rows(&store, "wh_in", 6);
        assert_eq!(actions(&in_rows)[5], Action::Update, "moved there before the reopen");
        let ids: std::collections::HashSet<u64> = in_rows.iter().map(|d| d.id).collect();
        assert_eq!(ids.len(), 6);

        // Disabled: events are held; replay sends them again once enabled.
        let off = SubscriptionUpdate { enabled: Some(false), ..Default::default() };
        store.update_subscription("acme", "wh_in", off).unwrap().unwrap();
        store.ingest(vec![call("11", Operation::Delete, "/in/c.csv", |_| {})]).wait_blocking().unwrap();
        let in_rows = rows(&store, "wh_in", 7);
        assert_eq!(in_rows[6].state, DeliveryState::Held);
        let claimed = store.claim_deliveries(Utc::now(), 100, &mut |_| true).unwrap();
        assert!(claimed.iter().all(|c| c.subscription.id != "wh_in"), "a disabled subscription is not sent to");
        assert_eq!(rows(&store, "wh_in", 7)[5].state, DeliveryState::Held, "its pending row is held at the claim");
        let on = SubscriptionUpdate { enabled: Some(true), ..Default::default() };
        store.update_subscription("acme", "wh_in", on).unwrap().unwrap();
        let since = in_rows[5].created_at;
        assert_eq!(store.replay("acme", "wh_in", since, Utc::now()).unwrap(), 2);
        let replayed = store.claim_deliveries(Utc::now(), 100, &mut |_| true).unwrap();
        let ids: Vec<&str> = replayed.iter().map(|c| change(c).call_id.as_str()).collect();
        assert_eq!(ids, ["10", "11"]);
        assert!(store.delete_subscription("acme", "wh_in").unwrap());
        assert!(!store.delete_subscription("acme", "wh_in").unwrap());
        assert!(store.deliveries("acme", "wh_in").is_err(), "unknown once deleted");
        store.shutdown();
    }

    /// Claims start where the last one stopped rather than step again over
    /// the index entries of every row sent, yet find every row due: rows
    /// made after a claim looked further ahead, rows a limit left, a row put
    /// back for a retry; and a clock moved back finds nothing, without harm.
    #[test]
    fn claims_resume_where_they_stopped_and_miss_no_row() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_subscription(sub("wh", "/in", &[Action::Create, Action::Update])).unwrap();
        let ahead = Utc::now() + chrono::Duration::hours(1);
        assert!(store.claim_deliveries(ahead, 10, &mut |_| true).unwrap().is_empty());
        assert!(store.claim_deliveries(Utc::now() - chrono::Duration::hours(1), 10, &mut |_| true).unwrap().is_empty());
        let events = ["1", "2", "3"].map(|id| call(id, Operation::Write, &format!("/in/{id}"), |_| {}));
        store.ingest(events.to_vec()).wait_blocking().unwrap();
        rows(&store, "wh", 3);

        // Due before where the first claim stopped, and one at a time: each once, in order.
        let claimed: Vec<crate::ClaimedDelivery> =
            (0..3).flat_map(|_| store.claim_deliveries(Utc::now(), 1, &mut |_| true).unwrap()).collect();
        let ids: Vec<&str> = claimed.iter().map(|c| change(c).call_id.as_str()).collect();
        assert_eq!(ids, ["1", "2", "3"]);
        assert!(store.claim_deliveries(ahead, 10, &mut |_| true).unwrap().is_empty(), "every row is held");
        assert_eq!(store.next_delivery_due().unwrap(), None);

        let attempt = |c: &crate::ClaimedDelivery| attempt_of(c, AttemptStatus::Failed, 500);
        let retry_at = Utc::now() + chrono::Duration::minutes(1);
        // Two completions in one batch.
        let done = [
            Completion {
                delivery: claimed[0].delivery.clone(),
                attempt: Some(attempt(&claimed[0])),
                next: NextStep::Delivered,
            },
            Completion {
                delivery: claimed[1].delivery.clone(),
                attempt: Some(attempt(&claimed[1])),
                next: NextStep::RetryAt(retry_at),
            },
        ];
        store.complete_deliveries(&done).unwrap();
        let recorded = store.delivery_attempts("acme", "wh", None, 10).unwrap().attempts;
        let next_of = |c: &crate::ClaimedDelivery| {
            recorded.iter().find(|a| a.delivery == c.delivery.id).map(|a| a.next_attempt_at).unwrap()
        };
        assert_eq!(next_of(&claimed[1]), Some(retry_at), "a failed attempt says when its retry comes");
        assert_eq!(next_of(&claimed[0]), None, "none follows a delivery");
        assert!(store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap().is_empty(), "the retry is not due yet");
        assert_eq!(store.next_delivery_due().unwrap(), Some(retry_at));
        let again = store.claim_deliveries(retry_at, 10, &mut |_| true).unwrap();
        assert_eq!(again.len(), 1, "the retry is found behind the rows claimed since");
        assert_eq!(again[0].delivery.webhook_id(), claimed[1].delivery.webhook_id());
        for c in [&again[0], &claimed[2]] {
            store
                .complete_deliveries(&[Completion {
                    delivery: c.delivery.clone(),
                    attempt: Some(attempt(c)),
                    next: NextStep::Delivered,
                }])
                .unwrap();
        }
        assert!(store.claim_deliveries(ahead, 10, &mut |_| true).unwrap().is_empty());
        assert_eq!(store.next_delivery_due().unwrap(), None);
        store.shutdown();
    }

    /// An account without a folder webhook records no change (nothing for
    /// the change processor or the path index to do); with one, its writes
    /// are recorded, in its folder or not; after the last goes, none again.
    #[test]
    fn only_accounts_with_a_folder_webhook_record_changes() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let changes = |store: &EmbeddedStore| store.engine.changes.iter().count();
        let write = |id: &str, path: &str| {
            store.ingest(vec![call(id, Operation::Write, path, |_| {})]).wait_blocking().unwrap();
        };
        write("1", "/in/a");
        assert_eq!(changes(&store), 0);
        store.create_subscription(sub("wh_in", "/in", &[Action::Create])).unwrap();
        write("2", "/elsewhere/b");
        write("3", "/in/c");
        assert_eq!(changes(&store), 2);
        assert!(store.delete_subscription("acme", "wh_in").unwrap());
        write("4", "/in/d");
        assert_eq!(changes(&store), 2);
        store.shutdown();
    }

    /// A claim leaves the rows its `admit` refuses where they are and takes
    /// the ones behind them; the next claim finds the refused ones again.
    #[test]
    fn rows_a_claim_refuses_stay_for_the_next_and_do_not_block_others() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_subscription(sub("wh_slow", "/slow", &[Action::Create])).unwrap();
        store.create_subscription(sub("wh_fast", "/fast", &[Action::Create])).unwrap();
        // The slow target's rows first (due first), then the fast one's.
        for (folder, ids) in [("slow", 0..4), ("fast", 4..6)] {
            let n = ids.len();
            let events = ids.map(|i| call(&i.to_string(), Operation::Write, &format!("/{folder}/{i}"), |_| {}));
            store.ingest(events.collect()).wait_blocking().unwrap();
            rows(&store, &format!("wh_{folder}"), n);
            std::thread::sleep(Duration::from_millis(2));
        }
        let ids = |claimed: &[crate::ClaimedDelivery]| -> Vec<String> {
            claimed.iter().map(|c| c.subscription.id.clone()).collect()
        };
        // The slow target has room for one: its first row, then the fast ones behind the rest.
        let mut room = 1;
        let first = store
            .claim_deliveries(Utc::now(), 10, &mut |s| s.id == "wh_fast" || std::mem::replace(&mut room, 0) == 1)
            .unwrap();
        assert_eq!(ids(&first), ["wh_slow", "wh_fast", "wh_fast"]);
        let rest = store.claim_deliveries(Utc::now(), 10, &mut |_| true).unwrap();
        assert_eq!(ids(&rest), ["wh_slow"; 3], "the refused rows are claimed later, none lost");
        assert_eq!(store.next_delivery_due().unwrap(), None);
        store.shutdown();
    }

    /// A claim steps over at most `MAX_REFUSED_PER_CLAIM` refused rows: the
    /// rows behind a larger backlog wait for a later claim, and none is lost.
    #[test]
    fn a_claim_steps_over_a_bounded_number_of_refused_rows() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_subscription(sub("wh_slow", "/slow", &[Action::Create])).unwrap();
        store.create_subscription(sub("wh_fast", "/fast", &[Action::Create])).unwrap();
        let backlog = super::outbox::MAX_REFUSED_PER_CLAIM + 10;
        let slow: Vec<CallEvent> =
            (0..backlog).map(|i| call(&format!("s{i}"), Operation::Write, &format!("/slow/{i}"), |_| {})).collect();
        store.ingest(slow).wait_blocking().unwrap();
        rows(&store, "wh_slow", backlog);
        std::thread::sleep(Duration::from_millis(2));
        store.ingest(vec![call("f", Operation::Write, "/fast/f", |_| {})]).wait_blocking().unwrap();
        rows(&store, "wh_fast", 1);
        index_fresh(&store);
        let only_fast = |s: &crate::Subscription| s.id == "wh_fast";
        assert!(
            store.claim_deliveries(Utc::now(), 10, &mut only_fast.clone()).unwrap().is_empty(),
            "stopped before it"
        );
        let all = store.claim_deliveries(Utc::now(), backlog + 1, &mut |_| true).unwrap();
        assert_eq!(all.len(), backlog + 1, "every row is still there to claim");
        store.shutdown();
    }

    /// Reads are changes only while a subscription of the account asks for them.
    #[test]
    fn reads_are_recorded_only_for_accounts_that_watch_them() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.ingest(vec![call("r1", Operation::Read, "/in/a", |_| {})]).wait_blocking().unwrap();
        assert!(store.engine.changes.is_empty().unwrap(), "no subscription: a read costs nothing");
        store.create_subscription(sub("wh_reads", "/in", &[Action::Read])).unwrap();
        store.ingest(vec![call("r2", Operation::Read, "/in/a", |_| {})]).wait_blocking().unwrap();
        assert_eq!(actions(&rows(&store, "wh_reads", 1)), [Action::Read]);
        store.shutdown();
    }

    /// The hourly sweep takes processed changes, finished rows and attempts
    /// older than the webhook retention; pending rows stay.
    #[test]
    fn old_webhook_records_expire_but_pending_deliveries_stay() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_subscription(sub("wh", "/in", &[Action::Create])).unwrap();
        let events = vec![call("1", Operation::Write, "/in/a", |_| {}), call("2", Operation::Write, "/in/b", |_| {})];
        store.ingest(events).wait_blocking().unwrap();
        rows(&store, "wh", 2);
        let claimed = store.claim_deliveries(Utc::now(), 1, &mut |_| true).unwrap();
        let attempt = attempt_of(&claimed[0], AttemptStatus::Delivered, 204);
        store
            .complete_deliveries(&[Completion {
                delivery: claimed[0].delivery.clone(),
                attempt: Some(attempt),
                next: NextStep::Delivered,
            }])
            .unwrap();
        let later = Utc::now() + chrono::Duration::hours(1);
        let removed = super::super::expiry::expire_webhook_records(&store.engine, &store.shared, later).unwrap();
        assert_eq!(removed, 2 + 1, "two processed changes, the delivered row's attempt (which holds the row)");
        let left = store.deliveries("acme", "wh").unwrap();
        assert_eq!(left.len(), 1);
        assert_eq!(left[0].state, DeliveryState::Pending);
        assert!(store.delivery_attempts("acme", "wh", None, 10).unwrap().attempts.is_empty());
        store.shutdown();
    }

    /// An account's subscriptions stop at the limit however the requests
    /// come: many at once (several in one commit) cannot pass it, another
    /// account is not counted with it, and a deletion makes room again.
    #[test]
    fn subscriptions_at_once_cannot_pass_the_limit() {
        let dir = tempfile::tempdir().unwrap();
        let store = std::sync::Arc::new(EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap());
        let max = crate::MAX_SUBSCRIPTIONS_PER_ACCOUNT;
        let made: Vec<Result<Subscription, crate::StoreError>> = std::thread::scope(|scope| {
            let requests: Vec<_> = (0..max + 50)
                .map(|i| {
                    let store = store.clone();
                    scope.spawn(move || store.create_subscription(sub(&format!("wh_{i}"), "/in", &[Action::Create])))
                })
                .collect();
            requests.into_iter().map(|r| r.join().unwrap()).collect()
        });
        assert_eq!(made.iter().filter(|r| r.is_ok()).count(), max, "made");
        for refused in made.iter().filter_map(|r| r.as_ref().err()) {
            assert!(refused.to_string().contains(&format!("at most {max} webhooks")), "{refused}");
        }
        assert_eq!(store.subscriptions("acme").len(), max);
        let mut other = sub("wh_other", "/in", &[Action::Create]);
        other.account = "globex".into();
        store.create_subscription(other).unwrap();
        assert!(store.create_subscription(sub("wh_more", "/in", &[Action::Create])).is_err());
        let kept = store.subscriptions("acme")[0].id.clone();
        assert!(store.delete_subscription("acme", &kept).unwrap());
        store.create_subscription(sub("wh_more", "/in", &[Action::Create])).unwrap();
        // After a restart, the count is the stored one.
        drop(made);
        let store = std::sync::Arc::into_inner(store).expect("no other handle");
        drop(store);
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        assert!(store.create_subscription(sub("wh_after", "/in", &[Action::Create])).is_err());
    }

    /// A call's path is the file it names: one that climbs out of a folder
    /// with `..` is a change in the folder it reaches, not the one it
    /// passes, and doubled slashes name the same file.
    #[test]
    fn paths_are_resolved_before_they_are_matched() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.create_subscription(sub("wh_pre", "/pre", &[Action::Create, Action::Update])).unwrap();
        store.create_subscription(sub("wh_tr", "/tr", &[Action::Create, Action::Update])).unwrap();
        let events = vec![
            call("1", Operation::Write, "/pre/../tr/x", |_| {}),
            call("2", Operation::Write, "/tr//x", |_| {}),
            call("3", Operation::Write, "/pre/./y", |_| {}),
        ];
        assert!(store.ingest(events).wait_blocking().unwrap().iter().all(|o| *o == Outcome::Accepted));
        assert_eq!(actions(&rows(&store, "wh_tr", 2)), [Action::Create, Action::Update], "one file, /tr/x");
        assert_eq!(rows(&store, "wh_pre", 1).len(), 1, "only /pre/y");
        let claimed = store.claim_deliveries(Utc::now(), 100, &mut |_| true).unwrap();
        let mut paths: Vec<&str> = claimed.iter().map(|c| change(c).path.as_str()).collect();
        paths.sort();
        assert_eq!(paths, ["/pre/y", "/tr/x", "/tr/x"]);
        store.shutdown();
    }

    /// An update decided from the subscription as read is refused once it
    /// changed since, and applies while it has not.
    #[test]
    fn an_update_of_a_subscription_as_read_is_refused_once_it_changed() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let read = store.create_subscription(sub("wh", "/in", &[Action::Create])).unwrap();
        let guarded = |url: &str| SubscriptionUpdate {
            url: Some(url.into()),
            if_unchanged_since: Some(read.updated_at),
            ..Default::default()
        };
        std::thread::sleep(Duration::from_millis(2));
        let moved = store.update_subscription("acme", "wh", guarded("http://127.0.0.1:9/a")).unwrap().unwrap();
        assert_eq!(moved.url, "http://127.0.0.1:9/a");
        let stale = store.update_subscription("acme", "wh", guarded("http://127.0.0.1:9/b"));
        assert!(matches!(stale, Err(crate::StoreError::Conflict(_))), "{stale:?}");
        assert_eq!(store.subscription("acme", "wh").unwrap().url, "http://127.0.0.1:9/a");
        // One that asks for what is already so changes nothing, and so
        // conflicts with nothing (a hostile trial saw `PATCH {}` answered
        // 409 under 32 changes at once).
        let same = store.update_subscription("acme", "wh", guarded("http://127.0.0.1:9/a")).unwrap().unwrap();
        assert_eq!((same.url.as_str(), same.updated_at), ("http://127.0.0.1:9/a", moved.updated_at));
        store.shutdown();
    }
}
