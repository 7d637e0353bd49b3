//! `POST /v1/events`: a JSON array, NDJSON or CloudEvents (a batch, one
//! structured event, or one in binary mode) in, one outcome per event out,
//! sent only once the accepted events are durable.
//!
//! Every CloudEvent becomes its call event through the model's one mapping
//! ([`CloudEventEnvelope`]), as the log importer's do.

use crate::error::ApiError;
use crate::options::MAX_EVENTS_PER_REQUEST;
use axum::http::HeaderMap;
use callmeter_model::cloudevent::data_from_bytes;
use callmeter_model::{
    event_from_value, is_json_media_type, parse_event, CallEvent, CloudEventEnvelope, EventError, EventLimits,
    CLOUDEVENTS_SPEC_VERSION,
};
use callmeter_store::Outcome;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use std::fmt::Write;

/// How the body is framed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`: an array of call events (or one).
    JsonArray,
    /// `application/x-ndjson`: one call event per line.
    Ndjson,
    /// `application/cloudevents-batch+json`: an array of CloudEvents whose `data` is the call event.
    CloudEventsBatch,
    /// `application/cloudevents+json`: one CloudEvent in structured mode.
    CloudEvent,
    /// A CloudEvent in binary mode: its attributes in `ce-` headers, its data (the call event) the body.
    CloudEventBinary(CloudEventEnvelope),
}

/// The media types of NDJSON that clients send.
const NDJSON_TYPES: [&str; 3] = ["application/x-ndjson", "application/ndjson", "application/jsonl"];

/// The `ce-` headers of binary mode that the mapping reads (`ce-type` and extensions are not part of the call).
pub const BINARY_HEADERS: [&str; 5] = ["ce-specversion", "ce-id", "ce-time", "ce-source", "ce-subject"];

impl BodyKind {
    /// The framing a content type names (a JSON array when none is given);
    /// `None` for one we do not read (the route answers 415).
    pub fn from_content_type(ct: Option<&str>) -> Option<BodyKind> {
        let ct = ct.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match ct.as_str() {
            "" | "application/json" => Some(BodyKind::JsonArray),
            t if NDJSON_TYPES.contains(&t) => Some(BodyKind::Ndjson),
            "application/cloudevents-batch+json" => Some(BodyKind::CloudEventsBatch),
            "application/cloudevents+json" => Some(BodyKind::CloudEvent),
            _ => None,
        }
    }

    /// The framing of a request, from its headers (the CloudEvents HTTP
    /// binding's rules): a `cloudevents` content type is structured mode;
    /// else a `ce-specversion` header is binary mode, whose body (the data)
    /// must be JSON; else the content type says. `ce-` headers without
    /// `ce-specversion` are half a CloudEvent: refused, not ignored.
    pub fn from_headers(headers: &HeaderMap) -> Result<BodyKind, ApiError> {
        let content_type = headers.get(axum::http::header::CONTENT_TYPE).map(|v| String::from_utf8_lossy(v.as_bytes()));
        let kind = BodyKind::from_content_type(content_type.as_deref()).ok_or_else(|| {
            ApiError::UnsupportedMediaType(format!(
                "content-type: {:?} is not application/json, application/x-ndjson, application/cloudevents+json or application/cloudevents-batch+json",
                content_type.clone().unwrap_or_default()
            ))
        });
        if matches!(kind, Ok(BodyKind::CloudEvent | BodyKind::CloudEventsBatch)) {
            return kind;
        }
        let given: Vec<&str> = BINARY_HEADERS.iter().copied().filter(|h| headers.contains_key(*h)).collect();
        if given.is_empty() {
            return kind;
        }
        let Some(specversion) = ce_header(headers, "ce-specversion")? else {
            return Err(ApiError::BadRequest(format!(
                "{}: a CloudEvent in binary mode needs ce-specversion: {CLOUDEVENTS_SPEC_VERSION}",
                given.join(", ")
            )));
        };
        if specversion != CLOUDEVENTS_SPEC_VERSION {
            return Err(ApiError::BadRequest(format!(
                "ce-specversion: {specversion:?} is not {CLOUDEVENTS_SPEC_VERSION}, the version read here"
            )));
        }
        if let Some(t) = content_type.as_deref().filter(|t| !t.trim().is_empty() && !is_json_media_type(t)) {
            return Err(ApiError::UnsupportedMediaType(format!(
                "content-type: {t:?}: the data of a CloudEvent in binary mode is a call event, in JSON"
            )));
        }
        let time = ce_header(headers, "ce-time")?;
        if let Some(t) = time.as_deref().filter(|t| DateTime::parse_from_rfc3339(t).is_err()) {
            return Err(ApiError::BadRequest(format!("ce-time: {t:?} is not an RFC 3339 time")));
        }
        Ok(BodyKind::CloudEventBinary(CloudEventEnvelope {
            specversion: Some(specversion),
            id: ce_header(headers, "ce-id")?,
            time,
            source: ce_header(headers, "ce-source")?,
            subject: ce_header(headers, "ce-subject")?,
            datacontenttype: None,
        }))
    }
}

/// A `ce-` header's value, percent-decoded as the HTTP binding has them
/// encoded; 400 when it is not UTF-8 once decoded.
fn ce_header(headers: &HeaderMap, name: &str) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    let raw = value.as_bytes();
    let mut decoded = Vec::with_capacity(raw.len());
    let mut i = 0;
    while i < raw.len() {
        let hex = |b: u8| (b as char).to_digit(16);
        match (raw[i], raw.get(i + 1).copied().and_then(hex), raw.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(hi), Some(lo)) => {
                decoded.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                decoded.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(decoded)
        .map(Some)
        .map_err(|_| ApiError::BadRequest(format!("{name}: not UTF-8 once percent-decoded")))
}

/// The body split into events: each either parsed, or rejected with why.
pub struct Parsed {
    /// Per event in order: the event or its error.
    pub items: Vec<Result<CallEvent, EventError>>,
}

/// The UTF-8 byte order mark that Windows tools (PowerShell, Notepad, .NET) put at the start of a file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits and validates a body. Fails as a whole only when the framing itself is broken.
pub fn parse_body(kind: &BodyKind, body: &[u8], now: DateTime<Utc>) -> Result<Parsed, ApiError> {
    // A body saved by such a tool starts with a BOM: no part of the JSON, and
    // left in, it fails the first line of NDJSON or a whole array.
    let body = body.strip_prefix(UTF8_BOM).unwrap_or(body);
    let limits = EventLimits::default();
    let items = match kind {
        BodyKind::Ndjson => {
            let lines = body.split(|b| *b == b'\n').filter(|l| !l.iter().all(|b| b.is_ascii_whitespace()));
            // Events are a few hundred bytes: reserve once instead of regrowing.
            let mut items = Vec::with_capacity((body.len() / 256).min(MAX_EVENTS_PER_REQUEST));
            for line in lines {
                if items.len() == MAX_EVENTS_PER_REQUEST {
                    return Err(too_many());
                }
                items.push(parse_event(line, now, &limits));
            }
            items
        }
        BodyKind::JsonArray => {
            let raws = array_of_raw(body)?;
            raws.iter().map(|r| parse_event(r.get().as_bytes(), now, &limits)).collect()
        }
        BodyKind::CloudEventsBatch => {
            let raws = array_of_raw(body)?;
            raws.iter().map(|r| structured(r.get().as_bytes(), now, &limits)).collect()
        }
        BodyKind::CloudEvent => {
            let trimmed = body.trim_ascii_start();
            if !trimmed.starts_with(b"{") {
                return Err(ApiError::BadRequest(
                    "body: a CloudEvent in structured mode is one JSON object (a batch is application/cloudevents-batch+json)"
                        .into(),
                ));
            }
            let raw: &RawValue =
                serde_json::from_slice(trimmed).map_err(|e| ApiError::BadRequest(format!("body is not JSON: {e}")))?;
            vec![structured(raw.get().as_bytes(), now, &limits)]
        }
        BodyKind::CloudEventBinary(envelope) => {
            let call = data_from_bytes(body)
                .and_then(|data| envelope.apply(data))
                .and_then(|call| event_from_value(&serde_json::Value::Object(call), now, &limits));
            vec![call]
        }
    };
    Ok(Parsed { items })
}

fn too_many() -> ApiError {
    ApiError::TooLarge(format!("a request carries at most {MAX_EVENTS_PER_REQUEST} events"))
}

fn array_of_raw(body: &[u8]) -> Result<Vec<&RawValue>, ApiError> {
    let trimmed = body.trim_ascii_start();
    let raws: Vec<&RawValue> = if trimmed.starts_with(b"{") {
        vec![serde_json::from_slice(trimmed).map_err(|e| ApiError::BadRequest(format!("body is not JSON: {e}")))?]
    } else {
        serde_json::from_slice(trimmed)
            .map_err(|e| ApiError::BadRequest(format!("body is not a JSON array of events: {e}")))?
    };
    if raws.len() > MAX_EVENTS_PER_REQUEST {
        return Err(too_many());
    }
    Ok(raws)
}

/// One CloudEvent in structured mode (alone, or in a batch).
fn structured(raw: &[u8], now: DateTime<Utc>, limits: &EventLimits) -> Result<CallEvent, EventError> {
    let ce: serde_json::Value = serde_json::from_slice(raw).map_err(|e| EventError {
        field: None,
        reason: callmeter_model::RejectReason::InvalidJson,
        detail: format!("cloudevent is not JSON: {e}"),
    })?;
    let (envelope, data) = CloudEventEnvelope::split(ce)?;
    let call = envelope.apply(data)?;
    event_from_value(&serde_json::Value::Object(call), now, limits)
}

/// Writes the answer: totals, then one entry per event with its index.
pub fn answer(parsed_errors: &[Option<EventError>], outcomes: &[Outcome]) -> String {
    let (mut accepted, mut duplicates, mut rejected) = (0usize, 0usize, 0usize);
    let mut results = String::with_capacity(parsed_errors.len() * 40);
    let mut stored = outcomes.iter();
    for (index, err) in parsed_errors.iter().enumerate() {
        if index > 0 {
            results.push(',');
        }
        match err {
            Some(e) => {
                rejected += 1;
                let field = e.field.map_or("null".to_owned(), |f| format!("\"{f}\""));
                let _ = write!(
                    results,
                    r#"{{"index":{index},"status":"rejected","reason":"{}","field":{field},"error":{}}}"#,
                    e.reason.as_str(),
                    serde_json::Value::String(e.to_string())
                );
            }
            None => match stored.next() {
                Some(Outcome::Accepted) => {
                    accepted += 1;
                    let _ = write!(results, r#"{{"index":{index},"status":"accepted"}}"#);
                }
                Some(Outcome::Duplicate) => {
                    duplicates += 1;
                    let _ = write!(results, r#"{{"index":{index},"status":"duplicate"}}"#);
                }
                Some(Outcome::Rejected(reason)) => {
                    rejected += 1;
                    let field = match reason {
                        callmeter_model::RejectReason::UnknownAccount => "\"account\"",
                        callmeter_model::RejectReason::OlderThanRetention => "\"time\"",
                        _ => "null",
                    };
                    let _ = write!(
                        results,
                        r#"{{"index":{index},"status":"rejected","reason":"{}","field":{field},"error":"{}"}}"#,
                        reason.as_str(),
                        reason.as_str().replace('_', " ")
                    );
                }
                None => {}
            },
        }
    }
    format!(r#"{{"accepted":{accepted},"duplicates":{duplicates},"rejected":{rejected},"results":[{results}]}}"#)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        Utc::now()
    }

    const GOOD: &str = r#"{"id":"1","account":"acme","time":"2026-01-01T00:00:00Z","interface":"rest"}"#;

    #[test]
    fn content_types() {
        assert_eq!(BodyKind::from_content_type(Some("application/x-ndjson; charset=utf-8")), Some(BodyKind::Ndjson));
        assert_eq!(
            BodyKind::from_content_type(Some("application/cloudevents-batch+json")),
            Some(BodyKind::CloudEventsBatch)
        );
        assert_eq!(BodyKind::from_content_type(Some("application/cloudevents+json")), Some(BodyKind::CloudEvent));
        assert_eq!(BodyKind::from_content_type(Some("Application/JSON")), Some(BodyKind::JsonArray));
        assert_eq!(BodyKind::from_content_type(None), Some(BodyKind::JsonArray));
        assert_eq!(BodyKind::from_content_type(Some("text/plain")), None);
        assert_eq!(BodyKind::from_content_type(Some("application/x-www-form-urlencoded")), None);
    }

    #[test]
    fn ndjson_keeps_bad_lines_apart() {
        let body = format!("{GOOD}\n\n{{\"id\":2}}\nnot json\n");
        let p = parse_body(&BodyKind::Ndjson, body.as_bytes(), now()).unwrap();
        assert_eq!(p.items.len(), 3);
        assert!(p.items[0].is_ok() && p.items[1].is_err() && p.items[2].is_err());
    }

    #[test]
    fn cloudevent_id_becomes_the_call_id() {
        let body = r#"[{"specversion":"1.0","id":"ce-9","source":"x","type":"t","data":{"account":"acme","time":"2026-01-01T00:00:00Z","interface":"sftp"}}]"#;
        let p = parse_body(&BodyKind::CloudEventsBatch, body.as_bytes(), now()).unwrap();
        assert_eq!(p.items[0].as_ref().unwrap().id, "ce-9");
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped_in_every_framing() {
        let ce = r#"{"specversion":"1.0","id":"ce-9","source":"x","type":"t","data":{"account":"acme","time":"2026-01-01T00:00:00Z","interface":"sftp"}}"#;
        let bodies = [
            (BodyKind::Ndjson, format!("\u{feff}{GOOD}\n{GOOD}\n")),
            (BodyKind::JsonArray, format!("\u{feff}[{GOOD},{GOOD}]")),
            (BodyKind::JsonArray, format!("\u{feff}{GOOD}")),
            (BodyKind::CloudEventsBatch, format!("\u{feff}[{ce},{ce}]")),
        ];
        for (kind, body) in bodies {
            assert!(body.as_bytes().starts_with(UTF8_BOM));
            let p = parse_body(&kind, body.as_bytes(), now()).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert!(p.items.iter().all(Result::is_ok), "{kind:?}: {:?}", p.items);
        }
        // Only at the start: a BOM before a later line is that line's error.
        let p = parse_body(&BodyKind::Ndjson, format!("{GOOD}\n\u{feff}{GOOD}\n").as_bytes(), now()).unwrap();
        assert!(p.items[0].is_ok() && p.items[1].is_err());
    }

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (name, value) in pairs {
            h.insert(*name, value.parse().unwrap());
        }
        h
    }

    const CALL_DATA: &str = r#"{"account":"acme","interface":"sftp"}"#;

    #[test]
    fn binary_mode_takes_the_envelope_from_the_headers() {
        let h = headers(&[
            ("ce-specversion", "1.0"),
            ("ce-id", "bin-1"),
            ("ce-time", "2026-01-01T00:00:00Z"),
            ("ce-source", "/gateway%20eu"),
            ("ce-type", "com.example.call"),
        ]);
        let kind = BodyKind::from_headers(&h).unwrap();
        let p = parse_body(&kind, CALL_DATA.as_bytes(), now()).unwrap();
        let e = p.items[0].as_ref().unwrap();
        assert_eq!((e.id.as_str(), e.integration.as_deref()), ("bin-1", Some("/gateway eu")));
        // With a JSON content type too; the data is one object, not a batch.
        let h = headers(&[("ce-specversion", "1.0"), ("ce-id", "x"), ("content-type", "application/json")]);
        let kind = BodyKind::from_headers(&h).unwrap();
        let p = parse_body(&kind, b"[1]", now()).unwrap();
        assert_eq!(p.items[0].as_ref().unwrap_err().detail, "cloudevent data is not a JSON object but an array");
    }

    #[test]
    fn broken_binary_headers_are_refused_before_the_body() {
        let status =
            |pairs: &[(&'static str, &str)]| BodyKind::from_headers(&headers(pairs)).unwrap_err().code_and_status().1;
        assert_eq!(status(&[("ce-id", "x")]), 400, "half a CloudEvent");
        assert_eq!(status(&[("ce-specversion", "0.3")]), 400);
        assert_eq!(status(&[("ce-specversion", "1.0"), ("ce-time", "now")]), 400);
        assert_eq!(status(&[("ce-specversion", "1.0"), ("ce-id", "%ff")]), 400);
        assert_eq!(status(&[("ce-specversion", "1.0"), ("content-type", "text/plain")]), 415);
        assert_eq!(status(&[("content-type", "text/plain")]), 415);
        // The content type says structured mode: the ce- headers are not read.
        let h = headers(&[("ce-id", "x"), ("content-type", "application/cloudevents+json")]);
        assert_eq!(BodyKind::from_headers(&h).unwrap(), BodyKind::CloudEvent);
    }

    #[test]
    fn a_structured_event_is_one_object() {
        let ce = r#"{"specversion":"1.0","id":"s-1","time":"2026-01-01T00:00:00Z","source":"/s","type":"t","data":{"account":"acme","interface":"rest"}}"#;
        let p = parse_body(&BodyKind::CloudEvent, ce.as_bytes(), now()).unwrap();
        assert_eq!(p.items[0].as_ref().unwrap().id, "s-1");
        let e = parse_body(&BodyKind::CloudEvent, format!("[{ce}]").as_bytes(), now()).err().unwrap();
        assert_eq!(e.code_and_status().1, 400);
    }

    #[test]
    fn broken_array_is_a_bad_request() {
        assert!(parse_body(&BodyKind::JsonArray, b"[{", now()).is_err());
    }

    #[test]
    fn answer_lists_every_index() {
        let errs = vec![None, Some(parse_event(b"{}", now(), &EventLimits::default()).unwrap_err()), None];
        let a = answer(&errs, &[Outcome::Accepted, Outcome::Duplicate]);
        let v: serde_json::Value = serde_json::from_str(&a).unwrap();
        assert_eq!(v["accepted"], 1);
        assert_eq!(v["duplicates"], 1);
        assert_eq!(v["rejected"], 1);
        assert_eq!(v["results"][1]["status"], "rejected");
        assert_eq!(v["results"][2]["index"], 2);
    }
}
