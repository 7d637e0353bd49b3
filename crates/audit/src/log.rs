//! Auditing straight from a log: every line through the formats crate's
//! reader, every call it gives to the auditor. A bad line is counted, never fatal.

use crate::auditor::Auditor;
use crate::error::AuditError;
use callmeter_formats::{parser, Context, Format, LineKeys};
use serde::{Deserialize, Serialize};
use std::io::BufRead;

/// Bad lines whose message is kept, so that a person can look at them.
pub const KEPT_ERRORS: usize = 20;

/// What reading a log gave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogSummary {
    /// Lines read.
    pub lines: u64,
    /// Calls the lines gave (all fed to the auditor).
    pub calls: u64,
    /// Lines that did not follow the format, or whose account could not be resolved.
    pub bad_lines: u64,
    /// The first [`KEPT_ERRORS`] of their messages, with line numbers.
    pub first_errors: Vec<String>,
}

/// Reads `reader` as `format` and feeds every call to `auditor`. Calls read
/// from lines get the ids `import` would give them.
pub fn audit_log<R: BufRead>(
    auditor: &mut Auditor,
    format: Format,
    ctx: Context,
    mut reader: R,
) -> Result<LogSummary, AuditError> {
    let mut p = parser(format, ctx);
    let mut keys = LineKeys::new(None);
    let mut summary = LogSummary::default();
    let mut calls = Vec::new();
    let mut line = Vec::new();
    loop {
        line.clear();
        if reader.read_until(b'\n', &mut line)? == 0 {
            break;
        }
        summary.lines += 1;
        if let Err(e) = p.line(keys.next(&line), &line, &mut calls) {
            summary.bad_lines += 1;
            if summary.first_errors.len() < KEPT_ERRORS {
                summary.first_errors.push(e.to_string());
            }
        }
        for c in calls.drain(..) {
            summary.calls += 1;
            auditor.push(&c);
        }
    }
    p.finish(&mut calls);
    for c in calls.drain(..) {
        summary.calls += 1;
        auditor.push(&c);
    }
    Ok(summary)
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
}
