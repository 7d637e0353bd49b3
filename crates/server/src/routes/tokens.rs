//! Tokens and account keys: make, list, revoke (DESIGN §8).

use crate::api::{blocking, known_account, AppResult, AppState, St};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::extract::{bounded, Path};
use crate::guard::{AccountManager, AdminOnly};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_store::Scope;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

#[derive(Deserialize)]
pub(crate) struct TokenPost {
    scope: String,
    #[serde(default)]
    label: String,
}

pub(crate) async fn post_token(State(s): St, _: AdminOnly, JsonBody(t): JsonBody<TokenPost>) -> AppResult<Response> {
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
    bounded("label", Some(&label))?;
    let state = s.clone();
    let (rec, secret) = blocking(move || state.auth.create(state.store.as_ref(), scope, label)).await?;
    Ok((StatusCode::CREATED, Json(json!({ "token": rec, "secret": secret }))).into_response())
}

pub(crate) async fn tokens(State(s): St, _: AdminOnly) -> AppResult<Response> {
    Ok(Json(json!({ "tokens": s.auth.list() })).into_response())
}

pub(crate) async fn delete_token(State(s): St, _: AdminOnly, Path(id): Path<String>) -> AppResult<Response> {
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
pub(crate) struct KeyPost {
    #[serde(default)]
    label: String,
}

/// The body is optional: an empty one makes a key without a label.
pub(crate) async fn post_account_key(
    State(s): St,
    AccountManager { account }: AccountManager,
    JsonBody(k): JsonBody<Option<KeyPost>>,
) -> AppResult<Response> {
    known_account(&s, &account)?;
    let k = k.unwrap_or_default();
    created_token(&s, Scope::Account(account), k.label).await
}

pub(crate) async fn delete_account_key(
    State(s): St,
    AccountManager { account }: AccountManager,
    Path((_, id)): Path<(String, String)>,
) -> AppResult<Response> {
    revoke(&s, id, move |t| t.scope == Scope::Account(account.clone())).await
}
