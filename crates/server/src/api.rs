//! The HTTP routes and their handlers.

use crate::audit::{self, AuditSummary};
use crate::auth::{Auth, Caller};
use crate::error::ApiError;
use crate::export;
use crate::ingest::{self, BodyKind};
use crate::metrics::Metrics;
use crate::options::{Settings, MAX_BODY_BYTES};
use crate::usage::{self, Dimension, Granularity};
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use callmeter_model::{Interface, Operation, Plan};
use callmeter_store::{AccountChange, AccountRecord, Adjustment, CallFilter, Position, Scope, Store};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Deserialize;
use serde_json::json;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;
use tokio::sync::Semaphore;

/// What every handler shares.
pub struct AppState {
    /// The store.
    pub store: Arc<dyn Store>,
    /// Tokens.
    pub auth: Auth,
    /// Settings.
    pub settings: Settings,
    /// Counters.
    pub metrics: Metrics,
    /// Raised when the server starts shutting down: audits in progress give up.
    pub stopping: AtomicBool,
    /// Audits run for requests at once at most (one per core): each keeps a
    /// core busy, and ingest must keep some.
    pub live_audits: Semaphore,
}

type AppResult<T> = Result<T, ApiError>;
type St = State<Arc<AppState>>;

/// Every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/events", post(post_events))
        .route("/v1/usage", get(all_usage))
        .route("/v1/plans", get(plans))
        .route("/v1/accounts", get(accounts))
        .route("/v1/accounts/{account}", get(account).put(put_account))
        .route("/v1/accounts/{account}/usage", get(account_usage))
        .route("/v1/accounts/{account}/calls", get(account_calls))
        .route("/v1/accounts/{account}/audit", get(account_audit))
        .route("/v1/audits", get(all_audits))
        .route("/v1/accounts/{account}/adjustments", get(adjustments).post(post_adjustment))
        .route("/v1/accounts/{account}/keys", post(post_account_key))
        .route("/v1/accounts/{account}/keys/{id}", delete(delete_account_key))
        .route("/v1/tokens", get(tokens).post(post_token))
        .route("/v1/tokens/{id}", delete(delete_token))
        .route("/v1/admin/rotate-token", post(rotate_admin))
        .route("/v1/admin/backup", post(backup))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

/// Runs blocking store work off the async workers.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> AppResult<T> + Send + 'static) -> AppResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("task failed: {e}")))?
}

async fn readyz(State(s): St) -> Response {
    if s.store.is_writable() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store is not writable\n").into_response()
    }
}

async fn metrics(State(s): St, headers: HeaderMap) -> AppResult<Response> {
    if !s.settings.metrics_public {
        let caller = s.auth.caller(&headers)?;
        if !matches!(caller, Caller::Admin | Caller::Support) {
            return Err(ApiError::Forbidden("read metrics"));
        }
    }
    let body = s.metrics.render(s.store.disk_bytes(), s.store.accounts().len(), s.store.is_writable());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../openapi.json")).into_response()
}

async fn post_events(State(s): St, headers: HeaderMap, body: Bytes) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    if !matches!(caller, Caller::Admin | Caller::Ingest) {
        return Err(ApiError::Forbidden("post calls"));
    }
    let started = Instant::now();
    let kind = BodyKind::from_content_type(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()));
    // Parsing and the store's dedup lookups are CPU and disk work: off the async workers.
    let store = s.store.clone();
    let (errors, ticket) = blocking(move || {
        let parsed = ingest::parse_body(kind, &body, Utc::now())?;
        let mut errors = Vec::with_capacity(parsed.items.len());
        let mut events = Vec::with_capacity(parsed.items.len());
        for item in parsed.items {
            match item {
                Ok(e) => {
                    events.push(e);
                    errors.push(None);
                }
                Err(e) => errors.push(Some(e)),
            }
        }
        let ticket = (!events.is_empty()).then(|| store.ingest(events));
        Ok((errors, ticket))
    })
    .await?;
    let outcomes = match ticket {
        None => Vec::new(),
        Some(t) => t.wait().await.inspect_err(|_| Metrics::add(&s.metrics.ingest_failures, 1))?,
    };
    let answer = ingest::answer(&errors, &outcomes);
    let m = &s.metrics;
    Metrics::add(&m.ingest_requests, 1);
    for o in &outcomes {
        match o {
            callmeter_store::Outcome::Accepted => Metrics::add(&m.events_accepted, 1),
            callmeter_store::Outcome::Duplicate => Metrics::add(&m.events_duplicate, 1),
            callmeter_store::Outcome::Rejected(_) => Metrics::add(&m.events_rejected, 1),
        }
    }
    Metrics::add(&m.events_rejected, errors.iter().filter(|e| e.is_some()).count() as u64);
    Metrics::add(&m.ingest_latency_us, started.elapsed().as_micros() as u64);
    Ok(([(header::CONTENT_TYPE, "application/json")], answer).into_response())
}

fn known_account(s: &AppState, name: &str) -> AppResult<AccountRecord> {
    s.store.account(name).ok_or_else(|| ApiError::NotFound(format!("unknown account {name:?}")))
}

fn plan_named<'a>(s: &'a AppState, name: &str) -> AppResult<&'a Plan> {
    s.settings
        .store
        .plans
        .iter()
        .find(|p| p.name == name)
        .ok_or_else(|| ApiError::Internal(format!("plan {name:?} is no longer configured")))
}

fn parse_time(name: &str, v: &str) -> AppResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::BadRequest(format!("{name}: {v:?} is not an RFC 3339 time")))
}

#[derive(Deserialize, Default)]
struct UsageParams {
    period: Option<String>,
    from: Option<String>,
    to: Option<String>,
    group_by: Option<String>,
    granularity: Option<String>,
}

async fn account_usage(
    State(s): St,
    headers: HeaderMap,
    Path(account): Path<String>,
    Query(q): Query<UsageParams>,
) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    caller.require_read(&account)?;
    let report = blocking(move || usage_report(&s, &account, &q, Utc::now())).await?;
    Ok(Json(report).into_response())
}

fn usage_report(s: &AppState, account: &str, q: &UsageParams, now: DateTime<Utc>) -> AppResult<usage::UsageReport> {
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
    let plan = plan_named(s, rec.schedule.plan_at(from))?;
    let (b0, b1) = usage::bucket_range(from, to);
    let rows = s.store.totals(account, b0, b1)?;
    let adjustments = match period {
        Some((p, _)) => s.store.adjustments(account, p.start)?.iter().map(|a| a.calls).sum(),
        None => 0,
    };
    let mut report = usage::report(&rec, plan, period, from, to, &rows, adjustments, now);
    if let Some(g) = q.group_by.as_deref() {
        let dims = Dimension::parse_list(g)?;
        report.groups = Some(if dims.iter().any(|d| matches!(d, Dimension::ApiKey | Dimension::User)) {
            usage::groups_from_breakdown(&s.store.breakdown(account, b0, b1)?, &dims)
        } else {
            usage::groups_from_totals(&rows, &dims)
        });
    }
    if let Some(g) = q.granularity.as_deref() {
        let granularity = match g {
            "hour" => Granularity::Hour,
            "day" => Granularity::Day,
            other => return Err(ApiError::BadRequest(format!("granularity: {other:?} is not hour or day"))),
        };
        let tz = rec.schedule.period_containing(from).1.rule.tz;
        report.series = Some(usage::series(&rows, tz, granularity));
    }
    Ok(report)
}

#[derive(Deserialize)]
struct AllUsageParams {
    period: Option<String>,
    format: Option<String>,
}

async fn all_usage(State(s): St, headers: HeaderMap, Query(q): Query<AllUsageParams>) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    if !matches!(caller, Caller::Admin | Caller::Support) {
        return Err(ApiError::Forbidden("read every account's usage"));
    }
    let csv = match q.format.as_deref() {
        None | Some("json") => false,
        Some("csv") => true,
        Some(other) => return Err(ApiError::BadRequest(format!("format: {other:?} is not json or csv"))),
    };
    let selector = q.period.unwrap_or_else(|| "current".into());
    let reports = blocking(move || {
        let now = Utc::now();
        s.store
            .accounts()
            .iter()
            .map(|a| {
                let params = UsageParams { period: Some(selector.clone()), ..Default::default() };
                usage_report(&s, &a.name, &params, now)
            })
            .collect::<AppResult<Vec<_>>>()
    })
    .await?;
    if !csv {
        return Ok(Json(json!({ "accounts": reports })).into_response());
    }
    let mut out = String::from("account,plan,period_start,period_end,closed,calls,billable_calls,non_billable_calls,late_calls,adjustments,billed_calls,included_calls,overage_calls,overage_blocks,overage_price,currency\n");
    for r in reports {
        let p = r.period.as_ref().expect("period reports have a period");
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}\n",
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
        ));
    }
    Ok(([(header::CONTENT_TYPE, "text/csv")], out).into_response())
}

#[derive(Deserialize)]
struct CallsParams {
    from: Option<String>,
    to: Option<String>,
    interface: Option<String>,
    operation: Option<String>,
    path_prefix: Option<String>,
    api_key: Option<String>,
    user: Option<String>,
    client_ip: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    per_page: Option<usize>,
    format: Option<String>,
}

fn call_filter(q: &CallsParams) -> AppResult<CallFilter> {
    let status_class = match q.status.as_deref() {
        None => None,
        Some(s) if s.len() == 3 && s.ends_with("xx") && s.as_bytes()[0].is_ascii_digit() => {
            Some(i64::from(s.as_bytes()[0] - b'0'))
        }
        Some(s) => return Err(ApiError::BadRequest(format!("status: {s:?} is not a class such as 2xx or 4xx"))),
    };
    Ok(CallFilter {
        from: q.from.as_deref().map(|v| parse_time("from", v)).transpose()?,
        to: q.to.as_deref().map(|v| parse_time("to", v)).transpose()?,
        interface: q
            .interface
            .as_deref()
            .map(|v| v.parse::<Interface>().map_err(|e| ApiError::BadRequest(format!("interface: {e}"))))
            .transpose()?,
        operation: q
            .operation
            .as_deref()
            .map(|v| v.parse::<Operation>().map_err(|e| ApiError::BadRequest(format!("operation: {e}"))))
            .transpose()?,
        path_prefix: q.path_prefix.clone(),
        api_key: q.api_key.clone(),
        user: q.user.clone(),
        client_ip: q.client_ip.clone(),
        status_class,
    })
}

async fn account_calls(
    State(s): St,
    headers: HeaderMap,
    Path(account): Path<String>,
    Query(q): Query<CallsParams>,
) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    caller.require_read(&account)?;
    known_account(&s, &account)?;
    let filter = call_filter(&q)?;
    let after = q
        .cursor
        .as_deref()
        .map(|c| Position::from_cursor(c).ok_or(ApiError::BadRequest("cursor: not one this server gave".into())))
        .transpose()?;
    match q.format.as_deref() {
        Some("csv") => Ok(export::stream(s.store.clone(), account, filter, after, export::Format::Csv)),
        Some("ndjson") => Ok(export::stream(s.store.clone(), account, filter, after, export::Format::Ndjson)),
        None | Some("json") => {
            let per_page = q.per_page.unwrap_or(100);
            if per_page == 0 || per_page > 10_000 {
                return Err(ApiError::BadRequest("per_page: from 1 to 10000".into()));
            }
            let store = s.store.clone();
            let page = blocking(move || Ok(store.calls(&account, &filter, after, per_page)?)).await?;
            let calls: Vec<serde_json::Value> = page.calls.iter().map(|(_, c)| export::call_json(c)).collect();
            Ok(Json(json!({ "calls": calls, "next_cursor": page.next.map(|p| p.to_cursor()) })).into_response())
        }
        Some(other) => Err(ApiError::BadRequest(format!("format: {other:?} is not json, csv or ndjson"))),
    }
}

#[derive(Deserialize)]
struct AuditParams {
    from: Option<String>,
    to: Option<String>,
    day: Option<String>,
}

fn parse_day(v: &str) -> AppResult<NaiveDate> {
    NaiveDate::parse_from_str(v, "%Y-%m-%d")
        .map_err(|_| ApiError::BadRequest(format!("day: {v:?} is not a date YYYY-MM-DD")))
}

/// The range of an account's audit, and the UTC day when one was asked for.
/// Without `day`, `from` defaults to the start of the account's current usage
/// period and `to` to now: the period so far.
fn audit_range(
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

async fn account_audit(
    State(s): St,
    headers: HeaderMap,
    Path(account): Path<String>,
    Query(q): Query<AuditParams>,
) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    caller.require_read(&account)?;
    let rec = known_account(&s, &account)?;
    let (from, to, day) = audit_range(&rec, &q, Utc::now())?;
    if let Some(day) = day {
        let store = s.store.clone();
        let name = account.clone();
        if let Some(json) = blocking(move || Ok(store.audit(&name, day)?)).await? {
            return Ok(([(header::CONTENT_TYPE, "application/json"), (AUDIT_HEADER, "kept")], json).into_response());
        }
    }
    let _slot = s.live_audits.acquire().await.map_err(|_| ApiError::Unavailable("shutting down".into()))?;
    let state = s.clone();
    let report =
        blocking(move || audit::run(state.store.as_ref(), &state.settings, &account, from, to, &state.stopping))
            .await?
            .ok_or_else(|| ApiError::Unavailable("the server is shutting down".into()))?;
    Ok(([(AUDIT_HEADER, "live")], Json(report)).into_response())
}

/// Says whether an audit was kept by the daily schedule or made for the request.
const AUDIT_HEADER: header::HeaderName = header::HeaderName::from_static("callmeter-audit");

#[derive(Deserialize)]
struct AuditsParams {
    day: Option<String>,
    format: Option<String>,
}

async fn all_audits(State(s): St, headers: HeaderMap, Query(q): Query<AuditsParams>) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    if !matches!(caller, Caller::Admin | Caller::Support) {
        return Err(ApiError::Forbidden("read every account's audits"));
    }
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

async fn plans(State(s): St, headers: HeaderMap) -> AppResult<Response> {
    s.auth.caller(&headers)?;
    Ok(Json(json!({ "plans": s.settings.store.plans })).into_response())
}

async fn accounts(State(s): St, headers: HeaderMap) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    let all: Vec<AccountRecord> = s.store.accounts().into_iter().filter(|a| caller.may_read(&a.name)).collect();
    if caller == Caller::Ingest {
        return Err(ApiError::Forbidden("list accounts"));
    }
    Ok(Json(json!({ "accounts": all })).into_response())
}

async fn account(State(s): St, headers: HeaderMap, Path(account): Path<String>) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    caller.require_read(&account)?;
    Ok(Json(known_account(&s, &account)?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AccountPut {
    plan: Option<String>,
    timezone: Option<String>,
    period_anchor: Option<NaiveDate>,
}

async fn put_account(
    State(s): St,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    if !caller.may_manage(&account) {
        return Err(ApiError::Forbidden("manage this account"));
    }
    if !callmeter_model::is_valid_account(&account) {
        return Err(ApiError::BadRequest(format!("account {account:?} is not [a-z0-9][a-z0-9._-]{{0,63}}")));
    }
    let put: AccountPut = serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))?;
    let timezone = put
        .timezone
        .as_deref()
        .map(|t| {
            t.parse::<chrono_tz::Tz>()
                .map_err(|_| ApiError::BadRequest(format!("timezone: {t:?} is not an IANA time zone")))
        })
        .transpose()?;
    let change = AccountChange { plan: put.plan, timezone, anchor: put.period_anchor };
    let store = s.store.clone();
    let rec = blocking(move || Ok(store.upsert_account(&account, change)?)).await?;
    Ok(Json(rec).into_response())
}

#[derive(Deserialize)]
struct AdjustmentPost {
    calls: i64,
    reason: String,
    period: Option<String>,
}

async fn post_adjustment(
    State(s): St,
    headers: HeaderMap,
    Path(account): Path<String>,
    Json(a): Json<AdjustmentPost>,
) -> AppResult<Response> {
    s.auth.caller(&headers)?.require_admin("add adjustments")?;
    if a.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("reason: an adjustment needs a reason".into()));
    }
    let rec = known_account(&s, &account)?;
    let period = usage::select_period(&rec, a.period.as_deref().unwrap_or("current"), Utc::now())?;
    let adj =
        Adjustment { account, period_start: period.start, calls: a.calls, reason: a.reason, created_at: Utc::now() };
    let store = s.store.clone();
    let stored = adj.clone();
    blocking(move || Ok(store.add_adjustment(stored)?)).await?;
    Ok((StatusCode::CREATED, Json(adj)).into_response())
}

#[derive(Deserialize)]
struct AdjustmentsParams {
    period: Option<String>,
}

async fn adjustments(
    State(s): St,
    headers: HeaderMap,
    Path(account): Path<String>,
    Query(q): Query<AdjustmentsParams>,
) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    caller.require_read(&account)?;
    let rec = known_account(&s, &account)?;
    let period = usage::select_period(&rec, q.period.as_deref().unwrap_or("current"), Utc::now())?;
    let store = s.store.clone();
    let list = blocking(move || Ok(store.adjustments(&account, period.start)?)).await?;
    Ok(Json(json!({ "adjustments": list })).into_response())
}

#[derive(Deserialize)]
struct TokenPost {
    scope: String,
    #[serde(default)]
    label: String,
}

async fn post_token(State(s): St, headers: HeaderMap, Json(t): Json<TokenPost>) -> AppResult<Response> {
    s.auth.caller(&headers)?.require_admin("make tokens")?;
    let scope = match t.scope.as_str() {
        "admin" => Scope::Admin,
        "ingest" => Scope::Ingest,
        "support" => Scope::Support,
        other => {
            return Err(ApiError::BadRequest(format!(
                "scope: {other:?} is not admin, ingest or support (account keys: POST /v1/accounts/{{account}}/keys)"
            )))
        }
    };
    created_token(&s, scope, t.label).await
}

async fn created_token(s: &Arc<AppState>, scope: Scope, label: String) -> AppResult<Response> {
    let state = s.clone();
    let (rec, secret) = blocking(move || state.auth.create(state.store.as_ref(), scope, label)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "token": rec, "secret": secret }))).into_response())
}

async fn tokens(State(s): St, headers: HeaderMap) -> AppResult<Response> {
    s.auth.caller(&headers)?.require_admin("list tokens")?;
    Ok(Json(json!({ "tokens": s.auth.list() })).into_response())
}

async fn delete_token(State(s): St, headers: HeaderMap, Path(id): Path<String>) -> AppResult<Response> {
    s.auth.caller(&headers)?.require_admin("revoke tokens")?;
    revoke(&s, id, |_| true).await
}

async fn revoke(
    s: &Arc<AppState>,
    id: String,
    allowed: impl Fn(&callmeter_store::TokenRecord) -> bool + Send + 'static,
) -> AppResult<Response> {
    let state = s.clone();
    let found = blocking(move || state.auth.revoke(state.store.as_ref(), &id, allowed)).await?;
    if found {
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound("no such token".into()))
    }
}

#[derive(Deserialize, Default)]
struct KeyPost {
    #[serde(default)]
    label: String,
}

async fn post_account_key(
    State(s): St,
    headers: HeaderMap,
    Path(account): Path<String>,
    body: Bytes,
) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    if !caller.may_manage(&account) {
        return Err(ApiError::Forbidden("manage this account"));
    }
    known_account(&s, &account)?;
    let k: KeyPost = if body.is_empty() {
        KeyPost::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| ApiError::BadRequest(format!("body: {e}")))?
    };
    created_token(&s, Scope::Account(account), k.label).await
}

async fn delete_account_key(
    State(s): St,
    headers: HeaderMap,
    Path((account, id)): Path<(String, String)>,
) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    if !caller.may_manage(&account) {
        return Err(ApiError::Forbidden("manage this account"));
    }
    revoke(&s, id, move |t| t.scope == Scope::Account(account.clone())).await
}

async fn rotate_admin(State(s): St, headers: HeaderMap) -> AppResult<Response> {
    s.auth.caller(&headers)?.require_admin("rotate the admin token")?;
    let secret = s.auth.rotate_admin()?;
    tracing::info!("admin token rotated");
    Ok(Json(json!({ "secret": secret })).into_response())
}

#[derive(Deserialize)]
struct BackupPost {
    dir: std::path::PathBuf,
}

async fn backup(State(s): St, headers: HeaderMap, Json(b): Json<BackupPost>) -> AppResult<Response> {
    s.auth.caller(&headers)?.require_admin("take backups")?;
    let store = s.store.clone();
    let dir = b.dir.clone();
    let report = blocking(move || store.backup(&dir).map_err(|e| ApiError::BadRequest(format!("backup: {e}")))).await?;
    tracing::info!(dir = %b.dir.display(), rows = report.rows, "backup written");
    Ok(Json(json!({ "dir": b.dir, "rows": report.rows, "bytes": report.bytes, "format_version": callmeter_store::FORMAT_VERSION })).into_response())
}
