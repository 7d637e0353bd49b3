//! `POST /v1/events`: a batch of calls in, an answer for each out.

use crate::api::{blocking, AppResult, St};
use crate::auth::Caller;
use crate::error::ApiError;
use crate::ingest::{self, BodyKind};
use crate::metrics::Metrics;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use chrono::Utc;
use std::time::Instant;

pub(crate) async fn post_events(State(s): St, headers: HeaderMap, body: Bytes) -> AppResult<Response> {
    let caller = s.auth.caller(&headers)?;
    if !matches!(caller, Caller::Admin | Caller::Ingest) {
        return Err(ApiError::Forbidden("post calls"));
    }
    let started = Instant::now();
    let kind = BodyKind::from_content_type(headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()));
    // Parsing and the store's dedup lookups are CPU and disk work: off the async workers.
    let store = s.store.clone();
    let (errors, ticket) = blocking(move || {
        let parsed = ingest::parse_body(kind, &body, Utc::now())?;
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
        Some(t) => t.wait().await.inspect_err(|_| Metrics::add(&s.metrics.ingest_failures, 1))?,
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
