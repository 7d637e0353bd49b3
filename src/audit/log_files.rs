//! `callmeter audit FILE…`: the files read as `import` reads them (format told
//! from each file's content, content-addressed ids, accounts, time zone, the
//! config's tables), merged by time into one stream (DESIGN §6), each call once.
//!
//! Every file is one input of the merge ([`callmeter_audit::TimeMerge`]); its
//! name orders it among the others ([`callmeter_audit::rotation`]: the rotated
//! files of one log, oldest first), which only matters for calls at the same
//! time. A file is opened, read up to its first call and closed at the start;
//! it is opened again, to be read through, when the merge reaches that call.
//! So a month of daily rotations holds one or two files open at a time, and a
//! file given twice, or with its rotated or gzipped copy, is read side by side
//! with it: each call comes out next to its copy and counts once
//! ([`callmeter_audit::SeenIds`]).
//!
//! Standard input cannot be read twice: it is opened once and kept open.

use anyhow::{Context, Result};
use callmeter_import::{
    parse_ahead, Delivery, ImportError, Input, Lines, ParseAhead, ReadOptions, Sink, SourceReader, Summary,
    MAX_LINE_BYTES,
};
use callmeter_model::CallEvent;
use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

/// The bytes read so far of every file opened to be read through: for the progress bar.
pub(super) type Progress = Arc<Mutex<Vec<Arc<AtomicU64>>>>;

/// The bytes read so far, all files together.
pub(super) fn bytes_read(progress: &Progress) -> u64 {
    progress.lock().unwrap_or_else(|e| e.into_inner()).iter().map(|r| r.load(Ordering::Relaxed)).sum()
}

/// One file being read: an iterator of its calls, as an input of the merge.
pub(super) struct LogFile<'a> {
    path: PathBuf,
    name: String,
    /// The file's size on disk, when known.
    pub size: Option<u64>,
    state: State,
    summary: Summary,
    options: &'a ReadOptions,
    progress: &'a Progress,
}

enum State {
    /// Read up to its first call and closed: that call, until the merge takes it.
    Probed(Box<CallEvent>),
    /// Its first call taken; opened again when the second is wanted, the first skipped.
    FirstTaken,
    Open(Box<Reading>),
    Done,
}

/// An open file: its lines read and parsed ahead on worker threads (as
/// `import` reads them), its reader (which counts them) and the calls read ahead.
struct Reading {
    ahead: ParseAhead,
    reader: SourceReader,
    ready: VecDeque<CallEvent>,
    /// Calls still to be skipped: those taken before it was opened again.
    skip: usize,
    ended: bool,
    name: String,
}

/// Takes the calls a reader delivers: the audit accepts every one.
struct ReadAhead<'a>(&'a mut VecDeque<CallEvent>);

impl Sink for ReadAhead<'_> {
    fn deliver(&mut self, events: &mut Vec<CallEvent>) -> callmeter_import::Result<Vec<Delivery>> {
        let n = events.len();
        self.0.extend(events.drain(..));
        Ok(vec![Delivery::Accepted; n])
    }
}

/// A file opened: to be read, or found to hold no line to read.
enum Opened {
    Reading(Box<Reading>, Option<u64>),
    /// Empty, or blank lines only: its lines, and whether a last one is unended.
    Empty(u64, bool),
}

impl Reading {
    fn open(path: &Path, options: &ReadOptions, progress: Option<&Progress>) -> callmeter_import::Result<Opened> {
        let input = Input::open(path)?;
        if input.holds_no_lines() {
            let (lines, unended) = input.blank_lines();
            return Ok(Opened::Empty(lines, unended));
        }
        let format = options.format_for(&input.name, &input.head_lines())?;
        // Standard input is being written now: its lines may be a little ahead of this clock.
        let year_reference = input.modified.unwrap_or_else(callmeter_formats::live_year_reference);
        let mut reader = SourceReader::new(&input.name, format, options, year_reference);
        // Without `progress`, it is opened to find its first call only.
        if let Some(p) = progress {
            tracing::info!(file = %input.name, format = %format, compression = ?input.compression, "auditing");
            p.lock().unwrap_or_else(|e| e.into_inner()).push(input.read.clone());
        }
        let lines = if input.may_grow {
            Lines::of_growing_file(input.reader, MAX_LINE_BYTES)
        } else {
            Lines::new(input.reader, MAX_LINE_BYTES)
        };
        let ahead = parse_ahead(&mut reader, lines, true);
        let reading =
            Reading { ahead, reader, ready: VecDeque::new(), skip: 0, ended: false, name: input.name.clone() };
        Ok(Opened::Reading(Box::new(reading), input.size))
    }

    /// The next call, reading lines (and counting them in `summary`) as needed.
    fn next_call(&mut self, batch: usize, summary: &mut Summary) -> Result<Option<CallEvent>> {
        loop {
            if let Some(c) = self.ready.pop_front() {
                if self.skip > 0 {
                    self.skip -= 1;
                    continue;
                }
                return Ok(Some(c));
            }
            if self.ended {
                return Ok(None);
            }
            // Read ahead a batch of calls (or to the end), as import does.
            while self.reader.pending() < batch {
                match self.ahead.next_block().with_context(|| format!("reading {}", self.name))? {
                    Some(block) => {
                        let mut calls = block.calls.into_iter();
                        for line in block.outcomes {
                            self.reader.count(line, calls.by_ref(), summary)?;
                        }
                    }
                    None => {
                        if self.ahead.unended_last_line() > 0 {
                            summary.unended += 1;
                        }
                        self.reader.count_finished(self.ahead.finish(), summary);
                        self.ended = true;
                        break;
                    }
                }
            }
            self.reader.deliver(Some(&mut ReadAhead(&mut self.ready)), summary)?;
        }
    }
}

impl<'a> LogFile<'a> {
    /// Opens `path` and reads it up to its first call; a file (not standard input) is closed again.
    ///
    /// A file with no line to read (empty, as the live log is after
    /// logrotate) gives no call; one that cannot be opened, or whose format
    /// cannot be told, is refused whole (in its [`LogFile::summary`]) and
    /// gives none either: the others are still audited.
    pub fn probe(path: &Path, options: &'a ReadOptions, progress: &'a Progress) -> Result<LogFile<'a>> {
        let name = path.display().to_string();
        let mut summary = Summary { files: 1, ..Summary::default() };
        let mut file = LogFile {
            path: path.to_owned(),
            name,
            size: None,
            state: State::Done,
            summary: Summary::default(),
            options,
            progress,
        };
        let (reading, size) = match Reading::open(path, options, (path == Path::new("-")).then_some(progress)) {
            Ok(Opened::Reading(reading, size)) => (reading, size),
            Ok(Opened::Empty(lines, unended)) => {
                tracing::info!(file = %file.name, lines, "no line to read: the file is empty");
                file.summary.empty_file(&file.name, lines, unended);
                return Ok(file);
            }
            Err(e @ (ImportError::UnknownFormat { .. } | ImportError::Io { .. })) => {
                crate::import::refuse(&mut file.summary, &file.name, &e);
                return Ok(file);
            }
            Err(e) => return Err(e.into()),
        };
        file.size = size;
        if path == Path::new("-") {
            file.state = State::Open(reading);
            file.summary = summary;
            return Ok(file);
        }
        let mut reading = reading;
        // A file without a call is read through here; otherwise its lines are counted again when it is.
        file.state = match reading.next_call(1, &mut summary).with_context(|| format!("reading {}", file.name))? {
            Some(first) => State::Probed(Box::new(first)),
            None => {
                file.summary = summary;
                State::Done
            }
        };
        Ok(file)
    }

    /// The file's name as given.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// What reading it found: lines, calls, bad lines by reason.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    fn next_call(&mut self) -> Result<Option<CallEvent>> {
        match std::mem::replace(&mut self.state, State::Done) {
            State::Probed(first) => {
                self.state = State::FirstTaken;
                Ok(Some(*first))
            }
            State::FirstTaken => {
                let Opened::Reading(mut reading, _) = Reading::open(&self.path, self.options, Some(self.progress))?
                else {
                    anyhow::bail!("it changed while it was audited: it has no line to read any more");
                };
                reading.skip = 1;
                self.summary = Summary { files: 1, ..Summary::default() };
                self.state = State::Open(reading);
                self.next_call()
            }
            State::Open(mut reading) => {
                let next = reading.next_call(self.options.batch, &mut self.summary)?;
                if next.is_some() {
                    self.state = State::Open(reading);
                }
                Ok(next)
            }
            State::Done => Ok(None),
        }
    }
}

impl Iterator for LogFile<'_> {
    type Item = Result<CallEvent>;

    fn next(&mut self) -> Option<Self::Item> {
        let next = self.next_call().with_context(|| format!("reading {}", self.name));
        if next.is_err() {
            self.state = State::Done;
        }
        next.transpose()
    }
}

/// Adds one file's counts to the totals of all.
pub(super) fn add_summary(total: &mut Summary, s: &Summary) {
    total.files += s.files;
    total.empty_files.extend(s.empty_files.iter().cloned());
    total.refused_files.extend(s.refused_files.iter().cloned());
    total.lines += s.lines;
    total.calls += s.calls;
    total.unended += s.unended;
    total.rejected += s.rejected;
    for (reason, r) in &s.reasons {
        let t = total.reasons.entry(reason.clone()).or_default();
        if t.count == 0 {
            t.example = r.example.clone();
        }
        t.count += r.count;
        let room = callmeter_import::summary::FIRST_LINES_SHOWN.saturating_sub(t.first.len());
        t.first.extend(r.first.iter().take(room).cloned());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_formats::{AccountRule, Classifier, Format};

    fn options() -> ReadOptions {
        ReadOptions {
            format: None,
            accounts: AccountRule::fixed("acme").unwrap(),
            timezone: chrono_tz::UTC,
            source_id: None,
            classifier: Arc::new(Classifier::new(&Default::default()).unwrap()),
            strict: false,
            batch: 2,
        }
    }

    fn line(minute: u32, path: &str) -> String {
        format!(
            "203.0.113.9 - - [15/Jan/2024:10:{minute:02}:00 +0000] \"GET /api/rest/v1/files{path} HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n"
        )
    }

    #[test]
    fn a_probed_file_gives_every_call_once_with_imports_ids() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("access.log");
        // Two identical lines are two calls (their occurrence numbers differ), one bad line is counted.
        let text = [line(0, "/a"), line(0, "/a"), "not a line\n".into(), line(1, "/b"), line(2, "/c")].concat();
        std::fs::write(&path, &text).unwrap();
        let (options, progress) = (options(), Progress::default());
        let file = LogFile::probe(&path, &options, &progress).unwrap();
        assert!(progress.lock().unwrap().is_empty(), "closed again after its first call");
        let mut file = file;
        let calls: Vec<CallEvent> = file.by_ref().map(Result::unwrap).collect();
        assert_eq!(progress.lock().unwrap().len(), 1, "opened again to be read through");
        let paths: Vec<&str> = calls.iter().map(|c| c.path.as_deref().unwrap()).collect();
        assert_eq!(paths, ["/a", "/a", "/b", "/c"]);
        assert_ne!(calls[0].id, calls[1].id);
        // The ids import gives the same lines.
        let mut reader = SourceReader::new("access.log", Format::Combined, &options, chrono::Utc::now());
        let (mut ready, mut s) = (VecDeque::new(), Summary::default());
        for l in text.lines() {
            reader.read(callmeter_import::Line::Text(l.as_bytes()), &mut s).unwrap();
        }
        reader.deliver(Some(&mut ReadAhead(&mut ready)), &mut s).unwrap();
        let ids: Vec<&str> = ready.iter().map(|c| c.id.as_str()).collect();
        assert_eq!(calls.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), ids);
        let summary = file.summary();
        assert_eq!((summary.files, summary.lines, summary.calls, summary.rejected), (1, 5, 4, 1), "{summary}");

        // A file with no call is read once, for its counts.
        let empty = dir.path().join("bad.log");
        std::fs::write(&empty, "not a line\n".repeat(3)).unwrap();
        let combined = ReadOptions { format: Some(Format::Combined), ..options.clone() };
        let mut file = LogFile::probe(&empty, &combined, &progress).unwrap();
        assert!(file.next().is_none());
        assert_eq!((file.summary().lines, file.summary().rejected), (3, 3));
        let mut total = Summary::default();
        add_summary(&mut total, summary);
        add_summary(&mut total, file.summary());
        assert_eq!((total.files, total.lines, total.rejected, total.reasons["bad_line"].count), (2, 8, 4, 4));
        let first: Vec<&str> = total.reasons["bad_line"].first.iter().map(|f| f.rsplit('/').next().unwrap()).collect();
        assert_eq!(first, ["access.log:3", "bad.log:1", "bad.log:2", "bad.log:3"]);
    }
}
