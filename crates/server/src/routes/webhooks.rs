//! Webhook subscriptions of an account (DESIGN §7): to a folder's changes
//! (`folder`, `actions`), or to the account's usage alerts (`events`).
//! Admin and the account's own key manage them; support reads them; no one
//! ever reads a signing secret back: it is shown once, when made and when
//! rotated. Custom header values are shown masked (they often carry the
//! receiver's credentials). Deliveries, redelivery and replay are in
//! `deliveries.rs`.
//!
//! A target is checked when it is set (`callmeter_webhooks::check_target`:
//! `http`/`https`, and no refused address, literal or resolved) and again at
//! every connection by the delivery engine.

use crate::api::{blocking, known_account, AppResult, AppState, St};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::extract::{bounded, Path, MAX_PARAM_BYTES};
use crate::guard::{AccountManager, AccountReader};
use crate::openapi::{params, responses, webhooks as docs};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_model::Action;
use callmeter_store::{AlertKind, Subscription, SubscriptionUpdate, Watch};
use callmeter_webhooks::target_of;
use chrono::{DateTime, Utc};
use rand::RngCore;
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::BTreeMap;

/// The actions of a folder subscription that names none: every change but reads.
pub(crate) const DEFAULT_ACTIONS: [Action; 5] =
    [Action::Create, Action::Update, Action::Destroy, Action::Move, Action::Copy];

/// How long a rotated secret still signs.
fn rotation_overlap() -> chrono::Duration {
    chrono::Duration::hours(24)
}

/// What the API shows of a subscription: never a secret, header values masked.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Webhook)]
pub(crate) struct WebhookView {
    /// Its id.
    #[schema(value_type = params::WebhookId, inline)]
    id: String,
    /// The account.
    #[schema(value_type = params::AccountName, inline)]
    account: String,
    /// Where deliveries are posted.
    url: String,
    /// A folder subscription: the folder watched (subfolders included).
    #[serde(skip_serializing_if = "Option::is_none")]
    folder: Option<String>,
    /// A folder subscription: the actions told of.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<params::ActionName>>)]
    actions: Option<Vec<Action>>,
    /// An alert subscription: the usage alerts told of.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<params::AlertEventName>>)]
    events: Option<Vec<AlertKind>>,
    /// Whether deliveries are sent (events of a disabled one are kept, to be replayed).
    enabled: bool,
    /// Why it was disabled, when the delivery engine disabled it (a 410, or five days of failures).
    #[serde(skip_serializing_if = "Option::is_none")]
    disabled_reason: Option<String>,
    /// Its custom headers, values masked.
    #[schema(value_type = BTreeMap<String, String>)]
    headers: BTreeMap<String, &'static str>,
    /// When its deliveries began to fail without a success since.
    #[serde(skip_serializing_if = "Option::is_none")]
    failing_since: Option<DateTime<Utc>>,
    /// Until when a rotated secret still signs beside the current one.
    #[serde(skip_serializing_if = "Option::is_none")]
    previous_secret_expires_at: Option<DateTime<Utc>>,
    /// When it was made.
    created_at: DateTime<Utc>,
    /// When it last changed.
    updated_at: DateTime<Utc>,
}

impl WebhookView {
    fn of(sub: &Subscription) -> WebhookView {
        let (folder, actions, events) = match &sub.watch {
            Watch::Folder { folder } => (Some(folder.clone()), Some(sub.actions.clone()), None),
            Watch::Alerts { events } => (None, None, Some(events.clone())),
        };
        WebhookView {
            id: sub.id.clone(),
            account: sub.account.clone(),
            url: sub.url.clone(),
            folder,
            actions,
            events,
            enabled: sub.enabled,
            disabled_reason: sub.disabled_reason.clone(),
            headers: sub.headers.keys().map(|k| (k.clone(), MASKED_HEADER_VALUE)).collect(),
            failing_since: sub.failing_since,
            previous_secret_expires_at: sub.secrets.iter().filter_map(|s| s.expires_at).max(),
            created_at: sub.created_at,
            updated_at: sub.updated_at,
        }
    }
}

/// One webhook.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct WebhookAnswer {
    webhook: WebhookView,
}

/// A webhook with its signing secret: shown this once.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct WebhookWithSecret {
    webhook: WebhookView,
    /// `whsec_` + base64: verify each delivery's `webhook-signature` with it.
    secret: String,
}

/// An account's webhooks.
#[derive(utoipa::ToSchema)]
#[allow(dead_code)]
pub(crate) struct WebhooksAnswer {
    webhooks: Vec<WebhookView>,
}

/// The body of `POST` and `PATCH` (their schemas: `openapi/webhooks.rs`).
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct WebhookBody {
    #[serde(default)]
    pub url: Option<String>,
    #[serde(default)]
    pub folder: Option<String>,
    #[serde(default)]
    pub actions: Option<Vec<Action>>,
    #[serde(default)]
    pub events: Option<Vec<EventName>>,
    #[serde(default)]
    pub enabled: Option<bool>,
    #[serde(default)]
    pub headers: Option<BTreeMap<String, String>>,
}

impl WebhookBody {
    /// What it watches, if it says: `events` make an alert subscription;
    /// `folder` or `actions` a folder one (`was`: what it watched before,
    /// whose folder and actions fill in what is left out).
    /// A webhook keeps its kind: a change that names the other kind's
    /// fields is refused (409: valid, but not for this webhook as it is),
    /// not taken as a new kind (which would drop the folder, or the events,
    /// unasked).
    fn watch(&self, was: Option<&Subscription>) -> AppResult<Option<(Watch, Vec<Action>)>> {
        let was_alerts = was.map(|s| matches!(s.watch, Watch::Alerts { .. }));
        if let Some(events) = &self.events {
            if self.folder.is_some() || self.actions.is_some() {
                return Err(ApiError::BadRequest(
                    "events: an alert subscription has no folder or actions: give events, or folder and actions".into(),
                ));
            }
            if was_alerts == Some(false) {
                return Err(ApiError::Conflict(
                    "events: this webhook watches a folder, and a webhook keeps its kind: create an alert \
                     subscription for the events (and delete this one if it is no longer wanted)"
                        .into(),
                ));
            }
            return Ok(Some((Watch::Alerts { events: checked_events(events)? }, Vec::new())));
        }
        if (self.folder.is_some() || self.actions.is_some()) && was_alerts == Some(true) {
            return Err(ApiError::Conflict(
                "folder: this webhook is an alert subscription, and a webhook keeps its kind: create a folder \
                 webhook (and delete this one if it is no longer wanted)"
                    .into(),
            ));
        }
        if self.folder.is_none() && self.actions.is_none() && was.is_some() {
            return Ok(None);
        }
        let (old_folder, old_actions) = match was.map(|s| (&s.watch, &s.actions)) {
            Some((Watch::Folder { folder }, actions)) => (Some(folder.as_str()), Some(actions.clone())),
            _ => (None, None),
        };
        let folder = checked_folder(self.folder.as_deref().or(old_folder).unwrap_or("/"))?;
        let actions = match &self.actions {
            Some(a) => checked_actions(a.clone())?,
            None => old_actions.unwrap_or_else(|| DEFAULT_ACTIONS.to_vec()),
        };
        Ok(Some((Watch::Folder { folder }, actions)))
    }
}

/// A folder: absolute, bounded, no control characters; normalized.
fn checked_folder(folder: &str) -> AppResult<String> {
    bounded("folder", Some(folder))?;
    if folder.chars().any(|c| c.is_control() || callmeter_model::misleads(c)) {
        return Err(ApiError::BadRequest(format!(
            "folder: {folder:?} has a control, invisible or text-reordering character"
        )));
    }
    if !folder.starts_with('/') {
        return Err(ApiError::BadRequest(format!("folder: {folder:?} is not an absolute path (/in, /)")));
    }
    // Matched as a prefix of the calls' paths: `..` or `.` would name another folder than it seems to.
    if folder.split('/').any(|segment| segment == ".." || segment == ".") {
        return Err(ApiError::BadRequest(format!("folder: {folder:?} has a . or .. segment: name the folder itself")));
    }
    Ok(callmeter_model::normalize_path(folder).into_owned())
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

/// What a request may name instead of the alert events: every one.
pub(crate) const ALL_EVENTS: &str = "all";

/// An alert event a request names, or [`ALL_EVENTS`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EventName {
    All,
    Kind(AlertKind),
}

impl EventName {
    /// The event `name` names; why not, when it names none.
    pub(crate) fn parse(name: &str) -> Result<EventName, String> {
        if name == ALL_EVENTS {
            return Ok(EventName::All);
        }
        AlertKind::parse(name).map(EventName::Kind).ok_or_else(|| {
            let known = AlertKind::ALL.map(AlertKind::as_str).join(", ");
            format!("unknown event {name:?}: one of {known}, or {ALL_EVENTS}")
        })
    }
}

impl<'de> Deserialize<'de> for EventName {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<EventName, D::Error> {
        EventName::parse(&std::borrow::Cow::<str>::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

/// Alert events: at least one, each once (`all`: every one).
fn checked_events(events: &[EventName]) -> AppResult<Vec<AlertKind>> {
    let mut sorted: Vec<AlertKind> = events
        .iter()
        .flat_map(|e| match e {
            EventName::All => &AlertKind::ALL[..],
            EventName::Kind(kind) => std::slice::from_ref(kind),
        })
        .copied()
        .collect();
    sorted.sort();
    sorted.dedup();
    if sorted.is_empty() {
        return Err(ApiError::BadRequest(
            "events: at least one of usage.threshold_reached, usage.projected_overage, usage.spike".into(),
        ));
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

/// How a custom header's value is shown: never the value itself.
const MASKED_HEADER_VALUE: &str = "***";

/// The headers of a body, checked. A value given as the mask (a webhook read,
/// changed and sent back whole) keeps the header's current value in `was`;
/// with none to keep, it is refused rather than sent as the value.
fn checked_headers(
    headers: &BTreeMap<String, String>,
    was: Option<&Subscription>,
) -> AppResult<BTreeMap<String, String>> {
    let mut unmasked = headers.clone();
    for (name, value) in &mut unmasked {
        if value == MASKED_HEADER_VALUE {
            match was.and_then(|w| w.headers.get(name)) {
                Some(current) => value.clone_from(current),
                None => {
                    return Err(ApiError::BadRequest(format!(
                        "headers.{name}: {MASKED_HEADER_VALUE:?} is how a value is shown masked, and there is no \
                         {name} value to keep (this webhook has none, or it moves to another host): give its value"
                    )))
                }
            }
        }
    }
    callmeter_webhooks::check_headers(&unmasked).map_err(|e| ApiError::BadRequest(e.to_string()))
}

fn new_webhook_id() -> String {
    let mut raw = [0u8; 8];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("wh_{}", hex::encode(raw))
}

/// Subscribe a URL to a folder's changes, or to the account's usage alerts.
///
/// Scopes: admin, its key. A folder subscription (`folder`, default `/`;
/// `actions`, default every change but `read`) is told of every change at or
/// under the folder; an alert subscription (`events`: `usage.threshold_reached`,
/// `usage.projected_overage`, `usage.spike`, or `all`) of the account's usage alerts;
/// never both. The answer carries the signing secret, shown this once. At
/// most 100 webhooks an account (409 `conflict` past it).
#[utoipa::path(post, path = "/v1/accounts/{account}/webhooks", tag = "webhooks",
    params(params::AccountPath),
    request_body = docs::WebhookPostDoc,
    responses(
        (status = 201, description = "The webhook and its secret", body = WebhookWithSecret, links(
            ("Read" = (operation_id = "webhook", parameters(("account" = "$response.body#/webhook/account"), ("id" = "$response.body#/webhook/id")))),
            ("Change" = (operation_id = "patch_webhook", parameters(("account" = "$response.body#/webhook/account"), ("id" = "$response.body#/webhook/id")))),
            ("Delete" = (operation_id = "delete_webhook", parameters(("account" = "$response.body#/webhook/account"), ("id" = "$response.body#/webhook/id")))),
            ("RotateSecret" = (operation_id = "rotate_secret", parameters(("account" = "$response.body#/webhook/account"), ("id" = "$response.body#/webhook/id")))),
            ("Deliveries" = (operation_id = "deliveries", parameters(("account" = "$response.body#/webhook/account"), ("id" = "$response.body#/webhook/id")))),
            ("Replay" = (operation_id = "replay", parameters(("account" = "$response.body#/webhook/account"), ("id" = "$response.body#/webhook/id")))),
        )),
        (status = 404, response = responses::NotFound),
        (status = 409, response = responses::Conflict),
        (status = 507, response = responses::DiskFull),
    ),
    security(("bearer" = [])))]
pub(crate) async fn post_webhook(
    State(s): St,
    AccountManager { account, .. }: AccountManager,
    JsonBody(p): JsonBody<WebhookBody>,
) -> AppResult<Response> {
    let (sub, secret) = create_webhook(&s, account, p).await?;
    Ok((StatusCode::CREATED, Json(json!({ "webhook": WebhookView::of(&sub), "secret": secret }))).into_response())
}

/// Makes a subscription from `p` (what `POST …/webhooks` does, also for the
/// dashboard's form): the subscription and its signing secret, to be shown once.
pub(crate) async fn create_webhook(s: &AppState, account: String, p: WebhookBody) -> AppResult<(Subscription, String)> {
    known_account(s, &account)?;
    let Some(url) = p.url.as_deref() else { return Err(ApiError::BadRequest("url: a webhook needs a url".into())) };
    let (watch, actions) = p.watch(None)?.expect("a new subscription always watches something");
    let headers = checked_headers(&p.headers.clone().unwrap_or_default(), None)?;
    let url = checked_url(s, url).await?;
    let secret = callmeter_webhooks::signing::new_secret();
    let now = Utc::now();
    let sub = Subscription {
        enabled: p.enabled.unwrap_or(true),
        headers,
        ..Subscription::new((&account, &new_webhook_id()), &url, (watch, actions), &secret, now)
    };
    let store = s.store.clone();
    let sub = blocking(move || Ok(store.create_subscription(sub)?)).await?;
    tracing::info!(account = %sub.account, webhook = %sub.id, url = %sub.url, "webhook created");
    Ok((sub, secret))
}

/// The account's webhooks.
///
/// Scopes: admin, support, its key.
#[utoipa::path(get, path = "/v1/accounts/{account}/webhooks", tag = "webhooks",
    params(params::AccountPath),
    responses(
        (status = 200, description = "The webhooks, by id", body = WebhooksAnswer),
        (status = 404, response = responses::NotFound),
    ),
    security(("bearer" = [])))]
pub(crate) async fn webhooks(State(s): St, AccountReader { account }: AccountReader) -> AppResult<Response> {
    known_account(&s, &account)?;
    let all: Vec<WebhookView> = s.store.subscriptions(&account).iter().map(WebhookView::of).collect();
    Ok(Json(json!({ "webhooks": all })).into_response())
}

/// The subscription, or 404 naming what is missing.
pub(crate) fn known_webhook(s: &AppState, account: &str, id: &str) -> AppResult<Subscription> {
    known_account(s, account)?;
    s.store
        .subscription(account, id)
        .map(|sub| (*sub).clone())
        .ok_or_else(|| ApiError::NotFound(format!("no webhook {id:?} in account {account:?}")))
}

/// One webhook.
///
/// Scopes: admin, support, its key.
#[utoipa::path(get, path = "/v1/accounts/{account}/webhooks/{id}", tag = "webhooks",
    params(params::WebhookPath),
    responses(
        (status = 200, description = "The webhook", body = WebhookAnswer),
        (status = 404, response = responses::NotFound),
    ),
    security(("bearer" = [])))]
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

/// Change a webhook: its target, what it watches, whether it is enabled, its headers.
///
/// Scopes: admin, its key. What is left out stays. Enabling a webhook the
/// delivery engine disabled clears its reason and its failures; `replay`
/// then sends what was kept meanwhile.
#[utoipa::path(patch, path = "/v1/accounts/{account}/webhooks/{id}", tag = "webhooks",
    params(params::WebhookPath),
    request_body = docs::WebhookPatchDoc,
    responses(
        (status = 200, description = "The webhook as changed", body = WebhookAnswer),
        (status = 404, response = responses::NotFound),
        (status = 409, response = responses::Conflict),
        (status = 507, response = responses::DiskFull),
    ),
    security(("bearer" = [])))]
pub(crate) async fn patch_webhook(
    State(s): St,
    AccountManager { account, .. }: AccountManager,
    Path((_, id)): Path<(String, String)>,
    JsonBody(p): JsonBody<WebhookBody>,
) -> AppResult<Response> {
    let sub = change_webhook(&s, account, id, p).await?;
    Ok(Json(json!({ "webhook": WebhookView::of(&sub) })).into_response())
}

/// Changes a subscription as `p` says, leaving what it leaves out (what
/// `PATCH …/webhooks/{id}` does, also for the dashboard's forms).
pub(crate) async fn change_webhook(
    s: &AppState,
    account: String,
    id: String,
    p: WebhookBody,
) -> AppResult<Subscription> {
    known_webhook(s, &account, &id)?;
    let url = match p.url.as_deref() {
        Some(u) => Some(checked_url(s, u).await?),
        None => None,
    };
    // Decided from the webhook as read, and written only if it is still so:
    // two changes at once (a move, and a masked value kept) must not each
    // pass against the webhook the other changes. A change in between
    // (another request, the engine's note of failures) means reading again.
    let mut tries = 0;
    loop {
        tries += 1;
        let was = known_webhook(s, &account, &id)?;
        let change = change_of(&was, &p, url.clone())?;
        match update(s, account.clone(), id.clone(), change).await {
            Err(ApiError::Conflict(_)) if tries < CHANGE_TRIES => {
                tokio::time::sleep(std::time::Duration::from_millis(10 * tries)).await;
            }
            done => return done,
        }
    }
}

/// Reads of a webhook a change is decided from, at most, while others change it.
const CHANGE_TRIES: u64 = 5;

/// The update `p` asks of `was` (its `url` checked already).
fn change_of(was: &Subscription, p: &WebhookBody, url: Option<String>) -> AppResult<SubscriptionUpdate> {
    let watched = p.watch(Some(was))?;
    // Header values are shown masked because they may be credentials for
    // the target: they go to another origin only when given again, or a
    // key holder could read them by moving the webhook to a host of theirs.
    let moved = url.as_deref().is_some_and(|to| target_of(&was.url) != target_of(to));
    let kept = (!moved).then_some(was);
    // 409: well formed, but not for this webhook as it is (its headers).
    if moved && p.headers.is_none() && !was.headers.is_empty() {
        return Err(ApiError::Conflict(
            "headers: the webhook's headers are kept for its own host only (they may hold its credentials): \
             to move it to another host, give its headers again, or {} for none (through the API or \
             `callmeter webhooks update`: the dashboard's form has no headers)"
                .into(),
        ));
    }
    let headers = p.headers.as_ref().map(|h| checked_headers(h, kept)).transpose()?;
    let (watch, actions) = watched.map_or((None, None), |(w, a)| (Some(w), Some(a)));
    let if_unchanged_since = Some(was.updated_at);
    Ok(SubscriptionUpdate {
        url,
        watch,
        actions,
        enabled: p.enabled,
        headers,
        if_unchanged_since,
        ..Default::default()
    })
}

/// Delete a webhook; its undelivered events go with it.
///
/// Scopes: admin, its key.
#[utoipa::path(delete, path = "/v1/accounts/{account}/webhooks/{id}", tag = "webhooks",
    params(params::WebhookPath),
    responses(
        (status = 204, description = "Deleted"),
        (status = 404, response = responses::NotFound),
        (status = 507, response = responses::DiskFull),
    ),
    security(("bearer" = [])))]
pub(crate) async fn delete_webhook(
    State(s): St,
    AccountManager { account, .. }: AccountManager,
    Path((_, id)): Path<(String, String)>,
) -> AppResult<Response> {
    remove_webhook(&s, account, id).await?;
    Ok(StatusCode::NO_CONTENT.into_response())
}

/// Deletes a subscription and its undelivered events, or 404.
pub(crate) async fn remove_webhook(s: &AppState, account: String, id: String) -> AppResult<()> {
    known_account(s, &account)?;
    let store = s.store.clone();
    let (a, i) = (account.clone(), id.clone());
    if blocking(move || Ok(store.delete_subscription(&a, &i)?)).await? {
        tracing::info!(account = %account, webhook = %id, "webhook deleted");
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no webhook {id:?} in account {account:?}")))
    }
}

/// Make a new signing secret, shown this once; the old one still signs for 24 hours.
///
/// Scopes: admin, its key.
#[utoipa::path(post, path = "/v1/accounts/{account}/webhooks/{id}/rotate-secret", tag = "webhooks",
    params(params::WebhookPath),
    responses(
        (status = 200, description = "The webhook and its new secret", body = WebhookWithSecret),
        (status = 404, response = responses::NotFound),
        (status = 507, response = responses::DiskFull),
    ),
    security(("bearer" = [])))]
pub(crate) async fn rotate_secret(
    State(s): St,
    AccountManager { account, .. }: AccountManager,
    Path((_, id)): Path<(String, String)>,
) -> AppResult<Response> {
    let (sub, secret) = rotate_webhook_secret(&s, account, id).await?;
    Ok(Json(json!({ "webhook": WebhookView::of(&sub), "secret": secret })).into_response())
}

/// Gives a subscription a new signing secret, the old one signing beside it
/// for 24 hours: the subscription and the new secret, to be shown once.
pub(crate) async fn rotate_webhook_secret(
    s: &AppState,
    account: String,
    id: String,
) -> AppResult<(Subscription, String)> {
    known_webhook(s, &account, &id)?;
    let secret = callmeter_webhooks::signing::new_secret();
    let until = Utc::now() + rotation_overlap();
    let change = SubscriptionUpdate { rotate_secret: Some((secret.clone(), until)), ..Default::default() };
    let sub = update(s, account, id, change).await?;
    Ok((sub, secret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: &str) -> WebhookBody {
        serde_json::from_str(json).unwrap()
    }

    fn folder_sub() -> Subscription {
        Subscription {
            id: "wh_0".into(),
            account: "acme".into(),
            url: "http://x/".into(),
            watch: Watch::Folder { folder: "/in".into() },
            actions: vec![Action::Create],
            enabled: true,
            disabled_reason: None,
            headers: BTreeMap::new(),
            secrets: vec![],
            failing_since: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    /// A webhook read, changed and sent back whole keeps its headers' values:
    /// the mask it was shown is not taken for a value.
    #[test]
    fn a_masked_header_value_keeps_the_value_it_hides() {
        let mut was = folder_sub();
        was.headers.insert("authorization".into(), "Bearer s3cret".into());
        let given: BTreeMap<String, String> =
            [("authorization".into(), MASKED_HEADER_VALUE.into()), ("x-team".into(), "ops".into())].into();
        let kept = checked_headers(&given, Some(&was)).unwrap();
        assert_eq!(kept["authorization"], "Bearer s3cret");
        assert_eq!(kept["x-team"], "ops");
        let e = checked_headers(&given, None).unwrap_err();
        assert!(e.to_string().contains("headers.authorization"), "{e}");
        let new: BTreeMap<String, String> = [("x-new".into(), MASKED_HEADER_VALUE.into())].into();
        assert!(checked_headers(&new, Some(&was)).is_err(), "no value to keep");
    }

    #[test]
    fn a_body_watches_a_folder_or_alerts_never_both() {
        let (watch, actions) = body(r#"{"url": "http://x"}"#).watch(None).unwrap().unwrap();
        assert_eq!(watch, Watch::Folder { folder: "/".into() });
        for dotted in ["/in/../..", "/in/./x", "/.."] {
            assert!(checked_folder(dotted).is_err(), "{dotted}");
        }
        assert_eq!(actions, DEFAULT_ACTIONS);
        let (watch, actions) = body(r#"{"events": ["usage.spike", "usage.threshold_reached", "usage.spike"]}"#)
            .watch(None)
            .unwrap()
            .unwrap();
        assert_eq!(watch, Watch::Alerts { events: vec![AlertKind::ThresholdReached, AlertKind::Spike] });
        assert!(actions.is_empty());
        let both = body(r#"{"events": ["usage.spike"], "folder": "/in"}"#).watch(None).unwrap_err();
        assert!(both.to_string().contains("no folder or actions"), "{both}");
        assert!(body(r#"{"events": []}"#).watch(None).is_err());
        let unknown = serde_json::from_str::<WebhookBody>(r#"{"events": ["usage.other"]}"#).err().unwrap().to_string();
        assert!(unknown.contains(r#"unknown event "usage.other": one of usage.threshold_reached"#), "{unknown}");
        for all in [r#"{"events": ["all"]}"#, r#"{"events": ["usage.spike", "all"]}"#] {
            let (watch, _) = body(all).watch(None).unwrap().unwrap();
            assert_eq!(watch, Watch::Alerts { events: AlertKind::ALL.to_vec() }, "{all}");
        }
        assert!(body(r#"{"events": ["usage.spike"], "folder": null}"#).watch(None).is_ok(), "null is left out");
    }

    #[test]
    fn a_change_keeps_what_it_does_not_name() {
        let was = folder_sub();
        assert_eq!(body(r#"{"enabled": false}"#).watch(Some(&was)).unwrap(), None);
        let (watch, actions) = body(r#"{"actions": ["destroy"]}"#).watch(Some(&was)).unwrap().unwrap();
        assert_eq!((watch, actions), (Watch::Folder { folder: "/in".into() }, vec![Action::Destroy]));
        let alerts = Subscription { watch: Watch::Alerts { events: vec![AlertKind::Spike] }, actions: vec![], ..was };
        let (watch, _) = body(r#"{"events": ["usage.spike"]}"#).watch(Some(&alerts)).unwrap().unwrap();
        assert_eq!(watch, Watch::Alerts { events: vec![AlertKind::Spike] });
    }

    /// A change that names the other kind's fields is refused: a folder
    /// webhook given events would lose its folder, unasked.
    #[test]
    fn a_change_keeps_the_kind() {
        let was = folder_sub();
        let e = body(r#"{"events": ["usage.spike"]}"#).watch(Some(&was)).unwrap_err();
        assert!(e.to_string().contains("keeps its kind"), "{e}");
        let alerts = Subscription { watch: Watch::Alerts { events: vec![AlertKind::Spike] }, actions: vec![], ..was };
        for change in [r#"{"folder": "/out/"}"#, r#"{"actions": ["create"]}"#] {
            let e = body(change).watch(Some(&alerts)).unwrap_err();
            assert!(e.to_string().contains("keeps its kind"), "{change}: {e}");
        }
    }
}
