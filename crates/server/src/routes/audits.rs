//! Audits: one account's (kept, or made for the request) and every account's
//! kept audits of a day.

use crate::api::{blocking, known_account, parse_time, AppResult, St};
use crate::audit::{self, AuditSummary};
use crate::error::ApiError;
use crate::extract::Query;
use crate::guard::{AccountReader, EveryAccountReader};
use crate::live_audits::Refused;
use crate::metrics::Metrics;
use crate::usage;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_store::AccountRecord;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default)]
pub(crate) struct AuditParams {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) day: Option<String>,
}

fn parse_day(v: &str) -> AppResult<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("day: {v:?} is not a date YYYY-MM-DD")))
}

/// The range of an account's audit, and the UTC day when one was asked for.
/// Without `day`, `from` defaults to the start of the account's current usage
/// period and `to` to now: the period so far. The dashboard's audit page reads the same.
pub(crate) fn audit_range(
    rec: &AccountRecord,
    q: &AuditParams,
    now: DateTime<Utc>,
) -> AppResult<(DateTime<Utc>, DateTime<Utc>, Option<NaiveDate>)> {
    if let Some(d) = q.day.as_deref() {
        if q.from.is_some() || q.to.is_some() {
            return Err(ApiError::BadRequest("give either day, or from and to".into()));
        }
        let day = parse_day(d)?;
        let (from, to) = audit::day_range(day);
        return Ok((from, to, Some(day)));
    }
    let from = match q.from.as_deref() {
        Some(v) => parse_time("from", v)?,
        None => usage::select_period(rec, "current", now)?.start,
    };
    let to = q.to.as_deref().map(|v| parse_time("to", v)).transpose()?.unwrap_or(now);
    if to <= from {
        return Err(ApiError::BadRequest(format!(
            "to ({}) is not after from ({})",
            to.to_rfc3339(),
            from.to_rfc3339()
        )));
    }
    Ok((from, to, None))
}

pub(crate) async fn account_audit(
    State(s): St,
    AccountReader { account }: AccountReader,
    Query(q): Query<AuditParams>,
) -> AppResult<Response> {
    let rec = known_account(&s, &account)?;
    let (from, to, day) = audit_range(&rec, &q, Utc::now())?;
    if let Some(day) = day {
        let store = s.store.clone();
        let name = account.clone();
        if let Some(json) = blocking(move || Ok(store.audit(&name, day)?)).await? {
            return Ok(([(header::CONTENT_TYPE, "application/json"), (AUDIT_HEADER, "kept")], json).into_response());
        }
    }
    // On the live audits' own thread, one at a time: never ahead of ingest's parsing.
    let state = s.clone();
    let report = s
        .live_audits
        .run(move || audit::run(state.store.as_ref(), &state.settings, &account, from, to, &state.stopping))
        .await
        .inspect_err(|r| {
            if matches!(r, Refused::Busy) {
                Metrics::add(&s.metrics.refused_live_audits, 1);
            }
        })?
        .ok_or_else(|| ApiError::Unavailable("the server is shutting down".into()))?;
    Ok(([(AUDIT_HEADER, "live")], Json(report)).into_response())
}

/// Says whether an audit was kept by the daily schedule or made for the request.
const AUDIT_HEADER: header::HeaderName = header::HeaderName::from_static("callmeter-audit");

#[derive(Deserialize)]
pub(crate) struct AuditsParams {
    day: Option<String>,
    format: Option<String>,
}

pub(crate) async fn all_audits(
    State(s): St,
    _: EveryAccountReader,
    Query(q): Query<AuditsParams>,
) -> AppResult<Response> {
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("format: {other:?} is not json or csv"))),
    };
    let day = match q.day.as_deref() {
        Some(d) => parse_day(d)?,
        None => Utc::now().date_naive() - chrono::Duration::days(1),
    };
    let store = s.store.clone();
    let summaries = blocking(move || {
        let mut all = store
            .audits(day)?
            .into_iter()
            .map(|(account, json)| AuditSummary::of(account, day, &json))
            .collect::<AppResult<Vec<_>>>()?;
        all.sort_by(|a, b| b.avoidable_calls.cmp(&a.avoidable_calls).then_with(|| a.account.cmp(&b.account)));
        Ok(all)
    })
    .await?;
    if !csv {
        return Ok(Json(json!({ "day": day, "accounts": summaries })).into_response());
    }
    let mut out = audit::CSV_HEADER.as_bytes().to_vec();
    for summary in &summaries {
        audit::csv_line(&mut out, summary);
    }
    Ok(([(header::CONTENT_TYPE, "text/csv")], out).into_response())
}
