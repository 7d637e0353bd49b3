//! The harness of the delivery engine's tests: a real store, the engine
//! under a test clock, and a scriptable HTTP receiver on loopback.
#![allow(dead_code, unused_imports)]

pub use callmeter_model::{Action, CallEvent, Interface, Operation};
pub use callmeter_store::{
    AttemptStatus, DeliveryState, EmbeddedStore, SigningSecret, Store, StoreOptions, Subscription, SubscriptionUpdate,
    Watch,
};
pub use callmeter_webhooks::schedule::RETRY_DELAYS_SECS;
pub use callmeter_webhooks::{signing, Clock, DeliveryEngine, EngineOptions, TestClock};
pub use chrono::{DateTime, Duration, Utc};
pub use std::collections::VecDeque;
pub use std::io::{Read, Write};
pub use std::net::TcpListener;
pub use std::sync::{Arc, Mutex};

/// The scriptable receiver the whole-flow tests use too (one receiver for every test).
#[path = "../../../../tests/it/webhook_receiver.rs"]
mod webhook_receiver;
pub use webhook_receiver::{Received, Receiver, Reply, ALWAYS_OK};

pub struct Setup {
    pub _dir: tempfile::TempDir,
    pub store: Arc<EmbeddedStore>,
    pub clock: TestClock,
    pub engine: Arc<DeliveryEngine>,
    /// The engine runs on it; dropped (and stopped) with the test.
    pub _runtime: tokio::runtime::Runtime,
}

pub fn setup() -> Setup {
    setup_with(EngineOptions::default())
}

/// The engine with `options`, allowed loopback targets and a 300 ms
/// timeout (unless `options` has another than the default).
pub fn setup_with(options: EngineOptions) -> Setup {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap());
    // Ahead of the real clock: an event is due from its arrival (real time) on.
    let clock = TestClock::at(Utc::now() + Duration::minutes(10));
    let timeout = match options.timeout == EngineOptions::default().timeout {
        true => std::time::Duration::from_millis(300),
        false => options.timeout,
    };
    let options = EngineOptions { allow_private_targets: true, timeout, ..options };
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

pub fn subscribe(store: &EmbeddedStore, id: &str, url: &str, secret: &str) {
    subscribe_in(store, "acme", id, url, secret);
}

pub fn subscribe_in(store: &EmbeddedStore, account: &str, id: &str, url: &str, secret: &str) {
    let now = Utc::now();
    store
        .create_subscription(Subscription::new(
            (account, id),
            url,
            (Watch::Folder { folder: "/in".into() }, vec![Action::Create, Action::Update, Action::Destroy]),
            secret,
            now,
        ))
        .unwrap();
}

pub fn upload(store: &EmbeddedStore, id: &str) {
    upload_in(store, "acme", id);
}

pub fn upload_in(store: &EmbeddedStore, account: &str, id: &str) {
    let mut e = CallEvent::new(id.into(), account.into(), Utc::now(), Interface::Rest, Operation::Write);
    e.path = Some(format!("/in/{id}.csv"));
    store.ingest(vec![e]).wait_blocking().unwrap();
}

pub fn wait_until(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while !check() {
        assert!(std::time::Instant::now() < deadline, "waited 20 s for {what}");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
}

/// Waits for the `n`th attempt to be recorded, then says when the next is due.
pub fn attempt_recorded(s: &Setup, sub: &str, n: usize) -> Option<DateTime<Utc>> {
    wait_until(&format!("attempt {n}"), || {
        s.store.delivery_attempts("acme", sub, None, 100).unwrap().attempts.len() >= n
    });
    s.store.next_delivery_due().unwrap()
}

/// Moves the test clock to `at` and wakes the engine.
pub fn go_to(s: &Setup, at: DateTime<Utc>) {
    s.clock.set(at);
    s.engine.wake();
}

/// The waits between attempts are the schedule's (with up to 10 % jitter), or the target's `Retry-After`.
pub fn assert_wait(from: DateTime<Utc>, next: DateTime<Utc>, secs: i64) {
    let wait = next - from;
    assert!(
        wait >= Duration::seconds(secs) && wait <= Duration::milliseconds(secs * 1_100),
        "expected a wait of {secs} s (+10 %), got {wait}"
    );
}

/// Uploads `n` files of `account` in one ingest (one processor batch: the rows come together).
pub fn upload_many(store: &EmbeddedStore, account: &str, prefix: &str, n: usize) {
    let events = (0..n)
        .map(|i| {
            let mut e =
                CallEvent::new(format!("{prefix}-{i}"), account.into(), Utc::now(), Interface::Rest, Operation::Write);
            e.path = Some(format!("/in/{prefix}-{i}.csv"));
            e
        })
        .collect();
    store.ingest(events).wait_blocking().unwrap();
}

/// Whether `check` holds within `limit`.
pub fn within(limit: std::time::Duration, mut check: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while !check() {
        if std::time::Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    true
}

pub fn ms(n: u64) -> std::time::Duration {
    std::time::Duration::from_millis(n)
}
