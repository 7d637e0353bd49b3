//! Turning one JSON object into a validated [`CallEvent`], or a precise reason why not.
//!
//! The common form (a flat object, no escapes) is read by hand (`flat.rs`);
//! otherwise serde deserializes into the same borrowed struct, so a valid
//! event costs one pass over its bytes and one allocation per kept string.
//! Only when both fail is the input parsed again into a `serde_json::Value`
//! and walked field by field, to name the field and the reason. Both paths end in the same
//! checks, so they agree on every input that has no duplicate keys
//! (with duplicates, the last value wins, as in `serde_json::Value`).
//!
//! Order of checks: JSON syntax, then field types (in the order of the DESIGN
//! §3 table), then missing required fields and values (same order; the value
//! checks, shared with events that log readers build, are in `check.rs`).

mod check;
mod flat;

pub use check::{
    check_event, is_valid_account, ACCOUNT_PATTERN, MAX_ACCOUNT_BYTES, MAX_COUNT, MAX_ID_BYTES, MAX_STATUS,
};

use crate::event::{derive_operation, CallEvent, Interface, Operation};
use chrono::{DateTime, Duration, Utc};
use serde::de::{self, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use serde_json::Value;
use std::borrow::Cow;
use std::fmt;

/// Size and clock limits applied while parsing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventLimits {
    /// Longest optional string field, in bytes (default 4096).
    pub max_field_bytes: usize,
    /// How far ahead of `now` a call's `time` may be (default 5 minutes; DESIGN §3).
    pub max_future: Duration,
}

impl Default for EventLimits {
    fn default() -> Self {
        EventLimits { max_field_bytes: 4096, max_future: Duration::minutes(5) }
    }
}

/// Why an event was refused. The snake_case codes are part of the API.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RejectReason {
    /// Not JSON at all.
    InvalidJson,
    /// A required field is absent or null.
    MissingField,
    /// A field has the wrong JSON type (or the event is not an object).
    WrongType,
    /// A field has the right type but a value outside its domain.
    InvalidValue,
    /// A field is longer than allowed.
    Oversize,
    /// `time` is too far ahead of the server clock.
    InFuture,
    /// The account does not exist and may not be created (decided by the store).
    UnknownAccount,
    /// `time` is older than the retention (decided by the store).
    OlderThanRetention,
    /// A CloudEvent's envelope and its data give the same field different
    /// values (`cloudevent.rs`): which one is meant cannot be known.
    EnvelopeConflict,
}

impl RejectReason {
    /// Every reason, in the order of the enum (the API's description lists them).
    pub const ALL: [RejectReason; 9] = [
        RejectReason::InvalidJson,
        RejectReason::MissingField,
        RejectReason::WrongType,
        RejectReason::InvalidValue,
        RejectReason::Oversize,
        RejectReason::InFuture,
        RejectReason::UnknownAccount,
        RejectReason::OlderThanRetention,
        RejectReason::EnvelopeConflict,
    ];

    /// The stable code: `invalid_json`, `missing_field`, `wrong_type`, `invalid_value`,
    /// `oversize`, `in_future`, `unknown_account`, `older_than_retention` or `envelope_conflict`.
    pub fn as_str(&self) -> &'static str {
        match self {
            RejectReason::InvalidJson => "invalid_json",
            RejectReason::MissingField => "missing_field",
            RejectReason::WrongType => "wrong_type",
            RejectReason::InvalidValue => "invalid_value",
            RejectReason::Oversize => "oversize",
            RejectReason::InFuture => "in_future",
            RejectReason::UnknownAccount => "unknown_account",
            RejectReason::OlderThanRetention => "older_than_retention",
            RejectReason::EnvelopeConflict => "envelope_conflict",
        }
    }
}

impl fmt::Display for RejectReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A refused event: which field, the reason code, and a message for people.
///
/// Displays as `field "time": not RFC 3339: "yesterday"`, or just the detail
/// when no single field is to blame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{detail}", FieldPrefix(*.field))]
pub struct EventError {
    /// The offending field, as named in the JSON.
    pub field: Option<&'static str>,
    /// The reason code.
    pub reason: RejectReason,
    /// What was wrong, lowercase, quoting (a prefix of) the bad value.
    pub detail: String,
}

struct FieldPrefix(Option<&'static str>);

impl fmt::Display for FieldPrefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(name) => write!(f, "field {name:?}: "),
            None => Ok(()),
        }
    }
}

impl EventError {
    pub(crate) fn new(field: &'static str, reason: RejectReason, detail: impl Into<String>) -> Self {
        EventError { field: Some(field), reason, detail: detail.into() }
    }
}

/// Parses and validates one event from JSON bytes. Never panics.
pub fn parse_event(json: &[u8], now: DateTime<Utc>, limits: &EventLimits) -> Result<CallEvent, EventError> {
    // serde would read a JSON array into the struct positionally: only objects take the fast path.
    if let Some(wire) = flat::read(json) {
        return finish(wire, now, limits);
    }
    if json.trim_ascii_start().first() == Some(&b'{') {
        if let Ok(wire) = serde_json::from_slice::<Wire<'_>>(json) {
            return finish(wire, now, limits);
        }
    }
    match serde_json::from_slice::<Value>(json) {
        Ok(v) => event_from_value(&v, now, limits),
        Err(e) => Err(EventError { field: None, reason: RejectReason::InvalidJson, detail: format!("not JSON: {e}") }),
    }
}

/// Validates one event already parsed into a JSON value (a CloudEvent's `data`,
/// an element of a parsed array). Never panics.
pub fn event_from_value(v: &Value, now: DateTime<Utc>, limits: &EventLimits) -> Result<CallEvent, EventError> {
    let wire = wire_from_value(v)?;
    finish(wire, now, limits)
}

/// The event as it arrives: types checked, values not yet.
///
/// Strings borrow from the input when it has no escapes, so fields that are
/// only checked (`time`) cost no allocation; unknown fields are skipped.
#[derive(Debug, Default, PartialEq, Deserialize)]
struct Wire<'a> {
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    id: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    account: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    time: Option<Cow<'a, str>>,
    interface: Option<Interface>,
    operation: Option<Operation>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    method: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    path: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    destination: Option<Cow<'a, str>>,
    status: Option<i64>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    api_key: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    user: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    client_ip: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    user_agent: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    integration: Option<Cow<'a, str>>,
    #[serde(borrow, default, deserialize_with = "opt_cow")]
    cursor: Option<Cow<'a, str>>,
    result_count: Option<u64>,
    bytes: Option<u64>,
    #[serde(default, deserialize_with = "opt_number")]
    duration_ms: Option<f64>,
}

/// A JSON number's text as an `f64`, the one conversion both readers use so
/// that they agree to the bit. Out of range is infinity (`1e999`), which the
/// checks then refuse with the field named; `-0` is kept as it reads here and
/// made 0 when the event is built.
fn number_as_f64(text: &str) -> Option<f64> {
    text.parse().ok()
}

/// `duration_ms` read from its raw text: serde_json refuses a number beyond
/// `f64` (`1e999`) as a syntax error of the whole object, which would lose
/// the field's name; the raw text is converted by [`number_as_f64`] instead.
fn opt_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<f64>, D::Error> {
    let Some(raw) = Option::<&'de RawValue>::deserialize(d)? else {
        return Ok(None);
    };
    let text = raw.get();
    // Only a number starts with a digit or a minus: a string, array or `true` is for the slow path to word.
    if !text.starts_with(|c: char| c == '-' || c.is_ascii_digit()) {
        return Err(de::Error::custom("expected a number"));
    }
    number_as_f64(text).map(Some).ok_or_else(|| de::Error::custom("expected a number"))
}

/// `Option<Cow<str>>` that really borrows: serde's own `Cow` impl always copies.
fn opt_cow<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Cow<'de, str>>, D::Error> {
    struct OptCow;
    struct CowStr;

    impl<'de> Visitor<'de> for CowStr {
        type Value = Cow<'de, str>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string")
        }
        fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Self::Value, E> {
            Ok(Cow::Borrowed(v))
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v.to_owned()))
        }
        fn visit_string<E: de::Error>(self, v: String) -> Result<Self::Value, E> {
            Ok(Cow::Owned(v))
        }
    }

    impl<'de> Visitor<'de> for OptCow {
        type Value = Option<Cow<'de, str>>;
        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a string or null")
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
            d.deserialize_str(CowStr).map(Some)
        }
    }

    d.deserialize_option(OptCow)
}

/// The slow path: the same struct, read from a `Value`, naming the first field of the wrong type.
fn wire_from_value(v: &Value) -> Result<Wire<'_>, EventError> {
    let Value::Object(obj) = v else {
        return Err(EventError {
            field: None,
            reason: RejectReason::WrongType,
            detail: format!("an event must be a JSON object, not {}", kind(v)),
        });
    };
    let get = |name: &'static str| obj.get(name).filter(|v| !v.is_null());
    let string = |name: &'static str| -> Result<Option<Cow<'_, str>>, EventError> {
        match get(name) {
            None => Ok(None),
            Some(Value::String(s)) => Ok(Some(Cow::Borrowed(s.as_str()))),
            Some(other) => Err(wrong_type(name, "a string", other)),
        }
    };
    let unsigned = |name: &'static str| -> Result<Option<u64>, EventError> {
        match get(name) {
            None => Ok(None),
            Some(Value::Number(n)) => match n.as_u64() {
                Some(x) => Ok(Some(x)),
                None if n.is_i64() => Err(EventError::new(name, RejectReason::InvalidValue, format!("negative: {n}"))),
                None => Err(wrong_type(name, "an integer", &Value::Number(n.clone()))),
            },
            Some(other) => Err(wrong_type(name, "an integer", other)),
        }
    };

    let id = string("id")?;
    let account = string("account")?;
    let time = string("time")?;
    let interface = match string("interface")? {
        None => None,
        Some(s) => Some(s.parse::<Interface>().map_err(|e| {
            EventError::new(
                "interface",
                RejectReason::InvalidValue,
                format!("not an interface: {} (expected one of: {})", quote(&s), e.expected),
            )
        })?),
    };
    let operation = match string("operation")? {
        None => None,
        Some(s) => Some(s.parse::<Operation>().map_err(|e| {
            EventError::new(
                "operation",
                RejectReason::InvalidValue,
                format!("not an operation: {} (expected one of: {})", quote(&s), e.expected),
            )
        })?),
    };
    let method = string("method")?;
    let path = string("path")?;
    let destination = string("destination")?;
    let status = match get("status") {
        None => None,
        Some(Value::Number(n)) => match n.as_i64() {
            Some(x) => Some(x),
            None if n.is_u64() => {
                return Err(EventError::new("status", RejectReason::InvalidValue, format!("out of range: {n}")))
            }
            None => return Err(wrong_type("status", "an integer", &Value::Number(n.clone()))),
        },
        Some(other) => return Err(wrong_type("status", "an integer", other)),
    };
    let api_key = string("api_key")?;
    let user = string("user")?;
    let client_ip = string("client_ip")?;
    let user_agent = string("user_agent")?;
    let integration = string("integration")?;
    let cursor = string("cursor")?;
    let result_count = unsigned("result_count")?;
    let bytes = unsigned("bytes")?;
    let duration_ms = match get("duration_ms") {
        None => None,
        Some(Value::Number(n)) => n.as_f64(),
        Some(other) => return Err(wrong_type("duration_ms", "a number", other)),
    };
    Ok(Wire {
        id,
        account,
        time,
        interface,
        operation,
        method,
        path,
        destination,
        status,
        api_key,
        user,
        client_ip,
        user_agent,
        integration,
        cursor,
        result_count,
        bytes,
        duration_ms,
    })
}

/// The checks both paths share: required fields, then each value.
fn finish(w: Wire<'_>, now: DateTime<Utc>, limits: &EventLimits) -> Result<CallEvent, EventError> {
    let id = w.id.ok_or_else(|| missing("id"))?;
    let account = w.account.ok_or_else(|| missing("account"))?;
    let time = w.time.ok_or_else(|| missing("time"))?;
    let time = match DateTime::parse_from_rfc3339(&time) {
        Ok(t) => t.with_timezone(&Utc),
        Err(_) => {
            return Err(EventError::new("time", RejectReason::InvalidValue, format!("not RFC 3339: {}", quote(&time))))
        }
    };
    let interface = w.interface.ok_or_else(|| missing("interface"))?;
    let method = w.method.map(Cow::into_owned);
    let operation = w.operation.unwrap_or_else(|| derive_operation(interface, method.as_deref()));
    let event = CallEvent {
        id: id.into_owned(),
        account: account.into_owned(),
        time,
        interface,
        operation,
        method,
        path: w.path.map(Cow::into_owned),
        destination: w.destination.map(Cow::into_owned),
        status: w.status,
        api_key: w.api_key.map(Cow::into_owned),
        user: w.user.map(Cow::into_owned),
        client_ip: w.client_ip.map(Cow::into_owned),
        user_agent: w.user_agent.map(Cow::into_owned),
        integration: w.integration.map(Cow::into_owned),
        cursor: w.cursor.map(Cow::into_owned),
        result_count: w.result_count,
        bytes: w.bytes,
        // `-0` is the same duration as 0; stored as 0 it never shows as "-0".
        duration_ms: w.duration_ms.map(|d| if d == 0.0 { 0.0 } else { d }),
    };
    check_event(&event, now, limits)?;
    Ok(event)
}

fn missing(field: &'static str) -> EventError {
    EventError::new(field, RejectReason::MissingField, "missing")
}

fn wrong_type(field: &'static str, expected: &str, got: &Value) -> EventError {
    EventError::new(field, RejectReason::WrongType, format!("expected {expected}, got {}", kind(got)))
}

pub(crate) fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(_) => "a boolean".into(),
        Value::Number(n) => match n.as_f64() {
            _ if !n.is_f64() => "an integer".into(),
            // JSON reads these as floating-point: say which way the number is not a plain integer.
            Some(f) if f.fract() != 0.0 => "a fractional number".into(),
            Some(f) if f == 0.0 && f.is_sign_negative() => "-0 (write 0)".into(),
            Some(f) if f.abs() >= 9_223_372_036_854_775_808.0 => format!("an integer past 64 bits ({n})"),
            Some(f) => format!("{n} written with a decimal point or an exponent (write {f:.0})"),
            None => "a number".into(),
        },
        Value::String(_) => "a string".into(),
        Value::Array(_) => "an array".into(),
        Value::Object(_) => "an object".into(),
    }
}

/// A bad value for an error message: quoted, and cut short so that a huge
/// field does not make a huge answer.
pub(crate) fn quote(s: &str) -> String {
    const MAX: usize = 64;
    if s.len() <= MAX {
        return format!("{s:?}");
    }
    let mut end = MAX;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    format!("{:?}…", &s[..end])
}

#[cfg(test)]
mod tests;
