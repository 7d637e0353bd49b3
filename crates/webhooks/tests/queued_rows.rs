//! Rows that wait in a target's queue (`engine.rs`): a hostile review's
//! cases, each a defect the queued engine had once. A large backlog for a
//! hanging target holds back no one else, not even its account's other
//! webhooks; a row whose subscription was
//! disabled, deleted or answered 410 while it waited is not sent; failures
//! are judged as they are when an attempt ends; a panic or an error while
//! recording completions loses no row; a redelivery asked during an attempt
//! stands; a stop with rows queued for a hanging target returns. The
//! harness is `retries.rs`'s, with a reply that answers after a delay.

mod harness;

use harness::*;

/// Acme's `hanging` receivers (each its own subscription) with `rows` due
/// each, tried `tried` times in all (and `settle` more time to claim); then
/// one upload of `account`'s to a healthy receiver: whether it was sent
/// within `limit`, and the hanging receivers' attempts by then.
fn behind_a_hanging_backlog(
    s: &Setup,
    (hanging, rows, tried, settle): (usize, usize, usize, std::time::Duration),
    account: &str,
    limit: std::time::Duration,
) -> (bool, usize) {
    let slow: Vec<Receiver> =
        (0..hanging).map(|_| Receiver::answering(Reply::Hang(std::time::Duration::from_secs(30)), vec![])).collect();
    for (i, r) in slow.iter().enumerate() {
        subscribe_in(&s.store, "acme", &format!("wh_slow{i}"), &r.url, &signing::new_secret());
    }
    upload_many(&s.store, "acme", "bulk", rows);
    for i in 0..hanging {
        wait_until("acme's rows", || s.store.deliveries("acme", &format!("wh_slow{i}")).unwrap().len() == rows);
    }
    let attempts = || slow.iter().map(Receiver::count).sum::<usize>();
    wait_until("the slow targets' attempts", || attempts() >= tried);
    std::thread::sleep(settle);
    let fast = Receiver::answering(Reply::Status(200, String::new()), vec![]);
    subscribe_in(&s.store, account, "wh_fast", &fast.url, &signing::new_secret());
    upload_in(&s.store, account, "fast-0");
    (within(limit, || fast.count() == 1), attempts())
}

// ---------------------------------------------------------------------------
// Once a defect (fixed): a backlog of one saturated target longer than
// MAX_REFUSED_PER_CLAIM (1,024) rows stops every claim before it reaches
// anything due later: other accounts' deliveries wait for the backlog.

/// DESIGN §7: a first attempt starts within 2 s of the call. An account
/// whose (hanging) receiver has 2,000 rows due holds back another
/// account's delivery to a healthy receiver for minutes (each claim steps
/// over 1,024 refused rows of the hanging target and stops there).
#[test]
fn a_large_backlog_of_one_hanging_target_holds_back_other_accounts() {
    let s = setup();
    let (sent, tried) = behind_a_hanging_backlog(&s, (1, 2_000, 1, ms(0)), "globex", std::time::Duration::from_secs(5));
    assert!(
        sent,
        "globex's delivery was not sent within 5 s (DESIGN §7: 2 s); the hanging target got {tried} attempts"
    );
}

// ---------------------------------------------------------------------------
// Once a defect (fixed): rows claimed into a target's queue are sent with the
// subscription as it was at the claim: after a 410 (or a disable, a
// delete, a URL change) up to per_target × 16 queued rows still go out.

/// A 410 "disables the subscription at once" (DESIGN §7), yet the rows
/// already queued behind it are sent to the target that said Gone, and
/// (here answered 200) recorded as delivered by a disabled subscription.
#[test]
fn after_a_410_the_rows_queued_behind_it_are_not_sent() {
    let s = setup_with(EngineOptions { per_target: 1, ..EngineOptions::default() });
    let receiver = Receiver::answering(Reply::Status(200, String::new()), vec![Reply::Slow(ms(100), 410)]);
    subscribe(&s.store, "wh_gone", &receiver.url, &signing::new_secret());
    upload_many(&s.store, "acme", "f", 5);
    wait_until("the 410", || !s.store.subscription("acme", "wh_gone").unwrap().enabled);
    std::thread::sleep(ms(1_000));
    let states: Vec<DeliveryState> = s.store.deliveries("acme", "wh_gone").unwrap().iter().map(|d| d.state).collect();
    assert_eq!(receiver.count(), 1, "requests after the 410 Gone; rows: {states:?}");
    assert!(states.iter().all(|s| *s != DeliveryState::Delivered), "{states:?}");
}

/// A customer deletes a webhook: the rows already queued for it are no
/// longer sent to its URL after the delete returned (beyond the one in flight).
#[test]
fn a_deleted_subscription_gets_no_more_requests() {
    no_more_requests_after("the delete", |store| assert!(store.delete_subscription("acme", "wh").unwrap()));
}

/// A customer disables a webhook (or changes its URL): same.
#[test]
fn a_subscription_disabled_by_its_owner_gets_no_more_requests() {
    no_more_requests_after("the disable", |store| {
        let off = SubscriptionUpdate { enabled: Some(false), ..Default::default() };
        store.update_subscription("acme", "wh", off).unwrap();
    });
}

/// Rows queued for a slow receiver, one at a time; `change` to the
/// subscription once the first request came; then at most the one in flight.
fn no_more_requests_after(what: &str, change: impl FnOnce(&EmbeddedStore)) {
    let s = setup_with(EngineOptions { per_target: 1, ..EngineOptions::default() });
    let receiver = Receiver::answering(Reply::Slow(ms(100), 200), vec![]);
    subscribe(&s.store, "wh", &receiver.url, &signing::new_secret());
    upload_many(&s.store, "acme", "f", 8);
    wait_until("the first request", || receiver.count() >= 1);
    change(&s.store);
    let at_change = receiver.count();
    std::thread::sleep(ms(1_500));
    assert!(
        receiver.count() <= at_change + 1,
        "{} requests after {what} (beyond the one in flight)",
        receiver.count() - at_change
    );
}

// ---------------------------------------------------------------------------
// Once a defect (fixed): `decide` works from the claim's snapshot of `failing_since`;
// with rows queued, a success and a failure of one claim cross.

/// Failing for five days, the target recovers: the first queued row is
/// delivered (failures forgotten), the next gets one 500, judged with the
/// claim's five-day-old `failing_since`: the subscription is disabled for
/// "five days of failures" a moment after a success.
#[test]
fn a_failure_right_after_a_success_does_not_disable_for_five_days_of_failures() {
    let s = setup_with(EngineOptions { per_target: 1, ..EngineOptions::default() });
    let receiver = Receiver::answering(
        Reply::Status(200, String::new()),
        vec![Reply::Slow(ms(50), 200), Reply::Status(500, String::new())],
    );
    subscribe(&s.store, "wh_flaky", &receiver.url, &signing::new_secret());
    let since = s.clock.now() - Duration::days(5) - Duration::minutes(1);
    let failing = SubscriptionUpdate { failing_since: Some(Some(since)), ..Default::default() };
    s.store.update_subscription("acme", "wh_flaky", failing).unwrap();
    upload_many(&s.store, "acme", "f", 2);
    wait_until("two attempts", || s.store.delivery_attempts("acme", "wh_flaky", None, 10).unwrap().attempts.len() == 2);
    std::thread::sleep(ms(200));
    let sub = s.store.subscription("acme", "wh_flaky").unwrap();
    assert!(sub.enabled, "disabled just after a success: {:?}", sub.disabled_reason);
}

/// The other way round: a failure then a success in one claim leave the
/// subscription "failing since" the failure (the success, judged with the
/// claim's `failing_since: None`, clears nothing): five days on, one
/// failure disables it although it has succeeded since.
#[test]
fn a_success_after_a_failure_in_one_claim_forgets_the_failures() {
    let s = setup_with(EngineOptions { per_target: 1, ..EngineOptions::default() });
    let receiver = Receiver::answering(Reply::Status(200, String::new()), vec![Reply::Slow(ms(50), 500)]);
    subscribe(&s.store, "wh_flaky", &receiver.url, &signing::new_secret());
    upload_many(&s.store, "acme", "f", 2);
    wait_until("two attempts", || s.store.delivery_attempts("acme", "wh_flaky", None, 10).unwrap().attempts.len() == 2);
    std::thread::sleep(ms(200));
    let attempts = s.store.delivery_attempts("acme", "wh_flaky", None, 10).unwrap().attempts;
    assert_eq!(attempts[0].status, AttemptStatus::Delivered, "the newest attempt succeeded");
    let sub = s.store.subscription("acme", "wh_flaky").unwrap();
    assert_eq!(sub.failing_since, None, "a success forgets the failures");
}

// ---------------------------------------------------------------------------
// Once a defect (fixed): a redelivery asked for while the row is claimed is swallowed
// by the attempt in flight.

/// The row is being sent (claimed) and answered 500; the owner asks to
/// redeliver it now: the completion overwrites the request with the
/// schedule's retry (5 s on, attempts 1), and nothing is sent now.
#[test]
fn a_redelivery_asked_during_an_attempt_is_not_lost() {
    let s = setup();
    let receiver = Receiver::answering(Reply::Status(200, String::new()), vec![Reply::Slow(ms(200), 500)]);
    subscribe(&s.store, "wh_re", &receiver.url, &signing::new_secret());
    upload(&s.store, "a");
    wait_until("the attempt in flight", || receiver.count() == 1);
    let id = s.store.deliveries("acme", "wh_re").unwrap()[0].id;
    assert!(s.store.redeliver("acme", "wh_re", id, s.clock.now()).unwrap());
    s.engine.wake();
    assert!(
        within(std::time::Duration::from_secs(3), || receiver.count() == 2),
        "the redelivery was not sent; row: {:?}",
        s.store.deliveries("acme", "wh_re").unwrap()[0]
    );
}

// ---------------------------------------------------------------------------
// Failpoints are read once per process: each such test runs itself again
// in a child process with `CALLMETER_FAILPOINTS` set.

/// True in the child; in the parent, runs `name` in a child with `failpoints` and checks it passed.
fn in_child(name: &str, failpoints: &str) -> bool {
    if std::env::var("CALLMETER_FAILPOINTS").is_ok() {
        return true;
    }
    let out = std::process::Command::new(std::env::current_exe().unwrap())
        .args([name, "--exact", "--nocapture", "--test-threads=1"])
        .env("CALLMETER_FAILPOINTS", failpoints)
        .output()
        .unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success() && text.contains("1 passed"), "child {name} with {failpoints}:\n{text}");
    false
}

/// Once a defect (fixed): a panic while recording a batch of completions (here the
/// `outbox.complete` failpoint's `panic`, standing for any broken
/// assertion in `record`) loses the batch's rows until the process
/// restarts: `complete` released their claims before `record`, and lowers
/// `due_from` only on an `Err`, so their index entries stay below where
/// claims and `next_due` start. The engine logs "completion task failed"
/// and goes on; the row, never recorded, is pending and never sent again.
#[test]
fn a_panic_recording_completions_does_not_lose_the_rows() {
    if !in_child("a_panic_recording_completions_does_not_lose_the_rows", "outbox.complete=1:panic") {
        return;
    }
    let s = setup();
    let receiver = Receiver::answering(Reply::Status(200, String::new()), vec![]);
    subscribe(&s.store, "wh_p", &receiver.url, &signing::new_secret());
    upload(&s.store, "a");
    wait_until("the first attempt", || receiver.count() >= 1);
    s.engine.wake();
    assert!(
        within(std::time::Duration::from_secs(3), || receiver.count() == 2),
        "the pending row is never sent again; next_delivery_due = {:?}",
        s.store.next_delivery_due().unwrap()
    );
    // The first attempt, whose record panicked, is not in the log; the second is.
    wait_until("the second attempt recorded", || {
        let row = s.store.deliveries("acme", "wh_p").unwrap()[0].clone();
        (row.state, row.attempts) == (DeliveryState::Delivered, 1)
    });
}

/// A control: a batch whose write fails with an
/// error comes back in view and is sent again.
#[test]
fn control_an_error_recording_completions_sends_the_rows_again() {
    if !in_child("control_an_error_recording_completions_sends_the_rows_again", "outbox.complete=1:error") {
        return;
    }
    let s = setup();
    let receiver = Receiver::answering(Reply::Status(500, String::new()), vec![]);
    subscribe(&s.store, "wh_e", &receiver.url, &signing::new_secret());
    upload_many(&s.store, "acme", "f", 3);
    wait_until("three attempts sent", || receiver.count() >= 3);
    // The first batch was lost to the error: those rows come due again at once.
    wait_until("every row's attempt recorded", || {
        s.store.deliveries("acme", "wh_e").unwrap().iter().all(|d| d.attempts == 1)
    });
    let due = s.store.next_delivery_due().unwrap().expect("retries due");
    go_to(&s, due + Duration::seconds(10));
    wait_until("the retries recorded", || s.store.deliveries("acme", "wh_e").unwrap().iter().all(|d| d.attempts == 2));
}

/// Tried: `stop` with 200 rows queued for a hanging target returns once
/// the attempts in flight time out (the queued ones give up).
#[test]
fn control_stop_with_many_rows_queued_for_a_hanging_target_returns() {
    let mut running = Running::start(ms(300));
    let slow = Receiver::answering(Reply::Hang(std::time::Duration::from_secs(5)), vec![]);
    subscribe(&running.store, "wh_h", &slow.url, &signing::new_secret());
    upload_many(&running.store, "acme", "f", 200);
    wait_until("attempts in flight", || slow.count() >= 4);
    let took = running.stop(std::time::Duration::from_secs(3));
    assert!(took < std::time::Duration::from_secs(1), "{took:?}");
}

/// An engine on its own runtime over a fresh store, its attempts timing out after `timeout`.
struct Running {
    _dir: tempfile::TempDir,
    store: Arc<EmbeddedStore>,
    engine: Arc<DeliveryEngine>,
    runtime: tokio::runtime::Runtime,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Running {
    fn start(timeout: std::time::Duration) -> Running {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap());
        let clock = TestClock::at(Utc::now() + Duration::minutes(10));
        let options = EngineOptions { allow_private_targets: true, timeout, ..EngineOptions::default() };
        let dyn_store: Arc<dyn Store> = store.clone();
        let engine = Arc::new(DeliveryEngine::new(dyn_store, Arc::new(clock), options).unwrap());
        let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
        let task = runtime.spawn(engine.clone().run());
        Running { _dir: dir, store, engine, runtime, task: Some(task) }
    }

    /// Stops the engine and waits for `run` to return (within `limit`); how long that took.
    fn stop(&mut self, limit: std::time::Duration) -> std::time::Duration {
        let stopped = std::time::Instant::now();
        self.engine.stop();
        let task = self.task.take().expect("stopped once");
        self.runtime.block_on(async { tokio::time::timeout(limit, task).await }).expect("run returns").unwrap();
        stopped.elapsed()
    }
}

/// A stop gives attempts in flight 2 s, not their whole timeout (15 s):
/// those to a hanging target are given up, and their rows stay for the next
/// start (claimed until the process ends).
#[test]
fn a_stop_gives_up_hanging_attempts_after_a_grace() {
    let timeout = EngineOptions::default().timeout;
    assert_eq!(timeout, std::time::Duration::from_secs(15));
    let mut running = Running::start(timeout);
    let hanging = Receiver::answering(Reply::Hang(std::time::Duration::from_secs(30)), vec![]);
    subscribe(&running.store, "wh_h", &hanging.url, &signing::new_secret());
    upload_many(&running.store, "acme", "f", 4);
    wait_until("attempts in flight", || hanging.count() >= 4);
    let took = running.stop(std::time::Duration::from_secs(10));
    let store = &running.store;
    assert!(took >= std::time::Duration::from_secs(2) && took < std::time::Duration::from_secs(4), "{took:?}");
    assert!(store.delivery_attempts("acme", "wh_h", None, 10).unwrap().attempts.is_empty(), "nothing recorded");
    assert!(store.deliveries("acme", "wh_h").unwrap().iter().all(|d| d.state == DeliveryState::Pending));
}

/// A control: the same with 900 rows (fewer than
/// MAX_REFUSED_PER_CLAIM past the 64 claimed): the claim reaches the
/// other account's row and it goes at once. The 1,024-row scan limit is
/// what holds it back.
#[test]
fn control_a_backlog_under_the_refused_scan_limit_holds_back_no_one() {
    let s = setup();
    assert!(behind_a_hanging_backlog(&s, (1, 900, 1, ms(0)), "globex", std::time::Duration::from_secs(2)).0);
}

/// The engine keeps attempt slots only for targets it is sending to: once
/// every row of a target is done, its slots go, whatever the number of
/// targets sent to over time.
#[test]
fn the_slots_of_targets_no_longer_sent_to_are_let_go() {
    let s = setup();
    let secret = signing::new_secret();
    let receivers: Vec<Receiver> =
        (0..6).map(|_| Receiver::answering(Reply::Status(200, String::new()), vec![])).collect();
    for (i, r) in receivers.iter().enumerate() {
        let account = format!("acct{i}");
        subscribe_in(&s.store, &account, &format!("wh_{i}"), &r.url, &secret);
        upload_in(&s.store, &account, "a");
    }
    wait_until("a delivery to every target", || receivers.iter().all(|r| r.count() == 1));
    wait_until("the slots of the targets done with to go", || s.engine.targets_in_use() == 0);
    // A target sent to again gets slots again, and lets them go again.
    upload_in(&s.store, "acct3", "b");
    wait_until("the second delivery", || receivers[3].count() == 2);
    wait_until("its slots to go again", || s.engine.targets_in_use() == 0);
}

// ---------------------------------------------------------------------------
// Once a defect (fixed, found by a hostile trial): one account's hanging
// receiver held back that account's other webhooks (its usage alerts too)
// for hours. Its target could hold 64 claimed rows, the whole of the
// account's room (64), and each row waited out the attempt timeout.

/// An account's backlogs for two new hanging targets leave room for the
/// same account's other webhooks, before any attempt has failed (a 10 s
/// timeout here): a subscription not yet proven by a success holds its
/// target's slots' worth of rows (4), not a target's room (64, and two
/// such made the account's 128).
#[test]
fn hanging_targets_hold_back_none_of_their_accounts_other_webhooks() {
    let s = setup_with(EngineOptions { timeout: std::time::Duration::from_secs(10), ..EngineOptions::default() });
    // After the first attempts, more claims come meanwhile.
    let (sent, tried) = behind_a_hanging_backlog(&s, (2, 300, 8, ms(500)), "acme", std::time::Duration::from_secs(2));
    assert!(sent, "acme's healthy webhook waited behind its hanging one ({tried} attempts)");
}

/// Found by a careless trial: two accounts whose webhooks share a host (an
/// automation service's, a gateway) shared its slots, so one account's
/// hanging receiver held back the other's deliveries for the attempt
/// timeout (minutes behind 20 such webhooks). An unproven webhook (new, or
/// failing) counts against its account's own target at the host.
#[test]
fn accounts_sharing_a_host_hold_back_none_of_each_other() {
    let s = setup_with(EngineOptions { timeout: std::time::Duration::from_secs(10), ..EngineOptions::default() });
    let hang = || Reply::Hang(std::time::Duration::from_secs(30));
    let shared = Receiver::answering(Reply::Status(200, String::new()), (0..4).map(|_| hang()).collect());
    subscribe_in(&s.store, "acme", "wh_acme", &shared.url, &signing::new_secret());
    upload_many(&s.store, "acme", "bulk", 20);
    wait_until("acme's four attempts, hanging", || shared.count() >= 4);
    std::thread::sleep(ms(200));
    assert_eq!(shared.count(), 4, "an unproven webhook's rows take its target's four slots at most");
    subscribe_in(&s.store, "globex", "wh_globex", &shared.url, &signing::new_secret());
    upload_in(&s.store, "globex", "fast-0");
    assert!(
        within(std::time::Duration::from_secs(3), || shared.count() >= 5),
        "globex's delivery waited behind acme's hanging attempts at the same host"
    );
    wait_until("globex's attempt recorded", || {
        let page = s.store.delivery_attempts("globex", "wh_globex", None, 10).unwrap();
        page.attempts.iter().any(|a| a.status == AttemptStatus::Delivered)
    });
}

/// Two accounts' webhooks at one host, both proven by fast answers; then
/// acme's receiver answers as `turned` (hanging, or slow), 60 of acme's
/// rows come, and globex's webhook gets a second event: whether it was
/// delivered within 6 s, and the receiver.
fn behind_a_proven_webhook_that_turns(s: &Setup, turned: Reply) -> (bool, Receiver) {
    let ok = || Reply::Status(200, String::new());
    let shared = Receiver::answering(turned, (0..5).map(|_| ok()).collect());
    let other = format!("{}{ALWAYS_OK}", shared.url);
    let others = || shared.all().iter().filter(|r| r.path.ends_with(ALWAYS_OK)).count();
    subscribe_in(&s.store, "acme", "wh_acme", &shared.url, &signing::new_secret());
    subscribe_in(&s.store, "globex", "wh_globex", &other, &signing::new_secret());
    upload_in(&s.store, "globex", "first");
    upload_many(&s.store, "acme", "proving", 5);
    wait_until("both proven", || others() == 1 && shared.count() == 6);
    std::thread::sleep(ms(300));
    upload_many(&s.store, "acme", "bulk", 60);
    wait_until("acme's attempts since its receiver turned", || shared.count() >= 10);
    std::thread::sleep(ms(300));
    upload_in(&s.store, "globex", "second");
    let sent = within(std::time::Duration::from_secs(6), || others() == 2);
    (sent, shared)
}

/// A proven webhook whose receiver starts to hang, with many rows queued in
/// the host's shared target, holds back another account's proven webhook
/// at that host for about one timeout: once its first attempts fail, its
/// queued rows are handed back unsent and claimed into its account's own
/// target (sent from the shared one, each would wait out the timeout
/// there, 4 at a time: 14 timeouts here).
#[test]
fn a_proven_webhook_that_starts_to_hang_holds_back_other_accounts_at_its_host_briefly() {
    let s = setup_with(EngineOptions { timeout: std::time::Duration::from_secs(2), ..EngineOptions::default() });
    let (sent, shared) = behind_a_proven_webhook_that_turns(&s, Reply::Hang(std::time::Duration::from_secs(30)));
    assert!(sent, "globex's delivery waited behind acme's hanging rows at the same host ({} requests)", shared.count());
}

/// Found by a hostile trial: a receiver that answers 200, but only after
/// 14 s, held another account's webhook at the same host back for 6
/// minutes: its successes kept it proven, so its rows filled the host's
/// shared target. A success that takes a second or more proves nothing:
/// after its first slow attempts, its queued rows are handed back to its
/// account's own target, and the other account waits one slow attempt at most.
#[test]
fn a_slow_but_successful_webhook_holds_back_other_accounts_at_its_host_briefly() {
    let s = setup_with(EngineOptions { timeout: std::time::Duration::from_secs(10), ..EngineOptions::default() });
    let (sent, shared) = behind_a_proven_webhook_that_turns(&s, Reply::Hang(std::time::Duration::from_secs(3)));
    assert!(sent, "globex's delivery waited behind acme's slow rows at the same host ({} requests)", shared.count());
    wait_until("acme's slow rows delivered all the same", || {
        let page = s.store.delivery_attempts("acme", "wh_acme", None, 100).unwrap();
        page.attempts.iter().filter(|a| a.status == AttemptStatus::Delivered).count() >= 12
    });
}

/// Found by a hostile trial: two or three accounts with many hanging
/// webhooks filled all of the engine's attempt slots (each account may
/// hold half), and every other account's deliveries waited for their
/// timeouts. Unproven subscriptions' rows (new, failing or slow), of all
/// accounts, hold half the slots at most: here three accounts' hanging
/// receivers, 4 slots each wanted of 8, leave 4 to another account's
/// proven webhook.
#[test]
fn hanging_webhooks_of_several_accounts_leave_slots_to_the_others() {
    let options =
        EngineOptions { max_in_flight: 8, timeout: std::time::Duration::from_secs(4), ..EngineOptions::default() };
    let s = setup_with(options);
    let fast = Receiver::answering(Reply::Status(200, String::new()), vec![]);
    subscribe_in(&s.store, "globex", "wh_globex", &fast.url, &signing::new_secret());
    upload_in(&s.store, "globex", "proving");
    wait_until("globex proven", || fast.count() == 1);
    let hanging: Vec<Receiver> =
        (0..3).map(|_| Receiver::answering(Reply::Hang(std::time::Duration::from_secs(30)), vec![])).collect();
    for (i, r) in hanging.iter().enumerate() {
        subscribe_in(&s.store, &format!("h{i}"), &format!("wh_h{i}"), &r.url, &signing::new_secret());
        upload_many(&s.store, &format!("h{i}"), "bulk", 40);
    }
    wait_until("the hanging webhooks' attempts", || hanging.iter().map(Receiver::count).sum::<usize>() >= 4);
    std::thread::sleep(ms(500));
    upload_in(&s.store, "globex", "second");
    assert!(
        within(std::time::Duration::from_millis(1_500), || fast.count() == 2),
        "globex's delivery waited for the hanging webhooks' slots ({} hanging attempts; in flight {})",
        hanging.iter().map(Receiver::count).sum::<usize>(),
        callmeter_webhooks::DeliveryStats::get(&s.engine.stats().attempts_in_flight),
    );
    assert_eq!(hanging.iter().map(Receiver::count).sum::<usize>(), 4, "they hold half the slots");
}

/// Found by a hostile trial: a webhook made while other accounts' hanging
/// webhooks held the unproven half of the slots waited for them (400
/// hanging webhooks: 147 s). Failing subscriptions' rows now hold a
/// quarter of the slots at most, so a new webhook's first attempt goes at once.
#[test]
fn a_new_webhook_is_not_held_behind_other_accounts_failing_webhooks() {
    let options =
        EngineOptions { max_in_flight: 8, timeout: std::time::Duration::from_secs(2), ..EngineOptions::default() };
    let s = setup_with(options);
    let hanging: Vec<Receiver> =
        (0..6).map(|_| Receiver::answering(Reply::Hang(std::time::Duration::from_secs(30)), vec![])).collect();
    for (i, r) in hanging.iter().enumerate() {
        subscribe_in(&s.store, &format!("h{i}"), &format!("wh_h{i}"), &r.url, &signing::new_secret());
        upload_many(&s.store, &format!("h{i}"), "bulk", 40);
    }
    let failing = |i: usize| s.store.subscription(&format!("h{i}"), &format!("wh_h{i}")).unwrap().failing_since;
    wait_until("every hanging webhook failing", || (0..6).all(|i| failing(i).is_some()));
    let in_flight = || callmeter_webhooks::DeliveryStats::get(&s.engine.stats().attempts_in_flight);
    // Attempts begun while some were still untried end within a timeout;
    // from then on the failing ones hold a quarter of the 8 slots.
    wait_until("the untried ones' attempts ended", || in_flight() <= 2);
    for _ in 0..20 {
        assert!(in_flight() <= 2, "failing webhooks' attempts hold a quarter of 8 slots: {}", in_flight());
        std::thread::sleep(ms(100));
    }
    let fresh = Receiver::answering(Reply::Status(200, String::new()), vec![]);
    subscribe_in(&s.store, "globex", "wh_new", &fresh.url, &signing::new_secret());
    upload_in(&s.store, "globex", "first");
    assert!(
        within(std::time::Duration::from_millis(1_000), || fresh.count() == 1),
        "the new webhook waited for the failing ones' slots (in flight {})",
        in_flight()
    );
}

/// A failing subscription holds only its target's slots' worth of rows
/// (`per_target`): with an account's room no bigger than a target's, the
/// account's other webhooks go while its backlog is tried.
#[test]
fn a_failing_subscription_holds_only_its_targets_slots() {
    let s = setup_with(EngineOptions { per_account: 64, ..EngineOptions::default() });
    let (sent, tried) = behind_a_hanging_backlog(&s, (1, 400, 8, ms(0)), "acme", std::time::Duration::from_secs(2));
    assert!(s.store.subscription("acme", "wh_slow0").unwrap().failing_since.is_some());
    assert!(sent, "acme's healthy webhook waited behind its failing one ({tried} attempts)");
}

// ---------------------------------------------------------------------------
// Once a defect (fixed, found by a second hostile trial): backlogs of many
// hanging targets delayed other accounts' deliveries by seconds. A claim
// steps over at most 1,024 refused rows and then waited for a completion,
// a new change or a second; with nothing completing (every target
// hanging), the scan reached rows due later 1,024 rows a second.

/// Eight hanging targets of one account with 8,000 rows due between them
/// (4 claimed each) hold back another account's delivery for no more than
/// the time a few claims take.
#[test]
fn many_hanging_backlogs_hold_back_other_accounts_briefly() {
    let s = setup_with(EngineOptions { timeout: std::time::Duration::from_secs(10), ..EngineOptions::default() });
    let (sent, tried) = behind_a_hanging_backlog(&s, (8, 1_000, 8, ms(0)), "globex", std::time::Duration::from_secs(2));
    assert!(sent, "globex's delivery waited behind 8,000 refused rows ({tried} attempts)");
}

/// Found by a hostile trial: behind a large backlog of a hanging (failing)
/// webhook's rows, another account's burst past its room (128 rows claimed
/// at once) waited for claims to step over the backlog, 1,024 rows every
/// 50 ms (3,000 events took 44 s behind 30,000 rows). The rows a claim has
/// no room for now stay in memory while their webhook's last attempt
/// succeeded, and go as room frees.
#[test]
fn a_burst_past_an_accounts_room_is_not_held_behind_a_hanging_backlog() {
    let s = setup();
    let slow = Receiver::answering(Reply::Hang(std::time::Duration::from_secs(30)), vec![]);
    subscribe_in(&s.store, "acme", "wh_slow", &slow.url, &signing::new_secret());
    upload_many(&s.store, "acme", "bulk", 20_000);
    // Its first attempts time out (300 ms): it is failing, and its rows are indexed.
    wait_until("the slow target's attempts", || slow.count() >= 8);
    std::thread::sleep(ms(1_000));
    let fast = Receiver::answering(Reply::Status(200, String::new()), vec![]);
    subscribe_in(&s.store, "globex", "wh_fast", &fast.url, &signing::new_secret());
    upload_many(&s.store, "globex", "burst", 1_000);
    assert!(within(std::time::Duration::from_secs(5), || fast.count() >= 1_000), "{} of 1,000 in 5 s", fast.count());
}
