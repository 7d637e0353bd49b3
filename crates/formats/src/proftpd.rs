//! ProFTPD `ExtendedLog` in its default, CLF-like format.
//!
//! ```text
//! LogFormat default "%h %l %u %t \"%r\" %s %b"
//! ExtendedLog /var/log/proftpd/access.log ALL default
//! 192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:04 +0000] "STOR report.csv" 226 1024
//! ```
//!
//! `"%r"` may also be written `"%m %J"` (command and arguments). An optional
//! last field, `%{protocol}` (`ftp`, `ftps`, `sftp`, `scp`), makes the
//! interface `sftp` for SFTP and SCP lines.
//!
//! Each line is one command with its reply, so a call is known at once: the
//! FTP rules apply (only file operations are calls; RNFR+RNTO is one move;
//! USER/PASS one login), with sessions told apart by client address. SFTP
//! lines name SFTP requests: OPENDIR → list, REMOVE and RMDIR → delete, RENAME
//! → move, MKDIR → mkdir, STAT, LSTAT, REALPATH and READLINK → stat, SETSTAT →
//! write; transfers are logged as RETR and STOR; OPEN, READ, WRITE, CLOSE and
//! READDIR are parts of those and not calls, other requests housekeeping.
//!
//! Lines that are not calls are counted by kind ([`crate::NonCall`]): FTP
//! housekeeping (`PASV`, `CWD`, `SYST`…), and the USER before a PASS or the
//! RNTO after an RNFR as parts of their call.

use crate::clf::{parse_clf_head, Vhost};
use crate::context::Context;
use crate::error::Result;
use crate::ftp::{resolve, split_command, verb, FtpCall, FtpSession, Verb};
use crate::text::{is_blank, owned, trim_eol, ClfTimes};
use crate::{Format, LineIs, LineParser, NonCall, SourceLine};
use callmeter_model::{CallEvent, Interface, Operation};
use std::collections::HashMap;

/// At most this many client sessions are remembered.
const MAX_SESSIONS: usize = 10_000;

/// The reader of ProFTPD ExtendedLog.
#[derive(Debug)]
pub struct ProftpdParser {
    ctx: Context,
    times: ClfTimes,
    sessions: HashMap<String, FtpSession>,
}

fn sftp_operation(v: &[u8]) -> Option<Operation> {
    let up = v.to_ascii_uppercase();
    Some(match up.as_slice() {
        b"OPENDIR" => Operation::List,
        b"REMOVE" | b"RMDIR" => Operation::Delete,
        b"RENAME" => Operation::Move,
        b"MKDIR" => Operation::Mkdir,
        b"STAT" | b"LSTAT" | b"REALPATH" | b"READLINK" => Operation::Stat,
        b"SETSTAT" => Operation::Write,
        _ => return None,
    })
}

impl ProftpdParser {
    /// A reader.
    pub fn new(ctx: Context) -> ProftpdParser {
        ProftpdParser { ctx, times: ClfTimes::default(), sessions: HashMap::new() }
    }

    fn event(&self, c: FtpCall, interface: Interface, client: &[u8], bytes: Option<u64>) -> CallEvent {
        let mut e = self.ctx.event(c.line, c.time, interface, c.operation, c.account);
        e.method = Some(c.method);
        e.path = c.path;
        e.destination = c.destination;
        e.status = c.status;
        e.user = c.user;
        e.client_ip = Some(owned(client));
        if matches!(c.operation, Operation::Read | Operation::Write) {
            e.bytes = bytes;
        }
        self.ctx.overrides(&mut e);
        e
    }
}

/// Whether a word is an SFTP request as ProFTPD's mod_sftp logs it (any case).
pub(crate) fn is_sftp_request(v: &[u8]) -> bool {
    const REQUESTS: &[&[u8]] = &[
        b"INIT",
        b"OPEN",
        b"CLOSE",
        b"READ",
        b"WRITE",
        b"LSTAT",
        b"FSTAT",
        b"SETSTAT",
        b"FSETSTAT",
        b"OPENDIR",
        b"READDIR",
        b"REMOVE",
        b"MKDIR",
        b"RMDIR",
        b"REALPATH",
        b"STAT",
        b"RENAME",
        b"READLINK",
        b"SYMLINK",
        b"LINK",
        b"EXTENDED",
    ];
    REQUESTS.iter().any(|r| r.eq_ignore_ascii_case(v))
}

/// SFTP requests that are parts of a transfer or listing ProFTPD logs on a line of its own.
fn sftp_part(v: &[u8]) -> bool {
    [&b"OPEN"[..], b"READ", b"WRITE", b"CLOSE", b"READDIR"].iter().any(|p| p.eq_ignore_ascii_case(v))
}

impl LineParser for ProftpdParser {
    fn format(&self) -> Format {
        Format::Proftpd
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let line_no = at.number;
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(NonCall::Blank.into());
        }
        let head = parse_clf_head(line_no, line, &mut self.times, Vhost::No)?;
        let protocol = head.rest.trim_ascii();
        let protocol = protocol.strip_prefix(b"\"").and_then(|p| p.strip_suffix(b"\"")).unwrap_or(protocol);
        let interface = if protocol.eq_ignore_ascii_case(b"sftp") || protocol.eq_ignore_ascii_case(b"scp") {
            Interface::Sftp
        } else {
            Interface::Ftp
        };
        let (v, arg) = split_command(&head.request);
        let client = head.client();
        let key = String::from_utf8_lossy(client).into_owned();
        if self.sessions.len() >= MAX_SESSIONS {
            self.sessions.retain(|_, s| !s.is_idle());
        }
        let ctx = &self.ctx;
        let session = self.sessions.entry(key.clone()).or_default();
        if !head.user.is_empty() && head.user != b"-" {
            session.user = Some(owned(head.user));
        }
        let mut calls = Vec::new();
        let is_sftp = interface == Interface::Sftp && verb(v, arg) == Verb::None;
        let result = match is_sftp.then(|| sftp_operation(v)).flatten() {
            Some(op) => {
                session.flush(&mut calls);
                ctx.account(line_no, None, session.user.as_deref()).map(|account| {
                    let arg = String::from_utf8_lossy(arg);
                    let (path, destination) = match (op, arg.split_once(' ')) {
                        (Operation::Move, Some((from, to))) => {
                            (resolve(&session.cwd, from), Some(resolve(&session.cwd, to)))
                        }
                        _ => (resolve(&session.cwd, &arg), None),
                    };
                    calls.push(FtpCall {
                        line: at,
                        reply_to: line_no,
                        time: head.time,
                        operation: op,
                        method: owned(v).to_ascii_uppercase(),
                        path: Some(path),
                        destination,
                        status: head.status,
                        user: session.user.clone(),
                        account,
                    });
                    LineIs::Call
                })
            }
            None if is_sftp && sftp_part(v) => Ok(NonCall::PartOfCall.into()),
            None => {
                let account = |user: Option<&str>| ctx.account(line_no, None, user);
                let r = session.command(at, head.time, v, arg, head.status, &account, &mut calls);
                if verb(v, arg) == Verb::Quit {
                    self.sessions.remove(&key);
                }
                r
            }
        };
        for c in calls {
            out.push(self.event(c, interface, client, head.bytes));
        }
        result
    }

    fn finish(&mut self, out: &mut Vec<CallEvent>) {
        let mut sessions: Vec<_> = self.sessions.drain().collect();
        sessions.sort_by(|a, b| a.0.cmp(&b.0));
        for (client, mut s) in sessions {
            let mut calls = Vec::new();
            s.flush(&mut calls);
            out.extend(calls.into_iter().map(|c| self.event(c, Interface::Ftp, client.as_bytes(), None)));
        }
    }

    fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{id, non_calls, ops, run, run_errors, utc};
    use chrono::DateTime;
    use proptest::prelude::*;

    #[test]
    fn an_ftp_session() {
        let log = r#"192.168.1.10 UNKNOWN - [15/Jan/2024:10:00:01 +0000] "USER alice" 331 -
192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:02 +0000] "PASS (hidden)" 230 -
192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:03 +0000] "PASV" 227 -
192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:03 +0000] "CWD upload dir" 250 -
192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:04 +0000] "MLSD" 226 1200
192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:05 +0000] "STOR report \"q1\".csv" 226 1024
192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:06 +0000] "SIZE /upload dir/report \"q1\".csv" 213 -
192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:07 +0000] "RNFR report \"q1\".csv" 350 -
192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:07 +0000] "RNTO done.csv" 250 -
192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:08 +0000] "DELE old.csv" 550 -
192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:09 +0000] "QUIT" 221 -
"#;
        let events = run(Format::Proftpd, log);
        assert_eq!(
            ops(&events),
            vec![
                (Operation::Login, None),
                (Operation::List, Some("/upload dir")),
                (Operation::Write, Some("/upload dir/report \"q1\".csv")),
                (Operation::Stat, Some("/upload dir/report \"q1\".csv")),
                (Operation::Move, Some("/upload dir/report \"q1\".csv")),
                (Operation::Delete, Some("/upload dir/old.csv")),
            ]
        );
        assert_eq!((events[0].id.as_str(), events[0].status), (id(log, 2).as_str(), Some(230)));
        assert_eq!((events[2].bytes, events[2].time), (Some(1024), utc("2024-01-15T10:00:05Z")));
        assert_eq!(events[4].destination.as_deref(), Some("/upload dir/done.csv"));
        assert_eq!(events[5].status, Some(550));
        assert!(events.iter().all(|e| e.user.as_deref() == Some("alice") && e.interface == Interface::Ftp));
    }

    #[test]
    fn a_login_and_housekeeping_are_one_call() {
        // A session that starts as ProFTPD's default ExtendedLog writes it (hand-written, as its documentation shows).
        let log = r#"138.88.144.129 UNKNOWN nobody [10/Jan/2006:10:48:12 -0500] "USER steve" 331 -
138.88.144.129 UNKNOWN userftp [10/Jan/2006:15:48:12 +0000] "PASS (hidden)" 230 -
138.88.144.129 UNKNOWN userftp [10/Jan/2006:15:48:12 +0000] "SYST" 215 -
138.88.144.129 UNKNOWN userftp [10/Jan/2006:15:48:12 +0000] "TYPE I" 200 -
138.88.144.129 UNKNOWN userftp [10/Jan/2006:15:48:12 +0000] "PWD" 257 -
138.88.144.129 UNKNOWN userftp [10/Jan/2006:15:48:12 +0000] "PASV" 227 -
138.88.144.129 UNKNOWN userftp [10/Jan/2006:15:50:13 +0000] "PASV" 227 -
"#;
        let events = run(Format::Proftpd, log);
        assert_eq!(ops(&events), vec![(Operation::Login, None)]);
        assert_eq!(events[0].user.as_deref(), Some("userftp"));
        use NonCall::*;
        let hk = Some(Housekeeping);
        assert_eq!(non_calls(Format::Proftpd, log), [Some(PartOfCall), None, hk, hk, hk, hk, hk]);
        assert_eq!(crate::detect(&log.lines().map(str::as_bytes).collect::<Vec<_>>()), Some(Format::Proftpd));
    }

    #[test]
    fn sftp_lines_by_protocol() {
        let log = r#"2001:db8::3 - bob [15/Jan/2024:10:00:01 +0100] "OPENDIR /home/bob" 0 - sftp
2001:db8::3 - bob [15/Jan/2024:10:00:02 +0100] "OPEN /home/bob/a.txt" 0 - sftp
2001:db8::3 - bob [15/Jan/2024:10:00:02 +0100] "RETR /home/bob/a.txt" 226 77 sftp
2001:db8::3 - bob [15/Jan/2024:10:00:03 +0100] "RENAME /home/bob/a.txt /home/bob/b.txt" 0 - "sftp"
"#;
        let events = run(Format::Proftpd, log);
        assert_eq!(
            ops(&events),
            vec![
                (Operation::List, Some("/home/bob")),
                (Operation::Read, Some("/home/bob/a.txt")),
                (Operation::Move, Some("/home/bob/a.txt"))
            ]
        );
        assert!(events.iter().all(|e| e.interface == Interface::Sftp));
        assert_eq!(events[1].bytes, Some(77));
        assert_eq!(events[2].destination.as_deref(), Some("/home/bob/b.txt"));
    }

    #[test]
    fn bad_lines() {
        let (_, errors) = run_errors(Format::Proftpd, "10.0.0.1 - - [15/Jan/2024:10:00:01 +0000] \"LIST\" abc -\n");
        assert_eq!(errors[0].to_string(), "line 1: status: not a status code: \"abc\"");
    }

    proptest! {
        #[test]
        fn generated_lines_parse_back(
            secs in 0i64..4_000_000_000, name in "[a-zA-Z0-9 ._()-]{0,20}[a-z]", kind in 0usize..5,
            status in 200i64..600, bytes in 0..=callmeter_model::MAX_COUNT, user in "[a-z][a-z0-9_]{0,8}",
        ) {
            let time = DateTime::from_timestamp(secs, 0).unwrap();
            let (v, op) = [("RETR", Operation::Read), ("STOR", Operation::Write), ("DELE", Operation::Delete), ("MKD", Operation::Mkdir), ("MDTM", Operation::Stat)][kind];
            let line = format!("198.51.100.2 UNKNOWN {user} [{}] \"{v} /d/{name}\" {status} {bytes}", time.format("%d/%b/%Y:%H:%M:%S %z"));
            let events = run(Format::Proftpd, &line);
            prop_assert_eq!(events.len(), 1);
            let e = &events[0];
            prop_assert_eq!((e.time, e.operation, e.status), (time, op, Some(status)));
            let want = format!("/d/{name}");
            prop_assert_eq!(e.path.as_deref(), Some(want.as_str()));
            prop_assert_eq!(e.bytes, matches!(op, Operation::Read | Operation::Write).then_some(bytes));
        }
    }
}
