//! Webhook subscriptions of an account, their deliveries, redelivery and
//! replay (DESIGN §7). Admin and the account's own key manage them; support
//! reads them; no one ever reads a signing secret back: it is shown once,
//! when made and when rotated. Custom header values are shown masked (they
//! often carry the receiver's credentials).
//!
//! A target is checked when it is set (`callmeter_webhooks::check_target`:
//! `http`/`https`, and no refused address, literal or resolved) and again at
//! every connection by the delivery engine.

use crate::api::{blocking, known_account, parse_time, AppResult, AppState, St};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::extract::{bounded, Path, Query, MAX_PARAM_BYTES};
use crate::guard::{AccountManager, AccountReader};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_model::Action;
use callmeter_store::{SigningSecret, Subscription, SubscriptionUpdate, Watch};
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// Subscriptions one account may have.
const MAX_SUBSCRIPTIONS: usize = 100;

/// How long a rotated secret still signs.
fn rotation_overlap() -> chrono::Duration {
    chrono::Duration::hours(24)
}

/// What the API shows of a subscription: never a secret, header values masked.
#[derive(Serialize)]
pub(crate) struct WebhookView {
    id: String,
    account: String,
    url: String,
    folder: String,
    actions: Vec<Action>,
    enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    headers: BTreeMap<String, &'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    failing_since: Option<DateTime<Utc>>,
    /// Until when a rotated secret still signs beside the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<DateTime<Utc>>,
    created_at: DateTime<Utc>,
    updated_at: DateTime<Utc>,
}

impl WebhookView {
    fn of(sub: &Subscription) -> WebhookView {
        let Watch::Folder { folder } = &sub.watch;
        WebhookView {
            id: sub.id.clone(),
            account: sub.account.clone(),
            url: sub.url.clone(),
            folder: folder.clone(),
            actions: sub.actions.clone(),
            enabled: sub.enabled,
            disabled_reason: sub.disabled_reason.clone(),
            headers: sub.headers.keys().map(|k| (k.clone(), "***")).collect(),
            failing_since: sub.failing_since,
            previous_secret_expires_at: sub.secrets.iter().filter_map(|s| s.expires_at).max(),
            created_at: sub.created_at,
            updated_at: sub.updated_at,
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookPost {
    url: String,
    #[serde(default)]
    folder: Option<String>,
    #[serde(default)]
    actions: Option<Vec<Action>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookPatch {
    #[serde(default)]
    url: Option<String>,
    #[serde(default)]
    folder: Option<String>,
    #[serde(default)]
    actions: Option<Vec<Action>>,
    #[serde(default)]
    enabled: Option<bool>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// A folder: absolute, bounded, no control characters; normalized.
fn checked_folder(folder: &str) -> AppResult<String> {
    bounded("folder", Some(folder))?;
    if !folder.starts_with('/') || folder.chars().any(char::is_control) {
        return Err(ApiError::BadRequest(format!("folder: {folder:?} is not an absolute path (/in, /)")));
    }
    Ok(callmeter_model::normalize_path(folder).to_owned())
}

/// Actions: at least one, each once.
fn checked_actions(actions: Vec<Action>) -> AppResult<Vec<Action>> {
    let mut sorted = actions;
    sorted.sort();
    sorted.dedup();
    if sorted.is_empty() {
        return Err(ApiError::BadRequest("actions: at least one of create, update, destroy, move, copy, read".into()));
    }
    Ok(sorted)
}

async fn checked_url(s: &AppState, url: &str) -> AppResult<String> {
    if url.len() > MAX_PARAM_BYTES {
        return Err(ApiError::BadRequest(format!("url: more than {MAX_PARAM_BYTES} bytes")));
    }
    callmeter_webhooks::check_target(url, s.settings.webhooks.allow_private_targets)
        .await
        .map(|u| u.to_string())
        .map_err(|e| ApiError::BadRequest(format!("url: {e}")))
}

fn checked_headers(headers: &BTreeMap<String, String>) -> AppResult<BTreeMap<String, String>> {
    callmeter_webhooks::check_headers(headers).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn new_webhook_id() -> String {
    let mut raw = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("wh_{}", hex::encode(raw))
}

pub(crate) async fn post_webhook(
    State(s): St,
    AccountManager { account }: AccountManager,
    JsonBody(p): JsonBody<WebhookPost>,
) -> AppResult<Response> {
    known_account(&s, &account)?;
    if s.store.subscriptions(&account).len() >= MAX_SUBSCRIPTIONS {
        return Err(ApiError::BadRequest(format!("an account has at most {MAX_SUBSCRIPTIONS} webhooks")));
    }
    let folder = checked_folder(p.folder.as_deref().unwrap_or("/"))?;
    let default_actions = vec![Action::Create, Action::Update, Action::Destroy, Action::Move, Action::Copy];
    let actions = checked_actions(p.actions.unwrap_or(default_actions))?;
    let headers = checked_headers(&p.headers.unwrap_or_default())?;
    let url = checked_url(&s, &p.url).await?;
    let secret = callmeter_webhooks::signing::new_secret();
    let now = Utc::now();
    let sub = Subscription {
        id: new_webhook_id(),
        account,
        url,
        watch: Watch::Folder { folder },
        actions,
        enabled: p.enabled.unwrap_or(true),
        disabled_reason: None,
        headers,
        secrets: vec![SigningSecret { secret: secret.clone(), expires_at: None }],
        failing_since: None,
        created_at: now,
        updated_at: now,
    };
    let store = s.store.clone();
    let sub = blocking(move || Ok(store.create_subscription(sub)?)).await?;
    tracing::info!(account = %sub.account, webhook = %sub.id, url = %sub.url, "webhook created");
    Ok((StatusCode::CREATED, Json(json!({ "webhook": WebhookView::of(&sub), "secret": secret }))).into_response())
}

pub(crate) async fn webhooks(State(s): St, AccountReader { account }: AccountReader) -> AppResult<Response> {
    known_account(&s, &account)?;
    let all: Vec<WebhookView> = s.store.subscriptions(&account).iter().map(WebhookView::of).collect();
    Ok(Json(json!({ "webhooks": all })).into_response())
}

fn known_webhook(s: &AppState, account: &str, id: &str) -> AppResult<Subscription> {
    known_account(s, account)?;
    s.store
        .subscription(account, id)
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {id:?} in account {account:?}")))
}

pub(crate) async fn webhook(
    State(s): St,
    AccountReader { account }: AccountReader,
    Path((_, id)): Path<(String, String)>,
) -> AppResult<Response> {
    Ok(Json(json!({ "webhook": WebhookView::of(&known_webhook(&s, &account, &id)?) })).into_response())
}

async fn update(s: &AppState, account: String, id: String, update: SubscriptionUpdate) -> AppResult<Subscription> {
    let store = s.store.clone();
    let (a, i) = (account.clone(), id.clone());
    blocking(move || store.update_subscription(&a, &i, update).map_err(ApiError::from))
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {id:?} in account {account:?}")))
}

pub(crate) async fn patch_webhook(
    State(s): St,
    AccountManager { account }: AccountManager,
    Path((_, id)): Path<(String, String)>,
    JsonBody(p): JsonBody<WebhookPatch>,
) -> AppResult<Response> {
    known_webhook(&s, &account, &id)?;
    let watch = match p.folder.as_deref() {
        Some(f) => Some(Watch::Folder { folder: checked_folder(f)? }),
        None => None,
    };
    let actions = p.actions.map(checked_actions).transpose()?;
    let headers = p.headers.as_ref().map(checked_headers).transpose()?;
    let url = match p.url.as_deref() {
        Some(u) => Some(checked_url(&s, u).await?),
        None => None,
    };
    let change = SubscriptionUpdate { url, watch, actions, enabled: p.enabled, headers, ..Default::default() };
    let sub = update(&s, account, id, change).await?;
    Ok(Json(json!({ "webhook": WebhookView::of(&sub) })).into_response())
}

pub(crate) async fn delete_webhook(
    State(s): St,
    AccountManager { account }: AccountManager,
    Path((_, id)): Path<(String, String)>,
) -> AppResult<Response> {
    known_account(&s, &account)?;
    let store = s.store.clone();
    let (a, i) = (account.clone(), id.clone());
    if blocking(move || Ok(store.delete_subscription(&a, &i)?)).await? {
        tracing::info!(account = %account, webhook = %id, "webhook deleted");
        Ok(StatusCode::NO_CONTENT.into_response())
    } else {
        Err(ApiError::NotFound(format!("no webhook {id:?} in account {account:?}")))
    }
}

pub(crate) async fn rotate_secret(
    State(s): St,
    AccountManager { account }: AccountManager,
    Path((_, id)): Path<(String, String)>,
) -> AppResult<Response> {
    known_webhook(&s, &account, &id)?;
    let secret = callmeter_webhooks::signing::new_secret();
    let until = Utc::now() + rotation_overlap();
    let change = SubscriptionUpdate { rotate_secret: Some((secret.clone(), until)), ..Default::default() };
    let sub = update(&s, account, id, change).await?;
    Ok(Json(json!({ "webhook": WebhookView::of(&sub), "secret": secret })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct DeliveriesParams {
    before: Option<u64>,
    per_page: Option<usize>,
}

pub(crate) async fn deliveries(
    State(s): St,
    AccountReader { account }: AccountReader,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<DeliveriesParams>,
) -> AppResult<Response> {
    known_webhook(&s, &account, &id)?;
    let per_page = q.per_page.unwrap_or(100);
    if per_page == 0 || per_page > 1_000 {
        return Err(ApiError::BadRequest("per_page: from 1 to 1000".into()));
    }
    let store = s.store.clone();
    let page = blocking(move || Ok(store.delivery_attempts(&account, &id, q.before, per_page)?)).await?;
    Ok(Json(json!({ "attempts": page.attempts, "next_before": page.next_before })).into_response())
}

pub(crate) async fn redeliver(
    State(s): St,
    AccountManager { account }: AccountManager,
    Path((_, id, delivery)): Path<(String, String, u64)>,
) -> AppResult<Response> {
    let sub = known_webhook(&s, &account, &id)?;
    if !sub.enabled {
        return Err(ApiError::BadRequest(format!("webhook {id:?} is disabled: enable it first")));
    }
    let store = s.store.clone();
    if blocking(move || Ok(store.redeliver(&account, &id, delivery, Utc::now())?)).await? {
        Ok((StatusCode::ACCEPTED, Json(json!({ "redelivering": delivery }))).into_response())
    } else {
        Err(ApiError::NotFound(format!("no delivery {delivery} of this webhook")))
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayPost {
    since: String,
}

pub(crate) async fn replay(
    State(s): St,
    AccountManager { account }: AccountManager,
    Path((_, id)): Path<(String, String)>,
    JsonBody(p): JsonBody<ReplayPost>,
) -> AppResult<Response> {
    let sub = known_webhook(&s, &account, &id)?;
    let since = parse_time("since", &p.since)?;
    if !sub.enabled {
        return Err(ApiError::BadRequest(format!("webhook {id:?} is disabled: enable it first, then replay")));
    }
    let store = s.store.clone();
    let n = blocking(move || Ok(store.replay(&account, &id, since, Utc::now())?)).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "replaying": n }))).into_response())
}
