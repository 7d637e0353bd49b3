//! Accounts and plans: list, read and change (changes apply from the next period).

use crate::api::{blocking, known_account, AppResult, St};
use crate::body::JsonBody;
use crate::error::ApiError;
use crate::guard::{AccountManager, AccountReader, Reader};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_store::{AccountChange, AccountRecord};
use chrono::NaiveDate;
use serde::Deserialize;
use serde_json::json;

/// The configured plans.
///
/// Scopes: admin, support, account keys (not ingest, which only posts calls).
#[utoipa::path(get, path = "/v1/plans", tag = "accounts",
    responses((status = 200, description = "The plans", body = crate::openapi::PlansAnswer)),
    security(("bearer" = [])))]
pub(crate) async fn plans(State(s): St, _: Reader) -> AppResult<Response> {
    Ok(Json(json!({ "plans": s.settings.store.plans })).into_response())
}

/// The accounts the caller may read.
///
/// Scopes: admin and support (every account), account keys (their own).
#[utoipa::path(get, path = "/v1/accounts", tag = "accounts",
    responses((status = 200, description = "The accounts", body = crate::openapi::AccountsAnswer)),
    security(("bearer" = [])))]
pub(crate) async fn accounts(State(s): St, Reader(caller): Reader) -> AppResult<Response> {
    let all: Vec<AccountRecord> = s.store.accounts().into_iter().filter(|a| caller.may_read(&a.name)).collect();
    Ok(Json(json!({ "accounts": all })).into_response())
}

/// One account.
///
/// Scopes: admin, support, its key.
#[utoipa::path(get, path = "/v1/accounts/{account}", tag = "accounts",
    params(crate::openapi::params::AccountPath),
    responses(
        (status = 200, description = "The account", body = crate::openapi::AccountDoc),
        (status = 404, response = crate::openapi::responses::NotFound),
    ),
    security(("bearer" = [])))]
pub(crate) async fn account(State(s): St, AccountReader { account }: AccountReader) -> AppResult<Response> {
    Ok(Json(known_account(&s, &account)?).into_response())
}

/// What to change; each field left out (or `null`) keeps the account's. A new account takes the defaults.
#[derive(Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountPut {
    /// A configured plan's name.
    #[schema(value_type = Option<crate::openapi::params::PlanName>, inline)]
    plan: Option<String>,
    /// An IANA time zone.
    #[schema(value_type = Option<crate::openapi::params::TimeZone>, inline)]
    timezone: Option<String>,
    /// The local date the account's periods are anchored on.
    period_anchor: Option<NaiveDate>,
    /// Entries one list request returns on this account (its audits cost listings at it); applies at once.
    #[schema(minimum = 1, maximum = 1_000_000)]
    #[serde(default, deserialize_with = "crate::extract::optional_count")]
    list_page_size: Option<u64>,
    /// Usage alert thresholds, in percent of the included calls, in place of the plan's; applies at once
    /// (one already passed in the current period fires at once); `[]` goes back to the plan's.
    #[schema(value_type = Option<crate::openapi::params::Thresholds>, inline)]
    #[serde(default, deserialize_with = "optional_percentages")]
    alert_thresholds: Option<Vec<u32>>,
}

/// An optional list of percentages, each a whole number however JSON writes it (`80.0`).
fn optional_percentages<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<Vec<u32>>, D::Error> {
    let Some(list) = Option::<Vec<serde_json::Number>>::deserialize(d)? else { return Ok(None) };
    let percentage = |n: serde_json::Number| {
        let i = crate::extract::whole_number(n).map_err(serde::de::Error::custom)?;
        u32::try_from(i).map_err(|_| serde::de::Error::custom(format!("{i} is not a percentage")))
    };
    list.into_iter().map(percentage).collect::<Result<Vec<u32>, D::Error>>().map(Some)
}

/// The largest list page size an account may set: no platform lists more at once.
const MAX_LIST_PAGE_SIZE: u64 = 1_000_000;

/// Create an account, or change its plan, time zone or period anchor from its next period on.
///
/// Scopes: admin, its key. Only the admin sets the billing terms (plan, time
/// zone, period anchor): its key gets 403 for them and may set the rest. A
/// period's bounds never move once it has begun. Its list page size and alert
/// thresholds apply at once.
#[utoipa::path(put, path = "/v1/accounts/{account}", tag = "accounts",
    params(crate::openapi::params::AccountPath),
    request_body = AccountPut,
    responses(
        (status = 200, description = "The account as changed", body = crate::openapi::AccountDoc, links(
            ("Read" = (operation_id = "account", parameters(("account" = "$response.body#/name")))),
            ("Usage" = (operation_id = "account_usage", parameters(("account" = "$response.body#/name")))),
            ("Calls" = (operation_id = "account_calls", parameters(("account" = "$response.body#/name")))),
            ("Adjust" = (operation_id = "post_adjustment", parameters(("account" = "$response.body#/name")))),
            ("MakeKey" = (operation_id = "post_account_key", parameters(("account" = "$response.body#/name")))),
        )),
        (status = 400, response = crate::openapi::responses::BadRequest),
        (status = 507, response = crate::openapi::responses::DiskFull),
    ),
    security(("bearer" = [])))]
pub(crate) async fn put_account(
    State(s): St,
    AccountManager { account, by_admin }: AccountManager,
    JsonBody(put): JsonBody<AccountPut>,
) -> AppResult<Response> {
    // A customer's key must not choose what it is billed: a plan with more
    // included calls, or periods that end elsewhere.
    if !by_admin && (put.plan.is_some() || put.timezone.is_some() || put.period_anchor.is_some()) {
        return Err(ApiError::Forbidden(
            "set the plan, time zone or period anchor: billing terms need the admin scope",
        ));
    }
    if !callmeter_model::is_valid_account(&account) {
        return Err(ApiError::BadRequest(format!("account {account:?} is not [a-z0-9][a-z0-9._-]{{0,63}}")));
    }
    let timezone = put
        .timezone
        .as_deref()
        .map(|t| {
            t.parse::<chrono_tz::Tz>()
                .map_err(|_| ApiError::BadRequest(format!("timezone: {t:?} is not an IANA time zone")))
        })
        .transpose()?;
    if let Some(n) = put.list_page_size.filter(|n| !(1..=MAX_LIST_PAGE_SIZE).contains(n)) {
        return Err(ApiError::BadRequest(format!("list_page_size: {n} is not from 1 to {MAX_LIST_PAGE_SIZE}")));
    }
    let alert_thresholds = put
        .alert_thresholds
        .map(|t| crate::alert_options::checked_thresholds(&t))
        .transpose()
        .map_err(|e| ApiError::BadRequest(format!("alert_thresholds: {e}")))?;
    let change = AccountChange {
        plan: put.plan,
        timezone,
        anchor: put.period_anchor,
        list_page_size: put.list_page_size,
        alert_thresholds,
    };
    let store = s.store.clone();
    let rec = blocking(move || Ok(store.upsert_account(&account, change)?)).await?;
    Ok(Json(rec).into_response())
}
