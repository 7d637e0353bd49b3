//! The delivery engine: a task that claims due outbox rows, sends them, and
//! records each attempt and what follows it.
//!
//! It wakes when the store says rows may be due (new changes, retries,
//! replays) or when the earliest pending row comes due, and at least every
//! second (a clock that jumps, a test clock that is moved). At most
//! `max_in_flight` attempts run at once, and at most `per_target` to one
//! target (scheme, host and port), so that one slow receiver does not hold
//! back the others. After an attempt:
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
use callmeter_store::{Attempt, AttemptStatus, ClaimedDelivery, NextStep, Store, SubscriptionUpdate};
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
    /// How long one attempt may take.
    pub timeout: std::time::Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            allow_private_targets: false,
            max_in_flight: 64,
            per_target: 4,
            timeout: std::time::Duration::from_secs(15),
        }
    }
}

/// The longest the engine sleeps without looking at the clock.
const MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// Sends the outbox of a store.
pub struct DeliveryEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sender: Sender,
    options: EngineOptions,
    in_flight: Arc<Semaphore>,
    targets: parking_lot::Mutex<HashMap<String, Arc<Semaphore>>>,
    stopping: AtomicBool,
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
            "webhook deliveries started"
        );
        while !self.stopping.load(Ordering::Acquire) {
            // Registered before the look at the outbox: a wake-up in between is not lost.
            let woken = notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            let claimed = self.clone().claim_and_send().await;
            if claimed > 0 {
                continue;
            }
            let wait = match self.next_due().await {
                Some(at) => (at - self.clock.now()).to_std().unwrap_or_default().min(MAX_IDLE),
                None => MAX_IDLE,
            };
            tokio::select! {
                _ = woken => {}
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

    /// Claims as many due rows as there is room for and starts their attempts; how many.
    async fn claim_and_send(self: Arc<Self>) -> usize {
        let room = self.in_flight.available_permits();
        if room == 0 {
            // Wait for one attempt to end rather than spin.
            drop(self.in_flight.clone().acquire_owned().await);
            return 0;
        }
        let (store, now) = (self.store.clone(), self.clock.now());
        let claimed = match tokio::task::spawn_blocking(move || store.claim_deliveries(now, room)).await {
            Ok(Ok(claimed)) => claimed,
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "cannot claim deliveries; trying again shortly");
                return 0;
            }
            Err(_) => return 0,
        };
        let n = claimed.len();
        for c in claimed {
            let permit = self.in_flight.clone().acquire_owned().await.expect("never closed");
            let engine = self.clone();
            tokio::spawn(async move {
                engine.deliver(c).await;
                drop(permit);
            });
        }
        n
    }

    fn target_slots(&self, url: &str) -> Arc<Semaphore> {
        let target = match reqwest::Url::parse(url) {
            Ok(u) => {
                format!("{}://{}:{}", u.scheme(), u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0))
            }
            Err(_) => url.to_owned(),
        };
        self.targets
            .lock()
            .entry(target)
            .or_insert_with(|| Arc::new(Semaphore::new(self.options.per_target.max(1))))
            .clone()
    }

    /// One attempt of a claimed row, and its completion.
    async fn deliver(&self, c: ClaimedDelivery) {
        let slot = self.target_slots(&c.subscription.url).acquire_owned().await.expect("never closed");
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
