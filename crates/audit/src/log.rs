//! Auditing straight from logs: every line through the formats crate's
//! reader, every call it gives to the auditor. A bad line is counted, never fatal.
//!
//! Several logs ([`audit_logs`]) are one stream merged by time
//! ([`crate::merge`], DESIGN §6), and a call read twice (a log and its rotated
//! copy, an id repeated) counts once ([`crate::seen_ids`]), as `import` would.
//! `callmeter audit FILE…` does the same with the import crate's file readers.

use crate::auditor::Auditor;
use crate::error::AuditError;
use crate::merge::TimeMerge;
use crate::rotation::log_file_order;
use crate::seen_ids::SeenIds;
use callmeter_formats::{parser, Context, Format, LineKeys, LineParser};
use callmeter_model::CallEvent;
use serde::{Deserialize, Serialize};
use std::collections::VecDeque;
use std::io::BufRead;

/// Bad lines whose message is kept, so that a person can look at them.
pub const KEPT_ERRORS: usize = 20;

/// What reading a log gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSummary {
    /// Lines read.
    pub lines: u64,
    /// Calls the lines gave (all fed to the auditor, but the ones read twice).
    pub calls: u64,
    /// Lines that did not follow the format, or whose account could not be resolved.
    pub bad_lines: u64,
    /// The first [`KEPT_ERRORS`] of their messages, with line numbers.
    pub first_errors: Vec<String>,
    /// Calls whose (account, id) was read before (from a copy of a log, or an
    /// overlapping one): counted once.
    #[serde(default)]
    pub calls_read_twice: u64,
}

impl LogSummary {
    /// Adds another log's summary, its messages prefixed with its name.
    fn add(&mut self, name: &str, other: &LogSummary) {
        self.lines += other.lines;
        self.calls += other.calls;
        self.bad_lines += other.bad_lines;
        for e in &other.first_errors {
            if self.first_errors.len() < KEPT_ERRORS {
                self.first_errors.push(format!("{name}: {e}"));
            }
        }
    }
}

/// The calls of one log, in the order its lines give them: an iterator, to
/// merge several logs by time. The calls get the ids `import` would give them.
pub struct LogCalls<R> {
    reader: R,
    parser: Box<dyn LineParser>,
    keys: LineKeys,
    line: Vec<u8>,
    found: Vec<CallEvent>,
    ready: VecDeque<CallEvent>,
    summary: LogSummary,
    ended: bool,
}

impl<R: BufRead> LogCalls<R> {
    /// Reads `reader` as `format`.
    pub fn new(format: Format, ctx: Context, reader: R) -> LogCalls<R> {
        LogCalls {
            reader,
            parser: parser(format, ctx),
            keys: LineKeys::new(None),
            line: Vec::new(),
            found: Vec::new(),
            ready: VecDeque::new(),
            summary: LogSummary::default(),
            ended: false,
        }
    }

    /// What was read so far.
    pub fn summary(&self) -> &LogSummary {
        &self.summary
    }

    /// Reads lines until one gives calls, or the end.
    fn read_more(&mut self) -> Result<(), AuditError> {
        while self.ready.is_empty() && !self.ended {
            self.line.clear();
            if self.reader.read_until(b'\n', &mut self.line)? == 0 {
                self.ended = true;
                self.parser.finish(&mut self.found);
            } else {
                self.summary.lines += 1;
                if let Err(e) = self.parser.line(self.keys.next(&self.line), &self.line, &mut self.found) {
                    self.summary.bad_lines += 1;
                    if self.summary.first_errors.len() < KEPT_ERRORS {
                        self.summary.first_errors.push(e.to_string());
                    }
                }
            }
            self.summary.calls += self.found.len() as u64;
            self.ready.extend(self.found.drain(..));
        }
        Ok(())
    }
}

impl<R: BufRead> Iterator for LogCalls<R> {
    type Item = Result<CallEvent, AuditError>;

    fn next(&mut self) -> Option<Self::Item> {
        if let Err(e) = self.read_more() {
            self.ended = true;
            return Some(Err(e));
        }
        self.ready.pop_front().map(Ok)
    }
}

/// Reads `reader` as `format` and feeds every call to `auditor`. Calls read
/// from lines get the ids `import` would give them.
pub fn audit_log<R: BufRead>(
    auditor: &mut Auditor,
    format: Format,
    ctx: Context,
    reader: R,
) -> Result<LogSummary, AuditError> {
    let mut calls = LogCalls::new(format, ctx, reader);
    for c in calls.by_ref() {
        auditor.push(&c?);
    }
    Ok(calls.summary)
}

/// One log of several: its name (which orders it among the others, and its
/// rotated files oldest first: [`crate::rotation`]), format, context and lines.
pub struct LogInput<'a> {
    /// The file's name.
    pub name: String,
    /// Its format.
    pub format: Format,
    /// How its lines are read.
    pub ctx: Context,
    /// Its lines.
    pub reader: Box<dyn BufRead + 'a>,
}

/// Feeds the calls of several logs to `auditor` as one stream merged by time,
/// each call once: the same report whatever order the logs are given in.
pub fn audit_logs(auditor: &mut Auditor, logs: Vec<LogInput<'_>>) -> Result<LogSummary, AuditError> {
    let names: Vec<String> = logs.iter().map(|l| l.name.clone()).collect();
    let inputs = logs.into_iter().map(|l| (l.name, LogCalls::new(l.format, l.ctx, l.reader))).collect();
    let mut read = Vec::new();
    let read_twice = audit_merged(auditor, inputs, |input| read.push(input))?;
    let mut summary = LogSummary::default();
    for (name, input) in names.iter().zip(&read) {
        summary.add(name, input.summary());
    }
    summary.calls_read_twice = read_twice;
    Ok(summary)
}

/// Feeds the calls of several inputs, each named by its file's name, to
/// `auditor` as one stream merged by time, each call once; gives each input
/// back to `done` at the end (in the order given), and answers how many calls
/// were read twice.
pub fn audit_merged<I, E>(auditor: &mut Auditor, inputs: Vec<(String, I)>, done: impl FnMut(I)) -> Result<u64, E>
where
    I: Iterator<Item = Result<CallEvent, E>>,
{
    let inputs = inputs.into_iter().map(|(name, input)| (log_file_order(&name), input)).collect();
    let mut merged = TimeMerge::new(inputs);
    let mut seen = SeenIds::default();
    let mut read_twice = 0;
    for c in merged.by_ref() {
        let c = c?;
        if seen.first_time(&c) {
            auditor.push(&c);
        } else {
            read_twice += 1;
        }
    }
    merged.into_inputs().into_iter().for_each(done);
    Ok(read_twice)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::AuditConfig;
    use callmeter_formats::AccountRule;

    #[test]
    fn bad_lines_are_counted_not_fatal() {
        let log = concat!(
            "203.0.113.9 - - [15/Jan/2024:10:00:01 +0000] \"GET /api/rest/v1/folders/in HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n",
            "not a log line\n",
            "203.0.113.9 - - [15/Jan/2024:10:01:01 +0000] \"GET /api/rest/v1/folders/in HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n",
        );
        let ctx = Context::new(AccountRule::fixed("acme").unwrap());
        let mut a = Auditor::new(AuditConfig::default()).unwrap();
        let s = audit_log(&mut a, Format::Combined, ctx, log.as_bytes()).unwrap();
        assert_eq!((s.lines, s.calls, s.bad_lines), (3, 2, 1));
        assert!(s.first_errors[0].starts_with("line 2:"), "{:?}", s.first_errors);
        let r = a.finish();
        assert_eq!((r.calls, r.account.as_deref()), (2, Some("acme")));
    }

    /// A poller in an access log, the uploads that end its waste in an SFTP log.
    #[test]
    fn two_logs_are_one_stream_whatever_their_order_and_a_copy_counts_once() {
        let mut access = String::new();
        let mut sftp = String::new();
        for m in 0..30 {
            access += &format!(
                "203.0.113.9 - - [15/Jan/2024:10:{m:02}:00 +0000] \"GET /api/rest/v1/folders/in HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n"
            );
            if m % 3 == 1 {
                sftp += &format!(
                    "2024-01-15T10:{m:02}:30.000000+00:00 files1 internal-sftp[77]: open \"/in/f{m}.csv\" flags WRITE,CREATE,TRUNCATE mode 0644\n\
                     2024-01-15T10:{m:02}:31.000000+00:00 files1 internal-sftp[77]: close \"/in/f{m}.csv\" bytes read 0 written 10\n"
                );
            }
        }
        let ctx = || Context::new(AccountRule::fixed("acme").unwrap());
        let audit = |files: &[(&str, &str)]| {
            let mut a = Auditor::new(AuditConfig::default()).unwrap();
            let logs = files
                .iter()
                .map(|(name, text)| LogInput {
                    name: (*name).to_owned(),
                    format: if name.contains("sftp") { Format::Sftp } else { Format::Combined },
                    ctx: ctx(),
                    reader: Box::new(text.as_bytes()),
                })
                .collect();
            let s = audit_logs(&mut a, logs).unwrap();
            (a.finish(), s)
        };
        let (first, s) = audit(&[("access.log", &access), ("sftp.log", &sftp)]);
        assert_eq!((s.calls, s.calls_read_twice, first.calls), (40, 0, 40));
        let polling = &first.findings[0];
        assert_eq!(polling.avoidable_calls, 29 - 10, "ten repeats saw an upload: {polling:#?}");
        let (second, _) = audit(&[("sftp.log", &sftp), ("access.log", &access)]);
        assert_eq!(serde_json::to_value(&first).unwrap(), serde_json::to_value(&second).unwrap());
        let (copied, s) = audit(&[("access.log", &access), ("sftp.log", &sftp), ("access.log.1", &access)]);
        assert_eq!((s.lines, s.calls_read_twice), (80, 30));
        assert_eq!(serde_json::to_value(&first).unwrap(), serde_json::to_value(&copied).unwrap());
    }
}
