//! CloudEvents (structured JSON mode) whose `data` is a call event, one per
//! line, or a batch (a JSON array) per line.
//!
//! As at `POST /v1/events`, through the model's one mapping
//! ([`callmeter_model::CloudEventEnvelope`]): the call event is `data` (or
//! `data_base64`), and the envelope's `id`, `time`, `source` and `subject`
//! fill its `id`, `time`, `integration` and `path` where it has none; a field
//! given in both with different values is refused (`envelope_conflict`). An
//! event with no id at all takes its line's. A missing account is filled as
//! for [`crate::ndjson`].
//! A batch line whose events are not all good gives the good ones and the
//! error of the first bad one. A batch line holds several calls: the reader
//! counts those beyond one a line ([`LineParser::batched`]), so that an
//! import's lines and calls still add up. An empty batch holds none: a
//! non-call of kind `blank`.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::ndjson::complete;
use crate::text::{is_blank, trim_eol};
use crate::{Format, LineIs, LineParser, NonCall, SourceLine};
use callmeter_model::{CallEvent, CloudEventEnvelope, EventError, RejectReason};
use serde_json::Value;

/// The reader of CloudEvents lines.
#[derive(Debug)]
pub struct CloudEventsParser {
    ctx: Context,
    /// Calls read beyond one a line (see [`LineParser::batched`]).
    batched: u64,
}

fn invalid(line: u64, reason: RejectReason, field: Option<&'static str>, detail: &str) -> Error {
    Error::Event { line, source: EventError { field, reason, detail: detail.to_owned() } }
}

impl CloudEventsParser {
    /// A reader.
    pub fn new(ctx: Context) -> CloudEventsParser {
        CloudEventsParser { ctx, batched: 0 }
    }

    fn one(&self, at: SourceLine, index: Option<usize>, ce: Value) -> Result<CallEvent> {
        let line_no = at.number;
        let event = |source| Error::Event { line: line_no, source };
        let (envelope, data) = CloudEventEnvelope::split(ce).map_err(event)?;
        let data = envelope.apply(data).map_err(event)?;
        let line_id = || {
            let mut id = at.key.id();
            if let Some(i) = index {
                id.push('.');
                id.push_str(&i.to_string());
            }
            id
        };
        complete(&self.ctx, line_no, line_id, data)
    }
}

impl LineParser for CloudEventsParser {
    fn format(&self) -> Format {
        Format::CloudEvents
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let line_no = at.number;
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(NonCall::Blank.into());
        }
        let v: Value = serde_json::from_slice(line)
            .map_err(|e| invalid(line_no, RejectReason::InvalidJson, None, &format!("not JSON: {e}")))?;
        match v {
            Value::Array(items) => {
                if items.is_empty() {
                    return Ok(NonCall::Blank.into());
                }
                let mut first_err = None;
                let mut good = 0;
                for (i, ce) in items.into_iter().enumerate() {
                    match self.one(at, Some(i), ce) {
                        Ok(e) => {
                            out.push(e);
                            good += 1;
                        }
                        Err(e) => first_err = first_err.or(Some(e)),
                    }
                }
                // The line is one call, or one refusal; what it gave beyond that is batched.
                self.batched += good + u64::from(first_err.is_some()) - 1;
                first_err.map_or(Ok(LineIs::Call), Err)
            }
            ce => {
                out.push(self.one(at, None, ce)?);
                Ok(LineIs::Call)
            }
        }
    }

    fn batched(&self) -> u64 {
        self.batched
    }

    fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{id, run, run_errors};
    use callmeter_model::{Interface, Operation};
    use chrono::DateTime;
    use proptest::prelude::*;

    const CE: &str = r#"{"specversion":"1.0","type":"com.example.call","source":"/api","id":"ce-1","time":"2026-02-27T08:00:00Z","datacontenttype":"application/json","data":{"account":"acme","time":"2026-02-27T08:00:00Z","interface":"rest","operation":"list","path":"/in"}}"#;

    #[test]
    fn batch_lines_count_their_calls_beyond_one() {
        let log = concat!(
            r#"[{"specversion":"1.0","id":"a","data":{"time":"2024-01-15T10:00:00Z","interface":"rest"}},{"specversion":"1.0","id":"b","data":{"time":"2024-01-15T10:00:00Z","interface":"rest"}},{"specversion":"1.0","id":"c","data":{"time":"2024-01-15T10:00:00Z","interface":"rest"}}]"#,
            "\n[]\n",
            r#"[{"specversion":"1.0","id":"d","data":{"time":"2024-01-15T10:00:00Z","interface":"rest"}},{"specversion":"1.0","id":"e"}]"#,
            "\n",
        );
        let mut p = CloudEventsParser::new(crate::testutil::ctx());
        let (events, errors) = crate::testutil::run_with(&mut p, log);
        assert_eq!((events.len(), errors.len()), (4, 1));
        // Line 1: one call and two more; line 3: one good event beyond its refusal.
        assert_eq!(p.batched(), 3);
    }

    #[test]
    fn one_per_line_and_batches() {
        let batch = r#"[{"specversion":"1.0","id":"own","data":{"id":"own","account":"acme","time":"2026-02-27T08:00:00Z","interface":"ftp"}},{"specversion":"1.0","data":{"time":"2026-02-27T08:00:01Z","interface":"sftp"}}]"#;
        let log = format!("{CE}\n{batch}\n");
        let events = run(Format::CloudEvents, &log);
        let ids: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids, vec!["ce-1".to_string(), "own".into(), format!("{}.1", id(&log, 2))]);
        assert_eq!((events[0].operation, events[0].path.as_deref()), (Operation::List, Some("/in")));
        assert_eq!(events[0].integration.as_deref(), Some("/api"), "the source is kept as the integration");
        assert_eq!(events[2].interface, Interface::Sftp);
    }

    #[test]
    fn the_envelope_is_mapped_as_at_the_server() {
        // As SDKs send them: the call's id and time in the envelope, the rest in data.
        let sdk = r#"{"specversion":"1.0","type":"com.example.call","source":"/gateway","subject":"/in/a.csv","id":"sdk-1","time":"2026-02-27T09:00:00+01:00","data":{"account":"acme","interface":"rest","method":"GET"}}"#;
        let events = run(Format::CloudEvents, sdk);
        let e = &events[0];
        assert_eq!((e.id.as_str(), e.time), ("sdk-1", crate::testutil::utc("2026-02-27T08:00:00Z")));
        assert_eq!((e.integration.as_deref(), e.path.as_deref()), (Some("/gateway"), Some("/in/a.csv")));
    }

    #[test]
    fn envelope_and_data_that_disagree_are_refused_by_field() {
        let log = concat!(
            r#"{"specversion":"1.0","id":"b1","data":{"id":"own","account":"acme","time":"2026-02-27T08:00:00Z","interface":"ftp"}}"#,
            "\n",
            r#"{"specversion":"1.0","id":"b2","time":"2026-02-27T08:00:00Z","data":{"account":"acme","time":"2026-02-27T08:00:05Z","interface":"ftp"}}"#,
            "\n",
        );
        let (events, errors) = run_errors(Format::CloudEvents, log);
        assert!(events.is_empty());
        let got: Vec<(Option<&str>, RejectReason)> = errors
            .iter()
            .map(|e| match e {
                Error::Event { source, .. } => (source.field, source.reason),
                other => panic!("not an event error: {other}"),
            })
            .collect();
        assert_eq!(
            got,
            vec![(Some("id"), RejectReason::EnvelopeConflict), (Some("time"), RejectReason::EnvelopeConflict)]
        );
    }

    #[test]
    fn bad_cloudevents() {
        let (events, errors) = run_errors(
            Format::CloudEvents,
            "{\"id\":\"x\"}\n{\"id\":\"x\",\"data\":\"s\"}\n[1, {\"id\":\"y\",\"data\":{\"account\":\"acme\",\"time\":\"2026-02-27T08:00:00Z\",\"interface\":\"rest\"}}]\n{\n",
        );
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(got[0], "line 1: field \"data\": cloudevent has no data");
        assert_eq!(got[1], "line 2: field \"data\": cloudevent data is not a JSON object");
        assert_eq!(got[2], "line 3: a cloudevent must be a JSON object, not an integer");
        assert!(got[3].starts_with("line 4: not JSON: EOF while parsing"));
        assert_eq!(events.len(), 1, "the good event of a batch is kept");
    }

    proptest! {
        #[test]
        fn generated_cloudevents_round_trip(id in "[a-z0-9-]{1,30}", secs in 0i64..4_000_000_000, path in "[ -~]{0,20}") {
            let mut e = crate::testutil::event();
            e.id = id.clone();
            e.time = DateTime::from_timestamp(secs, 0).unwrap();
            e.path = Some(path);
            e.integration = Some("s".into());
            // The id and time in the envelope only, the source in both (the same).
            let mut data = serde_json::to_value(&e).unwrap();
            let time = data.as_object_mut().unwrap().remove("time").unwrap();
            data.as_object_mut().unwrap().remove("id");
            let ce = serde_json::json!({"specversion": "1.0", "id": id, "time": time, "type": "t", "source": "s", "data": data});
            prop_assert_eq!(run(Format::CloudEvents, &ce.to_string()), vec![e]);
        }
    }
}
