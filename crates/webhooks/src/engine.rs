//! The delivery engine: a task that claims due outbox rows, sends them, and
//! records each attempt and what follows it.
//!
//! It wakes when the store says rows may be due (new changes, retries,
//! replays) or when the earliest pending row comes due, and at least every
//! second (a clock that jumps, a test clock that is moved); under load it
//! claims at most once per [`GATHER`], and its completer writes at most once
//! per [`GATHER`], so that each store call serves many rows. Each claimed row
//! joins its target's lane (`lanes.rs`), which up to `per_target` workers
//! send (attempts at once to one scheme, host and port), each attempt in
//! one of the engine's slots (`max_in_flight`); a worker hands each
//! completion to the completer, which records many in one store write. A
//! claim takes only rows with room (`admission.rs`): at most
//! [`QUEUED_PER_SLOT`] rows per target slot, at most
//! `per_account` rows of one account, and at most [`QUEUED_PER_SLOT`] per
//! engine slot in all; the others stay in the outbox, unclaimed, so a slow
//! or hanging receiver, or an account with many, holds back no one else's
//! deliveries, while a fast target always has rows waiting for its next
//! free slot. After an attempt:
//!
//! - a 2xx: delivered; the subscription's failures are forgotten;
//! - a 410: the subscription is disabled at once, and the row held (replay sends it);
//! - anything else: tried again on the schedule (`schedule.rs`), honouring
//!   `Retry-After`, until its tenth attempt; the subscription is disabled
//!   once its deliveries have failed for five days with no success.
//!
//! The engine reads time only from its [`Clock`].

mod next_step;
mod pace;

use pace::Pace;

use crate::admission::{self, admission, Admission, Claimed, Holder, SharedClaimed, Standing};
use crate::clock::Clock;
use crate::lanes::Lanes;

use crate::sender::Sender;
use crate::stats::{DeliveryStats, InFlight};
use crate::WebhookError;
use callmeter_store::{
    Attempt, AttemptStatus, ClaimedDelivery, Completion, NextStep, Store, StoreError, Subscription, SubscriptionUpdate,
};
use chrono::{DateTime, Utc};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use tokio::sync::{mpsc, Semaphore, SemaphorePermit};

/// How the engine sends.
#[derive(Debug, Clone)]
pub struct EngineOptions {
    /// Send to loopback, private and other refused addresses (tests, closed networks).
    pub allow_private_targets: bool,
    /// Attempts in flight at most: twice `per_account`, so that one
    /// account's hanging targets hold half of them at most; unproven
    /// subscriptions' rows (new, failing or slow), of every account, hold
    /// half at most, and failing ones' a quarter.
    pub max_in_flight: usize,
    /// Attempts in flight to one target at most (`Claimed::lane_of` in `admission.rs`).
    pub per_target: usize,
    /// Rows of one account claimed at once at most (in flight or waiting
    /// for their target): twice a target's room (`per_target` ×
    /// [`QUEUED_PER_SLOT`]), so that one target of an account, hanging,
    /// holds half of it at most; an unproven subscription (new, or its
    /// last attempt failed) holds `per_target`.
    pub per_account: usize,
    /// How long one attempt may take.
    pub timeout: std::time::Duration,
}

impl Default for EngineOptions {
    fn default() -> Self {
        EngineOptions {
            allow_private_targets: false,
            max_in_flight: 256,
            per_target: 4,
            per_account: 128,
            timeout: std::time::Duration::from_secs(15),
        }
    }
}

/// Claimed rows that wait per attempt slot, of a target and of the engine:
/// enough that a fast target's next row is in memory when a slot frees, so
/// that claims (a store read each) are rarer than attempts.
pub const QUEUED_PER_SLOT: usize = 16;

/// Completions recorded in one store write at most.
const COMPLETIONS_PER_WRITE: usize = 512;

/// The longest the engine sleeps without looking at the clock.
const MAX_IDLE: std::time::Duration = std::time::Duration::from_secs(1);

/// After a claim that refused rows, the longest until the next, whether or
/// not a completion frees room: a claim steps over a bounded number of
/// refused rows (1,024) and the next goes on from there, so behind the
/// backlogs of hanging targets (which complete nothing for their timeout)
/// rows due later are reached this often per 1,024, not once a second.
const REFUSED_RECLAIM: std::time::Duration = std::time::Duration::from_millis(50);

/// Under load, the engine claims at most once, and the completer writes at
/// most once, per this interval (a claim that filled its room excepted):
/// each store call then serves many rows. Claiming as each change comes,
/// and writing each attempt as it ends, cost a thread hand-off, a scan or
/// a commit per few rows: more than sending them. A row waits this long
/// at most for its claim, and room a completion frees comes this much
/// later; a fast target's queue holds `per_target` × [`QUEUED_PER_SLOT`]
/// rows, more than it sends meanwhile. (A refused row's claim waits too:
/// it then takes the room of many completions, rather than step over the
/// same waiting rows after each, up to `MAX_REFUSED_PER_CLAIM` a claim.)
pub const GATHER: std::time::Duration = std::time::Duration::from_millis(25);

/// How long a worker whose lane is empty waits for the lane's next row
/// before it ends: two gathers, so that under a steady load the worker
/// sends the next claim's rows (a task spawned a burst cost more than the
/// wait's wake-up: about 3,000 a second at 6,000 deliveries).
const LINGER: std::time::Duration = std::time::Duration::from_millis(2 * GATHER.as_millis() as u64);

/// How long attempts in flight may go on after a stop: past it they are
/// given up (their claims hold until the process ends, and the rows are
/// sent after the restart, with their ids), so that a stop does not wait
/// for hanging receivers' whole timeout (15 s: longer than a supervisor's
/// usual grace).
const STOP_GRACE: std::time::Duration = std::time::Duration::from_secs(2);

/// What one claim did.
struct Claim {
    /// Whether due rows were left for want of their target's or account's room.
    refused: bool,
    /// Whether it took as many rows as it had room for: more may be due.
    filled: bool,
}

/// Sends the outbox of a store.
pub struct DeliveryEngine {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    sender: Sender,
    options: EngineOptions,
    /// Attempts in flight.
    in_flight: Semaphore,
    /// Attempts in flight of unproven subscriptions' rows (new, failing or
    /// slow: in their account's own target, `admission.rs`): half the slots
    /// at most, so that receivers that hang, however many accounts have
    /// them, leave the other half to proven webhooks.
    unproven_in_flight: Semaphore,
    /// Attempts in flight of failing subscriptions' rows (`Standing::Failing`):
    /// a quarter of the slots at most, taken before one of the unproven
    /// half, so that a backlog of hanging receivers leaves at least a
    /// quarter to webhooks made since the start, not yet tried.
    failing_in_flight: Semaphore,
    /// Claimed rows waiting for their target's workers (`per_target` at most).
    lanes: Lanes<Queued>,
    /// Rows claimed and not yet completed.
    claimed: SharedClaimed,
    /// Told when completions are recorded: room for rows a claim refused.
    completed: tokio::sync::Notify,
    /// Raised by [`stop`](DeliveryEngine::stop): rows waiting for a slot are left unsent.
    stopped: tokio::sync::watch::Sender<bool>,
    /// What it has done and holds (`/metrics`).
    stats: Arc<DeliveryStats>,
}

/// A claimed row done with, on its way to the completer: the attempt made,
/// or none when the engine stopped before the row's turn (its claim then
/// holds until the process ends, and the row is sent after the restart).
struct Finished {
    completion: Option<Completion>,
    holder: Holder,
}

/// A claimed row's way to the completer: sent once, with its completion,
/// or with none if its task ends any other way (a panic), so that the room
/// it holds is freed and a stop does not wait for it for ever.
struct DoneWith {
    finished: Option<mpsc::Sender<Finished>>,
    holder: Holder,
}

impl DoneWith {
    fn send(&mut self, completion: Option<Completion>) {
        if let Some(finished) = self.finished.take() {
            let holder = std::mem::take(&mut self.holder);
            // The channel holds a place for every claimed row: this never
            // waits. It is closed only once the completer is gone (the
            // runtime ends, and the engine's queued rows with it).
            let sent = finished.try_send(Finished { completion, holder });
            debug_assert!(
                !matches!(sent, Err(mpsc::error::TrySendError::Full(_))),
                "no room for a claimed row's completion"
            );
        }
    }
}

impl Drop for DoneWith {
    fn drop(&mut self) {
        self.send(None);
    }
}

/// A claimed row in its target's lane.
struct Queued {
    claimed: ClaimedDelivery,
    done: DoneWith,
}

/// A worker of a lane, until it ends as told (its lane empty): one that
/// ends any other way (a panic) is counted out, and a new one starts if its
/// lane still has rows, so that none waits for a worker that is gone.
struct Working {
    engine: Option<Arc<DeliveryEngine>>,
    target: String,
}

impl Drop for Working {
    fn drop(&mut self) {
        if let Some(engine) = self.engine.take() {
            if engine.lanes.lost(&self.target) {
                tokio::spawn(engine.clone().work(std::mem::take(&mut self.target)));
            }
        }
    }
}

impl DeliveryEngine {
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        options: EngineOptions,
    ) -> Result<DeliveryEngine, WebhookError> {
        DeliveryEngine::with_stats(store, clock, options, Arc::default())
    }

    /// An engine that counts into `stats` (made before it, by what renders them).
    pub fn with_stats(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        options: EngineOptions,
        stats: Arc<DeliveryStats>,
    ) -> Result<DeliveryEngine, WebhookError> {
        Ok(DeliveryEngine {
            sender: Sender::new(options.allow_private_targets, options.timeout, options.per_target.max(1))?,
            in_flight: Semaphore::new(options.max_in_flight.max(1)),
            unproven_in_flight: Semaphore::new(options.max_in_flight.div_ceil(2).max(1)),
            failing_in_flight: Semaphore::new(options.max_in_flight.div_ceil(4).max(1)),
            lanes: Lanes::new(options.per_target),
            // The wall clock, as subscriptions' `created_at` is stamped (not
            // the engine's clock, which tests move).
            claimed: Arc::new(parking_lot::Mutex::new(Claimed::new(Utc::now()))),
            completed: tokio::sync::Notify::new(),
            stopped: tokio::sync::watch::channel(false).0,
            stats,
            store,
            clock,
            options,
        })
    }

    /// Asks [`run`](Self::run) to return; attempts in flight finish first.
    pub fn stop(&self) {
        self.stopped.send_replace(true);
        self.store.deliveries_notify().notify_one();
    }

    /// Wakes the engine to look at the clock and the outbox now.
    pub fn wake(&self) {
        self.store.deliveries_notify().notify_one();
    }

    /// Claimed rows at most, in all.
    fn max_claimed(&self) -> usize {
        self.options.max_in_flight.max(1) * QUEUED_PER_SLOT
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
        // Every claimed row sends one completion: the channel never holds more.
        let (finished, completions) = mpsc::channel(self.max_claimed());
        let completer = tokio::spawn(self.clone().complete(completions));
        let mut claims = Pace::default();
        // After a claim that filled its room, the next comes at once.
        let mut at_once = false;
        while !*self.stopped.borrow() {
            // Registered before the look at the outbox: a wake-up in between is not lost.
            let woken = notify.notified();
            tokio::pin!(woken);
            woken.as_mut().enable();
            // Registered before the claim too: a completion meanwhile is not missed.
            let completed = self.completed.notified();
            tokio::pin!(completed);
            completed.as_mut().enable();
            claims.begin(at_once).await;
            if *self.stopped.borrow() {
                break;
            }
            let Claim { refused, filled } = self.clone().claim_and_send(&finished).await;
            at_once = filled;
            // A claim that filled its room may have left due rows: claim
            // again at once. One that did not took every due row it had
            // room for: the next is due later, or comes with a wake-up
            // (registered above), so claiming again at once would find
            // nothing, at the cost of a scan.
            if filled {
                continue;
            }
            // Rows due but refused (no room): the next room comes with a
            // completion, and rows further on may be due meanwhile.
            let wait = match refused {
                true => REFUSED_RECLAIM,
                false => match self.next_due().await {
                    Some(at) => (at - self.clock.now()).to_std().unwrap_or_default().min(MAX_IDLE),
                    None => MAX_IDLE,
                },
            };
            tokio::select! {
                _ = woken => {}
                _ = completed => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        // Every claimed row done with (attempts in flight end; rows waiting
        // for a slot are left); then the completer ends with the channel.
        loop {
            let completed = self.completed.notified();
            if self.claimed.lock().total == 0 {
                break;
            }
            completed.await;
        }
        drop(finished);
        let _ = completer.await;
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

    /// Claims as many due rows as there is room for and starts their attempts.
    async fn claim_and_send(self: Arc<Self>, finished: &mpsc::Sender<Finished>) -> Claim {
        let Some((room, mut admission)) = self.admission() else {
            return Claim { refused: true, filled: false };
        };
        let (store, now) = (self.store.clone(), self.clock.now());
        DeliveryStats::count(&self.stats.claims);
        let claim = move || {
            let claimed = store.claim_deliveries(now, room, &mut |sub| admission.admit(sub));
            (claimed, admission)
        };
        let (claimed, admission) = match tokio::task::spawn_blocking(claim).await {
            Ok((Ok(claimed), admission)) => (claimed, admission),
            Ok((Err(e), _)) => {
                tracing::warn!(error = %e, "cannot claim deliveries; trying again shortly");
                return Claim { refused: false, filled: false };
            }
            Err(_) => return Claim { refused: false, filled: false },
        };
        let n = claimed.len();
        for c in claimed {
            // Every claimed row was admitted, which found its target.
            let target = &admission.lane_of_subscription[&c.subscription.id];
            let holder = Holder {
                target: target.clone(),
                account: c.subscription.account.clone(),
                subscription: c.subscription.id.clone(),
            };
            let mut claimed = self.claimed.lock();
            claimed.add(&holder, &c.subscription.url);
            self.stats.rows_claimed.store(claimed.total as u64, Ordering::Relaxed);
            drop(claimed);
            let done = DoneWith { finished: Some(finished.clone()), holder };
            if self.lanes.push(target, Queued { claimed: c, done }) {
                tokio::spawn(self.clone().work(target.clone()));
            }
        }
        Claim { refused: admission.refused, filled: n >= room }
    }

    /// The room for rows a claim has now: in all, and by target and account
    /// (none when the engine holds all the rows it may).
    fn admission(&self) -> Option<(usize, Admission)> {
        let room = self.max_claimed().saturating_sub(self.claimed.lock().total);
        if room == 0 {
            return None;
        }
        let per_target = self.options.per_target.max(1) * QUEUED_PER_SLOT;
        let per_unproven = self.options.per_target.max(1);
        Some((room, admission(&self.claimed, per_target, self.options.per_account.max(1), per_unproven)))
    }

    /// What the engine has done and holds.
    pub fn stats(&self) -> &DeliveryStats {
        &self.stats
    }

    /// The targets being sent to now: those with rows waiting or in flight.
    pub fn targets_in_use(&self) -> usize {
        self.lanes.len()
    }

    /// A worker of `target`'s lane: sends its rows one after another, each
    /// once the engine has a slot for it, until the lane is empty; after a
    /// stop, hands every row it takes back unsent (its claim then holds until
    /// the process ends, and the row is sent after the restart). A row is
    /// sent as its subscription is when its turn comes (its URL, its
    /// secrets), not at all once it is disabled (a 410 to a row before it,
    /// its owner), and judged by its failures as they are when it ends.
    async fn work(self: Arc<Self>, target: String) {
        let mut working = Working { engine: Some(self.clone()), target };
        DeliveryStats::count(&self.stats.workers_started);
        let mut first = true;
        loop {
            if !std::mem::replace(&mut first, false) {
                self.linger(&working.target).await;
            }
            let Some(Queued { claimed, mut done }) = self.lanes.next(&working.target) else { break };
            if self.hands_back(&working.target, &claimed) {
                // Due again at once: the next claim queues it in its account's own target.
                let now = self.clock.now();
                done.send(Some(Completion { delivery: claimed.delivery, attempt: None, next: NextStep::RetryAt(now) }));
                continue;
            }
            // The slot is held until what the attempt changes in its
            // subscription is written; the worker's next row reads it.
            let completion = match self.slot(&working.target, &claimed.subscription).await {
                Some(_slot) => self.attempt_until_stopped(claimed).await,
                None => None,
            };
            done.send(completion);
        }
        working.engine = None;
    }

    /// An attempt slot for a row of `target`; for a row in an account's own
    /// target (its subscription new, failing or slow) one of their half too,
    /// and first, for a failing one's, one of their quarter; none once the
    /// engine stops, also while waiting for one.
    async fn slot(&self, target: &str, sub: &Subscription) -> Option<[Option<SemaphorePermit<'_>>; 3]> {
        if *self.stopped.borrow() {
            return None;
        }
        let (failing, unproven) = match admission::is_shared(target) {
            true => (None, None),
            false => {
                let standing = self.claimed.lock().standing(sub);
                let failing = match standing {
                    Standing::Failing => Some(self.permit(&self.failing_in_flight).await?),
                    Standing::Proven | Standing::Untried => None,
                };
                (failing, Some(self.permit(&self.unproven_in_flight).await?))
            }
        };
        Some([failing, unproven, Some(self.permit(&self.in_flight).await?)])
    }

    /// A permit of `slots`: at once when one is free (the usual case: no
    /// wait to race against a stop), else when one frees; none at a stop.
    async fn permit<'s>(&self, slots: &'s Semaphore) -> Option<SemaphorePermit<'s>> {
        if let Ok(permit) = slots.try_acquire() {
            return Some(permit);
        }
        tokio::select! {
            biased;
            _ = self.stopped_for(std::time::Duration::ZERO) => None,
            permit = slots.acquire() => permit.ok(),
        }
    }

    /// Whether a row queued in a host's shared target is of a subscription
    /// unproven since it was claimed (its receiver failed, hangs, or is slow): sent
    /// from there, each of its rows might wait out the timeout in a slot
    /// other accounts' webhooks at that host share (`admission.rs`).
    fn hands_back(&self, target: &str, claimed: &ClaimedDelivery) -> bool {
        admission::is_shared(target) && self.claimed.lock().standing(&claimed.subscription) != Standing::Proven
    }

    /// An attempt, given up [`STOP_GRACE`] after a stop (then none to record).
    async fn attempt_until_stopped(&self, claimed: ClaimedDelivery) -> Option<Completion> {
        tokio::select! {
            biased;
            completion = self.attempt(claimed) => completion,
            _ = self.stopped_for(STOP_GRACE) => {
                tracing::warn!("a webhook attempt still running at the stop was given up: it is sent again after the restart");
                None
            }
        }
    }

    /// While `target`'s lane is empty, waits up to [`LINGER`] for a row
    /// pushed to it, or a stop.
    async fn linger(&self, target: &str) {
        if *self.stopped.borrow() {
            return;
        }
        let Some(wait) = self.lanes.wait(target) else { return };
        tokio::select! {
            _ = wait.pushed() => {}
            _ = tokio::time::sleep(LINGER) => {}
            _ = self.stopped_for(std::time::Duration::ZERO) => {}
        }
    }

    /// Ends `after` a stop (counted from the stop; at once when stopped already).
    async fn stopped_for(&self, after: std::time::Duration) {
        let mut stopped = self.stopped.subscribe();
        // (The guard `wait_for` gives is dropped at once: it holds a lock.)
        let _ = stopped.wait_for(|stopped| *stopped).await.is_ok();
        if !after.is_zero() {
            tokio::time::sleep(after).await;
        }
    }

    /// One attempt of a row whose slot is held; what to record (none if the
    /// subscription was deleted meanwhile: then the claim holds until the
    /// process ends, and the next start's claim drops the row).
    async fn attempt(&self, mut c: ClaimedDelivery) -> Option<Completion> {
        c.subscription = self.store.subscription(&c.subscription.account, &c.subscription.id)?;
        if !c.subscription.enabled {
            return Some(Completion { delivery: c.delivery, attempt: None, next: NextStep::Hold });
        }
        let at = self.clock.now();
        let in_flight = InFlight::new(&self.stats.attempts_in_flight);
        let webhook_id = c.delivery.webhook_id();
        let sent = self.sender.send(&c, &webhook_id, at).await;
        drop(in_flight);
        DeliveryStats::count(match sent.delivered {
            true => &self.stats.attempts_delivered,
            false => &self.stats.attempts_failed,
        });
        let took = std::time::Duration::from_millis(sent.latency_ms);
        self.claimed.lock().attempted(&c.subscription.id, sent.delivered, took);
        // Judged by the subscription as it is now: another row's attempt may have changed it.
        if let Some(latest) = self.store.subscription(&c.subscription.account, &c.subscription.id) {
            c.subscription = latest;
        }
        let now = self.clock.now();
        let (next, update) = next_step::decide(&c, &sent, now);
        let attempt = Attempt {
            id: 0,
            delivery: c.delivery.id,
            webhook_id,
            at,
            status: if sent.delivered { AttemptStatus::Delivered } else { AttemptStatus::Failed },
            response_code: sent.response_code,
            latency_ms: sent.latency_ms,
            error: sent.error.clone(),
            // Set by the store as it records the attempt: a resend meanwhile wins over `next`.
            next_attempt_at: None,
        };
        tracing::debug!(
            account = %c.delivery.account,
            webhook = %c.subscription.id,
            webhook_id = %attempt.webhook_id,
            code = ?sent.response_code,
            error = ?sent.error,
            "webhook attempt"
        );
        if let Some(update) = update {
            self.update_after_attempt(&c.subscription, update).await;
        }
        Some(Completion { delivery: c.delivery, attempt: Some(attempt), next })
    }

    /// Writes what an attempt changes in its subscription: rare (failures
    /// begin or end, a disable), one write of its own, before the
    /// completion. A disable is made only on an enabled subscription
    /// (`if_enabled`): of the attempts that decide it at once (a 410 to each
    /// of a target's slots), one disables it, and is counted; the others
    /// find it disabled.
    async fn update_after_attempt(&self, sub: &Subscription, update: SubscriptionUpdate) {
        let disabling = update.enabled == Some(false);
        let reason = update.disabled_reason.clone().unwrap_or_default();
        let (store, account, id) = (self.store.clone(), sub.account.clone(), sub.id.clone());
        match tokio::task::spawn_blocking(move || store.update_subscription(&account, &id, update)).await {
            Ok(Ok(Some(_))) if disabling => {
                // Logged here, once: the other attempts that decide it find it disabled.
                tracing::warn!(account = %sub.account, webhook = %sub.id, url = %sub.url, %reason, "webhook subscription disabled");
                DeliveryStats::count(&self.stats.subscriptions_disabled)
            }
            Ok(Ok(_)) => {}
            // Disabled already: by another attempt, or by its owner.
            Ok(Err(StoreError::Conflict(_))) if disabling => {}
            Ok(Err(e)) => tracing::warn!(error = %e, "cannot update a webhook subscription after an attempt"),
            Err(e) => tracing::warn!(error = %e, "webhook subscription update task failed"),
        }
    }

    /// Records completions as they come, many in one store write, until
    /// the channel closes; then the room they held is free again.
    async fn complete(self: Arc<Self>, mut finished: mpsc::Receiver<Finished>) {
        let mut batch = Vec::new();
        let mut writes = Pace::default();
        while finished.recv_many(&mut batch, COMPLETIONS_PER_WRITE).await > 0 {
            // Gathered for one write per GATHER at most, unless a full batch is in.
            writes.begin(batch.len() >= COMPLETIONS_PER_WRITE).await;
            while batch.len() < COMPLETIONS_PER_WRITE {
                match finished.try_recv() {
                    Ok(f) => batch.push(f),
                    Err(_) => break,
                }
            }
            // Sized at once: growing it a completion at a time costs more than recording them.
            let mut done = Vec::with_capacity(batch.len());
            done.extend(batch.iter_mut().filter_map(|f| f.completion.take()));
            if !done.is_empty() {
                let store = self.store.clone();
                let attempts = done.len();
                // Counted once recorded: a write that fails leaves the rows to be tried again.
                let given_up = done.iter().filter(|c| matches!(c.next, NextStep::GiveUp)).count() as u64;
                DeliveryStats::count(&self.stats.completion_writes);
                match tokio::task::spawn_blocking(move || store.complete_deliveries(&done)).await {
                    Ok(Ok(())) => {
                        self.stats.deliveries_given_up.fetch_add(given_up, Ordering::Relaxed);
                    }
                    // The rows are pending again, in view of the next claim: sent again (at least once).
                    Ok(Err(e)) => {
                        tracing::warn!(error = %e, attempts, "cannot record webhook attempts; they will be sent again")
                    }
                    Err(e) => tracing::error!(error = %e, attempts, "webhook completion task failed"),
                }
            }
            let mut claimed = self.claimed.lock();
            for f in batch.drain(..) {
                claimed.remove(&f.holder);
            }
            self.stats.rows_claimed.store(claimed.total as u64, Ordering::Relaxed);
            drop(claimed);
            self.completed.notify_one();
        }
    }
}
