//! The usage alerts an account's usage fired (DESIGN §7), newest first:
//! the same records its alert subscriptions are sent (`alerts/`).

use crate::api::{blocking, known_account, AppResult, St};
use crate::extract::Query;
use crate::guard::AccountReader;
use crate::openapi::{params, responses, webhooks as docs};
use crate::routes::deliveries::checked_per_page;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

#[derive(Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AlertsParams {
    /// Alerts before this alert id (the `next_before` of the page before).
    #[param(value_type = Option<params::RecordId>, inline)]
    before: Option<u64>,
    /// Alerts in the page [default: 100].
    #[param(value_type = Option<params::SmallPage>, inline)]
    per_page: Option<usize>,
}

/// The account's usage alerts, newest first.
///
/// Scopes: admin, support, its key. `usage.threshold_reached` (each
/// threshold once per period), `usage.projected_overage` (once per period)
/// and `usage.spike` (once per local day), each with the usage it saw and the
/// account's top waste finding from its latest kept audit. Kept as long as calls are.
#[utoipa::path(get, path = "/v1/accounts/{account}/alerts", tag = "alerts",
    params(params::AccountPath, AlertsParams),
    responses(
        (status = 200, description = "A page of alerts", body = docs::AlertsPage),
        (status = 400, response = responses::BadRequest),
        (status = 404, response = responses::NotFound),
    ),
    security(("bearer" = [])))]
pub(crate) async fn alerts(
    State(s): St,
    AccountReader { account }: AccountReader,
    Query(q): Query<AlertsParams>,
) -> AppResult<Response> {
    known_account(&s, &account)?;
    let per_page = checked_per_page(q.per_page)?;
    let store = s.store.clone();
    let page = blocking(move || Ok(store.alerts(&account, q.before, per_page)?)).await?;
    Ok(Json(json!({ "alerts": page.alerts, "next_before": page.next_before })).into_response())
}
