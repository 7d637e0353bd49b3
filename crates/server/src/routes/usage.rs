//! Usage answers: one account's (`GET /v1/accounts/{a}/usage`) and every
//! account's for a period (`GET /v1/usage`, JSON or CSV).

use crate::api::{blocking, known_account, parse_time, AppResult, AppState, St};
use crate::error::{ApiError, ErrorBody};
use crate::extract::{bounded, Query};
use crate::guard::{AccountReader, EveryAccountReader};
use crate::metrics::Metrics;
use crate::openapi::{params, responses};
use crate::usage::{self, Dimension, Granularity, PeriodInfo};
use crate::usage_groups::{self, BoundedGroups};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_model::Plan;
use callmeter_store::AccountRecord;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// The configured plan of that name; `unknown_plan` (409) when the configuration lost it.
fn plan_named<'a>(s: &'a AppState, account: &str, name: &str) -> AppResult<&'a Plan> {
    s.settings
        .store
        .plans
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::UnknownPlan { account: account.to_owned(), plan: name.to_owned() })
}

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsageParams {
    /// The usage period (default the current one); not with `from` and `to`.
    #[param(value_type = Option<params::Period>, inline)]
    pub(crate) period: Option<String>,
    /// Start of a range instead of a period (with `to`).
    #[param(value_type = Option<params::Rfc3339Time>, inline)]
    pub(crate) from: Option<String>,
    /// End of the range, exclusive (with `from`, not before it).
    #[param(value_type = Option<params::Rfc3339Time>, inline)]
    pub(crate) to: Option<String>,
    /// Counts by these dimensions, comma-separated, each at most once: the 1,000 largest groups.
    #[param(value_type = Option<params::GroupBy>, inline)]
    pub(crate) group_by: Option<String>,
    /// Counts per local hour or day of the account's zone: a point per slot with calls, at most 10,000.
    #[param(value_type = Option<params::Granularity>, inline)]
    pub(crate) granularity: Option<String>,
}

/// An account's usage for a period or a range, against its plan.
///
/// Scopes: admin, support, its key. Billable and non-billable, late, reads
/// and writes, by interface, adjustments, the allowance, what remains,
/// overage and its price, the projection; groups and a series when asked.
/// Groups: the 1,000 with the most calls, the others summed in
/// `other_groups` (`groups_truncated`); more than 500,000 groups in the range
/// is 400. A series has a point per hour or day with calls, at most 10,000
/// (400 beyond). Grouped by `api_key` or `user`, two reports run at once:
/// 503 `busy` when one would wait more than 3 s.
#[utoipa::path(get, path = "/v1/accounts/{account}/usage", tag = "usage",
    params(params::AccountPath, UsageParams),
    responses(
        (status = 200, description = "The usage", body = usage::UsageReport),
        (status = 400, response = responses::BadRequest),
        (status = 404, response = responses::NotFound),
        (status = 409, response = responses::UnknownPlan),
        (status = 503, response = responses::Unavailable),
    ),
    security(("bearer" = [])))]
pub(crate) async fn account_usage(
    State(s): St,
    AccountReader { account }: AccountReader,
    Query(q): Query<UsageParams>,
) -> AppResult<Response> {
    // The dimensions are checked before any work: a long list is refused at once, not run.
    let dims = q.group_by.as_deref().map(Dimension::parse_list).transpose()?.unwrap_or_default();
    bounded("period", q.period.as_deref())?;
    // A report that reads the breakdown waits for one of a few slots, held by its work (`report_slots.rs`).
    let slot = match dims.iter().any(|d| d.needs_breakdown()) {
        true => Some(s.reports.take().await.inspect_err(|_| Metrics::add(&s.metrics.refused_reports, 1))?),
        false => None,
    };
    let report = blocking(move || {
        let _slot = slot;
        usage_report(&s, &account, &q, Utc::now())
    })
    .await?;
    Ok(Json(report).into_response())
}

/// The most points a series answers: over 416 days of hours, or 27 years of days.
pub const MAX_SERIES_POINTS: usize = 10_000;

/// The usage answer, as the API gives it (the dashboard shows the same).
pub(crate) fn usage_report(
    s: &AppState,
    account: &str,
    q: &UsageParams,
    now: DateTime<Utc>,
) -> AppResult<usage::UsageReport> {
    let rec = known_account(s, account)?;
    let (period, from, to) = match (&q.from, &q.to) {
        (Some(f), Some(t)) if q.period.is_none() => (None, parse_time("from", f)?, parse_time("to", t)?),
        (None, None) => {
            let p = usage::select_period(&rec, q.period.as_deref().unwrap_or("current"), now)?;
            (Some((p, p.closes_at(s.settings.store.grace))), p.start, p.end)
        }
        _ => return Err(ApiError::BadRequest("give either period, or both from and to".into())),
    };
    if to < from {
        return Err(ApiError::BadRequest("to is before from".into()));
    }
    let plan = plan_named(s, account, rec.schedule.plan_at(from))?;
    let (b0, b1) = usage::bucket_range(from, to);
    let rows = s.store.totals(account, b0, b1)?;
    let adjustments = match period {
        Some((p, _)) => usage::sum_adjustments(&s.store.adjustments(account, p.start)?),
        None => 0,
    };
    let mut report = usage::report(&rec, plan, period, from, to, &rows, adjustments, now);
    if let Some(g) = q.group_by.as_deref() {
        let dims = Dimension::parse_list(g)?;
        let bounded = if dims.iter().any(|d| d.needs_breakdown()) {
            usage_groups::from_breakdown(|f, t| s.store.breakdown(account, f, t), &rows, (b0, b1), &dims)?
        } else {
            BoundedGroups::of(usage::groups_from_totals(&rows, &dims))
        };
        report.groups_truncated = Some(bounded.other.is_some());
        report.other_groups = bounded.other;
        report.groups = Some(bounded.groups);
    }
    if let Some(g) = q.granularity.as_deref() {
        let granularity = match g {
            "hour" => Granularity::Hour,
            "day" => Granularity::Day,
            other => return Err(ApiError::BadRequest(format!("granularity: {other:?} is not hour or day"))),
        };
        let tz = rec.schedule.period_containing(from).1.rule.tz;
        let series = usage::series(&rows, tz, granularity);
        report.series = Some(at_most_max_points(series, granularity)?);
    }
    Ok(report)
}

/// A series, or 400 when it has more than [`MAX_SERIES_POINTS`] points.
///
/// A slot without calls has no point: the count is of slots with calls, so a
/// long range of few calls is answered; one of more slots than an answer
/// should carry is refused, naming a shorter range (or days for hours).
fn at_most_max_points(series: Vec<usage::SeriesPoint>, granularity: Granularity) -> AppResult<Vec<usage::SeriesPoint>> {
    if series.len() <= MAX_SERIES_POINTS {
        return Ok(series);
    }
    let (slots, or_days) = match granularity {
        Granularity::Hour => ("hours", ", or granularity=day"),
        Granularity::Day => ("days", ""),
    };
    Err(ApiError::BadRequest(format!(
        "granularity: this range has calls in {} {slots}, more than the {MAX_SERIES_POINTS} points a series may \
         have: ask for a shorter range{or_days}",
        series.len()
    )))
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AllUsageParams {
    /// The usage period of each account (default its current one).
    #[param(value_type = Option<params::Period>, inline)]
    period: Option<String>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<params::TableFormat>, inline)]
    format: Option<String>,
}

/// Every account's totals for a period, JSON or CSV.
///
/// Scopes: admin, support. One entry per account. An account whose plan for
/// the period is no longer configured carries its account, plan, period and
/// `error` (`unknown_plan`) instead of its numbers (CSV: empty numbers and
/// `unknown_plan` in the last column), so that it hides no other account.
#[utoipa::path(get, path = "/v1/usage", tag = "usage",
    params(AllUsageParams),
    responses(
        (status = 200, description = "Every account, each with its usage or its error", content(
            (crate::openapi::AllUsageAnswer = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, response = responses::BadRequest),
    ),
    security(("bearer" = [])))]
pub(crate) async fn all_usage(
    State(s): St,
    _: EveryAccountReader,
    Query(q): Query<AllUsageParams>,
) -> AppResult<Response> {
    bounded("period", q.period.as_deref())?;
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("format: {other:?} is not json or csv"))),
    };
    let selector = q.period.unwrap_or_else(|| "current".into());
    let lines = blocking(move || {
        let now = Utc::now();
        let params = UsageParams { period: Some(selector.clone()), ..Default::default() };
        s.store.accounts().into_iter().map(|a| account_line(&s, a, &params, now)).collect::<AppResult<Vec<_>>>()
    })
    .await?;
    if !csv {
        return Ok(Json(json!({ "accounts": lines })).into_response());
    }
    let mut out = String::from(CSV_HEADER);
    for line in &lines {
        csv_line(&mut out, line);
    }
    Ok(([(header::CONTENT_TYPE, "text/csv")], out).into_response())
}

/// One account's entry in `GET /v1/usage`: its report, or, when its plan is
/// no longer configured, its period and the error, so that one lost plan
/// does not hide every other account's usage.
#[derive(Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub(crate) enum AccountLine {
    Reported(Box<usage::UsageReport>),
    Unpriced { account: String, plan: String, period: PeriodInfo, error: ErrorBody },
}

fn account_line(s: &AppState, rec: AccountRecord, params: &UsageParams, now: DateTime<Utc>) -> AppResult<AccountLine> {
    match usage_report(s, &rec.name, params, now) {
        Ok(report) => Ok(AccountLine::Reported(Box::new(report))),
        Err(e @ ApiError::UnknownPlan { .. }) => {
            let p = usage::select_period(&rec, params.period.as_deref().unwrap_or("current"), now)?;
            Ok(AccountLine::Unpriced {
                plan: rec.schedule.plan_at(p.start).to_owned(),
                account: rec.name,
                period: PeriodInfo::new(p, p.closes_at(s.settings.store.grace), now),
                error: e.body(),
            })
        }
        Err(e) => Err(e),
    }
}

const CSV_HEADER: &str = "account,plan,period_start,period_end,closed,calls,billable_calls,non_billable_calls,late_calls,adjustments,billed_calls,included_calls,overage_calls,overage_blocks,overage_price,currency,error\n";

/// One CSV row; an unpriced account has its period, empty numbers and the error's code.
fn csv_line(out: &mut String, line: &AccountLine) {
    use std::fmt::Write;
    match line {
        AccountLine::Reported(r) => {
            let p = r.period.as_ref().expect("period reports have a period");
            let _ = writeln!(
                out,
                "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},",
                r.account,
                r.plan,
                p.start.to_rfc3339(),
                p.end.to_rfc3339(),
                p.closed,
                r.calls,
                r.billable_calls,
                r.non_billable_calls,
                r.late_calls,
                r.adjustments,
                r.billed_calls,
                r.included_calls,
                r.overage.calls,
                r.overage.blocks,
                r.overage.price,
                r.overage.currency
            );
        }
        AccountLine::Unpriced { account, plan, period: p, error } => {
            let _ = writeln!(
                out,
                "{account},{plan},{},{},{},,,,,,,,,,,,{}",
                p.start.to_rfc3339(),
                p.end.to_rfc3339(),
                p.closed,
                error.code
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{CallCount, SeriesPoint};

    fn points(n: usize) -> Vec<SeriesPoint> {
        (0..n).map(|i| SeriesPoint { start: i.to_string(), count: CallCount { calls: 1, billable_calls: 1 } }).collect()
    }

    #[test]
    fn a_series_of_more_than_the_most_points_is_refused() {
        assert_eq!(at_most_max_points(points(MAX_SERIES_POINTS), Granularity::Hour).unwrap().len(), MAX_SERIES_POINTS);
        let e = at_most_max_points(points(MAX_SERIES_POINTS + 1), Granularity::Hour).unwrap_err();
        assert_eq!(e.code_and_status().1, axum::http::StatusCode::BAD_REQUEST);
        let e = e.to_string();
        assert!(e.starts_with("granularity: this range has calls in 10001 hours, more than the 10000"), "{e}");
        assert!(e.ends_with("ask for a shorter range, or granularity=day"), "{e}");
        let e = at_most_max_points(points(MAX_SERIES_POINTS + 1), Granularity::Day).unwrap_err().to_string();
        assert!(e.contains("10001 days") && e.ends_with("shorter range"), "{e}");
    }
}
