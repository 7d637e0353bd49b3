//! A CloudEvent whose data is a call event, turned into that call event the
//! same way wherever it arrives: `POST /v1/events` in each of the three modes
//! of the CloudEvents HTTP binding (structured, batch, binary) and
//! `callmeter import --format cloudevents`. One mapping, so that the same
//! event counts as the same call through either door.
//!
//! The envelope's attributes fill the fields that the data leaves out:
//!
//! | attribute | call event field |
//! |-----------|------------------|
//! | `id`      | `id`             |
//! | `time`    | `time`           |
//! | `source`  | `integration`    |
//! | `subject` | `path`           |
//!
//! SDKs put a call's id and time in the envelope, where the specification
//! has them; a producer may also put them in the data. When both give a
//! field and the values differ, the event is refused with reason
//! `envelope_conflict`, naming the field: which one is meant cannot be
//! known, and a wrong guess bills a call at the wrong time or under a second
//! id (counted twice). Times are compared as instants, so that
//! `…T10:00:00Z` and `…T11:00:00+01:00` agree. SDKs fill `id` (a new UUID)
//! and `time` (now) when the producer gives none: a producer that keeps the
//! call's own id and time in the data sets the envelope's to the same.
//!
//! The data is the JSON object in `data`, or the JSON object that
//! `data_base64` encodes (how SDKs send data they hold as bytes), or in
//! binary mode the body. The other attributes (`type`, extensions) are not
//! part of the call.

use crate::parse::{kind, quote, EventError, RejectReason};
use base64::Engine;
use chrono::DateTime;
use serde_json::{Map, Value};

/// The only version of the specification whose events are read.
pub const CLOUDEVENTS_SPEC_VERSION: &str = "1.0";

/// The attributes of a CloudEvent that say something about the call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CloudEventEnvelope {
    /// `specversion`: `1.0` when given.
    pub specversion: Option<String>,
    /// `id`: the call's id when the data has none.
    pub id: Option<String>,
    /// `time` (RFC 3339): the call's time when the data has none.
    pub time: Option<String>,
    /// `source`: the call's `integration` when the data has none.
    pub source: Option<String>,
    /// `subject`: the call's `path` when the data has none.
    pub subject: Option<String>,
    /// `datacontenttype`: JSON when given (the data is a call event).
    pub datacontenttype: Option<String>,
}

/// One mapped attribute: its name in the envelope and the call event field it fills.
struct Mapped {
    attribute: &'static str,
    field: &'static str,
}

const ID: Mapped = Mapped { attribute: "id", field: "id" };
const TIME: Mapped = Mapped { attribute: "time", field: "time" };
const SOURCE: Mapped = Mapped { attribute: "source", field: "integration" };
const SUBJECT: Mapped = Mapped { attribute: "subject", field: "path" };

fn invalid_data(detail: &str) -> EventError {
    EventError::new("data", RejectReason::InvalidValue, detail)
}

/// Whether a media type is JSON: `application/json`, `text/json` or any `+json` type.
pub fn is_json_media_type(content_type: &str) -> bool {
    let essence = content_type.split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    essence == "application/json" || essence == "text/json" || essence.ends_with("+json")
}

impl CloudEventEnvelope {
    /// Splits a CloudEvent in structured mode (one JSON object, as in a
    /// batch) into its envelope and its data.
    pub fn split(ce: Value) -> Result<(CloudEventEnvelope, Map<String, Value>), EventError> {
        let Value::Object(mut ce) = ce else {
            return Err(EventError {
                field: None,
                reason: RejectReason::WrongType,
                detail: format!("a cloudevent must be a JSON object, not {}", kind(&ce)),
            });
        };
        // Attributes are strings (the specification's types, as JSON carries them).
        let text = |ce: &Map<String, Value>, name: &'static str, field: Option<&'static str>| match ce.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s.clone())),
            Some(other) => Err(EventError {
                field,
                reason: RejectReason::WrongType,
                detail: format!("cloudevent {name}: expected a string, got {}", kind(other)),
            }),
        };
        let envelope = CloudEventEnvelope {
            specversion: text(&ce, "specversion", None)?,
            id: text(&ce, ID.attribute, Some(ID.field))?,
            time: text(&ce, TIME.attribute, Some(TIME.field))?,
            source: text(&ce, SOURCE.attribute, Some(SOURCE.field))?,
            subject: text(&ce, SUBJECT.attribute, Some(SUBJECT.field))?,
            datacontenttype: text(&ce, "datacontenttype", Some("data"))?,
        };
        let data = match (ce.remove("data"), ce.remove("data_base64")) {
            (Some(_), Some(_)) => return Err(invalid_data("a cloudevent carries data or data_base64, not both")),
            (Some(Value::Object(m)), None) => m,
            (Some(_), None) => return Err(invalid_data("cloudevent data is not a JSON object")),
            (None, Some(Value::String(encoded))) => {
                let bytes = base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .map_err(|e| invalid_data(&format!("cloudevent data_base64 is not base64: {e}")))?;
                data_from_bytes(&bytes)?
            }
            (None, Some(_)) => return Err(invalid_data("cloudevent data_base64 is not a string")),
            (None, None) => return Err(invalid_data("cloudevent has no data")),
        };
        Ok((envelope, data))
    }

    /// The call event: the data with the envelope's attributes filled in
    /// where it has none of its own (the table above). A field given in both
    /// with different values is an `envelope_conflict`.
    pub fn apply(&self, mut data: Map<String, Value>) -> Result<Map<String, Value>, EventError> {
        if let Some(version) = &self.specversion {
            if version != CLOUDEVENTS_SPEC_VERSION {
                return Err(EventError {
                    field: None,
                    reason: RejectReason::InvalidValue,
                    detail: format!(
                        "cloudevent specversion {} is not {CLOUDEVENTS_SPEC_VERSION}, the version read here",
                        quote(version)
                    ),
                });
            }
        }
        if let Some(content_type) = &self.datacontenttype {
            if !is_json_media_type(content_type) {
                return Err(invalid_data(&format!(
                    "cloudevent datacontenttype {} is not JSON: the data must be a call event",
                    quote(content_type)
                )));
            }
        }
        let envelope_time = match &self.time {
            None => None,
            Some(t) => Some(DateTime::parse_from_rfc3339(t).map_err(|_| {
                EventError::new(
                    "time",
                    RejectReason::InvalidValue,
                    format!("cloudevent time: not RFC 3339: {}", quote(t)),
                )
            })?),
        };
        fill(&mut data, &ID, self.id.as_deref(), |a, b| a == b)?;
        fill(&mut data, &TIME, self.time.as_deref(), |_, given| {
            // An unreadable data time is not a conflict: the call event's own check words it.
            DateTime::parse_from_rfc3339(given).map_or(true, |t| Some(t) == envelope_time)
        })?;
        fill(&mut data, &SOURCE, self.source.as_deref(), |a, b| a == b)?;
        fill(&mut data, &SUBJECT, self.subject.as_deref(), |a, b| a == b)?;
        Ok(data)
    }
}

/// Puts an attribute's value into its field when the data has none; when the
/// data has a string there, `agrees(value, given)` must hold. A value of the
/// wrong type in the data is left for the call event's own checks to word.
fn fill(
    data: &mut Map<String, Value>,
    mapped: &Mapped,
    value: Option<&str>,
    agrees: impl Fn(&str, &str) -> bool,
) -> Result<(), EventError> {
    let Some(value) = value else { return Ok(()) };
    match data.get(mapped.field) {
        None | Some(Value::Null) => {
            data.insert(mapped.field.to_owned(), Value::String(value.to_owned()));
            Ok(())
        }
        Some(Value::String(given)) if !agrees(value, given) => Err(EventError::new(
            mapped.field,
            RejectReason::EnvelopeConflict,
            format!(
                "cloudevent {} {} and data {} {} differ: give it once (the envelope's {} is the call's {} when the data has none), or the same in both",
                mapped.attribute,
                quote(value),
                mapped.field,
                quote(given),
                mapped.attribute,
                mapped.field
            ),
        )),
        Some(_) => Ok(()),
    }
}

/// The data of a CloudEvent from its bytes (binary mode's body, or decoded
/// `data_base64`): a JSON object, the call event.
pub fn data_from_bytes(bytes: &[u8]) -> Result<Map<String, Value>, EventError> {
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(other) => Err(invalid_data(&format!("cloudevent data is not a JSON object but {}", kind(&other)))),
        Err(e) => Err(EventError {
            field: Some("data"),
            reason: RejectReason::InvalidJson,
            detail: format!("cloudevent data is not JSON: {e}"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn call(v: Value) -> Result<Map<String, Value>, EventError> {
        let (envelope, data) = CloudEventEnvelope::split(v)?;
        envelope.apply(data)
    }

    const TIME_Z: &str = "2026-02-27T08:00:00Z";

    #[test]
    fn the_envelope_fills_what_the_data_leaves_out() {
        let got = call(json!({
            "specversion": "1.0", "id": "ce-1", "time": TIME_Z, "source": "/gateway/eu", "subject": "/in/a.csv",
            "type": "com.example.call", "datacontenttype": "application/json",
            "data": {"account": "acme", "interface": "rest"}
        }))
        .unwrap();
        assert_eq!(
            Value::Object(got),
            json!({"account": "acme", "interface": "rest", "id": "ce-1", "time": TIME_Z, "integration": "/gateway/eu", "path": "/in/a.csv"})
        );
    }

    #[test]
    fn the_same_value_in_both_is_no_conflict() {
        let got = call(json!({
            "id": "x", "time": "2026-02-27T09:00:00+01:00", "source": "nas", "subject": "/p",
            "data": {"id": "x", "time": TIME_Z, "integration": "nas", "path": "/p", "account": "acme"}
        }))
        .unwrap();
        assert_eq!(got["time"], TIME_Z, "the data's own spelling of the same instant is kept");
    }

    #[test]
    fn a_conflict_names_the_field_and_both_values() {
        for (envelope, data, field) in [
            (json!({"id": "ce-1"}), json!({"id": "own"}), "id"),
            (json!({"time": TIME_Z}), json!({"time": "2026-02-27T08:00:01Z"}), "time"),
            (json!({"source": "/gw"}), json!({"integration": "zapier"}), "integration"),
            (json!({"subject": "/a"}), json!({"path": "/b"}), "path"),
        ] {
            let mut ce = envelope.as_object().unwrap().clone();
            ce.insert("data".into(), data);
            let e = call(Value::Object(ce)).unwrap_err();
            assert_eq!((e.field, e.reason), (Some(field), RejectReason::EnvelopeConflict), "{e}");
            assert_eq!(e.reason.as_str(), "envelope_conflict");
        }
        let e = call(json!({"id": "ce-1", "data": {"id": "own"}})).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"field "id": cloudevent id "ce-1" and data id "own" differ: give it once (the envelope's id is the call's id when the data has none), or the same in both"#
        );
    }

    #[test]
    fn data_may_come_base64_encoded() {
        let encoded = base64::engine::general_purpose::STANDARD.encode(br#"{"account":"acme","interface":"sftp"}"#);
        let got = call(json!({"id": "b", "data_base64": encoded})).unwrap();
        assert_eq!((got["account"].as_str(), got["id"].as_str()), (Some("acme"), Some("b")));
    }

    #[test]
    fn broken_envelopes_and_data_say_why() {
        let cases = [
            (json!([1]), None, RejectReason::WrongType, "a cloudevent must be a JSON object, not an array"),
            (json!({"id": "x"}), Some("data"), RejectReason::InvalidValue, "cloudevent has no data"),
            (json!({"data": "s"}), Some("data"), RejectReason::InvalidValue, "cloudevent data is not a JSON object"),
            (
                json!({"data": {}, "data_base64": ""}),
                Some("data"),
                RejectReason::InvalidValue,
                "a cloudevent carries data or data_base64, not both",
            ),
            (
                json!({"id": 7, "data": {}}),
                Some("id"),
                RejectReason::WrongType,
                "cloudevent id: expected a string, got an integer",
            ),
            (
                json!({"specversion": "0.3", "data": {}}),
                None,
                RejectReason::InvalidValue,
                "cloudevent specversion \"0.3\" is not 1.0, the version read here",
            ),
            (
                json!({"datacontenttype": "text/plain", "data": {}}),
                Some("data"),
                RejectReason::InvalidValue,
                "cloudevent datacontenttype \"text/plain\" is not JSON: the data must be a call event",
            ),
            (
                json!({"time": "yesterday", "data": {}}),
                Some("time"),
                RejectReason::InvalidValue,
                "cloudevent time: not RFC 3339: \"yesterday\"",
            ),
            (
                json!({"data_base64": "%%%"}),
                Some("data"),
                RejectReason::InvalidValue,
                "cloudevent data_base64 is not base64",
            ),
        ];
        for (ce, field, reason, detail) in cases {
            let e = call(ce.clone()).unwrap_err();
            assert_eq!((e.field, e.reason), (field, reason), "{ce}: {e}");
            assert!(e.detail.starts_with(detail), "{ce}: {}", e.detail);
        }
    }

    #[test]
    fn a_bad_value_in_the_data_is_left_for_the_call_events_checks() {
        // Not a conflict: the call event's own checks name the wrong type or value.
        let got = call(json!({"id": "x", "time": TIME_Z, "data": {"id": 5, "time": "soon"}})).unwrap();
        assert_eq!((got["id"].clone(), got["time"].clone()), (json!(5), json!("soon")));
    }

    #[test]
    fn binary_data_is_one_json_object() {
        assert_eq!(data_from_bytes(br#"{"a":1}"#).unwrap()["a"], 1);
        let e = data_from_bytes(b"[1]").unwrap_err();
        assert_eq!((e.field, e.reason), (Some("data"), RejectReason::InvalidValue));
        assert_eq!(e.detail, "cloudevent data is not a JSON object but an array");
        assert_eq!(data_from_bytes(b"{").unwrap_err().reason, RejectReason::InvalidJson);
    }

    #[test]
    fn json_media_types() {
        for t in ["application/json", "Application/JSON; charset=utf-8", "text/json", "application/vnd.callmeter+json"]
        {
            assert!(is_json_media_type(t), "{t}");
        }
        for t in ["text/plain", "application/x-ndjson", "", "application/jsonx"] {
            assert!(!is_json_media_type(t), "{t}");
        }
    }
}
