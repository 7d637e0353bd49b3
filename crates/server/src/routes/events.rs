//! `POST /v1/events`: a batch of calls in, an answer for each out.

use crate::api::{blocking, AppResult, AppState, St};
use crate::body::ReadBody;
use crate::error::ApiError;
use crate::guard::Ingester;
use crate::ingest::{self, BodyKind};
use crate::metrics::Metrics;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use callmeter_store::StoreError;
use chrono::Utc;
use std::sync::Arc;
use std::time::Instant;

/// How the body is framed, from its headers (`ingest.rs`): 415 for a
/// content type we do not read, 400 for broken binary-mode headers, before
/// the body is read.
pub(crate) struct Framing(BodyKind);

impl FromRequestParts<Arc<AppState>> for Framing {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &Arc<AppState>) -> Result<Self, ApiError> {
        BodyKind::from_headers(&parts.headers).map(Framing)
    }
}

pub(crate) async fn post_events(
    State(s): St,
    _: Ingester,
    Framing(kind): Framing,
    body: ReadBody,
) -> AppResult<Response> {
    let started = Instant::now();
    // Held until the answer: the events parsed from the body weigh about as much as it does.
    let ReadBody { bytes, reservation: _reservation } = body;
    // Parsing and the store's dedup lookups are CPU and disk work: off the async workers.
    let store = s.store.clone();
    let (errors, ticket) = blocking(move || {
        let parsed = ingest::parse_body(&kind, &bytes, Utc::now())?;
        let mut errors = Vec::with_capacity(parsed.items.len());
        let mut events = Vec::with_capacity(parsed.items.len());
        for item in parsed.items {
            match item {
                Ok(e) => {
                    events.push(e);
                    errors.push(None);
                }
                Err(e) => errors.push(Some(e)),
            }
        }
        let ticket = (!events.is_empty()).then(|| store.ingest(events));
        Ok((errors, ticket))
    })
    .await?;
    let outcomes = match ticket {
        None => Vec::new(),
        Some(t) => t.wait().await.inspect_err(|e| {
            Metrics::add(&s.metrics.ingest_failures, 1);
            if matches!(e, StoreError::Busy(_)) {
                Metrics::add(&s.metrics.refused_store_busy, 1);
            }
        })?,
    };
    let answer = ingest::answer(&errors, &outcomes);
    let m = &s.metrics;
    Metrics::add(&m.ingest_requests, 1);
    for o in &outcomes {
        match o {
            callmeter_store::Outcome::Accepted => Metrics::add(&m.events_accepted, 1),
            callmeter_store::Outcome::Duplicate => Metrics::add(&m.events_duplicate, 1),
            callmeter_store::Outcome::Rejected(_) => Metrics::add(&m.events_rejected, 1),
        }
    }
    Metrics::add(&m.events_rejected, errors.iter().filter(|e| e.is_some()).count() as u64);
    Metrics::add(&m.ingest_latency_us, started.elapsed().as_micros() as u64);
    Ok(([(header::CONTENT_TYPE, "application/json")], answer).into_response())
}
