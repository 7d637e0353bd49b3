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

/// Every scope that reads sees the plans; ingest only posts calls (DESIGN §8).
pub(crate) async fn plans(State(s): St, _: Reader) -> AppResult<Response> {
    Ok(Json(json!({ "plans": s.settings.store.plans })).into_response())
}

pub(crate) async fn accounts(State(s): St, Reader(caller): Reader) -> AppResult<Response> {
    let all: Vec<AccountRecord> = s.store.accounts().into_iter().filter(|a| caller.may_read(&a.name)).collect();
    Ok(Json(json!({ "accounts": all })).into_response())
}

pub(crate) async fn account(State(s): St, AccountReader { account }: AccountReader) -> AppResult<Response> {
    Ok(Json(known_account(&s, &account)?).into_response())
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct AccountPut {
    plan: Option<String>,
    timezone: Option<String>,
    period_anchor: Option<NaiveDate>,
    list_page_size: Option<u64>,
}

/// The largest list page size an account may set: no platform lists more at once.
const MAX_LIST_PAGE_SIZE: u64 = 1_000_000;

pub(crate) async fn put_account(
    State(s): St,
    AccountManager { account }: AccountManager,
    JsonBody(put): JsonBody<AccountPut>,
) -> AppResult<Response> {
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
    let change =
        AccountChange { plan: put.plan, timezone, anchor: put.period_anchor, list_page_size: put.list_page_size };
    let store = s.store.clone();
    let rec = blocking(move || Ok(store.upsert_account(&account, change)?)).await?;
    Ok(Json(rec).into_response())
}
