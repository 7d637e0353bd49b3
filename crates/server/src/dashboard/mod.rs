//! The web dashboard that `callmeter serve` serves at `/`: a customer signs
//! in with their account key (the operator with the admin token, support
//! with theirs) and sees what they use, where it comes from, which calls are
//! waste and what fixing them would save.
//!
//! Pages are rendered on the server (`maud` templates, `plotters` charts as
//! inline SVG) from the same functions as the API: the usage report, the
//! request log's filter and pages, the audit and its kept summaries. Every
//! asset is inside the binary. A little script adds conveniences only; every
//! page works, and every form posts, without it.
//!
//! Its router is merged into the API's after the API's JSON error envelope,
//! so that its answers stay HTML, and every answer goes through
//! [`page::harden_and_compress`] (security headers, gzip).
//!
//! # Layout
//!
//! - `session.rs`: sessions in memory, cookies, CSRF tokens.
//! - `viewer.rs`: who is looking (the extractors every page takes first), with the API's scope checks.
//! - `sign_in.rs`: sign-in, sign-out, and the front door `/`.
//! - `layout.rs`: the frame of every page and its navigation.
//! - `page.rs`: HTML answers, error pages, security headers and compression.
//! - `page_extract.rs`: queries, path parameters and forms, refused as error pages.
//! - `format.rs`: numbers, money and times in the account's zone.
//! - `charts.rs`: the `plotters` charts.
//! - `usage_page.rs`, `usage_chart.rs`: the usage page and its chart.
//! - `calls_page.rs`: the request log, its CSV export and a call's detail.
//! - `newest_first.rs`: the request log newest first, in time windows sized from the aggregates.
//! - `audit_page.rs`: the audit's findings, the what-if, each finding's chart, and for polling the form
//!   that creates the webhook that would replace it.
//! - `operator_page.rs`: every account for the operator and support.
//! - `share.rs`: read-only share links to a usage page.
//! - `webhooks_page.rs`: an account's webhooks and the form that adds one.
//! - `webhook_page.rs`: one webhook, its forms and its delivery log.
//! - `webhook_forms.rs`: the webhook forms' POSTs, through the API routes' own functions.
//! - `alerts_page.rs`: an account's usage alerts.
//! - `assets.rs`, `assets/`: the stylesheet, the script and the icon.

mod alerts_page;
mod assets;
mod audit_page;
mod calls_page;
mod charts;
mod format;
mod layout;
mod newest_first;
mod operator_page;
mod page;
mod page_extract;
mod session;
mod share;
mod sign_in;
mod usage_chart;
mod usage_page;
mod viewer;
mod webhook_forms;
mod webhook_page;
mod webhooks_page;

use crate::api::AppState;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use axum::Router;
use std::sync::Arc;

/// What the dashboard's handlers share.
pub(crate) struct Dashboard {
    /// The API's state: store, tokens, settings.
    pub app: Arc<AppState>,
    /// Who is signed in.
    pub sessions: session::Sessions,
    /// The share links made.
    pub shares: share::ShareLinks,
}

/// The state, as the dashboard's handlers take it.
pub(crate) type Ds = axum::extract::State<Arc<Dashboard>>;

/// The largest form the dashboard takes: its forms carry a token and a few fields.
const MAX_FORM_BYTES: usize = 16 << 10;

/// The dashboard's routes, to merge into the API's router.
pub(crate) fn router(app: Arc<AppState>) -> Router {
    let shares = share::ShareLinks::open(&app.settings.data);
    let state = Arc::new(Dashboard { app, sessions: session::Sessions::new(), shares });
    Router::new()
        .route("/", get(sign_in::home))
        .route("/sign-in", get(sign_in::form).post(sign_in::submit))
        .route("/sign-out", post(sign_in::sign_out))
        .route("/accounts", get(operator_page::page))
        .route("/accounts/{account}/usage", get(usage_page::page))
        .route("/accounts/{account}/usage/{file}", get(usage_page::breakdown_csv))
        .route("/accounts/{account}/calls", get(calls_page::page))
        .route("/accounts/{account}/calls.csv", get(calls_page::csv))
        .route("/accounts/{account}/calls/{cursor}", get(calls_page::detail))
        .route("/accounts/{account}/audit", get(audit_page::page))
        .route("/accounts/{account}/webhooks", get(webhooks_page::page).post(webhook_forms::create))
        .route("/accounts/{account}/webhooks/{id}", get(webhook_page::page).post(webhook_forms::change))
        .route("/accounts/{account}/webhooks/{id}/enabled", post(webhook_forms::set_enabled))
        .route("/accounts/{account}/webhooks/{id}/delete", post(webhook_forms::delete))
        .route("/accounts/{account}/webhooks/{id}/rotate-secret", post(webhook_forms::rotate))
        .route("/accounts/{account}/webhooks/{id}/replay", post(webhook_forms::replay))
        .route("/accounts/{account}/webhooks/{id}/deliveries/{delivery}/redeliver", post(webhook_forms::redeliver))
        .route("/accounts/{account}/alerts", get(alerts_page::page))
        .route("/accounts/{account}/share", post(share::create))
        .route("/accounts/{account}/share/{id}/revoke", post(share::revoke))
        .route("/share/{token}", get(share::page))
        .route("/assets/{version}/{file}", get(assets::serve))
        .layer(DefaultBodyLimit::max(MAX_FORM_BYTES))
        .layer(axum::middleware::from_fn(page::harden_and_compress))
        .with_state(state)
}
