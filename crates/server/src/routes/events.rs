//! `POST /v1/events`: a batch of calls in, an answer for each out.
//!
//! The body schemas below describe what is judged per request (the framing:
//! an array of at most [`MAX_EVENTS_PER_REQUEST`], one object, lines);
//! each event in it is judged on its own against the call event schema and
//! answered in the 200, never refused with the request.

use crate::api::{blocking, AppResult, AppState, St};
use crate::body::ReadBody;
use crate::error::ApiError;
use crate::guard::Ingester;
use crate::ingest::{self, BodyKind};
use crate::metrics::Metrics;
use crate::openapi::responses::{BadRequest, DiskFull, Unavailable};
use crate::openapi::{schema, IngestAnswer};
use crate::options::MAX_EVENTS_PER_REQUEST;
use axum::extract::{FromRequestParts, State};
use axum::http::header;
use axum::http::request::Parts;
use axum::response::{IntoResponse, Response};
use callmeter_store::StoreError;
use chrono::Utc;
use std::sync::Arc;
use std::time::Instant;
use utoipa::openapi::{RefOr, Schema};
use utoipa::{PartialSchema, ToSchema};

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

/// An array of at most [`MAX_EVENTS_PER_REQUEST`] events, or one event alone.
pub(crate) struct EventsBody;

impl PartialSchema for EventsBody {
    fn schema() -> RefOr<Schema> {
        schema(serde_json::json!({
            "description": "An array of events (call events, or CloudEvents whose data is a call event), or one alone. Each is judged on its own and answered in the 200.",
            "oneOf": [
                {"type": "array", "maxItems": MAX_EVENTS_PER_REQUEST, "items": {}},
                {"type": "object"}
            ]
        }))
    }
}

impl ToSchema for EventsBody {}

/// Call events, one JSON object per line (NDJSON).
pub(crate) struct NdjsonBody;

impl PartialSchema for NdjsonBody {
    fn schema() -> RefOr<Schema> {
        schema(serde_json::json!({
            "type": "string",
            "description": "Call events, one JSON object per line; blank lines are skipped; at most 10,000 lines with an event."
        }))
    }
}

impl ToSchema for NdjsonBody {}

/// One CloudEvent in structured mode.
pub(crate) struct StructuredCloudEvent;

impl PartialSchema for StructuredCloudEvent {
    fn schema() -> RefOr<Schema> {
        schema(serde_json::json!({
            "type": "object",
            "description": "One CloudEvent: `data` (or `data_base64`) is the call event; the envelope's id, time, source and subject fill its id, time, integration and path where it has none, and a field given in both with different values is rejected (envelope_conflict)."
        }))
    }
}

impl ToSchema for StructuredCloudEvent {}

/// Ingest call events: JSON, NDJSON or CloudEvents.
///
/// Scopes: admin, ingest. The content type says how the body is framed:
/// `application/json` (or none), an array of call events or one;
/// `application/x-ndjson`, one per line; `application/cloudevents-batch+json`,
/// an array of CloudEvents; `application/cloudevents+json`, one CloudEvent
/// in structured mode. Any other content type: 415. At most 10,000 events or
/// 16 MiB (413 beyond). Each event is answered in order as accepted,
/// duplicate or rejected with its reason and field; the answer is sent only
/// once the accepted events are durable.
///
/// **CloudEvents in binary mode**: a `ce-specversion: 1.0` header makes the
/// body (JSON, `application/json` or no content type; else 415) one
/// CloudEvent's data, the call event, and the headers its attributes:
/// `ce-id`, `ce-time`, `ce-source` and `ce-subject` fill the call's `id`,
/// `time`, `integration` and `path` where the body has none (values
/// percent-encoded as the HTTP binding has them; `ce-type` and extensions
/// are not read). A `ce-time` that is not RFC 3339, a `ce-specversion` other
/// than `1.0`, or any of these headers without `ce-specversion` is refused
/// (400). They are not listed as parameters: they switch the body's mode,
/// which parameters cannot say.
///
/// In every CloudEvents mode, a field given by both the envelope and the
/// data with different values rejects the event (`envelope_conflict`): give
/// a call's id and time once, or the same in both. SDKs fill `id` (a new
/// UUID) and `time` (now) when the producer gives none.
#[utoipa::path(
    post,
    path = "/v1/events",
    tag = "ingest",
    request_body(
        description = "The events; each is a call event (components/schemas/CallEvent) or a CloudEvent whose data is one",
        content(
            (EventsBody = "application/json"),
            (NdjsonBody = "application/x-ndjson"),
            (StructuredCloudEvent = "application/cloudevents+json"),
            (EventsBody = "application/cloudevents-batch+json"),
        )
    ),
    responses(
        (status = 200, description = "Each event's outcome, in order: accepted, duplicate or rejected (with reason and field)", body = IngestAnswer),
        (status = 400, response = BadRequest),
        (status = 503, response = Unavailable),
        (status = 507, response = DiskFull),
    ),
    security(("bearer" = []))
)]
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
