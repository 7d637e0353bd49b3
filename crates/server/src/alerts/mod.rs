//! Usage alerts (DESIGN §7): `usage.threshold_reached` (each plan's
//! thresholds, or the account's own, once per period each),
//! `usage.projected_overage` (the period's projection first passes the
//! included calls) and `usage.spike` (a day's calls above a multiple of the
//! trailing 7-day median), each carrying the account's top waste finding,
//! delivered to its alert subscriptions by the webhook outbox and listed by
//! `GET /v1/accounts/{account}/alerts`.
//!
//! Evaluated off the ingest path, on a thread of their own: it waits for the
//! store to name the accounts whose usage changed (durable calls,
//! adjustments, a new threshold; every account once at start, so that an
//! alert due across a crash is found), evaluates only those, and sleeps
//! between rounds at least three times as long as the last round took, so
//! that it never takes more than a quarter of a core from ingest however
//! many accounts are busy. The store fires each alert once, in one atomic
//! write with its deliveries.
//!
//! - `due.rs`: when an alert is due, from the figures.
//! - `evaluate.rs`: one account's figures, read from the store, and what is fired.
//! - `finding.rs`: the top waste finding of the latest kept audit.

mod due;
mod evaluate;
mod finding;
#[cfg(test)]
mod tests;

pub use evaluate::{evaluate, FiredMemory};

use crate::api::AppState;
use callmeter_webhooks::Clock;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The longest the evaluator waits for changed usage before it looks at `stopping` again.
const WAIT: Duration = Duration::from_secs(1);

/// The shortest pause between rounds: commits that come close together are evaluated together.
const MIN_PAUSE: Duration = Duration::from_millis(200);

/// The evaluator's thread; [`AlertEvaluator::join`] waits for it once `stopping` is raised.
pub struct AlertEvaluator {
    thread: std::thread::JoinHandle<()>,
}

impl AlertEvaluator {
    /// Starts the evaluator over the state's store, reading time from `clock`.
    pub fn start(state: Arc<AppState>, clock: Arc<dyn Clock>) -> std::io::Result<AlertEvaluator> {
        let thread = std::thread::Builder::new().name("callmeter-alerts".into()).spawn(move || run(&state, &*clock))?;
        Ok(AlertEvaluator { thread })
    }

    /// Waits for the thread to end (within a second of `stopping` being raised).
    pub fn join(self) {
        if self.thread.join().is_err() {
            tracing::warn!("the alert evaluator panicked");
        }
    }
}

fn run(state: &AppState, clock: &dyn Clock) {
    let mut memory = FiredMemory::default();
    while !state.stopping.load(Ordering::Relaxed) {
        let accounts = state.store.accounts_with_new_usage(WAIT);
        if accounts.is_empty() {
            continue;
        }
        let started = Instant::now();
        for account in &accounts {
            if state.stopping.load(Ordering::Relaxed) {
                return; // the next start evaluates every account
            }
            if let Err(e) = evaluate(state.store.as_ref(), &state.settings, account, clock.now(), &mut memory) {
                // Its next change of usage tries again; a restart evaluates every account.
                tracing::warn!(account = %account, error = %e, "evaluating usage alerts failed");
            }
        }
        let resume = Instant::now() + (started.elapsed() * 3).max(MIN_PAUSE);
        while Instant::now() < resume && !state.stopping.load(Ordering::Relaxed) {
            std::thread::sleep(MIN_PAUSE.min(resume.saturating_duration_since(Instant::now())));
        }
    }
}
