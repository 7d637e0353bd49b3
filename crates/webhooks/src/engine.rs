//! The delivery engine: a task that claims due outbox rows, sends them, and
//! records each attempt and what follows it.
//!
//! It wakes when the store says rows may be due (new changes, retries,
//! replays) or when the earliest pending row comes due, and at least every
//! second (a clock that jumps, a test clock that is moved). At most
//! `max_in_flight` attempts run at once, at most `per_target` to one target
//! (scheme, host and port) and at most `per_account` for one account. A
//! claim takes only rows that have room now ([`Admission`]): the others stay
//! in the outbox, unclaimed, so a slow or hanging receiver, or an account
//! with many, holds back no one else's deliveries. After an attempt:
//!
//! - a 2xx: delivered; the subscription's failures are forgotten;
//! - a 410: the subscription is disabled at once, and the row held (replay sends it);
//! - anything else: tried again on the schedule (`schedule.rs`), honouring
//!   `Retry-After`, until its tenth attempt; the subscription is disabled
//!   once its deliveries have failed for five days with no success.
//!
//! The engine reads time only from its [`Clock`].

use crate::clock::Clock;
use crate::schedule;
use crate::sender::{Sender, Sent};
use crate::WebhookError;
use callmeter_store::{Attempt, AttemptStatus, ClaimedDelivery, NextStep, Store, Subscription, SubscriptionUpdate};
use chrono::{DateTime, Utc};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tokio::sync::Semaphore;

/// How the engine sends.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Send to loopback, private and other refused addresses (tests, closed networks).
    pub allow_private_targets: bool,
    /// Attempts in flight at most.
    pub max_in_flight: usize,
    /// Attempts in flight to one target at most.
    pub per_target: usize,
    /// Attempts in flight for one account at most.
    pub per_account: usize,
    /// How long one attempt may take.
    pub timeout: std::time::Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            allow_private_targets: false,
            max_in_flight: 64,
            per_target: 4,
            per_account: 16,
            timeout: std::time::Duration::from_secs(15),
        }
    }
}

/// The longest the engine sleeps without looking at the clock.
const MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// After a claim that left rows for want of room, how long the engine lets
/// attempts end before it claims again: each claim then takes the room of
/// several, rather than step over the same waiting rows after every attempt.
const GATHER_ENDED_ATTEMPTS: std::time::Duration = std::time::Duration::from_millis(5);

/// Sends the outbox of a store.
pub struct DeliveryEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sender: Sender,
    options: EngineOptions,
    in_flight: Arc<Semaphore>,
    targets: parking_lot::Mutex<HashMap<String, Arc<Semaphore>>>,
    /// Attempts in flight by account (none: no entry).
    accounts: parking_lot::Mutex<HashMap<String, usize>>,
    /// Told when an attempt ends: room for a row a claim refused.
    attempt_ended: tokio::sync::Notify,
    stopping: AtomicBool,
}

/// What one claim may take: the room each target and each account has
/// left, counted down as rows are admitted. A target or account not seen
/// yet has all of its room.
struct Admission {
    per_target: usize,
    per_account: usize,
    targets: HashMap<String, usize>,
    accounts: HashMap<String, usize>,
    /// Whether a row was refused: then the engine waits for an attempt to end
    /// before it claims again, rather than look at the same rows at once.
    refused: bool,
}

impl Admission {
    fn admit(&mut self, sub: &Subscription) -> bool {
        let target = self.targets.entry(target_of(&sub.url)).or_insert(self.per_target);
        let account = self.accounts.entry(sub.account.clone()).or_insert(self.per_account);
        if *target == 0 || *account == 0 {
            self.refused = true;
            return false;
        }
        *target -= 1;
        *account -= 1;
        true
    }
}

/// A target: scheme, host and port.
fn target_of(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => format!("{}://{}:{}", u.scheme(), u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0)),
        Err(_) => url.to_owned(),
    }
}

impl DeliveryEngine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        options: EngineOptions,
    ) -> Result<DeliveryEngine, WebhookError> {
        Ok(DeliveryEngine {
            sender: Sender::new(options.allow_private_targets, options.timeout)?,
            in_flight: Arc::new(Semaphore::new(options.max_in_flight.max(1))),
            targets: parking_lot::Mutex::new(HashMap::new()),
            accounts: parking_lot::Mutex::new(HashMap::new()),
            attempt_ended: tokio::sync::Notify::new(),
            stopping: AtomicBool::new(false),
            store,
            clock,
            options,
        })
    }

    /// Asks [`run`](Self::run) to return; attempts in flight finish first.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        self.store.deliveries_notify().notify_one();
    }

    /// Wakes the engine to look at the clock and the outbox now.
    pub fn wake(&self) {
        self.store.deliveries_notify().notify_one();
    }

    /// Sends due rows until [`stop`](Self::stop); then waits for the attempts in flight.
    pub async fn run(self: Arc<Self>) {
        let notify = self.store.deliveries_notify();
        tracing::info!(
            allow_private_targets = self.options.allow_private_targets,
            max_in_flight = self.options.max_in_flight,
            per_target = self.options.per_target,
            per_account = self.options.per_account,
            "webhook deliveries started"
        );
        while !self.stopping.load(Ordering::Acquire) {
            // Registered before the look at the outbox: a wake-up in between is not lost.
            let woken = notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            // Registered before the claim too: an attempt that ends meanwhile is not missed.
            let ended = self.attempt_ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            let (claimed, refused) = self.clone().claim_and_send().await;
            if claimed > 0 {
                continue;
            }
            // Rows due but refused (no room): the next room comes when an attempt ends.
            let wait = match refused {
                true => MAX_IDLE,
                false => match self.next_due().await {
                    Some(at) => (at - self.clock.now()).to_std().unwrap_or_default().min(MAX_IDLE),
                    None => MAX_IDLE,
                },
            };
            tokio::select! {
                _ = woken => {}
                _ = ended => {
                    if refused {
                        tokio::time::sleep(GATHER_ENDED_ATTEMPTS).await;
                    }
                }
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Every permit back: no attempt in flight.
        let _all = self.in_flight.acquire_many(self.options.max_in_flight.max(1) as u32).await;
        tracing::info!("webhook deliveries stopped");
    }

    async fn next_due(&self) -> Option<DateTime<Utc>> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.next_delivery_due()).await {
            Ok(Ok(at)) => at,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot read the outbox");
                None
            }
            Err(_) => None,
        }
    }

    /// Claims as many due rows as there is room for and starts their
    /// attempts: how many, and whether rows were left for want of room.
    async fn claim_and_send(self: Arc<Self>) -> (usize, bool) {
        let room = self.in_flight.available_permits();
        if room == 0 {
            // Wait for one attempt to end rather than spin.
            drop(self.in_flight.clone().acquire_owned().await);
            return (0, false);
        }
        let (store, now) = (self.store.clone(), self.clock.now());
        let mut admission = self.admission();
        let claim = move || {
            let claimed = store.claim_deliveries(now, room, &mut |sub| admission.admit(sub));
            (claimed, admission.refused)
        };
        let (claimed, refused) = match tokio::task::spawn_blocking(claim).await {
            Ok((Ok(claimed), refused)) => (claimed, refused),
            Ok((Err(e), _)) => {
                tracing::warn!(error = %e, "cannot claim deliveries; trying again shortly");
                return (0, false);
            }
            Err(_) => return (0, false),
        };
        let n = claimed.len();
        for c in claimed {
            // Taken here, before the next claim counts the room left: each is free, the claim admitted it.
            let permit = self.in_flight.clone().acquire_owned().await.expect("never closed");
            let slots = self.target_slots(&c.subscription.url);
            let slot = match slots.clone().try_acquire_owned() {
                Ok(slot) => slot,
                Err(_) => {
                    tracing::warn!(url = %c.subscription.url, "a claim admitted a row its target had no room for");
                    slots.acquire_owned().await.expect("never closed")
                }
            };
            let account = c.subscription.account.clone();
            *self.accounts.lock().entry(account.clone()).or_default() += 1;
            let engine = self.clone();
            tokio::spawn(async move {
                engine.deliver(c, slot).await;
                engine.account_done(&account);
                drop(permit);
                engine.attempt_ended.notify_one();
            });
        }
        (n, refused)
    }

    /// The room each known target and busy account has now.
    fn admission(&self) -> Admission {
        let (per_target, per_account) = (self.options.per_target.max(1), self.options.per_account.max(1));
        let targets = self.targets.lock().iter().map(|(t, s)| (t.clone(), s.available_permits())).collect();
        let accounts = self.accounts.lock().iter().map(|(a, n)| (a.clone(), per_account.saturating_sub(*n))).collect();
        Admission { per_target, per_account, targets, accounts, refused: false }
    }

    fn account_done(&self, account: &str) {
        let mut accounts = self.accounts.lock();
        if let Some(n) = accounts.get_mut(account) {
            *n -= 1;
            if *n == 0 {
                accounts.remove(account);
            }
        }
    }

    fn target_slots(&self, url: &str) -> Arc<Semaphore> {
        self.targets
            .lock()
            .entry(target_of(url))
            .or_insert_with(|| Arc::new(Semaphore::new(self.options.per_target.max(1))))
            .clone()
    }

    /// One attempt of a claimed row (holding a slot of its target), and its completion.
    async fn deliver(&self, c: ClaimedDelivery, slot: tokio::sync::OwnedSemaphorePermit) {
        let at = self.clock.now();
        let sent = self.sender.send(&c, at).await;
        drop(slot);
        let now = self.clock.now();
        let (next, update) = decide(&c, &sent, now);
        let attempt = Attempt {
            id: 0,
            delivery: c.delivery.id,
            webhook_id: c.delivery.webhook_id(),
            at,
            status: if sent.delivered { AttemptStatus::Delivered } else { AttemptStatus::Failed },
            response_code: sent.response_code,
            latency_ms: sent.latency_ms,
            error: sent.error.clone(),
        };
        tracing::debug!(
            account = %c.delivery.account,
            webhook = %c.subscription.id,
            webhook_id = %attempt.webhook_id,
            code = ?sent.response_code,
            error = ?sent.error,
            "webhook attempt"
        );
        let store = self.store.clone();
        let (account, id) = (c.subscription.account.clone(), c.subscription.id.clone());
        let done = tokio::task::spawn_blocking(move || {
            if let Some(update) = update {
                store.update_subscription(&account, &id, update)?;
            }
            store.complete_delivery(&c.delivery, attempt, next)
        })
        .await;
        match done {
            Ok(Ok(())) => {}
            // The claim stays until the process ends: then the row is due again (at least once).
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot record a webhook attempt; it will be sent again after a restart")
            }
            Err(e) => tracing::warn!(error = %e, "webhook completion task failed"),
        }
    }
}

/// What follows an attempt: the row's next step, and a change to its
/// subscription (failures begun or ended, or disabled).
fn decide(c: &ClaimedDelivery, sent: &Sent, now: DateTime<Utc>) -> (NextStep, Option<SubscriptionUpdate>) {
    let sub = &c.subscription;
    if sent.delivered {
        let update =
            sub.failing_since.is_some().then(|| SubscriptionUpdate { failing_since: Some(None), ..Default::default() });
        return (NextStep::Delivered, update);
    }
    if sent.response_code == Some(410) {
        tracing::warn!(account = %sub.account, webhook = %sub.id, url = %sub.url, "webhook target answered 410 Gone: subscription disabled");
        return (NextStep::Hold, Some(disable("the target answered 410 Gone")));
    }
    let failing_since = sub.failing_since.unwrap_or(now);
    if now - failing_since >= schedule::disable_after() {
        tracing::warn!(account = %sub.account, webhook = %sub.id, url = %sub.url, "webhook deliveries failed for five days: subscription disabled");
        return (NextStep::Hold, Some(disable("deliveries failed for five days")));
    }
    let update = sub
        .failing_since
        .is_none()
        .then(|| SubscriptionUpdate { failing_since: Some(Some(now)), ..Default::default() });
    let attempts = c.delivery.attempts + 1;
    let next = match schedule::next_attempt(attempts, now, sent.retry_after, schedule::jitter()) {
        Some(at) => NextStep::RetryAt(at),
        None => NextStep::GiveUp,
    };
    (next, update)
}

fn disable(reason: &str) -> SubscriptionUpdate {
    SubscriptionUpdate { enabled: Some(false), disabled_reason: Some(reason.to_owned()), ..Default::default() }
}
