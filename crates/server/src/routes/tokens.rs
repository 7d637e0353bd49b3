//! Tokens and account keys: make, list, revoke (DESIGN §8).

use crate::api::{blocking, known_account, AppResult, AppState, St};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::extract::{bounded, Path};
use crate::guard::{AccountManager, AdminOnly};
use crate::openapi::{params, responses};
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_store::Scope;
use serde::Deserialize;
use serde_json::json;
use std::sync::Arc;

/// A token to make.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct TokenPost {
    /// What it may do (account keys are made with `POST /v1/accounts/{account}/keys`).
    #[schema(value_type = params::TokenScope, inline)]
    scope: String,
    /// A note for whoever reads the list of tokens.
    #[serde(default)]
    #[schema(value_type = params::FreeText, inline)]
    label: String,
}

/// Make an admin, ingest or support token; its secret is shown once.
///
/// Scopes: admin.
#[utoipa::path(post, path = "/v1/tokens", tag = "tokens",
    request_body = TokenPost,
    responses(
        (status = 201, description = "The token and its secret", body = crate::openapi::CreatedToken,
            links(("Revoke" = (operation_id = "delete_token", parameters(("id" = "$response.body#/token/id")))))),
        (status = 507, response = responses::DiskFull),
    ),
    security(("bearer" = [])))]
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

/// Every token (never a secret).
///
/// Scopes: admin.
#[utoipa::path(get, path = "/v1/tokens", tag = "tokens",
    responses((status = 200, description = "The tokens", body = crate::openapi::TokensAnswer)),
    security(("bearer" = [])))]
pub(crate) async fn tokens(State(s): St, _: AdminOnly) -> AppResult<Response> {
    Ok(Json(json!({ "tokens": s.auth.list() })).into_response())
}

/// Revoke a token.
///
/// Scopes: admin.
#[utoipa::path(delete, path = "/v1/tokens/{id}", tag = "tokens",
    params(params::TokenPath),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, response = responses::NotFound),
    ),
    security(("bearer" = [])))]
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

/// An account key to make.
#[derive(Deserialize, Default, utoipa::ToSchema)]
pub(crate) struct KeyPost {
    /// A note for whoever reads the list of tokens.
    #[serde(default)]
    #[schema(value_type = params::FreeText, inline)]
    label: String,
}

/// Make an account key; its secret is shown once.
///
/// Scopes: admin, its key. The body is optional: an empty one (or `null`)
/// makes a key without a label.
#[utoipa::path(post, path = "/v1/accounts/{account}/keys", tag = "tokens",
    params(params::AccountPath),
    request_body(content = Option<KeyPost>),
    responses(
        (status = 201, description = "The key and its secret", body = crate::openapi::CreatedToken,
            links(("Revoke" = (operation_id = "delete_account_key",
                parameters(("account" = "$request.path.account"), ("id" = "$response.body#/token/id")))))),
        (status = 404, response = responses::NotFound),
        (status = 507, response = responses::DiskFull),
    ),
    security(("bearer" = [])))]
pub(crate) async fn post_account_key(
    State(s): St,
    AccountManager { account, .. }: AccountManager,
    JsonBody(k): JsonBody<Option<KeyPost>>,
) -> AppResult<Response> {
    known_account(&s, &account)?;
    let k = k.unwrap_or_default();
    created_token(&s, Scope::Account(account), k.label).await
}

/// Revoke an account key.
///
/// Scopes: admin, its key.
#[utoipa::path(delete, path = "/v1/accounts/{account}/keys/{id}", tag = "tokens",
    params(params::AccountKeyPath),
    responses(
        (status = 204, description = "Revoked"),
        (status = 404, response = responses::NotFound),
    ),
    security(("bearer" = [])))]
pub(crate) async fn delete_account_key(
    State(s): St,
    AccountManager { account, .. }: AccountManager,
    Path((_, id)): Path<(String, String)>,
) -> AppResult<Response> {
    revoke(&s, id, move |t| t.scope == Scope::Account(account.clone())).await
}
