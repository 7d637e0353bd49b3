//! What every handler shares: the state, the router, and the small helpers
//! the route groups in `routes/` use. The operations endpoints (`/readyz`,
//! `/metrics`, `/openapi.json`) are here too: they belong to no group.

use crate::auth::{Auth, Caller};
use crate::body::BodyBudget;
use crate::error::{envelope_every_error, ApiError};
use crate::live_audits::LiveAudits;
use crate::metrics::{Load, Metrics};
use crate::options::Settings;
use crate::routes::{accounts, adjustments, admin, audits, calls, events, tokens, usage};
use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::Router;
use callmeter_store::{AccountRecord, Store};
use chrono::{DateTime, Utc};
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
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
    /// The thread that audits run on for requests, one at a time (`live_audits.rs`).
    pub live_audits: LiveAudits,
    /// The bytes of request bodies in flight (`body.rs`).
    pub bodies: BodyBudget,
    /// One permit per connection that may be open (`connections.rs`).
    pub connection_slots: Arc<Semaphore>,
}

/// What a handler answers.
pub(crate) type AppResult<T> = Result<T, ApiError>;
/// The state, as handlers take it.
pub(crate) type St = State<Arc<AppState>>;

/// Every route.
pub fn router(state: Arc<AppState>) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route("/openapi.json", get(openapi))
        .route("/v1/events", post(events::post_events))
        .route("/v1/usage", get(usage::all_usage))
        .route("/v1/plans", get(accounts::plans))
        .route("/v1/accounts", get(accounts::accounts))
        .route("/v1/accounts/{account}", get(accounts::account).put(accounts::put_account))
        .route("/v1/accounts/{account}/usage", get(usage::account_usage))
        .route("/v1/accounts/{account}/calls", get(calls::account_calls))
        .route("/v1/accounts/{account}/audit", get(audits::account_audit))
        .route("/v1/audits", get(audits::all_audits))
        .route("/v1/accounts/{account}/adjustments", get(adjustments::adjustments).post(adjustments::post_adjustment))
        .route("/v1/accounts/{account}/keys", post(tokens::post_account_key))
        .route("/v1/accounts/{account}/keys/{id}", delete(tokens::delete_account_key))
        .route("/v1/tokens", get(tokens::tokens).post(tokens::post_token))
        .route("/v1/tokens/{id}", delete(tokens::delete_token))
        .route("/v1/admin/rotate-token", post(admin::rotate_admin))
        .route("/v1/admin/backup", post(admin::backup))
        .fallback(|| async { ApiError::NotFound("no such route".into()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::map_response(envelope_every_error))
        .with_state(state.clone())
        .merge(crate::dashboard::router(state)) // after the JSON envelope: its pages answer in HTML
}

/// Runs blocking store work off the async workers.
pub(crate) async fn blocking<T: Send + 'static>(f: impl FnOnce() -> AppResult<T> + Send + 'static) -> AppResult<T> {
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
        let caller = s.auth.caller(&headers).inspect_err(|_| Metrics::add(&s.metrics.refused_unauthorized, 1))?;
        if !matches!(caller, Caller::Admin | Caller::Support) {
            return Err(ApiError::Forbidden("read metrics"));
        }
    }
    let load = Load {
        open_connections: s.settings.limits.max_connections - s.connection_slots.available_permits(),
        body_bytes_in_flight: s.bodies.in_flight(),
    };
    let body = s.metrics.render(s.store.disk_bytes(), s.store.accounts().len(), s.store.is_writable(), load);
    Ok(([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response())
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], include_str!("../openapi.json")).into_response()
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
