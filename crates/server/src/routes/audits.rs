//! Audits: one account's (kept, or made for the request) and every account's
//! kept audits of a day.

use crate::api::{blocking, known_account, parse_time, AppResult, St};
use crate::audit::{self, AuditSummary};
use crate::error::ApiError;
use crate::extract::Query;
use crate::guard::{AccountReader, EveryAccountReader};
use crate::live_audits::Refused;
use crate::metrics::Metrics;
use crate::openapi::{params, responses};
use crate::usage;
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_store::AccountRecord;
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Start of the range, inclusive (default the start of the current usage period); before `to`; not with `day`.
    #[param(value_type = Option<params::Rfc3339Time>, inline)]
    pub(crate) from: Option<String>,
    /// End of the range, exclusive (default now); after `from`; not with `day`.
    #[param(value_type = Option<params::Rfc3339Time>, inline)]
    pub(crate) to: Option<String>,
    /// A UTC day: the audit the daily schedule kept for it, else one made for the request.
    #[param(value_type = Option<params::CalendarDay>, inline)]
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

/// The account's usage audit (DESIGN §6).
///
/// Scopes: admin, support, its key. Top sources, findings (polling,
/// list_after_write, duplicate_requests) with their avoidable calls and
/// recommendations, and what_if; the same JSON as `callmeter audit --format
/// json`. The `callmeter-audit` header says whether the audit was kept by the
/// daily schedule or made for the request (one at a time: 503 `busy` when one
/// would wait too long; 400 when one runs longer than `live_audit_timeout_ms`,
/// 30 s by default: ask for a shorter range).
#[utoipa::path(get, path = "/v1/accounts/{account}/audit", tag = "audits",
    params(params::AccountPath, AuditParams),
    responses(
        (status = 200, description = "The audit", body = crate::openapi::AuditReportDoc,
            headers(("callmeter-audit" = String, description = "`kept` (by the daily schedule) or `live` (made for the request)"))),
        (status = 400, response = responses::BadRequest),
        (status = 404, response = responses::NotFound),
        (status = 503, response = responses::Unavailable),
    ),
    security(("bearer" = [])))]
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
    // On the live audits' own thread, one at a time: never ahead of ingest's parsing; given up
    // when the server stops, when this request's client goes away, or past its time.
    let state = s.clone();
    let limit = s.settings.limits.live_audit_timeout;
    let report = s
        .live_audits
        .run_for_request(limit, move |request| {
            let stop = (&state.stopping, request);
            audit::run(state.store.as_ref(), &state.settings, &account, from, to, &stop)
        })
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

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditsParams {
    /// The UTC day (default yesterday).
    #[param(value_type = Option<params::CalendarDay>, inline)]
    day: Option<String>,
    /// `json` (default) or `csv`.
    #[param(value_type = Option<params::TableFormat>, inline)]
    format: Option<String>,
}

/// Every account's kept daily audit of a UTC day, in one line each.
///
/// Scopes: admin, support. Account, calls, avoidable calls, calls after,
/// factor, findings and the top finding; most avoidable calls first. Reads
/// only the audits the daily schedule kept (`[audit]` in the config); never
/// runs one.
#[utoipa::path(get, path = "/v1/audits", tag = "audits",
    params(AuditsParams),
    responses(
        (status = 200, description = "The kept audits of the day", content(
            (crate::openapi::AuditsAnswer = "application/json"),
            (String = "text/csv"),
        )),
        (status = 400, response = responses::BadRequest),
    ),
    security(("bearer" = [])))]
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
