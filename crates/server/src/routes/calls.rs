//! The request log: `GET /v1/accounts/{a}/calls`, in pages or streamed.

use crate::api::{blocking, known_account, parse_time, AppResult, St};
use crate::error::ApiError;
use crate::export;
use crate::extract::{bounded, Query};
use crate::guard::AccountReader;
use crate::openapi::{params, responses};
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_model::{Interface, Operation};
use callmeter_store::{CallFilter, Position};
use serde::Deserialize;
use serde_json::json;

/// Calls in a page when `per_page` is not given.
pub(crate) const DEFAULT_PER_PAGE: usize = 100;
/// The most calls in one page.
pub(crate) const MAX_PER_PAGE: usize = 10_000;

#[derive(Deserialize, Default, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct CallsParams {
    /// Calls at or after this time.
    #[param(value_type = Option<params::Rfc3339Time>, inline)]
    pub(crate) from: Option<String>,
    /// Calls before this time.
    #[param(value_type = Option<params::Rfc3339Time>, inline)]
    pub(crate) to: Option<String>,
    /// Calls of this interface.
    #[param(value_type = Option<params::InterfaceName>, inline)]
    pub(crate) interface: Option<String>,
    /// Calls of this operation.
    #[param(value_type = Option<params::OperationName>, inline)]
    pub(crate) operation: Option<String>,
    /// Calls whose path starts with this.
    #[param(value_type = Option<params::FreeText>, inline)]
    pub(crate) path_prefix: Option<String>,
    /// Calls made with this API key.
    #[param(value_type = Option<params::FreeText>, inline)]
    pub(crate) api_key: Option<String>,
    /// Calls by this user.
    #[param(value_type = Option<params::FreeText>, inline)]
    pub(crate) user: Option<String>,
    /// Calls from this client address.
    #[param(value_type = Option<params::FreeText>, inline)]
    pub(crate) client_ip: Option<String>,
    /// Calls answered with a status of this class (`2xx`, `4xx`…).
    #[param(value_type = Option<params::StatusClass>, inline)]
    pub(crate) status: Option<String>,
    /// Where to go on: the `next_cursor` of the page before.
    #[param(value_type = Option<params::Cursor>, inline)]
    pub(crate) cursor: Option<String>,
    /// Calls in a page (JSON only; default 100).
    #[param(value_type = Option<params::PerPage>, inline)]
    pub(crate) per_page: Option<usize>,
    /// `json` (default; in pages), `csv` or `ndjson` (every call from `cursor` on, streamed).
    #[param(value_type = Option<params::CallsFormat>, inline)]
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

/// The request log: every call, listings included.
///
/// Scopes: admin, support, its key. JSON in pages (follow `next_cursor`), or
/// CSV or NDJSON streamed, of any size. The whole query is at most 8 KiB
/// (as every route's), each free-form filter at most 4,096 bytes.
#[utoipa::path(get, path = "/v1/accounts/{account}/calls", tag = "calls",
    params(params::AccountPath, CallsParams),
    responses(
        (status = 200, description = "The calls that match, oldest first", content(
            (crate::openapi::CallsPage = "application/json"),
            (String = "text/csv"),
            (String = "application/x-ndjson"),
        )),
        (status = 400, response = responses::BadRequest),
        (status = 404, response = responses::NotFound),
    ),
    security(("bearer" = [])))]
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
            let per_page = q.per_page.unwrap_or(DEFAULT_PER_PAGE);
            if per_page == 0 || per_page > MAX_PER_PAGE {
                return Err(ApiError::BadRequest(format!("per_page: from 1 to {MAX_PER_PAGE}")));
            }
            let store = s.store.clone();
            let page = blocking(move || Ok(store.calls(&account, &filter, after, per_page)?)).await?;
            let calls: Vec<serde_json::Value> = page.calls.iter().map(|(_, c)| export::call_json(c)).collect();
            Ok(Json(json!({ "calls": calls, "next_cursor": page.next.map(|p| p.to_cursor()) })).into_response())
        }
        Some(other) => Err(ApiError::BadRequest(format!("format: {other:?} is not json, csv or ndjson"))),
    }
}
