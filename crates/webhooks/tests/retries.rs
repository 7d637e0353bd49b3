//! The delivery engine in process, on a real store and a real HTTP receiver
//! on loopback, under a test clock: the schedule's waits are checked to the
//! second without sleeping through them.

mod harness;

use harness::*;

/// A 500, a 429 with `Retry-After`, a timeout, then a 200: each retry at
/// its time, the event delivered once, with one `webhook-id` and a valid
/// signature on every attempt; nothing more after it is delivered.
#[test]
fn failures_are_retried_on_the_schedule_until_delivered_once() {
    let s = setup();
    let secret = signing::new_secret();
    let receiver = Receiver::answering(
        Reply::Status(200, String::new()),
        vec![
            Reply::Status(500, String::new()),
            Reply::Status(429, "retry-after: 600\r\n".into()),
            Reply::Hang(std::time::Duration::from_millis(1_500)),
        ],
    );
    subscribe(&s.store, "wh_retry", &receiver.url, &secret);
    let t0 = s.clock.now();
    upload(&s.store, "a");
    let next = attempt_recorded(&s, "wh_retry", 1).expect("a retry after the 500");
    assert_wait(t0, next, RETRY_DELAYS_SECS[0]);
    go_to(&s, next);
    let after_429 = attempt_recorded(&s, "wh_retry", 2).expect("a retry after the 429");
    assert_wait(next, after_429, 600);
    go_to(&s, after_429);
    let after_timeout = attempt_recorded(&s, "wh_retry", 3).expect("a retry after the timeout");
    assert_wait(after_429, after_timeout, RETRY_DELAYS_SECS[2]);
    go_to(&s, after_timeout);
    assert_eq!(attempt_recorded(&s, "wh_retry", 4), None, "delivered: nothing more is due");

    let attempts = s.store.delivery_attempts("acme", "wh_retry", None, 100).unwrap().attempts;
    let codes: Vec<Option<u16>> = attempts.iter().map(|a| a.response_code).collect();
    assert_eq!(codes, [Some(200), None, Some(429), Some(500)], "newest first");
    let nexts: Vec<Option<DateTime<Utc>>> = attempts.iter().map(|a| a.next_attempt_at).collect();
    assert_eq!(
        nexts,
        [None, Some(after_timeout), Some(after_429), Some(next)],
        "each failure says when its retry comes"
    );
    assert!(attempts[1].error.as_deref().unwrap().contains("timed out"), "{:?}", attempts[1].error);
    assert_eq!(attempts.iter().filter(|a| a.status == AttemptStatus::Delivered).count(), 1);
    let got = receiver.all();
    assert_eq!(got.len(), 4);
    let id = |r: &Received| r.header("webhook-id").to_owned();
    assert!(got.iter().all(|r| id(r) == id(&got[0]) && r.body == got[0].body), "one webhook-id, one body");
    assert!(got.iter().all(|r| r.signed_with(&secret)));
    let body: serde_json::Value = serde_json::from_slice(&got[0].body).unwrap();
    assert_eq!(body["type"], "file.create");
    assert_eq!(body["data"]["path"], "/in/a.csv");

    // Days later, nothing is sent again.
    go_to(&s, s.clock.now() + Duration::days(2));
    std::thread::sleep(std::time::Duration::from_millis(300));
    assert_eq!(receiver.count(), 4);
    let rows = s.store.deliveries("acme", "wh_retry").unwrap();
    assert_eq!((rows[0].state, rows[0].attempts), (DeliveryState::Delivered, 4));
}

/// A target that always fails: ten attempts on the schedule, then the
/// delivery has failed; once its deliveries have failed for five days, the
/// subscription is disabled and later events are kept, not sent.
#[test]
fn ten_attempts_then_failed_and_five_days_of_failures_disable() {
    let s = setup();
    let receiver = Receiver::answering(Reply::Status(503, String::new()), vec![]);
    subscribe(&s.store, "wh_down", &receiver.url, &signing::new_secret());
    let mut at = s.clock.now();
    upload(&s.store, "a");
    for (n, delay) in RETRY_DELAYS_SECS.iter().enumerate() {
        let next = attempt_recorded(&s, "wh_down", n + 1).expect("another attempt");
        assert_wait(at, next, *delay);
        at = next;
        go_to(&s, next);
    }
    assert_eq!(attempt_recorded(&s, "wh_down", 10), None, "ten attempts, then no more");
    let attempts = s.store.delivery_attempts("acme", "wh_down", None, 100).unwrap().attempts;
    assert_eq!(attempts[0].next_attempt_at, None, "the tenth says no retry follows");
    assert!(attempts[1..].iter().all(|a| a.next_attempt_at.is_some()), "the nine before it each say when");
    let rows = s.store.deliveries("acme", "wh_down").unwrap();
    assert_eq!((rows[0].state, rows[0].attempts), (DeliveryState::Failed, 10));
    assert!(s.store.subscription("acme", "wh_down").unwrap().enabled, "three days of failures do not disable");

    go_to(&s, s.clock.now() + Duration::days(2));
    upload(&s.store, "b");
    attempt_recorded(&s, "wh_down", 11);
    let sub = s.store.subscription("acme", "wh_down").unwrap();
    assert!(!sub.enabled, "five days of failures disable");
    assert_eq!(sub.disabled_reason.as_deref(), Some("deliveries failed for five days"));
    let (stats, get) = (s.engine.stats(), callmeter_webhooks::DeliveryStats::get);
    // Counted as the engine's store calls return: a moment after the store shows them.
    wait_until("the disable counted", || get(&stats.subscriptions_disabled) == 1);
    assert_eq!(get(&stats.deliveries_given_up), 1, "the first delivery, after its tenth attempt");
    assert_eq!((get(&stats.attempts_failed), get(&stats.attempts_delivered)), (11, 0));
    upload(&s.store, "c");
    wait_until("the third row", || s.store.deliveries("acme", "wh_down").unwrap().len() == 3);
    let states: Vec<DeliveryState> = s.store.deliveries("acme", "wh_down").unwrap().iter().map(|d| d.state).collect();
    assert_eq!(states, [DeliveryState::Failed, DeliveryState::Held, DeliveryState::Held]);
    assert_eq!(receiver.count(), 11);
}

/// A 410 disables at once; the events that arrive meanwhile are kept, and
/// replay sends them (and the one the 410 answered) once it is enabled again.
#[test]
fn gone_disables_at_once_and_replay_sends_the_kept_events() {
    let s = setup();
    let receiver = Receiver::answering(Reply::Status(204, String::new()), vec![Reply::Status(410, String::new())]);
    subscribe(&s.store, "wh_gone", &receiver.url, &signing::new_secret());
    let start = Utc::now() - Duration::seconds(1);
    upload(&s.store, "a");
    assert_eq!(attempt_recorded(&s, "wh_gone", 1), None, "no retry after a 410");
    let sub = s.store.subscription("acme", "wh_gone").unwrap();
    assert!(!sub.enabled);
    upload(&s.store, "b");
    wait_until("two rows", || s.store.deliveries("acme", "wh_gone").unwrap().len() == 2);
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(receiver.count(), 1, "nothing is sent to a disabled subscription");
    let on = SubscriptionUpdate { enabled: Some(true), ..Default::default() };
    s.store.update_subscription("acme", "wh_gone", on).unwrap();
    assert_eq!(s.store.replay("acme", "wh_gone", start, s.clock.now()).unwrap(), 2);
    s.engine.wake();
    wait_until("the replay", || receiver.count() == 3);
    let got = receiver.all();
    let path = |r: &Received| {
        serde_json::from_slice::<serde_json::Value>(&r.body).unwrap()["data"]["path"].as_str().unwrap().to_owned()
    };
    // Sent together, they may arrive in either order.
    let mut paths: Vec<String> = got[1..].iter().map(path).collect();
    paths.sort();
    assert_eq!(paths, ["/in/a.csv", "/in/b.csv"]);
    let replayed_a = got[1..].iter().find(|r| path(r) == "/in/a.csv").unwrap();
    assert_eq!(replayed_a.header("webhook-id"), got[0].header("webhook-id"), "a replay keeps the event's webhook-id");
    // The 410 was answered once: the script is used up.
    assert_eq!(receiver.script_left(), 0);
}

/// A receiver that answers 410 to every request, several at once (a
/// target's slots): the subscription is disabled once, and counted once,
/// however many attempts decided it.
#[test]
fn concurrent_410s_disable_once() {
    let s = setup();
    let receiver = Receiver::answering(Reply::Status(410, String::new()), vec![]);
    subscribe(&s.store, "wh_gone", &receiver.url, &signing::new_secret());
    let events = (0..8)
        .map(|i| {
            let mut e = CallEvent::new(format!("g{i}"), "acme".into(), Utc::now(), Interface::Rest, Operation::Write);
            e.path = Some(format!("/in/g{i}.csv"));
            e
        })
        .collect();
    s.store.ingest(events).wait_blocking().unwrap();
    wait_until("the subscription disabled", || !s.store.subscription("acme", "wh_gone").unwrap().enabled);
    wait_until("every row recorded or held", || {
        s.store.deliveries("acme", "wh_gone").unwrap().iter().all(|d| d.state == DeliveryState::Held)
    });
    let stats = s.engine.stats();
    let get = callmeter_webhooks::DeliveryStats::get;
    wait_until("the disable counted", || get(&stats.subscriptions_disabled) >= 1);
    assert!(receiver.count() >= 2, "several attempts at once: {}", receiver.count());
    assert_eq!(get(&stats.attempts_failed), receiver.count() as u64, "each 410 counted as a failed attempt");
    assert_eq!(get(&stats.subscriptions_disabled), 1, "disabled once, whatever the attempts that decided it");
}

/// Uploads to a receiver that never answers in time, then one to another:
/// the other is sent at once, not after the slow one's queue (its claims
/// wait in the outbox, holding none of the attempts in flight).
#[test]
fn a_hanging_target_holds_back_no_other_target() {
    let s = setup_with(EngineOptions { max_in_flight: 4, per_target: 1, ..EngineOptions::default() });
    let slow = Receiver::answering(Reply::Hang(std::time::Duration::from_secs(2)), vec![]);
    let fast = Receiver::answering(Reply::Status(200, String::new()), vec![]);
    subscribe(&s.store, "wh_slow", &slow.url, &signing::new_secret());
    for i in 0..12 {
        upload(&s.store, &format!("slow-{i}"));
    }
    wait_until("the slow target's first attempt", || slow.count() >= 1);
    subscribe(&s.store, "wh_fast", &fast.url.replace("/hook", "/fast"), &signing::new_secret());
    let uploaded = std::time::Instant::now();
    upload(&s.store, "fast-0");
    // (Slow uploads the processor reaches after this subscription go to it too.)
    wait_until("the fast target's delivery", || fast.count() >= 1);
    // Behind the slow queue it would wait for 12 timeouts of 300 ms, one at a time.
    assert!(uploaded.elapsed() < std::time::Duration::from_millis(1_500), "took {:?}", uploaded.elapsed());
    assert!(slow.count() <= 6, "the slow target got one attempt at a time: {}", slow.count());
}

/// One account's many hanging targets take at most its share of the
/// attempts in flight; another account's delivery goes at once.
#[test]
fn an_account_with_many_hanging_targets_leaves_room_for_the_others() {
    let s = setup_with(EngineOptions { max_in_flight: 4, per_account: 2, ..EngineOptions::default() });
    let hanging: Vec<Receiver> =
        (0..4).map(|_| Receiver::answering(Reply::Hang(std::time::Duration::from_secs(2)), vec![])).collect();
    for (i, r) in hanging.iter().enumerate() {
        subscribe_in(&s.store, "acme", &format!("wh_hang{i}"), &r.url, &signing::new_secret());
    }
    for i in 0..8 {
        upload_in(&s.store, "acme", &format!("a-{i}"));
    }
    wait_until("acme's first attempts", || hanging.iter().map(Receiver::count).sum::<usize>() >= 2);
    let other = Receiver::answering(Reply::Status(200, String::new()), vec![]);
    subscribe_in(&s.store, "globex", "wh_other", &other.url, &signing::new_secret());
    let uploaded = std::time::Instant::now();
    upload_in(&s.store, "globex", "g-0");
    wait_until("globex's delivery", || other.count() == 1);
    assert!(uploaded.elapsed() < std::time::Duration::from_millis(1_500), "took {:?}", uploaded.elapsed());
}
