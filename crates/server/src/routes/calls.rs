//! The request log: `GET /v1/accounts/{a}/calls`, in pages or streamed.

use crate::api::{blocking, known_account, parse_time, AppResult, St};
use crate::error::ApiError;
use crate::export;
use crate::extract::{bounded, Query};
use crate::guard::AccountReader;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_model::{Interface, Operation};
use callmeter_store::{CallFilter, Position};
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, Default)]
pub(crate) struct CallsParams {
    pub(crate) from: Option<String>,
    pub(crate) to: Option<String>,
    pub(crate) interface: Option<String>,
    pub(crate) operation: Option<String>,
    pub(crate) path_prefix: Option<String>,
    pub(crate) api_key: Option<String>,
    pub(crate) user: Option<String>,
    pub(crate) client_ip: Option<String>,
    pub(crate) status: Option<String>,
    pub(crate) cursor: Option<String>,
    pub(crate) per_page: Option<usize>,
    pub(crate) format: Option<String>,
}

/// The request log's filter, as the API reads it (the dashboard reads the same).
pub(crate) fn call_filter(q: &CallsParams) -> AppResult<CallFilter> {
    let status_class = match q.status.as_deref() {
        None => None,
        Some(s) if s.len() == 3 && s.ends_with("xx") && s.as_bytes()[0].is_ascii_digit() => {
            Some(i64::from(s.as_bytes()[0] - b'0'))
        }
        Some(s) => return Err(ApiError::BadRequest(format!("status: {s:?} is not a class such as 2xx or 4xx"))),
    };
    Ok(CallFilter {
        from: q.from.as_deref().map(|v| parse_time("from", v)).transpose()?,
        to: q.to.as_deref().map(|v| parse_time("to", v)).transpose()?,
        interface: q
            .interface
            .as_deref()
            .map(|v| v.parse::<Interface>().map_err(|e| ApiError::BadRequest(format!("interface: {e}"))))
            .transpose()?,
        operation: q
            .operation
            .as_deref()
            .map(|v| v.parse::<Operation>().map_err(|e| ApiError::BadRequest(format!("operation: {e}"))))
            .transpose()?,
        // A filter longer than any stored field could match nothing: refused, not scanned for.
        path_prefix: bounded("path_prefix", q.path_prefix.clone())?,
        api_key: bounded("api_key", q.api_key.clone())?,
        user: bounded("user", q.user.clone())?,
        client_ip: bounded("client_ip", q.client_ip.clone())?,
        status_class,
    })
}

pub(crate) async fn account_calls(
    State(s): St,
    AccountReader { account }: AccountReader,
    Query(q): Query<CallsParams>,
) -> AppResult<Response> {
    known_account(&s, &account)?;
    let filter = call_filter(&q)?;
    let after = bounded("cursor", q.cursor.as_deref())?
        .map(|c| Position::from_cursor(c).ok_or(ApiError::BadRequest("cursor: not one this server gave".into())))
        .transpose()?;
    match q.format.as_deref() {
        Some("csv") => Ok(export::stream(s.store.clone(), account, filter, after, export::Format::Csv)),
        Some("ndjson") => Ok(export::stream(s.store.clone(), account, filter, after, export::Format::Ndjson)),
        None | Some("json") => {
            let per_page = q.per_page.unwrap_or(100);
            if per_page == 0 || per_page > 10_000 {
                return Err(ApiError::BadRequest("per_page: from 1 to 10000".into()));
            }
            let store = s.store.clone();
            let page = blocking(move || Ok(store.calls(&account, &filter, after, per_page)?)).await?;
            let calls: Vec<serde_json::Value> = page.calls.iter().map(|(_, c)| export::call_json(c)).collect();
            Ok(Json(json!({ "calls": calls, "next_cursor": page.next.map(|p| p.to_cursor()) })).into_response())
        }
        Some(other) => Err(ApiError::BadRequest(format!("format: {other:?} is not json, csv or ndjson"))),
    }
}
