//! callmeter's HTTP server: ingest, usage, the request log, accounts, plans,
//! adjustments and tokens, on axum and tokio, over any [`Store`].
//!
//! # Layout
//!
//! - `options.rs`: [`ServerOptions`], at once the flags, the environment and the config file.
//! - `api.rs`: the router, the state every handler shares, and the operations endpoints.
//! - `routes/`: the handlers, one file per group of routes (events, usage, calls, audits,
//!   accounts, adjustments, tokens, admin, webhooks).
//! - `audit_options.rs`: the `[audit]` table: the audit's thresholds and the daily schedule.
//! - `webhook_options.rs`: the `[webhooks]` table: private targets, attempts in flight.
//! - `alert_options.rs`: each plan's alert thresholds and the `[alerts]` table.
//! - `alerts/`: the usage alert evaluator: which alerts are due, for the accounts whose usage changed.
//! - `audit.rs`: an account's audit over the store, and the summaries of kept audits.
//! - `schedule.rs`: the daily audits of the previous day, kept in the store.
//! - `ingest.rs`: `POST /v1/events` body framing and the per-event answer.
//! - `usage.rs`: usage reports from the 15-minute aggregates.
//! - `usage_groups.rs`: a usage report's groups, bounded: the largest answered, the breakdown read in slices.
//! - `report_slots.rs`: the few usage reports by api key or user that run at once.
//! - `export.rs`: the request log as JSON, CSV and NDJSON streams.
//! - `auth.rs`: tokens, scopes and the admin token.
//! - `guard.rs`: who may call each route, decided from the headers before the body is read.
//! - `body.rs`: request bodies under the per-request limit, the body timeout and the budget of bytes in flight.
//! - `extract.rs`: query and path parameters, bounded and refused in the error envelope.
//! - `known_params.rs`: query parameters a route does not take, refused by the route's description.
//! - `limits.rs`: [`ServerLimits`]: connections, timeouts, bodies in flight.
//! - `connections.rs`: the accept loop, the connection limit and the graceful stop.
//! - `descriptors.rs`: the file-descriptor limit, raised at start and checked against the connections.
//! - `connection_timeouts.rs`: each connection's idle, header and write deadlines.
//! - `unread_bodies.rs`: a body its handler did not read, drained after the answer.
//! - `live_audits.rs`: the one thread that audits run on for requests, and when they give up.
//! - `admin_token.rs`: which admin token is in force at start (configured, rotated, kept or new).
//! - `openapi/`: the OpenAPI description, generated from the handlers' annotations and the types.
//! - `dashboard/`: the web dashboard at `/`: sign-in, usage, request log, audit, every account.
//! - `metrics.rs`: Prometheus counters.
//! - `error.rs`: [`ApiError`], and the table from error to code and HTTP status.

mod admin_token;
mod alert_options;
mod alerts;
mod api;
mod audit;
mod audit_options;
mod auth;
mod body;
mod connection_timeouts;
mod connections;
mod dashboard;
mod descriptors;
mod error;
mod export;
mod extract;
mod guard;
mod ingest;
mod known_params;
mod limits;
mod live_audits;
mod metrics;
mod openapi;
mod options;
mod report_slots;
mod routes;
mod schedule;
mod unread_bodies;
mod usage;
mod usage_groups;
mod webhook_options;

pub use alert_options::{AlertSettings, AlertTable, PlanEntry, PlanThresholds};
pub use audit_options::AuditOptions;
pub use error::ApiError;
pub use limits::ServerLimits;
pub use options::{default_plans, OptionsError, ServerOptions, Settings, MAX_BODY_BYTES, MAX_EVENTS_PER_REQUEST};
pub use usage::UsageReport;
pub use webhook_options::{WebhookSettings, WebhookTable};

use callmeter_store::{EmbeddedStore, Store};
use metrics::Metrics;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// Errors that stop the server from starting.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The store could not be opened.
    #[error("cannot open the store in {path}: {source}")]
    Store {
        /// The data folder.
        path: std::path::PathBuf,
        /// Why.
        source: callmeter_store::StoreError,
    },
    /// The file-descriptor limit leaves no room for `max_connections` and the store.
    #[error("{0}")]
    Descriptors(#[from] descriptors::TooFewDescriptors),
    /// A socket or file error.
    #[error("{0}")]
    Io(#[from] std::io::Error),
}

/// Opens the embedded store and serves until SIGTERM or Ctrl-C, then stops
/// accepting, finishes the requests in flight, and syncs the store. With
/// `[audit] daily`, the daily audits run alongside and stop with the server
/// (an audit in progress gives up at its next page of calls); so do webhook
/// deliveries and the usage alert evaluator.
pub async fn serve(settings: Settings) -> Result<(), ServeError> {
    // Before the store opens its files: raised, then checked.
    let descriptors = descriptors::ensure_room_for(settings.limits.max_connections)?;
    tracing::debug!(descriptors, "file-descriptor limit");
    let data = settings.data.clone();
    let store = {
        let opts = settings.store.clone();
        let path = data.clone();
        tokio::task::spawn_blocking(move || EmbeddedStore::open(&path, opts))
            .await
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .map_err(|source| ServeError::Store { path: data.clone(), source })?
    };
    let store = Arc::new(store);
    let (auth, generated) = auth::Auth::load(store.as_ref(), &data, settings.admin_token.as_deref())?;
    if let Some(secret) = generated {
        // Printed once, on purpose on stdout and not in the log: it is a secret.
        println!("admin token (kept in {}): {secret}", data.join("admin-token").display());
    }
    let listener = tokio::net::TcpListener::bind(settings.listen).await?;
    let addr = listener.local_addr()?;
    let dyn_store: Arc<dyn Store> = store.clone();
    let state = Arc::new(api::AppState {
        store: dyn_store,
        auth,
        bodies: body::BodyBudget::new(settings.limits.bodies_in_flight),
        connection_slots: Arc::new(tokio::sync::Semaphore::new(settings.limits.max_connections)),
        live_audits: live_audits::LiveAudits::start(live_audits::MAX_WAIT)?,
        reports: report_slots::ReportSlots::new(report_slots::AT_ONCE, report_slots::MAX_WAIT),
        settings,
        metrics: Default::default(),
        stopping: AtomicBool::new(false),
        deliveries: Default::default(),
    });
    let opened = state.store.open_report();
    Metrics::add(&state.metrics.store_open_replayed_calls, opened.replayed_calls);
    Metrics::add(&state.metrics.store_open_replayed_calls_waiting, opened.replayed_calls_waiting);
    Metrics::add(&state.metrics.store_open_ms, opened.elapsed.as_millis() as u64);
    let app = api::router(state.clone());
    let daily = state.settings.audit.daily.then(|| schedule::DailyAudits::start(state.clone()));
    let deliveries = start_deliveries(&state)?;
    let alerts = alerts::AlertEvaluator::start(state.clone(), Arc::new(callmeter_webhooks::SystemClock))?;
    let signal = shutdown_signal()?;
    tracing::info!(%addr, data = %data.display(), "callmeter listening");
    println!("listening on http://{addr}");
    let signalled = state.clone();
    let stop = async move {
        signal.await;
        // Audits in progress (requests and the schedule) give up at their next
        // page, so that they do not hold the shutdown back.
        signalled.stopping.store(true, Ordering::Relaxed);
    };
    let served = connections::serve(listener, app, state.clone(), stop).await;
    state.stopping.store(true, Ordering::Relaxed);
    if let Some(daily) = daily {
        daily.stop().await;
    }
    // It holds the state, and so the store: it ends within a second of `stopping`.
    if tokio::task::spawn_blocking(move || alerts.join()).await.is_err() {
        tracing::warn!("the alert evaluator's stop failed");
    }
    // Attempts in flight finish (each within its timeout); the rest stay in the outbox.
    let (engine, thread) = deliveries;
    engine.stop();
    if !matches!(tokio::task::spawn_blocking(move || thread.join()).await, Ok(Ok(()))) {
        tracing::warn!("the webhook delivery engine's thread failed");
    }
    drop(engine); // it holds the store: the store's clean stop below needs the last handle

    served?;
    tracing::info!("shutting down: requests finished, syncing the store");
    drop(state);
    match Arc::try_unwrap(store) {
        Ok(store) => store.shutdown(),
        Err(store) => drop(store), // streams still hold it: their drop stops the writer
    }
    Ok(())
}

/// Starts the webhook delivery engine over the state's store, on the system
/// clock, on a thread of its own (`webhook-engine`, with its own runtime;
/// its store calls on that runtime's blocking threads, `webhook-store`).
///
/// Apart from the request-serving runtime because every part of a delivery
/// (claims, lanes, the kept connections, admission) is then touched by one
/// core: spread over the shared workers, a delivery's state moved between
/// cores and woke parked workers (measured: about 2.5 µs a delivery more
/// on the webhooks' threads, and the CPU per call 3 points higher; ADR
/// 0002, "Built (seventh session)"). At ~19 µs a delivery, one thread has
/// room for about 50,000 a second.
fn start_deliveries(
    state: &Arc<api::AppState>,
) -> std::io::Result<(Arc<callmeter_webhooks::DeliveryEngine>, std::thread::JoinHandle<()>)> {
    let w = &state.settings.webhooks;
    let options = callmeter_webhooks::EngineOptions {
        allow_private_targets: w.allow_private_targets,
        max_in_flight: w.max_in_flight,
        per_target: w.per_target,
        per_account: w.per_account,
        ..Default::default()
    };
    if w.allow_private_targets {
        tracing::warn!("webhooks may be sent to loopback, private and link-local addresses (allow_private_targets)");
    }
    let engine = callmeter_webhooks::DeliveryEngine::with_stats(
        state.store.clone(),
        Arc::new(callmeter_webhooks::SystemClock),
        options,
        state.deliveries.clone(),
    )
    .map_err(|e| std::io::Error::other(e.to_string()))?;
    let engine = Arc::new(engine);
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().thread_name("webhook-store").build()?;
    let running = engine.clone();
    let thread = std::thread::Builder::new().name("webhook-engine".into()).spawn(move || {
        // It returns once the attempts in flight have ended and their completions are written.
        runtime.block_on(running.run());
    })?;
    Ok((engine, thread))
}

/// SIGTERM or Ctrl-C. The listeners are made here, at once, not when the
/// future is first polled: made before the server says it listens, so that a
/// signal sent right after (a supervisor's, or a test's, stop) is never lost
/// in the moment between the handler's install and its listener.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate())?;
    let mut interrupt = signal(SignalKind::interrupt())?;
    Ok(async move {
        tokio::select! { _ = term.recv() => {}, _ = interrupt.recv() => {} }
    })
}
