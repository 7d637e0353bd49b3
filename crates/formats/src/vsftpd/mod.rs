//! vsftpd's own log (`vsftpd.log`, `xferlog_std_format=NO`).
//!
//! ```text
//! Mon Jan 15 10:00:01 2024 [pid 2] FTP command: Client "192.168.1.10", "USER alice"
//! Mon Jan 15 10:00:01 2024 [pid 2] [alice] FTP response: Client "192.168.1.10", "331 Please specify the password."
//! Mon Jan 15 10:00:02 2024 [pid 2] [alice] FTP command: Client "192.168.1.10", "PASS <password>"
//! Mon Jan 15 10:00:02 2024 [pid 1] [alice] OK LOGIN: Client "192.168.1.10"
//! Mon Jan 15 10:00:02 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "230 Login successful."
//! Mon Jan 15 10:00:05 2024 [pid 3] [alice] OK UPLOAD: Client "192.168.1.10", "/in/report.csv", 1024 bytes, 512.00Kbyte/sec
//! ```
//!
//! Times are zoneless, read in `--timezone` (vsftpd writes UTC unless
//! `use_localtime=YES`). The `[pid N]` prefix is optional. With
//! `syslog_enable=YES` the lines come through syslog or the journal instead,
//! without vsftpd's own date (`Jan 15 10:00:01 files1 vsftpd[2]: [alice] OK
//! LOGIN: Client "192.168.1.10"`, or an RFC 3339 time): their time is the
//! prefix's (see the syslog rule of DESIGN §5), and lines of other programs
//! in the same file are non-calls of kind `other_program` (a file that mixes
//! vsftpd's lines with OpenSSH's is read by [`crate::syslog_programs`]).
//! vsftpd's PAM messages (`vsftpd: (pam_unix) …`, `vsftpd(pam_unix)[3]: …`)
//! are `housekeeping`.
//!
//! With `log_ftp_protocol=YES` the calls are the `FTP command` lines whose
//! verb is a file operation (see the FTP rules in DESIGN §5): each waits for
//! its reply (`FTP response`) for its status, and the `OK`/`FAIL`
//! `UPLOAD`/`DOWNLOAD` lines only add bytes. Sessions are told apart by
//! client address and pid; the login is matched by client address alone,
//! since vsftpd answers a PASS from a new process. A client is taken to log
//! its protocol once one of its `FTP command` lines has been seen.
//!
//! Without protocol lines, the calls are the `OK`/`FAIL` lines: UPLOAD →
//! write, DOWNLOAD → read, MKDIR → mkdir, DELETE and RMDIR → delete, RENAME →
//! move, LOGIN → login; their status is the usual reply (226, 250, 257, 230;
//! 426 for a failed transfer, 530 for a failed login, 550 otherwise).
//!
//! The lines that are not calls are counted by kind ([`crate::NonCall`]):
//! FTP housekeeping, `CONNECT`, notices without a client and results of other
//! commands (`OK CHMOD`) are `housekeeping`; a USER before its PASS, an RNTO
//! after its RNFR are `part_of_call`; `FTP response` lines, and `OK`/`FAIL`
//! lines when the protocol is logged, are `reply`.

mod line;

pub(crate) use line::is_vsftpd_program;

use crate::context::Context;
use crate::error::{Error, Result};
use crate::ftp::{split_command, FtpCall, FtpSession};
use crate::text::{is_blank, owned, parse_u64, trim_eol};
use crate::{Format, LineIs, LineParser, NonCall, SourceLine};
use callmeter_model::{CallEvent, Interface, Operation};

use line::{bytes_of, split, Line};
use memchr::memmem;
use std::collections::HashMap;

/// At most this many clients are remembered; those with nothing pending are forgotten first.
const MAX_CLIENTS: usize = 10_000;

#[derive(Debug, Default)]
struct Session {
    ftp: FtpSession,
    /// A call waiting for its final reply.
    pending: Option<CallEvent>,
    /// The last command was PWD: its 257 reply names the working folder.
    after_pwd: bool,
}

#[derive(Debug, Default)]
struct Client {
    /// An `FTP command` line of this client has been seen.
    protocol: bool,
    /// A PASS waiting for its reply.
    login: Option<CallEvent>,
    sessions: HashMap<Option<u64>, Session>,
}

impl Client {
    fn is_idle(&self) -> bool {
        self.login.is_none() && self.sessions.values().all(|s| s.pending.is_none() && s.ftp.is_idle())
    }
}

/// The reader of vsftpd.log.
#[derive(Debug)]
pub struct VsftpdParser {
    ctx: Context,
    clients: HashMap<String, Client>,
}

impl VsftpdParser {
    /// A reader.
    pub fn new(ctx: Context) -> VsftpdParser {
        VsftpdParser { ctx, clients: HashMap::new() }
    }

    fn event(&self, c: FtpCall, client: &[u8]) -> CallEvent {
        let mut e = self.ctx.event(c.line, c.time, Interface::Ftp, c.operation, c.account);
        e.method = Some(c.method);
        e.path = c.path;
        e.destination = c.destination;
        e.status = c.status;
        e.user = c.user;
        e.client_ip = Some(owned(client));
        self.ctx.overrides(&mut e);
        e
    }

    fn forget_idle(&mut self) {
        if self.clients.len() >= MAX_CLIENTS {
            self.clients.retain(|_, c| !c.is_idle());
        }
    }

    fn command(&mut self, at: SourceLine, l: &Line<'_>, out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let Some(cmd) = l.arg else {
            return Err(Error::line(at.number, "command", "missing"));
        };
        let (verb, arg) = split_command(cmd);
        let key = String::from_utf8_lossy(l.client).into_owned();
        self.forget_idle();
        let ctx = &self.ctx;
        let client = self.clients.entry(key.clone()).or_default();
        client.protocol = true;
        let session = client.sessions.entry(l.pid).or_default();
        // A new command: the one before it has had all the replies it will get.
        out.extend(session.pending.take());
        if let Some(u) = l.user {
            session.ftp.user = Some(owned(u));
        }
        session.after_pwd = verb.eq_ignore_ascii_case(b"PWD") || verb.eq_ignore_ascii_case(b"XPWD");
        let mut calls = Vec::new();
        let account = |user: Option<&str>| ctx.account(at.number, None, user);
        let is = session.ftp.command(at, l.time, verb, arg, None, &account, &mut calls);
        let quit = verb.eq_ignore_ascii_case(b"QUIT");
        if quit {
            session.ftp.flush(&mut calls);
        }
        for c in calls {
            // A call this command made waits for the command's reply; an RNFR flushed by it had its own.
            let (is_login, is_this_line) = (c.operation == Operation::Login, c.reply_to == at.number);
            let e = self.event(c, l.client);
            let client = self.clients.entry(key.clone()).or_default();
            if is_login {
                out.extend(client.login.replace(e));
            } else if is_this_line && !quit {
                client.sessions.entry(l.pid).or_default().pending = Some(e);
            } else {
                out.push(e);
            }
        }
        if quit {
            if let Some(c) = self.clients.get_mut(&key) {
                c.sessions.remove(&l.pid);
            }
        }
        is
    }

    fn response(&mut self, l: &Line<'_>, out: &mut Vec<CallEvent>) {
        let Some(text) = l.arg else { return };
        let Some(code) = text.get(..3).and_then(parse_u64).map(|c| c as i64) else { return };
        let Some(client) = self.clients.get_mut(&*String::from_utf8_lossy(l.client)) else { return };
        if let Some(session) = client.sessions.get_mut(&l.pid) {
            if let Some(e) = &mut session.pending {
                if code >= 200 {
                    e.status = Some(code);
                    out.extend(session.pending.take());
                }
                return;
            }
            session.ftp.reply(code);
            if session.after_pwd && code == 257 {
                session.ftp.pwd_reply(text);
            }
        }
        if (code >= 200 && code != 331 && code != 332) || code >= 400 {
            if let Some(mut e) = client.login.take() {
                e.status = Some(code);
                out.push(e);
            }
        }
    }

    /// An `OK`/`FAIL` line of a client that logs its protocol: adds to the call it reports on.
    fn result_in_protocol(&mut self, l: &Line<'_>, ok: bool, what: &[u8], out: &mut Vec<CallEvent>) {
        let Some(client) = self.clients.get_mut(&*String::from_utf8_lossy(l.client)) else { return };
        let op = match what {
            b"LOGIN" => {
                if let Some(mut e) = client.login.take() {
                    e.status = Some(if ok { 230 } else { 530 });
                    out.push(e);
                }
                return;
            }
            b"UPLOAD" => Operation::Write,
            b"DOWNLOAD" => Operation::Read,
            _ => return,
        };
        let path = l.arg.unwrap_or(b"");
        // The transfer's own process first, then any of the client's whose file this is.
        let mut keys: Vec<Option<u64>> = client.sessions.keys().copied().collect();
        keys.sort_by_key(|k| (*k != l.pid, *k));
        let found = keys.into_iter().find(|k| {
            client.sessions[k].pending.as_ref().is_some_and(|e| {
                e.operation == op
                    && e.bytes.is_none()
                    && (Some(*k) == Some(l.pid) || e.path.as_deref().is_some_and(|p| path.ends_with(p.as_bytes())))
            })
        });
        if let Some(e) = found.and_then(|k| client.sessions.get_mut(&k)).and_then(|s| s.pending.as_mut()) {
            e.bytes = bytes_of(l.tail).or(Some(0));
            if e.status.is_none() {
                e.status = Some(if ok { 226 } else { 426 });
            }
        }
    }

    /// An `OK`/`FAIL` line of a client that does not log its protocol: a call of its own.
    fn result_alone(&mut self, at: SourceLine, l: &Line<'_>, ok: bool, what: &[u8]) -> Result<Option<CallEvent>> {
        let (op, method, ok_status, fail_status) = match what {
            b"LOGIN" => (Operation::Login, "PASS", 230, 530),
            b"UPLOAD" => (Operation::Write, "STOR", 226, 426),
            b"DOWNLOAD" => (Operation::Read, "RETR", 226, 426),
            b"MKDIR" => (Operation::Mkdir, "MKD", 257, 550),
            b"DELETE" => (Operation::Delete, "DELE", 250, 550),
            b"RMDIR" => (Operation::Delete, "RMD", 250, 550),
            // Named as the protocol's moves are: by the RNFR that names the file moved.
            b"RENAME" => (Operation::Move, "RNFR", 250, 550),
            _ => return Ok(None),
        };
        let (path, destination) = match (op, l.arg) {
            (Operation::Login, _) | (_, None) => (None, None),
            // `"/from /to"`: the new name starts at the last ` /`.
            (Operation::Move, Some(a)) => match memmem::rfind(a, b" /") {
                Some(i) => (Some(owned(&a[..i])), Some(owned(&a[i + 1..]))),
                None => (Some(owned(a)), None),
            },
            (_, Some(a)) => (Some(owned(a)), None),
        };
        let user = l.user.map(owned);
        let account = self.ctx.account(at.number, None, user.as_deref())?;
        let c = FtpCall {
            line: at,
            reply_to: at.number,
            time: l.time,
            operation: op,
            method: method.into(),
            path,
            destination,
            status: Some(if ok { ok_status } else { fail_status }),
            user,
            account,
        };
        let mut e = self.event(c, l.client);
        if matches!(op, Operation::Write | Operation::Read) {
            e.bytes = bytes_of(l.tail).or(Some(0));
        }
        Ok(Some(e))
    }
}

impl LineParser for VsftpdParser {
    fn format(&self) -> Format {
        Format::Vsftpd
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(NonCall::Blank.into());
        }
        let l = match split(&self.ctx, at.number, line)? {
            Ok(l) => l,
            Err(kind) => return Ok(kind.into()),
        };
        match l.kind {
            b"FTP command" => self.command(at, &l, out),
            b"FTP response" => {
                self.response(&l, out);
                Ok(NonCall::Reply.into())
            }
            b"CONNECT" => Ok(NonCall::Housekeeping.into()),
            kind => {
                let (ok, what) = match (kind.strip_prefix(b"OK "), kind.strip_prefix(b"FAIL ")) {
                    (Some(w), _) => (true, w),
                    (None, Some(w)) => (false, w),
                    _ => return Ok(NonCall::Housekeeping.into()),
                };
                let protocol = self.clients.get(&*String::from_utf8_lossy(l.client)).is_some_and(|c| c.protocol);
                if protocol {
                    self.result_in_protocol(&l, ok, what, out);
                    return Ok(NonCall::Reply.into());
                }
                Ok(match self.result_alone(at, &l, ok, what)? {
                    Some(e) => {
                        out.push(e);
                        LineIs::Call
                    }
                    None => NonCall::Housekeeping.into(),
                })
            }
        }
    }

    fn finish(&mut self, out: &mut Vec<CallEvent>) {
        let mut left = Vec::new();
        let clients = std::mem::take(&mut self.clients);
        for (ip, client) in clients {
            left.extend(client.login);
            for (_, mut s) in client.sessions {
                left.extend(s.pending.take());
                let mut calls = Vec::new();
                s.ftp.flush(&mut calls);
                left.extend(calls.into_iter().map(|c| self.event(c, ip.as_bytes())));
            }
        }
        // In time order (the clients were in a map): the same order on every read.
        left.sort_by(|a, b| (a.time, &a.id).cmp(&(b.time, &b.id)));
        out.extend(left);
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

    const SESSION: &str = r#"Mon Jan 15 10:00:00 2024 [pid 2] CONNECT: Client "192.168.1.10"
Mon Jan 15 10:00:00 2024 [pid 2] FTP response: Client "192.168.1.10", "220 (vsFTPd 3.0.5)"
Mon Jan 15 10:00:01 2024 [pid 2] FTP command: Client "192.168.1.10", "USER alice"
Mon Jan 15 10:00:01 2024 [pid 2] [alice] FTP response: Client "192.168.1.10", "331 Please specify the password."
Mon Jan 15 10:00:02 2024 [pid 2] [alice] FTP command: Client "192.168.1.10", "PASS <password>"
Mon Jan 15 10:00:02 2024 [pid 1] [alice] OK LOGIN: Client "192.168.1.10"
Mon Jan 15 10:00:02 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "230 Login successful."
Mon Jan 15 10:00:03 2024 [pid 3] [alice] FTP command: Client "192.168.1.10", "PASV"
Mon Jan 15 10:00:03 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "227 Entering Passive Mode (192,168,1,5,195,80)."
Mon Jan 15 10:00:04 2024 [pid 3] [alice] FTP command: Client "192.168.1.10", "CWD in box"
Mon Jan 15 10:00:04 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "250 Directory successfully changed."
Mon Jan 15 10:00:05 2024 [pid 3] [alice] FTP command: Client "192.168.1.10", "LIST -la"
Mon Jan 15 10:00:05 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "150 Here comes the directory listing."
Mon Jan 15 10:00:05 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "226 Directory send OK."
Mon Jan 15 10:00:06 2024 [pid 3] [alice] FTP command: Client "192.168.1.10", "STOR my report.csv"
Mon Jan 15 10:00:06 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "150 Ok to send data."
Mon Jan 15 10:00:07 2024 [pid 3] [alice] OK UPLOAD: Client "192.168.1.10", "/in box/my report.csv", 1024 bytes, 512.00Kbyte/sec
Mon Jan 15 10:00:07 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "226 Transfer complete."
Mon Jan 15 10:00:08 2024 [pid 3] [alice] FTP command: Client "192.168.1.10", "RNFR my report.csv"
Mon Jan 15 10:00:08 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "350 Ready for RNTO."
Mon Jan 15 10:00:08 2024 [pid 3] [alice] FTP command: Client "192.168.1.10", "RNTO /archive/done.csv"
Mon Jan 15 10:00:08 2024 [pid 3] [alice] OK RENAME: Client "192.168.1.10", "/in box/my report.csv /archive/done.csv"
Mon Jan 15 10:00:08 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "250 Rename successful."
Mon Jan 15 10:00:09 2024 [pid 3] [alice] FTP command: Client "192.168.1.10", "QUIT"
Mon Jan 15 10:00:09 2024 [pid 3] [alice] FTP response: Client "192.168.1.10", "221 Goodbye."
"#;

    #[test]
    fn a_session_with_protocol_lines_is_login_list_write_move() {
        let events = run(Format::Vsftpd, SESSION);
        assert_eq!(
            ops(&events),
            vec![
                (Operation::Login, None),
                (Operation::List, Some("/in box")),
                (Operation::Write, Some("/in box/my report.csv")),
                (Operation::Move, Some("/in box/my report.csv")),
            ]
        );
        let status: Vec<_> = events.iter().map(|e| e.status).collect();
        assert_eq!(status, vec![Some(230), Some(226), Some(226), Some(250)]);
        // Each call's id is its first line's: PASS, LIST, STOR (not OK UPLOAD), RNFR (not RNTO).
        let lines: Vec<_> = events.iter().map(|e| e.id.clone()).collect();
        assert_eq!(lines, [5, 12, 15, 19].map(|n| id(SESSION, n)));
        assert_eq!((events[2].bytes, events[2].method.as_deref()), (Some(1024), Some("STOR")));
        assert_eq!(events[3].destination.as_deref(), Some("/archive/done.csv"));
        assert!(events.iter().all(|e| e.user.as_deref() == Some("alice") && e.interface == Interface::Ftp));
        assert!(events.iter().all(|e| e.client_ip.as_deref() == Some("192.168.1.10")));
        assert_eq!(events[0].time, utc("2024-01-15T10:00:02Z"));
    }

    #[test]
    fn every_line_of_a_session_is_counted_by_kind() {
        use NonCall::*;
        let (hk, reply, part) = (Some(Housekeeping), Some(Reply), Some(PartOfCall));
        let want = [
            hk, reply, part, reply, None, reply, reply, hk, reply, hk, reply, None, reply, reply, None, reply, reply,
            reply, None, reply, part, reply, reply, hk, reply,
        ];
        assert_eq!(non_calls(Format::Vsftpd, SESSION), want);
    }

    #[test]
    fn the_same_session_without_pids() {
        let text: String = SESSION
            .lines()
            .map(|l| l.replacen(" [pid 1]", "", 1).replacen(" [pid 2]", "", 1).replacen(" [pid 3]", "", 1) + "\n")
            .collect();
        assert!(!text.contains("[pid"));
        let events = run(Format::Vsftpd, &text);
        let got: Vec<_> = events.iter().map(|e| (e.operation, e.status, e.bytes)).collect();
        assert_eq!(
            got,
            vec![
                (Operation::Login, Some(230), None),
                (Operation::List, Some(226), None),
                (Operation::Write, Some(226), Some(1024)),
                (Operation::Move, Some(250), None),
            ]
        );
    }

    #[test]
    fn refused_logins_and_failed_transfers_count() {
        let log = r#"Mon Jan 15 10:00:01 2024 [pid 7] FTP command: Client "::ffff:10.0.0.9", "USER mallory"
Mon Jan 15 10:00:02 2024 [pid 7] [mallory] FTP command: Client "::ffff:10.0.0.9", "PASS <password>"
Mon Jan 15 10:00:04 2024 [pid 6] [mallory] FAIL LOGIN: Client "::ffff:10.0.0.9"
Mon Jan 15 10:00:04 2024 [pid 7] [mallory] FTP response: Client "::ffff:10.0.0.9", "530 Login incorrect."
Mon Jan 15 10:00:05 2024 [pid 8] [bob] FTP command: Client "10.0.0.8", "RETR missing.txt"
Mon Jan 15 10:00:05 2024 [pid 8] [bob] FTP response: Client "10.0.0.8", "550 Failed to open file."
Mon Jan 15 10:00:06 2024 [pid 8] [bob] FTP command: Client "10.0.0.8", "SIZE x"
"#;
        let events = run(Format::Vsftpd, log);
        let got: Vec<_> = events.iter().map(|e| (e.operation, e.status, e.user.as_deref())).collect();
        assert_eq!(
            got,
            vec![
                (Operation::Login, Some(530), Some("mallory")),
                (Operation::Read, Some(550), Some("bob")),
                (Operation::Stat, None, Some("bob")),
            ]
        );
    }

    #[test]
    fn without_protocol_lines_the_result_lines_are_the_calls() {
        let log = r#"Mon Jan 15 10:00:02 2024 [pid 1] [alice] OK LOGIN: Client "192.168.1.10"
Mon Jan 15 10:00:07 2024 [pid 3] [alice] OK UPLOAD: Client "192.168.1.10", "/in/a b.csv", 1024 bytes, 512.00Kbyte/sec
Mon Jan 15 10:00:08 2024 [pid 3] [alice] FAIL DOWNLOAD: Client "192.168.1.10", "/in/none.csv", 0.00Kbyte/sec
Mon Jan 15 10:00:09 2024 [pid 3] [alice] OK MKDIR: Client "192.168.1.10", "/in/new"
Mon Jan 15 10:00:10 2024 [pid 3] [alice] OK RENAME: Client "192.168.1.10", "/in/a b.csv /out/c d.csv"
Mon Jan 15 10:00:11 2024 [pid 3] [alice] OK DELETE: Client "192.168.1.10", "/out/c d.csv"
Mon Jan 15 10:00:12 2024 [pid 3] [alice] OK RMDIR: Client "192.168.1.10", "/in/new"
Mon Jan 15 10:00:13 2024 [pid 3] [alice] OK CHMOD: Client "192.168.1.10", "/in"
Mon Jan 15 10:00:14 2024 [alice] FAIL LOGIN: Client "192.168.1.11"
Mon Jan 15 10:00:15 2024 [pid 9] DEBUG: something
"#;
        let events = run(Format::Vsftpd, log);
        let got: Vec<_> = events.iter().map(|e| (e.operation, e.path.as_deref(), e.status)).collect();
        assert_eq!(
            got,
            vec![
                (Operation::Login, None, Some(230)),
                (Operation::Write, Some("/in/a b.csv"), Some(226)),
                (Operation::Read, Some("/in/none.csv"), Some(426)),
                (Operation::Mkdir, Some("/in/new"), Some(257)),
                (Operation::Move, Some("/in/a b.csv"), Some(250)),
                (Operation::Delete, Some("/out/c d.csv"), Some(250)),
                (Operation::Delete, Some("/in/new"), Some(250)),
                (Operation::Login, None, Some(530)),
            ]
        );
        assert_eq!(events[4].destination.as_deref(), Some("/out/c d.csv"));
        assert_eq!(events[4].method.as_deref(), Some("RNFR"));
        assert_eq!((events[1].bytes, events[2].bytes), (Some(1024), Some(0)));
    }

    #[test]
    fn pending_calls_are_given_at_the_end() {
        let log = r#"Mon Jan 15 10:00:06 2024 [pid 3] [alice] FTP command: Client "1.2.3.4", "STOR a.csv"
Mon Jan 15 10:00:07 2024 [pid 3] [alice] FTP command: Client "1.2.3.4", "RNFR b.csv"
"#;
        let events = run(Format::Vsftpd, log);
        assert_eq!(ops(&events), vec![(Operation::Write, Some("/a.csv")), (Operation::Move, Some("/b.csv"))]);
    }

    #[test]
    fn bad_lines() {
        let (_, errors) = run_errors(
            Format::Vsftpd,
            "garbage\nMon Jan 15 10:00:06 2024 [pid x] FTP command: Client \"1\", \"LIST\"\nMon Jan 15 10:00:06 2024 [pid 1] FTP command: Client \"1\"\nMon Jan 15 10:00:06 2024 [pid 1] FTP command: Client \"1\", \"LIST\n",
        );
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert!(got[0].starts_with("line 1: time: not a ctime date"));
        assert_eq!(
            &got[1..],
            ["line 2: pid: not a number: \"x\"", "line 3: command: missing", "line 4: argument: no closing quote"]
        );
    }

    /// One generated FTP command with its protocol lines, and the call it must give.
    fn render(step: usize, name: &str, pid: Option<u32>, t: &str, out: &mut String) -> Option<(Operation, String)> {
        let p = pid.map_or(String::new(), |p| format!(" [pid {p}]"));
        let mut line = |kind: &str, text: &str| {
            // A text ending in NUL is written without its closing quote (the OK UPLOAD line's own layout).
            let l = format!("{t}{p} [bob] {kind}: Client \"2001:db8::5\", \"{text}\"\n");
            out.push_str(&l.replace("\u{0}\"", ""));
        };
        match step {
            0 => {
                line("FTP command", "LIST -a");
                line("FTP response", "150 Here comes the directory listing.");
                line("FTP response", "226 Directory send OK.");
                Some((Operation::List, "/".into()))
            }
            1 => {
                line("FTP command", &format!("STOR {name}"));
                line("FTP response", "150 Ok to send data.");
                line("OK UPLOAD", &format!("/{name}\", 10 bytes, 1.00Kbyte/sec\u{0}"));
                line("FTP response", "226 Transfer complete.");
                Some((Operation::Write, format!("/{name}")))
            }
            2 => {
                line("FTP command", &format!("RETR {name}"));
                line("FTP response", "550 Failed to open file.");
                Some((Operation::Read, format!("/{name}")))
            }
            3 => {
                line("FTP command", &format!("RNFR {name}"));
                line("FTP response", "350 Ready for RNTO.");
                line("FTP command", "RNTO /x");
                line("FTP response", "250 Rename successful.");
                Some((Operation::Move, format!("/{name}")))
            }
            4 => {
                line("FTP command", &format!("MKD {name}"));
                line("FTP response", &format!("257 \"/{name}\" created"));
                Some((Operation::Mkdir, format!("/{name}")))
            }
            5 => {
                line("FTP command", &format!("DELE {name}"));
                line("FTP response", "250 Delete operation successful.");
                Some((Operation::Delete, format!("/{name}")))
            }
            _ => {
                for (cmd, reply) in [
                    ("PASV", "227 Entering Passive Mode"),
                    ("TYPE I", "200 Switching to Binary mode."),
                    ("NOOP", "200 NOOP ok."),
                ] {
                    line("FTP command", cmd);
                    line("FTP response", reply);
                }
                None
            }
        }
    }

    proptest! {
        #[test]
        fn generated_result_lines_parse_back(
            secs in 0i64..4_000_000_000, pid in proptest::option::of(1u32..100_000), kind in 0usize..6,
            name in "/[a-zA-Z0-9 ._()\"-]{0,20}[a-z]", bytes in 0..=callmeter_model::MAX_COUNT, user in "[a-z][a-z0-9_]{0,8}",
        ) {
            let time = DateTime::from_timestamp(secs, 0).unwrap();
            let (what, op) = [("UPLOAD", Operation::Write), ("DOWNLOAD", Operation::Read), ("MKDIR", Operation::Mkdir),
                ("DELETE", Operation::Delete), ("RMDIR", Operation::Delete), ("LOGIN", Operation::Login)][kind];
            let arg = match what {
                "LOGIN" => String::new(),
                "UPLOAD" | "DOWNLOAD" => format!(", \"{name}\", {bytes} bytes, 1.00Kbyte/sec"),
                _ => format!(", \"{name}\""),
            };
            let line = format!(
                "{}{} [{user}] OK {what}: Client \"203.0.113.1\"{arg}",
                time.format("%a %b %e %H:%M:%S %Y"),
                pid.map_or(String::new(), |p| format!(" [pid {p}]")),
            );
            let events = run(Format::Vsftpd, &line);
            prop_assert_eq!(events.len(), 1);
            let e = &events[0];
            prop_assert_eq!((e.time, e.operation), (time, op));
            prop_assert_eq!(e.path.as_deref(), (what != "LOGIN").then_some(name.as_str()));
            prop_assert_eq!(e.user.as_deref(), Some(user.as_str()));
            if matches!(what, "UPLOAD" | "DOWNLOAD") {
                prop_assert_eq!(e.bytes, Some(bytes));
            }
        }

        #[test]
        fn generated_sessions_give_one_call_per_file_operation(
            steps in proptest::collection::vec(0usize..7, 0..12), name in "[a-zA-Z0-9 ._()-]{0,12}[a-z]",
            pid in proptest::option::of(1u32..100_000),
        ) {
            let t = "Tue Feb 13 08:00:00 2024";
            let mut log = String::new();
            let mut want = Vec::new();
            for s in &steps {
                want.extend(render(*s, &name, pid, t, &mut log));
            }
            let events = run(Format::Vsftpd, &log);
            let got: Vec<(Operation, String)> =
                events.iter().map(|e| (e.operation, e.path.clone().unwrap_or_default())).collect();
            prop_assert_eq!(got, want);
            prop_assert!(events.iter().all(|e| e.status.is_some() && e.user.as_deref() == Some("bob")));
        }
    }
}
