//! The daily audits: a task started with the server that keeps each
//! account's audit of the previous UTC day in the store, so that
//! `GET /v1/audits?day=` lists every account without running one.
//!
//! Each day at `[audit] run_at_hour` (UTC), and at startup when that hour has
//! already passed today, a run audits every account that has no kept audit
//! for the last `catch_up_days` days (yesterday by default): a restart, or a
//! server that was down at the hour, catches up; a kept audit is never made
//! twice. Accounts are audited one at a time on a blocking thread, so a run
//! takes at most one core from ingest. Days are UTC days so that one day's
//! list compares the same 24 hours across accounts, whatever their zones.
//! An account with no calls that day keeps no audit.

use crate::api::AppState;
use crate::audit::{self, day_range};
use callmeter_store::Store;
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

/// The longest sleep between looks at the clock: the wall clock may jump
/// (suspend, NTP) while a long monotonic sleep would not notice.
const MAX_SLEEP: Duration = Duration::from_secs(3_600);

/// The running schedule; [`DailyAudits::stop`] ends it.
pub struct DailyAudits {
    wake: Arc<Notify>,
    task: JoinHandle<()>,
}

impl DailyAudits {
    /// Starts the schedule. It also stops on its own once `state.stopping` is
    /// raised and it is woken, between two accounts at the latest.
    pub fn start(state: Arc<AppState>) -> DailyAudits {
        let wake = Arc::new(Notify::new());
        let task = tokio::spawn(run_daily(state, wake.clone()));
        DailyAudits { wake, task }
    }

    /// Wakes the schedule (whose state's `stopping` the caller has raised) and
    /// waits until it has finished the account in hand.
    pub async fn stop(self) {
        self.wake.notify_one();
        if let Err(e) = self.task.await {
            tracing::warn!(error = %e, "daily audits task failed");
        }
    }
}

/// When today's run is due.
fn due_today(now: DateTime<Utc>, run_at_hour: u32) -> DateTime<Utc> {
    let at = NaiveTime::from_hms_opt(run_at_hour, 0, 0).unwrap_or(NaiveTime::MIN);
    now.date_naive().and_time(at).and_utc()
}

async fn run_daily(state: Arc<AppState>, wake: Arc<Notify>) {
    let options = &state.settings.audit;
    let mut last_run: Option<NaiveDate> = None;
    tracing::info!(run_at_hour = options.run_at_hour, catch_up_days = options.catch_up_days, "daily audits scheduled");
    loop {
        if state.stopping.load(Ordering::Relaxed) {
            return;
        }
        let now = Utc::now();
        let due = due_today(now, options.run_at_hour);
        let today = now.date_naive();
        if now >= due && last_run != Some(today) {
            run_once(&state, today).await;
            last_run = Some(today);
            continue;
        }
        let next = if now >= due { due + chrono::Duration::days(1) } else { due };
        let wait = (next - now).to_std().unwrap_or(Duration::ZERO).min(MAX_SLEEP);
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = wake.notified() => {}
        }
    }
}

/// One run: the missing audits of the `catch_up_days` days before `today`, oldest first.
async fn run_once(state: &Arc<AppState>, today: NaiveDate) {
    for back in (1..=state.settings.audit.catch_up_days).rev() {
        let day = today - chrono::Duration::days(back.into());
        let started = Instant::now();
        let (mut kept, mut had, mut empty, mut failed) = (0u32, 0u32, 0u32, 0u32);
        for account in state.store.accounts() {
            if state.stopping.load(Ordering::Relaxed) {
                tracing::info!(%day, "daily audits stopped: the server is shutting down");
                return;
            }
            let st = state.clone();
            let name = account.name.clone();
            let outcome = tokio::task::spawn_blocking(move || audit_day(&st, &name, day)).await;
            match outcome {
                Ok(Ok(Outcome::Kept)) => kept += 1,
                Ok(Ok(Outcome::AlreadyKept)) => had += 1,
                Ok(Ok(Outcome::NoCalls)) => empty += 1,
                Ok(Ok(Outcome::Stopped)) => return,
                Ok(Err(e)) => {
                    failed += 1;
                    tracing::warn!(account = %account.name, %day, error = %e, "daily audit failed");
                }
                Err(e) => {
                    failed += 1;
                    tracing::warn!(account = %account.name, %day, error = %e, "daily audit task failed");
                }
            }
        }
        tracing::info!(
            %day,
            kept,
            already_kept = had,
            without_calls = empty,
            failed,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "daily audits done"
        );
    }
}

enum Outcome {
    Kept,
    AlreadyKept,
    NoCalls,
    Stopped,
}

/// Audits one account's day and keeps the report, unless one is kept already.
fn audit_day(state: &AppState, account: &str, day: NaiveDate) -> Result<Outcome, crate::ApiError> {
    let store: &dyn Store = state.store.as_ref();
    if store.audit(account, day)?.is_some() {
        return Ok(Outcome::AlreadyKept);
    }
    let started = Instant::now();
    let (from, to) = day_range(day);
    let Some(report) = audit::run(store, &state.settings, account, from, to, &state.stopping)? else {
        return Ok(Outcome::Stopped);
    };
    if report.calls == 0 {
        return Ok(Outcome::NoCalls);
    }
    let json = serde_json::to_vec(&report).map_err(|e| crate::ApiError::Internal(format!("audit report: {e}")))?;
    store.put_audit(account, day, &json)?;
    let a = report.what_if.avoidable_calls_by_kind;
    tracing::info!(
        account,
        %day,
        calls = report.calls,
        avoidable_calls = a.polling + a.list_after_write + a.duplicate_requests,
        findings = report.findings.len(),
        factor = report.what_if.factor,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "daily audit kept"
    );
    Ok(Outcome::Kept)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn due_at_the_hour_of_the_same_utc_day() {
        let now: DateTime<Utc> = "2026-11-29T03:27:00Z".parse().unwrap();
        assert_eq!(due_today(now, 2).to_rfc3339(), "2026-11-29T02:00:00+00:00");
        assert_eq!(due_today(now, 0).to_rfc3339(), "2026-11-29T00:00:00+00:00");
        assert!(due_today(now, 4) > now);
    }
}
