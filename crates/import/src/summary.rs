//! What an import did: lines read, and what each was (a call, a non-call of
//! a kind, or refused), calls imported, duplicates, and the refusals by
//! reason, with where the first of them are.
//!
//! Nothing read is dropped silently (DESIGN §5): every line read is counted
//! once, so that
//!
//! ```text
//! lines = calls - batched + non-calls (by kind) + rejected_lines
//! ```
//!
//! where `batched` is what CloudEvents batch lines hold beyond one call a
//! line (0 for every other format). The last line of a plain file that has
//! no newline yet is not read: it is `unended`, apart.
//!
//! Files are accounted for too: a file with no line to read (empty, or blank
//! lines only, as the live log is after logrotate) is read and named among
//! `empty_files`; a file that cannot be read (its format cannot be told, it
//! cannot be opened) is refused whole, named with why among `refused_files`,
//! and the others are still read.

use callmeter_formats::NonCall;
use serde::Serialize;
use std::collections::BTreeMap;
use std::fmt;

/// How many refused lines of each reason are named.
pub const FIRST_LINES_SHOWN: usize = 20;

/// Totals over every file of an import (or a tail so far).
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Summary {
    /// Files (or streams) read.
    pub files: u64,
    /// Lines read, blank ones included.
    pub lines: u64,
    /// Calls found in them.
    pub calls: u64,
    /// Calls beyond one a line: the events of a CloudEvents batch line after its first.
    pub batched: u64,
    /// Lines read that are not calls, by kind (`housekeeping`, `part_of_call`, `no_request`…).
    pub non_calls: BTreeMap<NonCall, u64>,
    /// Last lines of plain files without a newline yet: not read, since a
    /// server may still be writing them; a later import reads them whole.
    pub unended: u64,
    /// Calls stored and counted.
    pub imported: u64,
    /// Calls whose id was already stored: not counted again.
    pub duplicates: u64,
    /// Lines or calls refused.
    pub rejected: u64,
    /// Of `rejected`, the lines their reader refused: no call was read from them.
    pub rejected_lines: u64,
    /// The refusals by reason code.
    pub reasons: BTreeMap<String, Rejections>,
    /// Files read that held no line to read (empty, or blank lines only): counted in `files`.
    pub empty_files: Vec<String>,
    /// Files refused whole, with why (not counted in `files`): the others were read.
    pub refused_files: Vec<RefusedFile>,
}

/// A file that was not read, and why.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct RefusedFile {
    /// The file, as named.
    pub file: String,
    /// Why it was not read.
    pub why: String,
}

/// The refusals of one reason.
#[derive(Debug, Default, Clone, PartialEq, Serialize)]
pub struct Rejections {
    /// How many.
    pub count: u64,
    /// The first [`FIRST_LINES_SHOWN`], as `file:line`.
    pub first: Vec<String>,
    /// The message of the first.
    pub example: String,
}

impl Summary {
    /// Records a call refused where it was delivered.
    pub fn reject(&mut self, reason: &str, file: &str, line: u64, message: impl FnOnce() -> String) {
        self.rejected += 1;
        let r = self.reasons.entry(reason.to_owned()).or_default();
        if r.count == 0 {
            r.example = message();
        }
        r.count += 1;
        if r.first.len() < FIRST_LINES_SHOWN {
            r.first.push(format!("{file}:{line}"));
        }
    }

    /// Records a line its reader refused.
    pub fn reject_line(&mut self, reason: &str, file: &str, line: u64, message: impl FnOnce() -> String) {
        self.rejected_lines += 1;
        self.reject(reason, file, line, message);
    }

    /// Records a file read with no line to read: its `lines` are all blank,
    /// and a last one `unended` when it has no newline yet.
    pub fn empty_file(&mut self, file: &str, lines: u64, unended: bool) {
        self.files += 1;
        self.lines += lines;
        if lines > 0 {
            *self.non_calls.entry(NonCall::Blank).or_default() += lines;
        }
        self.unended += u64::from(unended);
        self.empty_files.push(file.to_owned());
    }

    /// Records a file refused whole.
    pub fn refuse_file(&mut self, file: &str, why: impl fmt::Display) {
        self.refused_files.push(RefusedFile { file: file.to_owned(), why: why.to_string() });
    }

    /// Records a line that is not a call.
    pub fn non_call(&mut self, kind: NonCall) {
        *self.non_calls.entry(kind).or_default() += 1;
    }

    /// The lines that are not calls, of every kind.
    pub fn non_call_total(&self) -> u64 {
        self.non_calls.values().sum()
    }

    /// Whether every line read is accounted for: `lines = calls - batched + non-calls + rejected_lines`.
    pub fn adds_up(&self) -> bool {
        self.lines + self.batched == self.calls + self.non_call_total() + self.rejected_lines
    }
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let non_calls = self.non_call_total();
        writeln!(f, "files read:   {}", self.files)?;
        if !self.empty_files.is_empty() {
            writeln!(f, "  empty: {} (no line to read yet: {})", self.empty_files.len(), self.empty_files.join(", "))?;
        }
        if !self.refused_files.is_empty() {
            writeln!(f, "files refused: {} (not read; the others were)", self.refused_files.len())?;
            for r in &self.refused_files {
                writeln!(f, "  {}: {}", r.file, r.why)?;
            }
        }
        write!(f, "lines read:   {} = {} calls", self.lines, self.calls)?;
        if self.batched > 0 {
            write!(f, " - {} batched", self.batched)?;
        }
        writeln!(f, " + {non_calls} non-calls + {} rejected", self.rejected_lines)?;
        writeln!(f, "calls found:  {}", self.calls)?;
        if self.batched > 0 {
            writeln!(f, "batched:      {} (CloudEvents batch lines hold several calls)", self.batched)?;
        }
        writeln!(f, "non-calls:    {non_calls}")?;
        for kind in NonCall::ALL {
            if let Some(n) = self.non_calls.get(&kind) {
                writeln!(f, "  {kind}: {n} ({})", kind.meaning())?;
            }
        }
        writeln!(f, "imported:     {}", self.imported)?;
        writeln!(f, "duplicates:   {}", self.duplicates)?;
        if self.unended > 0 {
            writeln!(f, "not ended:    {} (a last line without its newline yet; read once it ends)", self.unended)?;
        }
        write!(f, "rejected:     {}", self.rejected)?;
        let calls_refused = self.rejected - self.rejected_lines;
        if calls_refused > 0 && self.rejected_lines > 0 {
            write!(f, " (lines: {}, calls: {calls_refused})", self.rejected_lines)?;
        }
        for (reason, r) in &self.reasons {
            let more = if r.count as usize > r.first.len() { ", …" } else { "" };
            write!(f, "\n  {reason}: {} ({}{more})\n    first: {}", r.count, r.first.join(", "), r.example)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_first_twenty_lines_and_the_first_message() {
        let mut s = Summary::default();
        for line in 1..=25 {
            s.reject_line("bad_line", "a.log", line, || format!("line {line}: broken"));
        }
        let r = &s.reasons["bad_line"];
        assert_eq!((s.rejected, s.rejected_lines, r.count, r.first.len()), (25, 25, 25, 20));
        assert_eq!(r.first[19], "a.log:20");
        assert_eq!(r.example, "line 1: broken");
        assert!(s.to_string().contains("bad_line: 25 (a.log:1, a.log:2,"), "{s}");
    }

    #[test]
    fn lines_add_up_in_text_and_json() {
        let mut s = Summary { files: 1, lines: 10, calls: 5, ..Summary::default() };
        s.non_call(NonCall::Housekeeping);
        s.non_call(NonCall::Housekeeping);
        s.non_call(NonCall::NoRequest);
        s.reject_line("bad_line", "a.log", 9, || "line 9: broken".into());
        assert!(!s.adds_up(), "one line is missing");
        s.non_call(NonCall::PartOfCall);
        assert!(s.adds_up());
        s.reject("oversize", "a.log", 3, || "line 3: too big".into());
        assert!(s.adds_up(), "a call refused when delivered was counted as a call");
        let text = s.to_string();
        assert!(text.contains("lines read:   10 = 5 calls + 4 non-calls + 1 rejected\n"), "{text}");
        assert!(text.contains("  housekeeping: 2 (session commands that are not file operations)\n"), "{text}");
        assert!(text.contains("rejected:     2 (lines: 1, calls: 1)"), "{text}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(json["non_calls"], serde_json::json!({"housekeeping": 2, "part_of_call": 1, "no_request": 1}));
        assert_eq!((json["rejected_lines"].as_u64(), json["batched"].as_u64()), (Some(1), Some(0)));
        let batch = Summary { lines: 2, calls: 5, batched: 3, ..Summary::default() };
        assert!(batch.adds_up());
        assert!(batch.to_string().contains("lines read:   2 = 5 calls - 3 batched + 0 non-calls + 0 rejected"));
    }

    #[test]
    fn empty_and_refused_files_are_named() {
        let mut s = Summary::default();
        s.empty_file("access.log", 2, true);
        s.empty_file("new.log", 0, false);
        s.refuse_file("pfirewall.log", "cannot tell the format");
        assert!(s.adds_up());
        assert_eq!((s.files, s.lines, s.unended, s.non_calls[&NonCall::Blank]), (2, 2, 1, 2));
        let text = s.to_string();
        assert!(text.starts_with("files read:   2\n  empty: 2 (no line to read yet: access.log, new.log)\nfiles refused: 1 (not read; the others were)\n  pfirewall.log: cannot tell the format\n"), "{text}");
        let json = serde_json::to_value(&s).unwrap();
        assert_eq!(
            json["refused_files"],
            serde_json::json!([{"file": "pfirewall.log", "why": "cannot tell the format"}])
        );
        assert_eq!(json["empty_files"], serde_json::json!(["access.log", "new.log"]));
    }
}
