//! The operator's signed adjustments to a period (DESIGN §2).

use crate::api::{blocking, known_account, AppResult, St};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::extract::{bounded, Path, Query};
use crate::guard::{AccountReader, AdminOnly};
use crate::openapi::{params, responses};
use crate::usage;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_store::Adjustment;
use chrono::Utc;
use serde::Deserialize;
use serde_json::json;

/// The most calls one adjustment may add or take away: far beyond any real
/// correction, and small enough that no sum of them comes near `i64::MAX`
/// before it saturates.
pub(crate) const MAX_ADJUSTMENT_CALLS: i64 = 1_000_000_000_000;

/// Refuses an adjustment beyond [`MAX_ADJUSTMENT_CALLS`] either way.
fn check_calls(calls: i64) -> AppResult<()> {
    if calls.unsigned_abs() > MAX_ADJUSTMENT_CALLS.unsigned_abs() {
        return Err(ApiError::BadRequest(format!(
            "calls: {calls} is beyond what one adjustment may carry (from -{MAX_ADJUSTMENT_CALLS} to {MAX_ADJUSTMENT_CALLS})"
        )));
    }
    Ok(())
}

/// A signed adjustment of a period.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct AdjustmentPost {
    /// Calls to add, or to take away when negative.
    #[schema(value_type = params::AdjustmentCalls, inline)]
    #[serde(deserialize_with = "crate::extract::whole_number")]
    calls: i64,
    /// Why: not blank.
    #[schema(value_type = params::Reason, inline)]
    reason: String,
    /// The period it corrects (default the current one).
    #[schema(value_type = Option<params::Period>, inline)]
    period: Option<String>,
}

/// Add a signed adjustment with a reason to a period.
///
/// Scopes: admin. It shows apart from the metered total.
#[utoipa::path(post, path = "/v1/accounts/{account}/adjustments", tag = "accounts",
    params(params::AccountPath),
    request_body = AdjustmentPost,
    responses(
        (status = 201, description = "The adjustment", body = crate::openapi::AdjustmentDoc,
            links(("List" = (operation_id = "adjustments", parameters(("account" = "$response.body#/account")))))),
        (status = 404, response = responses::NotFound),
        (status = 507, response = responses::DiskFull),
    ),
    security(("bearer" = [])))]
pub(crate) async fn post_adjustment(
    State(s): St,
    _: AdminOnly,
    Path(account): Path<String>,
    JsonBody(a): JsonBody<AdjustmentPost>,
) -> AppResult<Response> {
    bounded("reason", Some(&a.reason))?;
    bounded("period", a.period.as_deref())?;
    if a.reason.trim().is_empty() {
        return Err(ApiError::BadRequest("reason: an adjustment needs a reason".into()));
    }
    check_calls(a.calls)?;
    let rec = known_account(&s, &account)?;
    let period = usage::select_period(&rec, a.period.as_deref().unwrap_or("current"), Utc::now())?;
    let adj =
        Adjustment { account, period_start: period.start, calls: a.calls, reason: a.reason, created_at: Utc::now() };
    let store = s.store.clone();
    let stored = adj.clone();
    blocking(move || Ok(store.add_adjustment(stored)?)).await?;
    Ok((StatusCode::CREATED, Json(adj)).into_response())
}

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AdjustmentsParams {
    /// The period (default the current one).
    #[param(value_type = Option<params::Period>, inline)]
    period: Option<String>,
}

/// The adjustments of a period.
///
/// Scopes: admin, support, its key.
#[utoipa::path(get, path = "/v1/accounts/{account}/adjustments", tag = "accounts",
    params(params::AccountPath, AdjustmentsParams),
    responses(
        (status = 200, description = "The adjustments", body = crate::openapi::AdjustmentsAnswer),
        (status = 400, response = responses::BadRequest),
        (status = 404, response = responses::NotFound),
    ),
    security(("bearer" = [])))]
pub(crate) async fn adjustments(
    State(s): St,
    AccountReader { account }: AccountReader,
    Query(q): Query<AdjustmentsParams>,
) -> AppResult<Response> {
    let rec = known_account(&s, &account)?;
    let selector = bounded("period", q.period)?;
    let period = usage::select_period(&rec, selector.as_deref().unwrap_or("current"), Utc::now())?;
    let store = s.store.clone();
    let list = blocking(move || Ok(store.adjustments(&account, period.start)?)).await?;
    Ok(Json(json!({ "adjustments": list })).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn calls_are_whole_numbers_however_written() {
        let calls =
            |json: &str| serde_json::from_str::<AdjustmentPost>(json).map(|a| a.calls).map_err(|e| e.to_string());
        assert_eq!(calls(r#"{"calls": -324.0, "reason": "r"}"#), Ok(-324));
        assert_eq!(calls(r#"{"calls": 5, "reason": "r"}"#), Ok(5));
        assert_eq!(calls(r#"{"calls": 1e3, "reason": "r"}"#), Ok(1000));
        assert!(calls(r#"{"calls": 1.5, "reason": "r"}"#).unwrap_err().contains("not a whole number"));
        assert!(calls(r#"{"calls": 1e300, "reason": "r"}"#).is_err());
        assert!(calls(r#"{"calls": "5", "reason": "r"}"#).is_err());
    }

    #[test]
    fn one_adjustment_is_bounded_both_ways() {
        assert!(check_calls(MAX_ADJUSTMENT_CALLS).is_ok());
        assert!(check_calls(-MAX_ADJUSTMENT_CALLS).is_ok());
        assert!(check_calls(0).is_ok());
        for calls in [MAX_ADJUSTMENT_CALLS + 1, -MAX_ADJUSTMENT_CALLS - 1, i64::MAX, i64::MIN] {
            let e = check_calls(calls).unwrap_err();
            assert!(matches!(e, ApiError::BadRequest(_)), "{calls}");
            assert!(e.to_string().contains("from -1000000000000 to 1000000000000"), "{e}");
        }
    }
}
