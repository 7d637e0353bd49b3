//! Canonical call events (DESIGN §3), one JSON object per line: read with
//! the model's own parser, so they are taken exactly as `POST /v1/events`
//! takes them.
//!
//! An event without `id` gets its line's id; one without `account` gets the
//! `--account` (or `--account-from user:MAP`) account. Everything else is as
//! given: no table or override changes an event that says what it is. The
//! `time` is not checked against the clock here (the server does that).

use crate::context::{AccountRule, Context};
use crate::error::{Error, Result};
use crate::text::{is_blank, trim_eol};
use crate::{Format, LineIs, LineParser, NonCall, SourceLine};
use callmeter_model::{event_from_value, parse_event, CallEvent, EventError, EventLimits, RejectReason};
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

/// Fills a missing `id` and `account` from the line and the context, then validates.
pub(crate) fn complete(
    ctx: &Context,
    line_no: u64,
    id: impl FnOnce() -> String,
    mut obj: Map<String, Value>,
) -> Result<CallEvent> {
    let absent = |o: &Map<String, Value>, k: &str| o.get(k).is_none_or(Value::is_null);
    if absent(&obj, "id") {
        obj.insert("id".into(), Value::String(id()));
    }
    if absent(&obj, "account") && ctx.accounts != AccountRule::Unset {
        let user = obj.get("user").and_then(Value::as_str).map(str::to_owned);
        let account = ctx.account(line_no, None, user.as_deref())?;
        obj.insert("account".into(), Value::String(account));
    }
    event_from_value(&Value::Object(obj), DateTime::<Utc>::MAX_UTC, &EventLimits::default())
        .map_err(|source| Error::Event { line: line_no, source })
}

/// Whether an error is one that filling in `id` or `account` could cure.
fn fillable(e: &EventError) -> bool {
    e.reason == RejectReason::MissingField && matches!(e.field, Some("id" | "account"))
}

/// The reader of canonical NDJSON.
#[derive(Debug)]
pub struct NdjsonParser {
    ctx: Context,
}

impl NdjsonParser {
    /// A reader.
    pub fn new(ctx: Context) -> NdjsonParser {
        NdjsonParser { ctx }
    }

    /// Reads one line into its event.
    pub fn parse(&mut self, at: SourceLine, line: &[u8]) -> Result<Option<CallEvent>> {
        let line_no = at.number;
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(None);
        }
        // No clock check here: `now` at the end of time.
        match parse_event(line, DateTime::<Utc>::MAX_UTC, &EventLimits::default()) {
            Ok(e) => Ok(Some(e)),
            Err(e) if fillable(&e) => match serde_json::from_slice::<Value>(line) {
                Ok(Value::Object(obj)) => complete(&self.ctx, line_no, || at.key.id(), obj).map(Some),
                _ => Err(Error::Event { line: line_no, source: e }),
            },
            Err(source) => Err(Error::Event { line: line_no, source }),
        }
    }
}

impl LineParser for NdjsonParser {
    fn format(&self) -> Format {
        Format::Ndjson
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        Ok(match self.parse(at, line)? {
            Some(e) => {
                out.push(e);
                LineIs::Call
            }
            None => NonCall::Blank.into(),
        })
    }

    fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{id, run, run_errors, run_with, utc};
    use callmeter_model::{Interface, Operation};
    use proptest::prelude::*;

    #[test]
    fn events_are_taken_as_given() {
        let log = concat!(
            r#"{"id":"e1","account":"globex","time":"2026-02-27T07:59:58.942Z","interface":"mount","method":"PROPFIND","integration":"nas"}"#,
            "\n\n",
            r#"{"account":"globex","time":"2026-02-27T08:00:00Z","interface":"sftp","operation":"read"}"#,
            "\n",
            r#"{"id":"e3","time":"2026-02-27T08:00:00Z","interface":"rest","user":"u"}"#,
        );
        let events = run(Format::Ndjson, log);
        assert_eq!((events[0].id.as_str(), events[0].account.as_str()), ("e1", "globex"));
        assert_eq!((events[0].interface, events[0].operation), (Interface::Mount, Operation::List));
        assert_eq!(events[0].time, utc("2026-02-27T07:59:58.942Z"));
        assert_eq!(events[1].id, id(log, 3), "a missing id is the line's");
        assert_eq!(events[2].account, "acme", "a missing account is --account's");
    }

    #[test]
    fn bad_events_keep_the_models_reason() {
        let (_, errors) = run_errors(
            Format::Ndjson,
            "{\"id\":\"a\",\"account\":\"acme\",\"time\":\"never\",\"interface\":\"rest\"}\nnot json\n[1]\n",
        );
        let got: Vec<_> = errors.iter().map(|e| (e.line_no(), e.reject_reason())).collect();
        assert_eq!(
            got,
            vec![
                (Some(1), Some(RejectReason::InvalidValue)),
                (Some(2), Some(RejectReason::InvalidJson)),
                (Some(3), Some(RejectReason::WrongType))
            ]
        );
        assert_eq!(errors[0].to_string(), "line 1: field \"time\": not RFC 3339: \"never\"");
        let mut p = NdjsonParser::new(Context { accounts: AccountRule::Unset, ..crate::testutil::ctx() });
        let (_, errors) = run_with(&mut p, r#"{"id":"a","time":"2026-02-27T08:00:00Z","interface":"rest"}"#);
        assert_eq!(errors[0].to_string(), "line 1: field \"account\": missing");
    }

    proptest! {
        #[test]
        fn generated_events_round_trip(
            id in "[!-~][ -~]{0,39}", secs in 0i64..4_000_000_000, nanos in 0u32..1_000_000_000,
            iface in 0usize..12, op in 0usize..10, path in proptest::option::of("[ -~ü]{0,30}"),
            status in proptest::option::of(0..=callmeter_model::MAX_STATUS),
            bytes in proptest::option::of(0..=callmeter_model::MAX_COUNT),
        ) {
            let mut e = crate::testutil::event();
            e.id = id;
            e.time = DateTime::from_timestamp(secs, nanos).unwrap();
            e.interface = Interface::ALL[iface];
            e.operation = Operation::ALL[op];
            e.path = path;
            e.status = status;
            e.bytes = bytes;
            let line = serde_json::to_string(&e).unwrap();
            let got = run(Format::Ndjson, &line);
            prop_assert_eq!(got, vec![e]);
        }
    }
}
