//! The xferlog transfer log (wu-ftpd's, also written by vsftpd, ProFTPD and Pure-FTPd).
//!
//! ```text
//! Mon Jan 15 10:00:05 2024 1 192.168.1.10 1024 /home/alice/report.csv b _ i r alice ftp 0 * c
//! ```
//!
//! Fields: time (local, in `--timezone`), transfer seconds, remote host, file
//! size, file name (which may hold spaces), transfer type (`a`/`b`), special
//! action (`C`, `U`, `T`, `_`), direction (`i` in, `o` out, `d` deleted),
//! access mode (`a`nonymous, `g`uest, `r`eal), user, service, authentication
//! method, authenticated user id, and (not in the oldest servers) completion
//! status (`c` complete, `i` incomplete).
//!
//! Some writers add fields after the completion status (a byte count, a
//! second status, a session id…): they are skipped, however many. Every line is a call: `i` → write (`STOR`), `o` → read (`RETR`), `d` →
//! delete (`DELE`). The log is written when the transfer ends; the call's time
//! is when it began (the time less the transfer seconds). The status is 226
//! for a complete transfer (250 for a delete) and 426 for an incomplete one.
//! The interface is `ftp`, or `sftp` when the service says so.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::text::{is_blank, owned, parse_ctime, parse_u64, quote, trim_eol};
use crate::{Format, LineIs, LineParser, NonCall, SourceLine};
use callmeter_model::{CallEvent, Interface, Operation};

/// The reader of xferlog.
#[derive(Debug)]
pub struct XferlogParser {
    ctx: Context,
}

fn one_of(t: &[u8], set: &[u8]) -> bool {
    t.len() == 1 && set.contains(&t[0])
}

impl XferlogParser {
    /// A reader.
    pub fn new(ctx: Context) -> XferlogParser {
        XferlogParser { ctx }
    }

    /// Reads one line into its call (`None` for a blank line).
    pub fn parse(&mut self, source_line: SourceLine, line: &[u8]) -> Result<Option<CallEvent>> {
        let line_no = source_line.number;
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(None);
        }
        let (naive, rest) = parse_ctime(line).ok_or_else(|| {
            Error::line(line_no, "time", format!("not a ctime date (Mon Jan 15 10:00:05 2024): {}", quote(line)))
        })?;
        let base = line.len() - rest.len();
        // Tokens with their offsets in the line, so that the file name keeps its spaces.
        let mut tokens: Vec<(usize, &[u8])> = Vec::with_capacity(16);
        let mut at = 0;
        for t in rest.split(|c| *c == b' ') {
            if !t.is_empty() {
                tokens.push((base + at, t));
            }
            at += t.len() + 1;
        }
        let n = tokens.len();
        let t = |i: usize| tokens[i].1;
        let tail_at = |k: usize| -> bool {
            n >= 4 + k
                && one_of(t(n - k), b"ab")
                && t(n - k + 1).iter().all(|c| b"CUT_".contains(c))
                && one_of(t(n - k + 2), b"oid")
                && one_of(t(n - k + 3), b"agr")
                && one_of(t(n - k + 6), b"01")
        };
        // The completion status last, or followed by fields some writers add (any number: the
        // fewest that fit, so that the file name keeps whatever looks like fields in it).
        let with_status = (0..=n.saturating_sub(13))
            .find(|&extra| n >= 13 + extra && one_of(t(n - 1 - extra), b"ci") && tail_at(9 + extra));
        let (tail, complete) = if let Some(extra) = with_status {
            (n - 9 - extra, Some(t(n - 1 - extra) == b"c"))
        } else if tail_at(8) {
            (n - 8, None)
        } else {
            return Err(Error::line(
                line_no,
                "line",
                "expected: time, seconds, host, size, file name, type, action, direction, access mode, user, service, \
                 authentication, user id[, status]",
            ));
        };
        let secs = parse_u64(t(0))
            .ok_or_else(|| Error::line(line_no, "transfer-time", format!("not a number: {}", quote(t(0)))))?;
        let host = t(1);
        let size = parse_u64(t(2))
            .ok_or_else(|| Error::line(line_no, "file-size", format!("not a number: {}", quote(t(2)))))?;
        let name = &line[tokens[3].0..tokens[tail].0 - 1];
        let direction = t(tail + 2);
        let user = if t(tail + 3) == b"a" { b"anonymous" } else { t(tail + 4) };
        let service = t(tail + 5);
        let end = self.ctx.local(line_no, "time", naive)?;
        let time = i64::try_from(secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .and_then(|d| end.checked_sub_signed(d))
            .ok_or_else(|| Error::line(line_no, "transfer-time", format!("out of range: {secs}")))?;
        let (operation, method) = match direction {
            b"i" => (Operation::Write, "STOR"),
            b"o" => (Operation::Read, "RETR"),
            _ => (Operation::Delete, "DELE"),
        };
        let interface = if service.eq_ignore_ascii_case(b"sftp") { Interface::Sftp } else { Interface::Ftp };
        let user = owned(user);
        let account = self.ctx.account(line_no, None, Some(&user))?;
        let mut e = self.ctx.event(source_line, time, interface, operation, account);
        e.method = Some(method.into());
        e.path = Some(owned(name));
        e.status = complete.map(|c| match (c, operation) {
            (true, Operation::Delete) => 250,
            (true, _) => 226,
            (false, _) => 426,
        });
        e.user = Some(user);
        e.client_ip = Some(owned(host));
        e.bytes = Some(size);
        e.duration_ms = Some(secs as f64 * 1000.0);
        self.ctx.overrides(&mut e);
        Ok(Some(e))
    }
}

impl LineParser for XferlogParser {
    fn format(&self) -> Format {
        Format::Xferlog
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        Ok(match self.parse(at, line)? {
            Some(e) => {
                out.push(e);
                LineIs::Call
            }
            None => NonCall::Blank.into(),
        })
    }

    fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, id, one, ops, run, run_errors, run_with, utc};
    use chrono::DateTime;
    use proptest::prelude::*;

    #[test]
    fn documented_lines() {
        let log = "\
Mon Jan 15 10:00:05 2024 1 192.168.1.10 1024 /home/alice/report.csv b _ i r alice ftp 0 * c
Mon Jan 15 10:01:00 2024 12 2001:db8::5 52428800 /pub/big file with spaces.iso b _ o a guest@example.com ftp 0 * i
Mon Jan  5 09:00:00 2024 0 host.example.com 0 /home/alice/old.csv a _ d r alice ftp 0 *
";
        let events = run(Format::Xferlog, log);
        assert_eq!(
            ops(&events),
            vec![
                (Operation::Write, Some("/home/alice/report.csv")),
                (Operation::Read, Some("/pub/big file with spaces.iso")),
                (Operation::Delete, Some("/home/alice/old.csv")),
            ]
        );
        let e = &events[0];
        assert_eq!(
            (e.time, e.id.as_str(), e.interface),
            (utc("2024-01-15T10:00:04Z"), id(log, 1).as_str(), Interface::Ftp)
        );
        assert_eq!((e.status, e.bytes, e.user.as_deref()), (Some(226), Some(1024), Some("alice")));
        let e = &events[1];
        assert_eq!(
            (e.status, e.user.as_deref(), e.client_ip.as_deref()),
            (Some(426), Some("anonymous"), Some("2001:db8::5"))
        );
        assert_eq!(e.duration_ms, Some(12_000.0));
        assert_eq!((events[2].status, events[2].time), (None, utc("2024-01-05T09:00:00Z")));
    }

    #[test]
    fn fields_after_the_completion_status_are_skipped() {
        let log = "\
Mon Jan 15 10:00:05 2024 1 192.168.1.10 1024 /home/alice/report.csv b _ i r alice ftp 0 * c 1024
Mon Jan 15 10:00:06 2024 1 192.168.1.10 2048 /home/alice/a b.csv b _ o r alice ftp 0 * i 0 x
Mon Jan 15 10:00:07 2024 0 192.168.1.10 0 /home/alice/c.csv a _ d r alice ftp 0 * c extra1 extra2 extra3
Mon Jan 15 10:00:08 2024 0 192.168.1.10 0 /home/alice/d.csv a _ d r alice ftp 0 * c 1 2 3 4 5 6 7 8 9 10 11 12 13
";
        let events = run(Format::Xferlog, log);
        assert_eq!(
            ops(&events),
            vec![
                (Operation::Write, Some("/home/alice/report.csv")),
                (Operation::Read, Some("/home/alice/a b.csv")),
                (Operation::Delete, Some("/home/alice/c.csv")),
                (Operation::Delete, Some("/home/alice/d.csv")),
            ]
        );
        assert_eq!((events[0].status, events[1].status, events[2].status), (Some(226), Some(426), Some(250)));
    }

    #[test]
    fn times_are_read_in_the_given_zone() {
        let ctx = ctx().with_timezone("Europe/Berlin".parse().unwrap());
        let mut p = XferlogParser::new(ctx);
        let (events, _) = run_with(&mut p, "Mon Jul 15 10:00:05 2024 5 h 1 /a b _ i r u sftp 1 u c\n");
        assert_eq!((events[0].time, events[0].interface), (utc("2024-07-15T08:00:00Z"), Interface::Sftp));
        let (_, errors) = run_with(&mut p, "Sun Mar 31 02:30:00 2024 0 h 1 /a b _ i r u ftp 0 * c\n");
        assert_eq!(
            errors[0].to_string(),
            "line 1: time: 2024-03-31 02:30:00 does not exist in Europe/Berlin (the clock was set forward)"
        );
    }

    #[test]
    fn bad_lines() {
        let (_, errors) = run_errors(
            Format::Xferlog,
            "nonsense\nMon Jan 15 10:00:05 2024 1 h 1 /a\nMon Jan 15 10:00:05 2024 x h 1 /a b _ i r u ftp 0 * c\n",
        );
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(got[0].starts_with("line 1: time: not a ctime date"), "{got:?}");
        assert!(got[1].starts_with("line 2: line: expected: time, seconds"), "{got:?}");
        assert_eq!(got[2], "line 3: transfer-time: not a number: \"x\"");
    }

    proptest! {
        #[test]
        fn generated_lines_parse_back(
            secs in 86_400i64..4_000_000_000, dur in 0u32..10_000, size in 0..=callmeter_model::MAX_COUNT,
            name in "/[a-zA-Z0-9 ._()-]{0,20}[a-z]", dir in 0usize..3, status in proptest::option::of(any::<bool>()),
            user in "[a-z][a-z0-9_]{0,10}",
        ) {
            let end = DateTime::from_timestamp(secs, 0).unwrap();
            let d = ["i", "o", "d"][dir];
            let line = format!(
                "{} {dur} 198.51.100.3 {size} {name} b _ {d} r {user} ftp 0 *{}",
                end.format("%a %b %e %H:%M:%S %Y"),
                status.map_or(String::new(), |c| if c { " c".into() } else { " i".into() }),
            );
            let op = [Operation::Write, Operation::Read, Operation::Delete][dir];
            let want = CallEvent {
                id: id(&line, 1),
                account: "acme".into(),
                time: end - chrono::Duration::seconds(i64::from(dur)),
                interface: Interface::Ftp,
                operation: op,
                method: Some(["STOR", "RETR", "DELE"][dir].into()),
                path: Some(name),
                destination: None,
                status: status.map(|c| match (c, op) {
                    (true, Operation::Delete) => 250,
                    (true, _) => 226,
                    (false, _) => 426,
                }),
                api_key: None,
                user: Some(user),
                client_ip: Some("198.51.100.3".into()),
                user_agent: None,
                integration: None,
                cursor: None,
                result_count: None,
                bytes: Some(size),
                duration_ms: Some(f64::from(dur) * 1000.0),
            };
            prop_assert_eq!(one(Format::Xferlog, &line), want);
        }
    }
}
