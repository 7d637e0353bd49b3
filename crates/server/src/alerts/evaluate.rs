//! One account's alerts at one instant: its usage read from the store as
//! the usage report counts it (so late calls carried into the open period
//! count here as they count there), the alerts due (`due.rs`), and those
//! fired through the store, which fires each once.
//!
//! The periods looked at are the open ones: the current period, and the
//! one before while it has not closed (a backfill can still carry it past a
//! threshold). Projections and spikes are about the current period and the
//! current local day.

use super::due;
use super::finding;
use crate::options::Settings;
use crate::usage;
use crate::ApiError;
use callmeter_model::{local_midnight, UsagePeriod};
use callmeter_store::{AccountRecord, Alert, AlertKind, Store};
use chrono::{DateTime, Utc};
use std::collections::HashSet;

/// Alerts the evaluator knows were fired (by account and fired key), so that
/// an account whose usage keeps changing past a threshold costs no store
/// write, and no look for its top finding, on every evaluation. Forgotten as
/// a whole past a bound: the store still refuses to fire any twice.
#[derive(Default)]
pub struct FiredMemory {
    fired: HashSet<(String, [u8; 17])>,
}

/// Alerts remembered at most.
const MEMORY_BOUND: usize = 200_000;

impl FiredMemory {
    fn knows(&self, alert: &Alert) -> bool {
        self.fired.contains(&(alert.account.clone(), alert.fired_key()))
    }

    fn remember(&mut self, alerts: &[Alert]) {
        if self.fired.len() + alerts.len() > MEMORY_BOUND {
            self.fired.clear();
        }
        self.fired.extend(alerts.iter().map(|a| (a.account.clone(), a.fired_key())));
    }
}

/// Evaluates `account` at `now`; the alerts fired now.
pub fn evaluate(
    store: &dyn Store,
    settings: &Settings,
    account: &str,
    now: DateTime<Utc>,
    memory: &mut FiredMemory,
) -> Result<Vec<Alert>, ApiError> {
    let Some(rec) = store.account(account) else { return Ok(Vec::new()) };
    let current = rec.schedule.period_containing(now).0;
    let previous = rec.schedule.period_containing(current.start - chrono::Duration::nanoseconds(1)).0;
    let mut due = Vec::new();
    for period in [current, previous] {
        if period == previous && period.closes_at(settings.store.grace) <= now {
            continue;
        }
        due.extend(period_alerts(store, settings, &rec, period, now)?);
    }
    due.extend(spike_alert(store, settings, &rec, current, now)?);
    due.retain(|a| !memory.knows(a));
    if due.is_empty() {
        return Ok(Vec::new());
    }
    let top = finding::top_finding(store, account, now.date_naive());
    for alert in &mut due {
        alert.top_finding = top.clone();
    }
    let fired = store.fire_alerts(due.clone())?;
    // Every alert found due is fired now, or was before.
    memory.remember(&due);
    for a in &fired {
        tracing::info!(account = %a.account, alert = a.id, kind = %a.kind, threshold = ?a.threshold_percent, billed_calls = a.billed_calls, "usage alert fired");
    }
    Ok(fired)
}

/// An alert of `kind` about `period` with its usage figures; the kind's own fields are left empty.
fn alert(
    kind: AlertKind,
    rec: &AccountRecord,
    period: UsagePeriod,
    r: &usage::UsageReport,
    now: DateTime<Utc>,
) -> Alert {
    Alert {
        id: 0,
        account: rec.name.clone(),
        kind,
        fired_at: now,
        period,
        plan: r.plan.clone(),
        included_calls: r.included_calls,
        billed_calls: r.billed_calls,
        percent_used: due::percent_of(r.billed_calls, r.included_calls),
        threshold_percent: None,
        projected_calls: None,
        projected_overage_at: None,
        day: None,
        day_calls: None,
        trailing_median_calls: None,
        top_finding: None,
    }
}

/// The usage report of a whole period, as `GET …/usage?period=` answers it;
/// `None` when its plan is no longer configured (it cannot be priced, nor alerted on).
fn period_report(
    store: &dyn Store,
    settings: &Settings,
    rec: &AccountRecord,
    period: UsagePeriod,
    now: DateTime<Utc>,
) -> Result<Option<usage::UsageReport>, ApiError> {
    let plan_name = rec.schedule.plan_at(period.start);
    let Some(plan) = settings.store.plans.iter().find(|p| p.name == plan_name) else {
        tracing::debug!(account = %rec.name, plan = plan_name, "no alerts: the plan is not configured");
        return Ok(None);
    };
    let (b0, b1) = usage::bucket_range(period.start, period.end);
    let rows = store.totals(&rec.name, b0, b1)?;
    let adjustments = usage::sum_adjustments(&store.adjustments(&rec.name, period.start)?);
    let closes_at = period.closes_at(settings.store.grace);
    Ok(Some(usage::report(rec, plan, Some((period, closes_at)), period.start, period.end, &rows, adjustments, now)))
}

/// The thresholds reached in `period`, and (the current period) an overage foreseen.
fn period_alerts(
    store: &dyn Store,
    settings: &Settings,
    rec: &AccountRecord,
    period: UsagePeriod,
    now: DateTime<Utc>,
) -> Result<Vec<Alert>, ApiError> {
    let Some(r) = period_report(store, settings, rec, period, now)? else { return Ok(Vec::new()) };
    let plan = settings.alerts.plan(&r.plan);
    let list = rec.alert_thresholds.as_deref().unwrap_or(&plan.thresholds);
    let mut out: Vec<Alert> = due::thresholds_reached(list, plan.overage_step, r.billed_calls, r.included_calls)
        .into_iter()
        .map(|t| Alert { threshold_percent: Some(t), ..alert(AlertKind::ThresholdReached, rec, period, &r, now) })
        .collect();
    let figures = (r.billable_calls, r.billed_calls, r.projected_calls.unwrap_or(0));
    if let Some(f) = due::foreseen_overage(period, now, settings.alerts.projection_after, figures, r.included_calls) {
        out.push(Alert {
            projected_calls: Some(f.projected_calls),
            projected_overage_at: Some(f.runs_out_at),
            ..alert(AlertKind::ProjectedOverage, rec, period, &r, now)
        });
    }
    Ok(out)
}

/// A spike of the current local day, against the 7 local days before it.
/// Only for an account whose periods began at least those 7 days before
/// (its first anchor: a new account has no week to compare with).
fn spike_alert(
    store: &dyn Store,
    settings: &Settings,
    rec: &AccountRecord,
    current: UsagePeriod,
    now: DateTime<Utc>,
) -> Result<Option<Alert>, ApiError> {
    let tz = rec.schedule.period_containing(now).1.rule.tz;
    let today = now.with_timezone(&tz).date_naive();
    let week_start = local_midnight(tz, today - chrono::Duration::days(7));
    let day_start = local_midnight(tz, today);
    let first = rec.schedule.terms.first().map_or(now, |t| t.from);
    if first > week_start {
        return Ok(None);
    }
    let (b0, b1) = usage::bucket_range(week_start, local_midnight(tz, today + chrono::Duration::days(1)));
    let rows = store.totals(&rec.name, b0, b1)?;
    let mut trailing = [0u64; 7];
    let mut day_calls = 0;
    for point in usage::series(&rows, tz, usage::Granularity::Day) {
        let Ok(start) = DateTime::parse_from_rfc3339(&point.start) else { continue };
        let start = start.with_timezone(&Utc);
        if start >= day_start {
            day_calls += point.count.billable_calls;
        } else if let Some(slot) = (0..7).find(|i| local_midnight(tz, today - chrono::Duration::days(7 - i)) == start) {
            trailing[slot as usize] += point.count.billable_calls;
        }
    }
    let Some(s) = due::spike(&trailing, day_calls, settings.alerts.spike_factor, settings.alerts.spike_min_calls)
    else {
        return Ok(None);
    };
    let Some(r) = period_report(store, settings, rec, current, now)? else { return Ok(None) };
    Ok(Some(Alert {
        day: Some(today),
        day_calls: Some(s.day_calls),
        trailing_median_calls: Some(s.trailing_median),
        ..alert(AlertKind::Spike, rec, current, &r, now)
    }))
}
