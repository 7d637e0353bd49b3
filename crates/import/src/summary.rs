//! What an import did: lines read, calls imported, duplicates, and the lines
//! refused, by reason, with where the first of them are.

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
    /// Last lines of plain files without a newline yet: not read, since a
    /// server may still be writing them; a later import reads them whole.
    pub unended: u64,
    /// Calls stored and counted.
    pub imported: u64,
    /// Calls whose id was already stored: not counted again.
    pub duplicates: u64,
    /// Lines or calls refused.
    pub rejected: u64,
    /// The refusals by reason code.
    pub reasons: BTreeMap<String, Rejections>,
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
    /// Records a refused line or call.
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
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "files read:   {}", self.files)?;
        writeln!(f, "lines read:   {}", self.lines)?;
        writeln!(f, "calls found:  {}", self.calls)?;
        writeln!(f, "imported:     {}", self.imported)?;
        writeln!(f, "duplicates:   {}", self.duplicates)?;
        if self.unended > 0 {
            writeln!(f, "not ended:    {} (a last line without its newline yet; read once it ends)", self.unended)?;
        }
        write!(f, "rejected:     {}", self.rejected)?;
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
            s.reject("bad_line", "a.log", line, || format!("line {line}: broken"));
        }
        let r = &s.reasons["bad_line"];
        assert_eq!((s.rejected, r.count, r.first.len()), (25, 25, 20));
        assert_eq!(r.first[19], "a.log:20");
        assert_eq!(r.example, "line 1: broken");
        assert!(s.to_string().contains("bad_line: 25 (a.log:1, a.log:2,"), "{s}");
    }
}
