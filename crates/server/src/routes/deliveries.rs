//! A webhook's deliveries (DESIGN §7): every attempt, newest first; one
//! delivery sent again; every event since a time sent again. Each is sent
//! with the `webhook-id` it had: receivers dedup on it.

use crate::api::{blocking, parse_time, AppResult, AppState, St};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::extract::{Path, Query};
use crate::guard::{AccountManager, AccountReader};
use crate::openapi::{params, responses, webhooks as docs};
use crate::routes::webhooks::known_webhook;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::json;

/// Attempts in a page at most.
pub(crate) const MAX_PER_PAGE: usize = 1_000;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct DeliveriesParams {
    /// Attempts before this attempt id (the `next_before` of the page before).
    #[param(value_type = Option<params::RecordId>, inline)]
    before: Option<u64>,
    /// Attempts in the page [default: 100].
    #[param(value_type = Option<params::SmallPage>, inline)]
    per_page: Option<usize>,
}

/// A page size, or 400.
pub(crate) fn checked_per_page(per_page: Option<usize>) -> AppResult<usize> {
    let per_page = per_page.unwrap_or(100);
    if per_page == 0 || per_page > MAX_PER_PAGE {
        return Err(ApiError::BadRequest(format!("per_page: from 1 to {MAX_PER_PAGE}")));
    }
    Ok(per_page)
}

/// A webhook's delivery attempts, newest first.
///
/// Scopes: admin, support, its key. Each attempt with its delivery, its
/// `webhook-id`, status, response code, latency and error.
#[utoipa::path(get, path = "/v1/accounts/{account}/webhooks/{id}/deliveries", tag = "webhooks",
    params(params::WebhookPath, DeliveriesParams),
    responses(
        (status = 200, description = "A page of attempts", body = docs::AttemptsPage, links(
            ("Redeliver" = (operation_id = "redeliver", parameters(
                ("account" = "$request.path.account"), ("id" = "$request.path.id"),
                ("delivery" = "$response.body#/attempts/0/delivery")))),
            ("Next" = (operation_id = "deliveries", parameters(
                ("account" = "$request.path.account"), ("id" = "$request.path.id"),
                ("before" = "$response.body#/next_before")))),
        )),
        (status = 400, response = responses::BadRequest),
        (status = 404, response = responses::NotFound),
    ),
    security(("bearer" = [])))]
pub(crate) async fn deliveries(
    State(s): St,
    AccountReader { account }: AccountReader,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<DeliveriesParams>,
) -> AppResult<Response> {
    known_webhook(&s, &account, &id)?;
    let per_page = checked_per_page(q.per_page)?;
    let store = s.store.clone();
    let page = blocking(move || Ok(store.delivery_attempts(&account, &id, q.before, per_page)?)).await?;
    Ok(Json(json!({ "attempts": page.attempts, "next_before": page.next_before })).into_response())
}

/// Send one delivery again, now, with its `webhook-id`.
///
/// Scopes: admin, its key. 409 `conflict` while the webhook is disabled: enable it first.
#[utoipa::path(post, path = "/v1/accounts/{account}/webhooks/{id}/deliveries/{delivery}/redeliver", tag = "webhooks",
    params(params::DeliveryPath),
    responses(
        (status = 202, description = "It will be sent again", body = docs::Redelivering),
        (status = 400, response = responses::BadRequest),
        (status = 404, response = responses::NotFound),
        (status = 409, response = responses::Conflict),
        (status = 507, response = responses::DiskFull),
    ),
    security(("bearer" = [])))]
pub(crate) async fn redeliver(
    State(s): St,
    AccountManager { account, .. }: AccountManager,
    Path((_, id, delivery)): Path<(String, String, String)>,
) -> AppResult<Response> {
    let delivery: u64 = delivery.parse().map_err(|_| {
        ApiError::BadRequest(format!("delivery: {delivery:?} is no delivery id (a whole number, from the deliveries)"))
    })?;
    redeliver_one(&s, account, id, delivery).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "redelivering": delivery }))).into_response())
}

/// Queues one delivery to be sent again now (what `POST …/redeliver` does,
/// also for the dashboard's button): 409 while the webhook is disabled.
pub(crate) async fn redeliver_one(s: &AppState, account: String, id: String, delivery: u64) -> AppResult<()> {
    let sub = known_webhook(s, &account, &id)?;
    if !sub.enabled {
        return Err(ApiError::Conflict(format!("webhook {id:?} is disabled: enable it first")));
    }
    let store = s.store.clone();
    if blocking(move || Ok(store.redeliver(&account, &id, delivery, Utc::now())?)).await? {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no delivery {delivery} of this webhook")))
    }
}

/// When to replay from.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ReplayPost {
    /// Every event that arrived at or after this time is sent again.
    #[schema(value_type = params::Rfc3339Time, inline)]
    since: String,
}

/// Send again every event that arrived since a time: kept while the webhook was disabled, or delivered.
///
/// Scopes: admin, its key. Events are kept for `[webhooks] retention_days`.
/// 409 `conflict` while the webhook is disabled: enable it first.
#[utoipa::path(post, path = "/v1/accounts/{account}/webhooks/{id}/replay", tag = "webhooks",
    params(params::WebhookPath),
    request_body = ReplayPost,
    responses(
        (status = 202, description = "How many events will be sent again", body = docs::Replaying),
        (status = 404, response = responses::NotFound),
        (status = 409, response = responses::Conflict),
        (status = 507, response = responses::DiskFull),
    ),
    security(("bearer" = [])))]
pub(crate) async fn replay(
    State(s): St,
    AccountManager { account, .. }: AccountManager,
    Path((_, id)): Path<(String, String)>,
    JsonBody(p): JsonBody<ReplayPost>,
) -> AppResult<Response> {
    let since = parse_time("since", &p.since)?;
    let n = replay_since(&s, account, id, since).await?;
    Ok((StatusCode::ACCEPTED, Json(json!({ "replaying": n }))).into_response())
}

/// Queues every event that arrived at or after `since` to be sent again
/// (what `POST …/replay` does, also for the dashboard's form): how many;
/// 409 while the webhook is disabled.
pub(crate) async fn replay_since(s: &AppState, account: String, id: String, since: DateTime<Utc>) -> AppResult<u64> {
    let sub = known_webhook(s, &account, &id)?;
    if !sub.enabled {
        return Err(ApiError::Conflict(format!("webhook {id:?} is disabled: enable it first, then replay")));
    }
    let store = s.store.clone();
    blocking(move || Ok(store.replay(&account, &id, since, Utc::now())?)).await
}
