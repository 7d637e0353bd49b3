//! One source being read: its reader of the right format, the keys of its
//! lines (numbers and content-addressed ids, counted from its first line),
//! and the calls found but not yet delivered, each with its line.

use crate::error::{ImportError, Result};
use crate::input::Line;
use crate::read_ahead::KeyedLine;
use crate::sink::{Delivery, Sink};
use crate::summary::Summary;
use callmeter_formats::{parser, AccountRule, Classifier, Context, Format, LineIs, LineKeys, LineParser};
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

/// A source's reader and the calls it has found since the last delivery.
pub struct SourceReader {
    name: String,
    parser: Box<dyn LineParser>,
    keys: LineKeys,
    strict: bool,
    events: Vec<CallEvent>,
    /// The line of each of `events`.
    lines: Vec<u64>,
    /// The reader's [`LineParser::batched`] when last looked at.
    batched: u64,
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
            parser: parser(format, ctx),
            keys: LineKeys::new(options.source_id.as_deref()),
            strict: options.strict,
            events: Vec::new(),
            lines: Vec::new(),
            batched: 0,
            line_no: 0,
        }
    }

    /// The number of the last line read.
    pub fn line_no(&self) -> u64 {
        self.line_no
    }

    /// Sets the time syslog lines take their year from (`tail` moves it on as time passes).
    pub fn set_year_reference(&mut self, t: DateTime<Utc>) {
        self.parser.context_mut().year_reference = t;
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
        self.read_keyed(line, summary)
    }

    /// [`SourceReader::read`] of a line numbered and keyed already, its byte
    /// order mark left out ([`ReadAhead`](crate::ReadAhead) does both): a
    /// source is read with one or the other from its first line.
    pub fn read_keyed(&mut self, line: KeyedLine<'_>, summary: &mut Summary) -> Result<()> {
        summary.lines += 1;
        let before = self.events.len();
        let failed = match line {
            KeyedLine::Text(at, text) => match self.parser.line(at, text, &mut self.events) {
                Ok(LineIs::Call) => None,
                Ok(LineIs::NonCall(kind)) => {
                    summary.non_call(kind);
                    None
                }
                Err(e) => {
                    let reason = match &e {
                        callmeter_formats::Error::Event { source, .. } => source.reason.as_str(),
                        callmeter_formats::Error::Account { .. } => "unknown_account",
                        _ => "bad_line",
                    };
                    Some((reason, e.to_string()))
                }
            },
            KeyedLine::TooLong(number, n) => {
                Some(("line_too_long", format!("line {number}: {n} bytes, more than the limit of {MAX_LINE_BYTES}")))
            }
        };
        self.line_no = match line {
            KeyedLine::Text(at, _) => at.number,
            KeyedLine::TooLong(number, _) => number,
        };
        let line_no = self.line_no;
        let pushed = self.events.len() - before;
        // Only a line that gives more than its own call can be a batch: look then.
        if pushed > 1 || (pushed > 0 && failed.is_some()) {
            let batched = self.parser.batched();
            summary.batched += batched - self.batched;
            self.batched = batched;
        }
        self.lines.resize(self.events.len(), line_no);
        summary.calls += pushed as u64;
        if let Some((reason, message)) = failed {
            if self.strict {
                return Err(ImportError::Strict { path: self.name.clone(), error: message });
            }
            summary.reject_line(reason, &self.name, line_no, || message);
        }
        Ok(())
    }

    /// Reads a line that was delivered before (to resume after it) and drops
    /// the calls it gives: readers with sessions need the lines, not their
    /// calls, and the line keys need every line to count repeats alike.
    pub fn replay(&mut self, line: Line<'_>) {
        match self.without_bom(line) {
            Line::Text(text) => {
                let _ = self.parser.line(self.keys.next(text), text, &mut self.events);
            }
            Line::TooLong(_) => {
                self.keys.skip();
            }
        }
        self.line_no = self.keys.lines();
        self.events.clear();
        self.lines.clear();
        self.batched = self.parser.batched();
    }

    /// The end of the source: the calls still waiting for a later line.
    pub fn finish(&mut self, summary: &mut Summary) {
        let before = self.events.len();
        self.parser.finish(&mut self.events);
        let line_no = self.line_no();
        self.lines.resize(self.events.len(), line_no);
        summary.calls += (self.events.len() - before) as u64;
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
