//! The calls of the text log readers pass the model's checks as they are
//! made, the way the server checks the events it is sent (DESIGN §3).
//!
//! A log line is written by a server from what its callers sent: a path with
//! a NUL (`%00`), a user agent with a terminal escape (`\x1b`). A call made
//! of such a line is not stored anywhere: the line is a bad line with the
//! field and why, as a bad event in a request is; so `import --dry-run`,
//! `audit FILE` and the sinks all see the same calls. The canonical readers
//! (NDJSON, CloudEvents) read with the model's own parser and need no
//! wrapper. The clock is not checked here: the sinks do that against theirs.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::{Format, LineIs, LineParser, SourceLine};
use callmeter_model::{check_event, CallEvent, EventError, EventLimits};
use chrono::{DateTime, Utc};

/// A reader whose calls are checked as they are pushed.
pub(crate) struct Checked<P> {
    inner: P,
}

impl<P: LineParser> Checked<P> {
    pub(crate) fn new(inner: P) -> Checked<P> {
        Checked { inner }
    }
}

impl<P: LineParser> LineParser for Checked<P> {
    fn format(&self) -> Format {
        self.inner.format()
    }

    /// The line's calls that pass stay in `out`; the first that does not
    /// makes the line an [`Error::Event`] (after the reader's own error, if it
    /// has one: the calls pushed before an error are still good).
    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let from = out.len();
        let read = self.inner.line(at, line, out);
        let refused = keep_valid(out, from);
        let is = read?;
        match refused {
            Some(source) => Err(Error::Event { line: at.number, source }),
            None => Ok(is),
        }
    }

    fn batched(&self) -> u64 {
        self.inner.batched()
    }

    /// Calls that only the end of input completes (an upload whose result
    /// never came) have no line left to blame: one the checks refuse is
    /// dropped, as the sink would refuse it.
    fn finish(&mut self, out: &mut Vec<CallEvent>) {
        let from = out.len();
        self.inner.finish(out);
        keep_valid(out, from);
    }

    fn context_mut(&mut self) -> &mut Context {
        self.inner.context_mut()
    }
}

/// Keeps the calls of `out[from..]` that pass the checks, in order, and
/// returns the error of the first that does not.
fn keep_valid(out: &mut Vec<CallEvent>, from: usize) -> Option<EventError> {
    let limits = EventLimits::default();
    let mut refused = None;
    let mut kept = from;
    for i in from..out.len() {
        match check_event(&out[i], DateTime::<Utc>::MAX_UTC, &limits) {
            Ok(()) => {
                // A swap in place still copies the call (hundreds of bytes) through a temporary.
                if kept != i {
                    out.swap(kept, i);
                }
                kept += 1;
            }
            Err(e) => {
                refused.get_or_insert(e);
            }
        }
    }
    out.truncate(kept);
    refused
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::run_errors;
    use callmeter_model::RejectReason;

    #[test]
    fn a_line_with_an_odd_value_is_a_bad_line_naming_the_field() {
        let ok =
            r#"203.0.113.9 - alice [15/Jan/2024:10:00:01 +0000] "GET /dav/in/a.txt HTTP/1.1" 200 5 "-" "curl/8.5.0""#;
        let nul =
            r#"203.0.113.9 - alice [15/Jan/2024:10:00:02 +0000] "GET /dav/in/a%00b HTTP/1.1" 200 5 "-" "curl/8.5.0""#;
        let esc = r#"203.0.113.9 - alice [15/Jan/2024:10:00:03 +0000] "GET /dav/in/b HTTP/1.1" 200 5 "-" "x\x1b[2J""#;
        let (events, errors) = run_errors(Format::Combined, &[ok, nul, esc, ok].join("\n"));
        assert_eq!(events.len(), 2, "{events:?}");
        let refused: Vec<_> = errors
            .iter()
            .map(|e| match e {
                Error::Event { line, source } => (*line, source.field, source.reason),
                other => panic!("{other}"),
            })
            .collect();
        assert_eq!(
            refused,
            vec![(2, Some("path"), RejectReason::InvalidValue), (3, Some("user_agent"), RejectReason::InvalidValue)]
        );
    }

    #[test]
    fn only_the_refused_calls_of_a_line_go() {
        let good = || {
            CallEvent::new(
                "a".into(),
                "acme".into(),
                DateTime::UNIX_EPOCH,
                callmeter_model::Interface::Ftp,
                callmeter_model::Operation::Read,
            )
        };
        let mut out = vec![good(), good(), CallEvent { status: Some(-1), ..good() }, good()];
        out[3].id = "b".into();
        out[1].id = "kept before".into();
        let refused = keep_valid(&mut out, 1).unwrap();
        assert_eq!(refused.field, Some("status"));
        let ids: Vec<_> = out.iter().map(|e| e.id.as_str()).collect();
        assert_eq!(ids, ["a", "kept before", "b"]);
    }
}
