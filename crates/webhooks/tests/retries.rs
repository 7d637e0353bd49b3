//! The delivery engine in process, on a real store and a real HTTP receiver
//! on loopback, under a test clock: the schedule's waits are checked to the
//! second without sleeping through them.

use callmeter_model::{Action, CallEvent, Interface, Operation};
use callmeter_store::{
    AttemptStatus, DeliveryState, EmbeddedStore, SigningSecret, Store, StoreOptions, Subscription, SubscriptionUpdate,
    Watch,
};
use callmeter_webhooks::schedule::RETRY_DELAYS_SECS;
use callmeter_webhooks::{signing, Clock, DeliveryEngine, EngineOptions, TestClock};
use chrono::{DateTime, Duration, Utc};
use std::collections::VecDeque;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

/// How the receiver answers one request.
#[derive(Clone)]
enum Reply {
    Status(u16, &'static str),
    /// Answers only after this long (past the engine's timeout).
    Hang(std::time::Duration),
}

#[derive(Debug, Clone)]
struct Received {
    id: String,
    timestamp: i64,
    signature: String,
    body: Vec<u8>,
}

/// A small HTTP/1.1 receiver: answers from a script, then with its default.
struct Receiver {
    url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    fn start(default: Reply, script: Vec<Reply>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (r, s) = (received.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (r, s, default) = (r.clone(), s.clone(), default.clone());
                std::thread::spawn(move || {
                    let Some(req) = read_request(&mut stream) else { return };
                    r.lock().unwrap().push(req);
                    let reply = s.lock().unwrap().pop_front().unwrap_or(default);
                    let (status, extra) = match reply {
                        Reply::Status(status, extra) => (status, extra),
                        Reply::Hang(d) => {
                            std::thread::sleep(d);
                            (200, "")
                        }
                    };
                    let answer =
                        format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n{extra}\r\nok");
                    let _ = stream.write_all(answer.as_bytes());
                });
            }
        });
        Receiver { url, received, script }
    }

    fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }
}

fn read_request(stream: &mut std::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    let head_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let header = |name: &str| {
        head.lines()
            .find_map(|l| {
                l.split_once(':').filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.trim().to_owned())
            })
            .unwrap_or_default()
    };
    let length: usize = header("content-length").parse().unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Received {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp").parse().unwrap_or(0),
        signature: header("webhook-signature"),
        body: buf[head_end..].to_vec(),
    })
}

struct Setup {
    _dir: tempfile::TempDir,
    store: Arc<EmbeddedStore>,
    clock: TestClock,
    engine: Arc<DeliveryEngine>,
    /// The engine runs on it; dropped (and stopped) with the test.
    _runtime: tokio::runtime::Runtime,
}

fn setup() -> Setup {
    setup_with(EngineOptions::default())
}

/// The engine with `options`, allowed loopback targets and a 300 ms timeout.
fn setup_with(options: EngineOptions) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap());
    // Ahead of the real clock: an event is due from its arrival (real time) on.
    let clock = TestClock::at(Utc::now() + Duration::minutes(10));
    let options =
        EngineOptions { allow_private_targets: true, timeout: std::time::Duration::from_millis(300), ..options };
    let dyn_store: Arc<dyn Store> = store.clone();
    let engine = Arc::new(DeliveryEngine::new(dyn_store, Arc::new(clock.clone()), options).unwrap());
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build().unwrap();
    runtime.spawn(engine.clone().run());
    Setup { _dir: dir, store, clock, engine, _runtime: runtime }
}

impl Drop for Setup {
    fn drop(&mut self) {
        self.engine.stop();
    }
}

fn subscribe(store: &EmbeddedStore, id: &str, url: &str, secret: &str) {
    subscribe_in(store, "acme", id, url, secret);
}

fn subscribe_in(store: &EmbeddedStore, account: &str, id: &str, url: &str, secret: &str) {
    let now = Utc::now();
    store
        .create_subscription(Subscription {
            id: id.into(),
            account: account.into(),
            url: url.into(),
            watch: Watch::Folder { folder: "/in".into() },
            actions: vec![Action::Create, Action::Update, Action::Destroy],
            enabled: true,
            disabled_reason: None,
            headers: Default::default(),
            secrets: vec![SigningSecret { secret: secret.into(), expires_at: None }],
            failing_since: None,
            created_at: now,
            updated_at: now,
        })
        .unwrap();
}

fn upload(store: &EmbeddedStore, id: &str) {
    upload_in(store, "acme", id);
}

fn upload_in(store: &EmbeddedStore, account: &str, id: &str) {
    let mut e = CallEvent::new(id.into(), account.into(), Utc::now(), Interface::Rest, Operation::Write);
    e.path = Some(format!("/in/{id}.csv"));
    store.ingest(vec![e]).wait_blocking().unwrap();
}

fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "waited 20 s for {what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Waits for the `n`th attempt to be recorded, then says when the next is due.
fn attempt_recorded(s: &Setup, sub: &str, n: usize) -> Option<DateTime<Utc>> {
    wait_until(&format!("attempt {n}"), || {
        s.store.delivery_attempts("acme", sub, None, 100).unwrap().attempts.len() >= n
    });
    s.store.next_delivery_due().unwrap()
}

/// Moves the test clock to `at` and wakes the engine.
fn go_to(s: &Setup, at: DateTime<Utc>) {
    s.clock.set(at);
    s.engine.wake();
}

/// The waits between attempts are the schedule's (with up to 10 % jitter), or the target's `Retry-After`.
fn assert_wait(from: DateTime<Utc>, next: DateTime<Utc>, secs: i64) {
    let wait = next - from;
    assert!(
        wait >= Duration::seconds(secs) && wait <= Duration::milliseconds(secs * 1_100),
        "expected a wait of {secs} s (+10 %), got {wait}"
    );
}

/// A 500, a 429 with `Retry-After`, a timeout, then a 200: each retry at
/// its time, the event delivered once, with one `webhook-id` and a valid
/// signature on every attempt; nothing more after it is delivered.
#[test]
fn failures_are_retried_on_the_schedule_until_delivered_once() {
    let s = setup();
    let secret = signing::new_secret();
    let receiver = Receiver::start(
        Reply::Status(200, ""),
        vec![
            Reply::Status(500, ""),
            Reply::Status(429, "retry-after: 600\r\n"),
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
    assert!(attempts[1].error.as_deref().unwrap().contains("timed out"), "{:?}", attempts[1].error);
    assert_eq!(attempts.iter().filter(|a| a.status == AttemptStatus::Delivered).count(), 1);
    let got = receiver.all();
    assert_eq!(got.len(), 4);
    assert!(got.iter().all(|r| r.id == got[0].id && r.body == got[0].body), "one webhook-id, one body");
    assert!(got.iter().all(|r| signing::verify(&secret, &r.id, r.timestamp, &r.body, &r.signature)));
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
    let receiver = Receiver::start(Reply::Status(503, ""), vec![]);
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
    let rows = s.store.deliveries("acme", "wh_down").unwrap();
    assert_eq!((rows[0].state, rows[0].attempts), (DeliveryState::Failed, 10));
    assert!(s.store.subscription("acme", "wh_down").unwrap().enabled, "three days of failures do not disable");

    go_to(&s, s.clock.now() + Duration::days(2));
    upload(&s.store, "b");
    attempt_recorded(&s, "wh_down", 11);
    let sub = s.store.subscription("acme", "wh_down").unwrap();
    assert!(!sub.enabled, "five days of failures disable");
    assert_eq!(sub.disabled_reason.as_deref(), Some("deliveries failed for five days"));
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
    let receiver = Receiver::start(Reply::Status(204, ""), vec![Reply::Status(410, "")]);
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
    assert_eq!(replayed_a.id, got[0].id, "a replay keeps the event's webhook-id");
    // The 410 was answered once: the script is used up.
    assert!(receiver.script.lock().unwrap().is_empty());
}

/// Uploads to a receiver that never answers in time, then one to another:
/// the other is sent at once, not after the slow one's queue (its claims
/// wait in the outbox, holding none of the attempts in flight).
#[test]
fn a_hanging_target_holds_back_no_other_target() {
    let s = setup_with(EngineOptions { max_in_flight: 4, per_target: 1, ..EngineOptions::default() });
    let slow = Receiver::start(Reply::Hang(std::time::Duration::from_secs(2)), vec![]);
    let fast = Receiver::start(Reply::Status(200, ""), vec![]);
    subscribe(&s.store, "wh_slow", &slow.url, &signing::new_secret());
    for i in 0..12 {
        upload(&s.store, &format!("slow-{i}"));
    }
    wait_until("the slow target's first attempt", || slow.count() >= 1);
    subscribe(&s.store, "wh_fast", &fast.url.replace("/hook", "/fast"), &signing::new_secret());
    let uploaded = std::time::Instant::now();
    upload(&s.store, "fast-0");
    wait_until("the fast target's delivery", || fast.count() == 1);
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
        (0..4).map(|_| Receiver::start(Reply::Hang(std::time::Duration::from_secs(2)), vec![])).collect();
    for (i, r) in hanging.iter().enumerate() {
        subscribe_in(&s.store, "acme", &format!("wh_hang{i}"), &r.url, &signing::new_secret());
    }
    for i in 0..8 {
        upload_in(&s.store, "acme", &format!("a-{i}"));
    }
    wait_until("acme's first attempts", || hanging.iter().map(Receiver::count).sum::<usize>() >= 2);
    let other = Receiver::start(Reply::Status(200, ""), vec![]);
    subscribe_in(&s.store, "globex", "wh_other", &other.url, &signing::new_secret());
    let uploaded = std::time::Instant::now();
    upload_in(&s.store, "globex", "g-0");
    wait_until("globex's delivery", || other.count() == 1);
    assert!(uploaded.elapsed() < std::time::Duration::from_millis(1_500), "took {:?}", uploaded.elapsed());
}
