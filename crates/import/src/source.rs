//! One source being read: its reader of the right format, the keys of its
//! lines (numbers and content-addressed ids, counted from its first line),
//! and the calls found but not yet delivered, each with its line.

use crate::error::{ImportError, Result};
use crate::input::Line;
use crate::sink::{Delivery, Sink};
use crate::summary::Summary;
use callmeter_formats::{
    parser, AccountRule, Classifier, Context, Format, LineIs, LineKeys, LineParser, NonCall, SourceLine,
};
use callmeter_model::CallEvent;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use std::sync::Arc;

/// Longest line read; a longer one is refused as `line_too_long`.
pub const MAX_LINE_BYTES: usize = 1 << 20;

/// How lines become calls, for every source of an import or a tail.
#[derive(Debug, Clone)]
pub struct ReadOptions {
    /// The format, or `None` to detect it from each source's first lines.
    pub format: Option<Format>,
    /// Whose calls these are (`--account`, `--account-from`).
    pub accounts: AccountRule,
    /// The zone of times written without one (`--timezone`).
    pub timezone: Tz,
    /// A name mixed into the id of every line (`--source-id`), for servers that could write byte-identical lines.
    pub source_id: Option<String>,
    /// The route, user-agent, override and WebDAV tables.
    pub classifier: Arc<Classifier>,
    /// Stop at the first bad line (`--strict`).
    pub strict: bool,
    /// Calls per delivered batch.
    pub batch: usize,
}

impl ReadOptions {
    /// The format of a source with this head: the given one, or the detected one.
    pub fn format_for(&self, name: &str, head_lines: &[&[u8]]) -> Result<Format> {
        match self.format {
            Some(f) => Ok(f),
            None => callmeter_formats::detect(head_lines)
                .ok_or_else(|| ImportError::UnknownFormat { path: name.to_owned() }),
        }
    }
}

/// One line read and keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyedLine<'a> {
    /// A line (the byte order mark a source may start with left out), with its number and key.
    Text(SourceLine, &'a [u8]),
    /// A line longer than the limit: its number, and its length in bytes.
    TooLong(u64, usize),
}

/// What one line was, as a reader found it: all that the summary and the
/// calls' line numbers need, apart from the reader (which may be on another
/// thread, `parse_ahead.rs`).
#[derive(Debug)]
pub struct LineOutcome {
    /// The line's number.
    pub number: u64,
    /// Calls the line gave (pushed to the reader's output in order).
    pub calls: usize,
    /// Of those, the calls beyond one a line (a CloudEvents batch).
    pub batched: u64,
    /// A line that is no call, of its kind.
    pub non_call: Option<NonCall>,
    /// A bad line: the reason's code and the message.
    pub failed: Option<(&'static str, String)>,
}

/// A reader of one format, and what it has counted as batched so far.
pub struct LineReading {
    parser: Box<dyn LineParser>,
    batched: u64,
}

impl LineReading {
    /// A reader of `format` with this context.
    pub fn new(format: Format, ctx: Context) -> LineReading {
        LineReading::with_parser(parser(format, ctx))
    }

    /// A reader with this parser.
    pub fn with_parser(parser: Box<dyn LineParser>) -> LineReading {
        LineReading { parser, batched: 0 }
    }

    /// Reads a line (numbered and keyed, its byte order mark left out),
    /// pushing its calls to `out`.
    pub fn parse(&mut self, line: KeyedLine<'_>, out: &mut Vec<CallEvent>) -> LineOutcome {
        let before = out.len();
        let mut non_call = None;
        let (number, failed) = match line {
            KeyedLine::Text(at, text) => match self.parser.line(at, text, out) {
                Ok(LineIs::Call) => (at.number, None),
                Ok(LineIs::NonCall(kind)) => {
                    non_call = Some(kind);
                    (at.number, None)
                }
                Err(e) => {
                    let reason = match &e {
                        callmeter_formats::Error::Event { source, .. } => source.reason.as_str(),
                        callmeter_formats::Error::Account { .. } => "unknown_account",
                        _ => "bad_line",
                    };
                    (at.number, Some((reason, e.to_string())))
                }
            },
            KeyedLine::TooLong(number, n) => (
                number,
                Some(("line_too_long", format!("line {number}: {n} bytes, more than the limit of {MAX_LINE_BYTES}"))),
            ),
        };
        let calls = out.len() - before;
        // Only a line that gives more than its own call can be a batch: look then.
        let mut batched = 0;
        if calls > 1 || (calls > 0 && failed.is_some()) {
            let now = self.parser.batched();
            batched = now - self.batched;
            self.batched = now;
        }
        LineOutcome { number, calls, batched, non_call, failed }
    }

    /// The end of the source: pushes the calls still waiting for a later line.
    pub fn finish(&mut self, out: &mut Vec<CallEvent>) {
        self.parser.finish(out);
    }
}

/// A source's reader and the calls it has found since the last delivery.
pub struct SourceReader {
    name: String,
    format: Format,
    ctx: Context,
    reading: LineReading,
    keys: LineKeys,
    strict: bool,
    events: Vec<CallEvent>,
    /// The line of each of `events`.
    lines: Vec<u64>,
    /// The number of the last line read.
    line_no: u64,
}

impl SourceReader {
    /// A reader for the source `name`, from its first line.
    pub fn new(name: &str, format: Format, options: &ReadOptions, year_reference: DateTime<Utc>) -> Self {
        let ctx = Context::new(options.accounts.clone())
            .with_timezone(options.timezone)
            .with_year_reference(year_reference)
            .with_classifier(options.classifier.clone());
        SourceReader {
            name: name.to_owned(),
            format,
            reading: LineReading::new(format, ctx.clone()),
            ctx,
            keys: LineKeys::new(options.source_id.as_deref()),
            strict: options.strict,
            events: Vec::new(),
            lines: Vec::new(),
            line_no: 0,
        }
    }

    /// The source's format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// A new reader of this source's format and context, for another
    /// thread: its lines are then counted here with [`SourceReader::count`].
    pub fn new_reading(&self) -> LineReading {
        LineReading::new(self.format, self.ctx.clone())
    }

    /// The keys of this source's lines, for the workers that read it from its
    /// first line (`parse_ahead.rs`): the reader then only counts what they
    /// read, and keeps fresh keys it does not use.
    pub fn take_keys(&mut self) -> LineKeys {
        let unused = LineKeys::new(None);
        std::mem::replace(&mut self.keys, unused)
    }

    /// The number of the last line read.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Sets the time syslog lines take their year from (`tail` moves it on as time passes).
    pub fn set_year_reference(&mut self, t: DateTime<Utc>) {
        self.reading.parser.context_mut().year_reference = t;
    }

    /// Calls waiting for delivery.
    pub fn pending(&self) -> usize {
        self.events.len()
    }

    /// The line, without the UTF-8 byte order mark a source may start with
    /// when it is the first: the mark is no part of the line, nor of its id
    /// (`docs/import-ids.md`).
    fn without_bom<'l>(&self, line: Line<'l>) -> Line<'l> {
        match line {
            Line::Text(text) if self.keys.lines() == 0 => Line::Text(callmeter_formats::strip_bom(text)),
            other => other,
        }
    }

    /// Reads the next line and counts what it is in `summary`: a call, a
    /// non-call of its kind, or a bad line (with `strict`, a bad line stops
    /// the source with an error).
    pub fn read(&mut self, line: Line<'_>, summary: &mut Summary) -> Result<()> {
        let line = match self.without_bom(line) {
            Line::Text(text) => KeyedLine::Text(self.keys.next(text), text),
            Line::TooLong(n) => KeyedLine::TooLong(self.keys.skip(), n),
        };
        let outcome = self.reading.parse(line, &mut self.events);
        self.count(outcome, std::iter::empty(), summary)
    }

    /// Counts a line read by another reader ([`SourceReader::new_reading`])
    /// as [`SourceReader::read`] does its own, its calls taken from `calls`
    /// (the first `outcome.calls` of them).
    pub fn count(
        &mut self,
        outcome: LineOutcome,
        calls: impl Iterator<Item = CallEvent>,
        summary: &mut Summary,
    ) -> Result<()> {
        let before = self.events.len();
        self.events.extend(calls.take(outcome.calls));
        assert!(self.events.len() - before <= outcome.calls, "a line's calls taken from another line");
        summary.lines += 1;
        if let Some(kind) = outcome.non_call {
            summary.non_call(kind);
        }
        summary.batched += outcome.batched;
        self.line_no = outcome.number;
        self.lines.resize(self.events.len(), outcome.number);
        summary.calls += outcome.calls as u64;
        if let Some((reason, message)) = outcome.failed {
            // Counted before a --strict stop too, so the summary it prints adds up.
            summary.reject_line(reason, &self.name, outcome.number, || message.clone());
            if self.strict {
                return Err(ImportError::Strict { path: self.name.clone(), error: message });
            }
        }
        Ok(())
    }

    /// Reads a line that was delivered before (to resume after it) and drops
    /// the calls it gives: readers with sessions need the lines, not their
    /// calls, and the line keys need every line to count repeats alike.
    pub fn replay(&mut self, line: Line<'_>) {
        let line = match self.without_bom(line) {
            Line::Text(text) => KeyedLine::Text(self.keys.next(text), text),
            Line::TooLong(n) => KeyedLine::TooLong(self.keys.skip(), n),
        };
        let _ = self.reading.parse(line, &mut self.events);
        self.line_no = self.keys.lines();
        self.events.clear();
        self.lines.clear();
    }

    /// The end of the source: the calls still waiting for a later line.
    pub fn finish(&mut self, summary: &mut Summary) {
        let mut waiting = Vec::new();
        self.reading.finish(&mut waiting);
        self.count_finished(waiting, summary);
    }

    /// The end of a source read by another reader: the calls its `finish` gave.
    pub fn count_finished(&mut self, calls: Vec<CallEvent>, summary: &mut Summary) {
        summary.calls += calls.len() as u64;
        self.events.extend(calls);
        let line_no = self.line_no();
        self.lines.resize(self.events.len(), line_no);
    }

    /// Delivers the calls found so far and counts what became of them; with
    /// no sink (a dry run), drops them.
    pub fn deliver<'s>(&mut self, sink: Option<&mut (dyn Sink + 's)>, summary: &mut Summary) -> Result<()> {
        let Some(sink) = sink.filter(|_| !self.events.is_empty()) else {
            self.events.clear();
            self.lines.clear();
            return Ok(());
        };
        let answers = sink.deliver(&mut self.events)?;
        for (i, answer) in answers.into_iter().enumerate() {
            match answer {
                Delivery::Accepted => summary.imported += 1,
                Delivery::Duplicate => summary.duplicates += 1,
                Delivery::Rejected { reason, message } => {
                    let line = self.lines[i];
                    summary.reject(&reason, &self.name, line, || format!("line {line}: {message}"));
                }
            }
        }
        self.events.clear();
        self.lines.clear();
        Ok(())
    }
}
