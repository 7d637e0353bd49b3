//! What every handler shares: the state, the router (with the description
//! of every route, `openapi/`), and the small helpers the route groups in
//! `routes/` use. The operations endpoints (`/healthz`, `/readyz`,
//! `/metrics`, `/openapi.json`) are here too: they belong to no group.

use crate::auth::{Auth, Caller};
use crate::body::BodyBudget;
use crate::error::{envelope_every_error, ApiError};
use crate::live_audits::LiveAudits;
use crate::metrics::{Load, Metrics};
use crate::openapi::{self, OpenApiJson};
use crate::options::Settings;
use crate::routes::{accounts, adjustments, admin, alerts, audits, calls, deliveries, events, tokens, usage, webhooks};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Router};
use callmeter_store::{AccountRecord, Store};
use chrono::{DateTime, Utc};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use tokio::sync::Semaphore;
use utoipa::OpenApi as _;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

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
    /// The thread that audits run on for requests, one at a time (`live_audits.rs`).
    pub live_audits: LiveAudits,
    /// The usage reports by api key or user that may run at once (`report_slots.rs`).
    pub reports: crate::report_slots::ReportSlots,
    /// The bytes of request bodies in flight (`body.rs`).
    pub bodies: BodyBudget,
    /// One permit per connection that may be open (`connections.rs`).
    pub connection_slots: Arc<Semaphore>,
    /// What the webhook delivery engine has done and holds (`/metrics`).
    pub deliveries: Arc<callmeter_webhooks::DeliveryStats>,
}

/// What a handler answers.
pub(crate) type AppResult<T> = Result<T, ApiError>;
/// The state, as handlers take it.
pub(crate) type St = State<Arc<AppState>>;

/// Every route, and the description of each: each handler is registered
/// with its `#[utoipa::path]` operation, so that none is served undescribed.
pub(crate) fn described_routes() -> OpenApiRouter<Arc<AppState>> {
    OpenApiRouter::with_openapi(openapi::ApiDoc::openapi())
        .routes(routes!(healthz))
        .routes(routes!(readyz))
        .routes(routes!(metrics))
        .routes(routes!(serve_openapi))
        .routes(routes!(events::post_events))
        .routes(routes!(usage::all_usage))
        .routes(routes!(accounts::plans))
        .routes(routes!(accounts::accounts))
        .routes(routes!(accounts::account, accounts::put_account))
        .routes(routes!(usage::account_usage))
        .routes(routes!(calls::account_calls))
        .routes(routes!(audits::account_audit))
        .routes(routes!(audits::all_audits))
        .routes(routes!(adjustments::adjustments, adjustments::post_adjustment))
        .routes(routes!(tokens::post_account_key))
        .routes(routes!(tokens::delete_account_key))
        .routes(routes!(tokens::tokens, tokens::post_token))
        .routes(routes!(tokens::delete_token))
        .routes(routes!(webhooks::webhooks, webhooks::post_webhook))
        .routes(routes!(webhooks::webhook, webhooks::patch_webhook, webhooks::delete_webhook))
        .routes(routes!(webhooks::rotate_secret))
        .routes(routes!(deliveries::deliveries))
        .routes(routes!(deliveries::redeliver))
        .routes(routes!(deliveries::replay))
        .routes(routes!(alerts::alerts))
        .routes(routes!(admin::rotate_admin))
        .routes(routes!(admin::backup))
}

/// Every route, with the description this configuration serves at `/openapi.json`.
pub fn router(state: Arc<AppState>) -> Router {
    let (routes, doc) = described_routes().split_for_parts();
    let doc = openapi::describe(doc, &state.settings.store.plans, state.settings.metrics_public);
    let json = openapi::to_json(&doc).to_string();
    let known_params = Arc::new(crate::known_params::KnownParams::of(&doc, state.clone()));
    routes
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        // A query parameter its route does not take is refused, by the route's description.
        .layer(axum::middleware::from_fn_with_state(known_params, crate::known_params::refuse_unknown))
        .layer(axum::middleware::map_response(envelope_every_error))
        .layer(Extension(OpenApiJson(json.into())))
        .with_state(state.clone())
        .merge(crate::dashboard::router(state)) // after the JSON envelope: its pages answer in HTML
}

/// Runs blocking store work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> AppResult<T> + Send + 'static) -> AppResult<T> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(format!("task failed: {e}")))?
}

/// Liveness: the process answers.
///
/// Public.
#[utoipa::path(get, path = "/healthz", tag = "operations",
    responses((status = 200, description = "Alive", body = String, content_type = "text/plain")))]
async fn healthz() -> &'static str {
    "ok\n"
}

/// Readiness: whether the store takes writes.
///
/// Public. 503 (`unavailable`) while it does not (a full disk, a failed sync).
#[utoipa::path(get, path = "/readyz", tag = "operations",
    responses(
        (status = 200, description = "Ready", body = String, content_type = "text/plain"),
        (status = 503, response = crate::openapi::responses::Unavailable),
    ))]
async fn readyz(State(s): St) -> Response {
    if s.store.is_writable() {
        (StatusCode::OK, "ready\n").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "store is not writable\n").into_response()
    }
}

/// Prometheus metrics.
///
/// Scopes: admin, support (public with `metrics_public = true`). Counts
/// refusals (`callmeter_refused_*_total`: unauthorized before the body,
/// bodies in flight, store busy, live audits, connections), timeouts, and the
/// gauges `callmeter_open_connections` and `callmeter_body_bytes_in_flight`.
#[utoipa::path(get, path = "/metrics", tag = "operations",
    responses((status = 200, description = "The metrics, in Prometheus' text format", body = String,
        content_type = "text/plain; version=0.0.4")),
    security(("bearer" = [])))]
async fn metrics(State(s): St, headers: HeaderMap) -> AppResult<Response> {
    if !s.settings.metrics_public {
        let caller = s.auth.caller(&headers).inspect_err(|_| Metrics::add(&s.metrics.refused_unauthorized, 1))?;
        if !matches!(caller, Caller::Admin | Caller::Support) {
            return Err(ApiError::Forbidden("read metrics"));
        }
    }
    let load = Load {
        open_connections: s.settings.limits.max_connections - s.connection_slots.available_permits(),
        body_bytes_in_flight: s.bodies.in_flight(),
    };
    let mut body = s.metrics.render(s.store.disk_bytes(), s.store.accounts().len(), s.store.is_writable(), load);
    crate::metrics::render_deliveries(&mut body, &s.deliveries, s.store.changes_unprocessed());
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

/// This description (OpenAPI 3.1), generated from the code.
///
/// Public.
#[utoipa::path(get, path = "/openapi.json", tag = "operations",
    responses((status = 200, description = "The description of the API as this server serves it",
        body = Object, content_type = "application/json")))]
async fn serve_openapi(Extension(OpenApiJson(json)): Extension<OpenApiJson>) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], json.to_string()).into_response()
}

/// The account, or 404.
pub(crate) fn known_account(s: &AppState, name: &str) -> AppResult<AccountRecord> {
    s.store.account(name).ok_or_else(|| ApiError::NotFound(format!("unknown account {name:?}")))
}

/// An RFC 3339 query parameter, or 400 naming it.
pub(crate) fn parse_time(name: &str, v: &str) -> AppResult<DateTime<Utc>> {
    DateTime::parse_from_rfc3339(v)
        .map(|t| t.with_timezone(&Utc))
        .map_err(|_| ApiError::BadRequest(format!("{name}: {v:?} is not an RFC 3339 time")))
}
