//! `POST /v1/events`: a JSON array, NDJSON or a CloudEvents batch in, one
//! outcome per event out, sent only once the accepted events are durable.

use crate::error::ApiError;
use crate::options::MAX_EVENTS_PER_REQUEST;
use callmeter_model::{event_from_value, parse_event, CallEvent, EventError, EventLimits};
use callmeter_store::Outcome;
use chrono::{DateTime, Utc};
use serde_json::value::RawValue;
use std::fmt::Write;

/// How the body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    /// `application/json`: an array of call events (or one).
    JsonArray,
    /// `application/x-ndjson`: one call event per line.
    Ndjson,
    /// `application/cloudevents-batch+json`: an array of CloudEvents whose `data` is the call event.
    CloudEvents,
}

impl BodyKind {
    /// The framing a content type names (a JSON array when none is given);
    /// `None` for one we do not read (the route answers 415).
    pub fn from_content_type(ct: Option<&str>) -> Option<BodyKind> {
        let ct = ct.unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
        match ct.as_str() {
            "" | "application/json" => Some(BodyKind::JsonArray),
            "application/x-ndjson" | "application/ndjson" | "application/jsonl" => Some(BodyKind::Ndjson),
            "application/cloudevents-batch+json" => Some(BodyKind::CloudEvents),
            _ => None,
        }
    }
}

/// The body split into events: each either parsed, or rejected with why.
pub struct Parsed {
    /// Per event in order: the event or its error.
    pub items: Vec<Result<CallEvent, EventError>>,
}

/// The UTF-8 byte order mark that Windows tools (PowerShell, Notepad, .NET) put at the start of a file.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// Splits and validates a body. Fails as a whole only when the framing itself is broken.
pub fn parse_body(kind: BodyKind, body: &[u8], now: DateTime<Utc>) -> Result<Parsed, ApiError> {
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
        BodyKind::CloudEvents => {
            let raws = array_of_raw(body)?;
            raws.iter().map(|r| cloud_event(r.get().as_bytes(), now, &limits)).collect()
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

/// One CloudEvent: the call event is its `data`, whose `id` defaults to the CloudEvent's.
fn cloud_event(raw: &[u8], now: DateTime<Utc>, limits: &EventLimits) -> Result<CallEvent, EventError> {
    let invalid = |detail: &str| EventError {
        field: Some("data"),
        reason: callmeter_model::RejectReason::InvalidValue,
        detail: detail.to_owned(),
    };
    let mut ce: serde_json::Map<String, serde_json::Value> = serde_json::from_slice(raw).map_err(|e| EventError {
        field: None,
        reason: callmeter_model::RejectReason::InvalidJson,
        detail: format!("cloudevent is not a JSON object: {e}"),
    })?;
    let ce_id = ce.get("id").and_then(|v| v.as_str()).map(str::to_owned);
    let mut data = match ce.remove("data") {
        Some(serde_json::Value::Object(m)) => m,
        Some(_) => return Err(invalid("cloudevent data is not a JSON object")),
        None => return Err(invalid("cloudevent has no data")),
    };
    if !data.contains_key("id") {
        if let Some(id) = ce_id {
            data.insert("id".into(), serde_json::Value::String(id));
        }
    }
    event_from_value(&serde_json::Value::Object(data), now, limits)
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
            Some(BodyKind::CloudEvents)
        );
        assert_eq!(BodyKind::from_content_type(Some("Application/JSON")), Some(BodyKind::JsonArray));
        assert_eq!(BodyKind::from_content_type(None), Some(BodyKind::JsonArray));
        assert_eq!(BodyKind::from_content_type(Some("text/plain")), None);
        assert_eq!(BodyKind::from_content_type(Some("application/x-www-form-urlencoded")), None);
    }

    #[test]
    fn ndjson_keeps_bad_lines_apart() {
        let body = format!("{GOOD}\n\n{{\"id\":2}}\nnot json\n");
        let p = parse_body(BodyKind::Ndjson, body.as_bytes(), now()).unwrap();
        assert_eq!(p.items.len(), 3);
        assert!(p.items[0].is_ok() && p.items[1].is_err() && p.items[2].is_err());
    }

    #[test]
    fn cloudevent_id_becomes_the_call_id() {
        let body = r#"[{"specversion":"1.0","id":"ce-9","source":"x","type":"t","data":{"account":"acme","time":"2026-01-01T00:00:00Z","interface":"sftp"}}]"#;
        let p = parse_body(BodyKind::CloudEvents, body.as_bytes(), now()).unwrap();
        assert_eq!(p.items[0].as_ref().unwrap().id, "ce-9");
    }

    #[test]
    fn a_leading_byte_order_mark_is_skipped_in_every_framing() {
        let ce = r#"{"specversion":"1.0","id":"ce-9","source":"x","type":"t","data":{"account":"acme","time":"2026-01-01T00:00:00Z","interface":"sftp"}}"#;
        let bodies = [
            (BodyKind::Ndjson, format!("\u{feff}{GOOD}\n{GOOD}\n")),
            (BodyKind::JsonArray, format!("\u{feff}[{GOOD},{GOOD}]")),
            (BodyKind::JsonArray, format!("\u{feff}{GOOD}")),
            (BodyKind::CloudEvents, format!("\u{feff}[{ce},{ce}]")),
        ];
        for (kind, body) in bodies {
            assert!(body.as_bytes().starts_with(UTF8_BOM));
            let p = parse_body(kind, body.as_bytes(), now()).unwrap_or_else(|e| panic!("{kind:?}: {e}"));
            assert!(p.items.iter().all(Result::is_ok), "{kind:?}: {:?}", p.items);
        }
        // Only at the start: a BOM before a later line is that line's error.
        let p = parse_body(BodyKind::Ndjson, format!("{GOOD}\n\u{feff}{GOOD}\n").as_bytes(), now()).unwrap();
        assert!(p.items[0].is_ok() && p.items[1].is_err());
    }

    #[test]
    fn broken_array_is_a_bad_request() {
        assert!(parse_body(BodyKind::JsonArray, b"[{", now()).is_err());
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
