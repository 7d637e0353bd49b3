//! Route guards: who may call a route, decided from the request's headers
//! (and its path) before anything else of it is read.
//!
//! Each guard is an extractor that a handler takes as its first argument:
//! axum runs extractors in order, and the body is always the last one, so a
//! request without a valid token, or whose scope cannot do the route, is
//! answered 401 or 403 without its body (up to 16 MiB) or its query ever
//! being read. A review found 200 unauthenticated 16 MiB posts taking the
//! server to 3.2 GB when the body came first (issue 12).

use crate::api::AppState;
use crate::auth::Caller;
use crate::error::ApiError;
use crate::metrics::Metrics;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use std::sync::Arc;

/// The caller of any request, or 401 (counted: refused before the body).
pub(crate) fn caller_of(parts: &Parts, state: &AppState) -> Result<Caller, ApiError> {
    state.auth.caller(&parts.headers).inspect_err(|_| Metrics::add(&state.metrics.refused_unauthorized, 1))
}

/// The `{account}` of the route's path; one that is not UTF-8 once decoded is a bad request.
async fn account_of(parts: &mut Parts) -> Result<String, ApiError> {
    let params = RawPathParams::from_request_parts(parts, &())
        .await
        .map_err(|e| ApiError::BadRequest(format!("path: {}", e.body_text())))?;
    params
        .iter()
        .find(|(name, _)| *name == "account")
        .map(|(_, value)| value.to_owned())
        .ok_or_else(|| ApiError::Internal("this route has no {account}".into()))
}

/// The admin scope (the admin token or an admin-scoped token).
pub(crate) struct AdminOnly;

impl FromRequestParts<Arc<AppState>> for AdminOnly {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        caller_of(parts, state)?.require_admin("do this: it needs the admin scope")?;
        Ok(AdminOnly)
    }
}

/// Admin or ingest: posting calls (DESIGN §8: ingest only posts calls).
pub(crate) struct Ingester;

impl FromRequestParts<Arc<AppState>> for Ingester {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        match caller_of(parts, state)? {
            Caller::Admin | Caller::Ingest => Ok(Ingester),
            _ => Err(ApiError::Forbidden("post calls")),
        }
    }
}

/// Admin or support: what spans every account.
pub(crate) struct EveryAccountReader;

impl FromRequestParts<Arc<AppState>> for EveryAccountReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        match caller_of(parts, state)? {
            Caller::Admin | Caller::Support => Ok(EveryAccountReader),
            _ => Err(ApiError::Forbidden("read every account")),
        }
    }
}

/// Every scope that reads (admin, support, account keys), not ingest: the
/// plans and the list of accounts, which the caller then filters.
pub(crate) struct Reader(pub Caller);

impl FromRequestParts<Arc<AppState>> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        match caller_of(parts, state)? {
            Caller::Ingest => Err(ApiError::Forbidden("read: the ingest scope only posts calls")),
            caller => Ok(Reader(caller)),
        }
    }
}

/// A caller who may read the `{account}` of the path (admin, support, its key).
pub(crate) struct AccountReader {
    /// The account of the path.
    pub account: String,
}

impl FromRequestParts<Arc<AppState>> for AccountReader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let caller = caller_of(parts, state)?;
        let account = account_of(parts).await?;
        caller.require_read(&account)?;
        Ok(AccountReader { account })
    }
}

/// A caller who may manage the `{account}` of the path (admin, its key).
pub(crate) struct AccountManager {
    /// The account of the path.
    pub account: String,
    /// Whether the caller is the admin: only the admin sets an account's
    /// billing terms (its plan, time zone and period anchor), DESIGN §8.
    pub by_admin: bool,
}

impl FromRequestParts<Arc<AppState>> for AccountManager {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let caller = caller_of(parts, state)?;
        let account = account_of(parts).await?;
        if !caller.may_manage(&account) {
            return Err(ApiError::Forbidden("manage this account"));
        }
        Ok(AccountManager { account, by_admin: matches!(caller, Caller::Admin) })
    }
}
