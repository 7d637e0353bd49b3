//! Which files are the rotated files of one log, told by their names
//! (DESIGN §6: "the rotated files of one log are one input").
//!
//! `access.log`, `access.log.1`, `access.log.2.gz` and `access.log-20261102.gz`
//! are all the log `access.log`, oldest first: a date suffix (logrotate's
//! `dateext`: `-20261102`, `-2026-11-02`, `-2026110213`) by its date, then the
//! numbered ones from the highest number (logrotate's default, Apache's
//! `rotatelogs -n`), then the live file. A compressed copy (`.gz`, `.zst`)
//! stands where its plain name does, so `access.log.gz` is the live file too.
//!
//! The audit merges every file by time, so this order only decides which of
//! two calls with the same time, in two files, comes first (the older file's),
//! and how the inputs are named; it never makes one file wait for another.

use std::cmp::Reverse;

/// Where a file stands: its log, and its age among that log's files.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct LogFileOrder {
    /// The log's name: the file's, without its rotation and compression suffixes.
    pub log: String,
    age: Age,
    /// The file's name as given.
    pub name: String,
}

/// Oldest first: dated files by date, numbered ones from the highest number, then the live one.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
enum Age {
    Dated(String),
    Numbered(Reverse<u32>),
    Live,
}

const COMPRESSED: [&str; 4] = [".gz", ".zst", ".zstd", ".bz2"];

/// A name's rotation number (`.3`), if it ends in one.
fn numbered(name: &str) -> Option<(&str, u32)> {
    let (log, n) = name.rsplit_once('.')?;
    if log.is_empty() || n.is_empty() || n.len() > 6 || !n.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((log, n.parse().ok()?))
}

/// A name's date suffix after a `.` or `_` (`.20261102`, `_2026-11-02`), as its digits, if it ends in one.
fn dot_dated(name: &str) -> Option<(&str, String)> {
    let at = name.rfind(['.', '_'])?;
    let (log, date) = (&name[..at], &name[at + 1..]);
    if log.is_empty() {
        return None;
    }
    dated_digits(date).map(|d| (log, d))
}

/// `20261102`, `2026-11-02`, `2026110213`: the digits of a date (with an hour), else `None`.
fn dated_digits(s: &str) -> Option<String> {
    let digits: String = s.chars().filter(char::is_ascii_digit).collect();
    let shape_ok = s.chars().all(|c| c.is_ascii_digit() || c == '-') && !s.starts_with('-') && !s.ends_with('-');
    (shape_ok && matches!(digits.len(), 8 | 10 | 12) && digits.starts_with(['1', '2'])).then_some(digits)
}

/// Where the file `name` stands among the rotated files of its log.
pub fn log_file_order(name: &str) -> LogFileOrder {
    let plain = COMPRESSED.iter().find_map(|ext| name.strip_suffix(ext)).unwrap_or(name);
    let (log, age) = if let Some((log, n)) = numbered(plain) {
        (log, Age::Numbered(Reverse(n)))
    } else if let Some((log, date)) = dot_dated(plain).or_else(|| dash_dated(plain)) {
        (log, Age::Dated(date))
    } else {
        (plain, Age::Live)
    };
    LogFileOrder { log: log.to_owned(), age, name: name.to_owned() }
}

/// logrotate's default `dateext`: `-20261102` (or `-2026-11-02`) after the log's name.
fn dash_dated(name: &str) -> Option<(&str, String)> {
    // The date is the last 8 to 12 digits, with or without dashes, after a `-`.
    for len in [8, 10, 12, 13] {
        if name.len() <= len + 1 || !name.is_char_boundary(name.len() - len) {
            continue;
        }
        let (head, tail) = name.split_at(name.len() - len);
        if let (Some(log), Some(date)) = (head.strip_suffix('-'), dated_digits(tail)) {
            if !log.is_empty() {
                return Some((log, date));
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sorted(names: &[&str]) -> Vec<String> {
        let mut v: Vec<LogFileOrder> = names.iter().map(|n| log_file_order(n)).collect();
        v.sort();
        v.into_iter().map(|o| o.name).collect()
    }

    #[test]
    fn rotated_files_are_one_log_oldest_first() {
        assert_eq!(
            sorted(&["access.log", "access.log.1", "access.log.2.gz", "access.log.10.gz"]),
            ["access.log.10.gz", "access.log.2.gz", "access.log.1", "access.log"]
        );
        for name in ["logs/access.log.2.gz", "logs/access.log.gz", "logs/access.log-20261102.zst", "logs/access.log"] {
            assert_eq!(log_file_order(name).log, "logs/access.log", "{name}");
        }
        assert_eq!(
            sorted(&["a.log", "a.log-20261103", "a.log-2026-11-02.gz", "a.log.1"]),
            ["a.log-2026-11-02.gz", "a.log-20261103", "a.log.1", "a.log"]
        );
    }

    #[test]
    fn other_logs_are_other_inputs() {
        let (a, s) = (log_file_order("access.log.1"), log_file_order("sftp.log"));
        assert_ne!(a.log, s.log);
        assert_eq!(log_file_order("calls.ndjson").log, "calls.ndjson");
        assert_eq!(log_file_order("server-2026.log").log, "server-2026.log", "a year in the name is no rotation");
        assert_eq!(log_file_order("x.2026110213").log, "x");
        assert_eq!(log_file_order("-").log, "-");
        assert_eq!(log_file_order(".1").log, ".1");
    }
}
