//! OpenSSH `sftp-server` and `internal-sftp` lines in syslog, logging at
//! VERBOSE (`Subsystem sftp internal-sftp -l VERBOSE`; at INFO the stat calls
//! are missing).
//!
//! ```text
//! Jan 15 10:00:00 files1 internal-sftp[4242]: session opened for local user alice from [203.0.113.9]
//! Jan 15 10:00:01 files1 internal-sftp[4242]: opendir "/in"
//! Jan 15 10:00:02 files1 internal-sftp[4242]: open "/in/a b.csv" flags WRITE,CREATE,TRUNCATE mode 0644
//! Jan 15 10:00:03 files1 internal-sftp[4242]: close "/in/a b.csv" bytes read 0 written 1024
//! ```
//!
//! Calls (DESIGN §5): `opendir` → list; `open … flags READ` → read; `open`
//! with WRITE, CREATE, APPEND or TRUNCATE → write; `stat`, `lstat`,
//! `realpath`, `readlink`, `statvfs` → stat; `remove`, `rmdir` → delete;
//! `rename`, `posix-rename` → move; `mkdir` → mkdir; `set` (setstat,
//! fsetstat) → write; `symlink`, `hardlink` → write (of the new name);
//! `session opened` → login. `close` and `forced close` are not calls: they
//! give their open its bytes (read plus written) and duration, and an open is
//! sent on at its close, at `session closed`, or at the end of input.
//! One setstat request that changes several attributes is logged as several
//! `set` lines of the same path and second: they are one call.
//!
//! Sessions are told apart by pid; the user and client of a session come from
//! its `session opened` line. OpenSSH 9.8 and later log from `sshd-session`
//! (`sshd-session[PID]: opendir "/in" [postauth]`): that program is read
//! too, and the ` [postauth]` suffix taken off. Lines are not calls, each
//! of its kind ([`NonCall`]): `close`, `forced close`, `closedir` and a
//! repeated `set` are parts of their call; `session closed`, sshd's own
//! messages and sftp-server lines that are not requests are housekeeping;
//! lines of other programs are `other_program`. The time is RFC 3164's
//! (`Jan 15 10:00:00`, read in `--timezone`, its year by the syslog rule) or
//! RFC 3339's (rsyslog's high-precision format; without a zone, read in
//! `--timezone`). No status is logged: it is absent.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::syslog;
use crate::text::{is_blank, owned, parse_u64, quote, token, trim_eol};
use crate::{Format, LineIs, LineParser, NonCall, SourceLine};
use callmeter_model::{CallEvent, Interface, Operation};
use chrono::{DateTime, Utc};
use memchr::{memmem, memrchr};
use std::collections::HashMap;

/// At most this many sessions are remembered; those with no open file are forgotten first.
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Default)]
struct Session {
    user: Option<String>,
    client: Option<String>,
    /// Opens waiting for their close.
    opens: Vec<CallEvent>,
    /// The last `set` line: path, time and the attributes it changed.
    last_set: Option<(String, DateTime<Utc>, u8)>,
}

/// A syslog line's time, its program's pid and its message.
type Prefix<'a> = (DateTime<Utc>, Option<u64>, &'a [u8]);

/// The reader of OpenSSH sftp-server syslog lines.
#[derive(Debug)]
pub struct SftpParser {
    ctx: Context,
    sessions: HashMap<Option<u64>, Session>,
}

/// The path between the first and the last quote, and what follows it.
fn quoted(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = s.strip_prefix(b"\"")?;
    let end = memrchr(b'"', s)?;
    Some((&s[..end], s[end + 1..].trim_ascii()))
}

/// `old "A" new "B"`.
fn old_new(s: &[u8]) -> Option<(&[u8], &[u8])> {
    let s = s.strip_prefix(b"old \"")?;
    let mid = memmem::find(s, b"\" new \"")?;
    let new = s[mid + 7..].strip_suffix(b"\"")?;
    Some((&s[..mid], new))
}

/// Whether a syslog tag's program is OpenSSH's: `sshd`, `sshd-session`, or
/// one whose name holds `sftp` (`sftp-server`, `internal-sftp`).
pub(crate) fn is_openssh_program(program: &[u8]) -> bool {
    memmem::find(program, b"sftp").is_some() || matches!(program, b"sshd" | b"sshd-session")
}

impl SftpParser {
    /// A reader.
    pub fn new(ctx: Context) -> SftpParser {
        SftpParser { ctx, sessions: HashMap::new() }
    }

    /// The time, the pid and the message of a line of OpenSSH (`sshd`,
    /// `sshd-session`, `sftp-server`, `internal-sftp`), its ` [postauth]`
    /// suffix taken off; `None` for lines of other programs.
    fn prefix<'a>(&self, line_no: u64, line: &'a [u8]) -> Result<Option<Prefix<'a>>> {
        let l = syslog::parse(&self.ctx, line_no, line)?;
        if !is_openssh_program(l.program) {
            return Ok(None);
        }
        // OpenSSH 9.8 and later log from `sshd-session`, and what its
        // sandboxed child logs through the monitor ends in ` [postauth]`.
        let msg = l.msg.trim_ascii();
        let msg = msg.strip_suffix(b" [postauth]").or_else(|| msg.strip_suffix(b" [preauth]")).unwrap_or(msg);
        Ok(Some((l.time, l.pid, msg)))
    }

    fn new_event(
        &self,
        at: SourceLine,
        time: DateTime<Utc>,
        pid: Option<u64>,
        op: Operation,
        method: &str,
        path: Option<&[u8]>,
    ) -> Result<CallEvent> {
        let s = self.sessions.get(&pid);
        let user = s.and_then(|s| s.user.clone());
        let account = self.ctx.account(at.number, None, user.as_deref())?;
        let mut e = self.ctx.event(at, time, Interface::Sftp, op, account);
        e.method = Some(method.into());
        e.path = path.map(owned);
        e.user = user;
        e.client_ip = s.and_then(|s| s.client.clone());
        self.ctx.overrides(&mut e);
        Ok(e)
    }

    fn session_opened(
        &mut self,
        at: SourceLine,
        time: DateTime<Utc>,
        pid: Option<u64>,
        rest: &[u8],
        out: &mut Vec<CallEvent>,
    ) -> Result<()> {
        // `alice from [203.0.113.9]`
        let (user, client) = match memmem::rfind(rest, b" from [") {
            Some(i) => (&rest[..i], rest[i + 7..].strip_suffix(b"]")),
            None => (rest, None),
        };
        if self.sessions.len() >= MAX_SESSIONS {
            self.sessions.retain(|_, s| !s.opens.is_empty());
        }
        let s = self.sessions.entry(pid).or_default();
        // Opens of an earlier session of this pid, never closed, are given now.
        out.append(&mut s.opens);
        *s = Session { user: Some(owned(user)), client: client.map(owned), ..Session::default() };
        let mut e = self.new_event(at, time, pid, Operation::Login, "session", None)?;
        e.method = None;
        out.push(e);
        Ok(())
    }
}

/// The attribute a `set` line changes, as a bit.
fn set_attribute(after: &[u8]) -> u8 {
    let word = after.split(|c| *c == b' ').next().unwrap_or(b"");
    match word {
        b"size" => 1,
        b"mode" => 2,
        b"modtime" => 4,
        b"owner" => 8,
        _ => 16,
    }
}

impl LineParser for SftpParser {
    fn format(&self) -> Format {
        Format::Sftp
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let line_no = at.number;
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(NonCall::Blank.into());
        }
        let Some((time, pid, msg)) = self.prefix(line_no, line)? else { return Ok(NonCall::OtherProgram.into()) };
        let (word, rest) = token(msg);
        // Any request but another `set` ends a run of `set` lines.
        if word != b"set" {
            if let Some(s) = self.sessions.get_mut(&pid) {
                s.last_set = None;
            }
        }
        let call: (Operation, &str, Option<&[u8]>) = match word {
            b"session" => {
                if let Some(r) = rest.strip_prefix(b"opened for local user ") {
                    self.session_opened(at, time, pid, r, out)?;
                    return Ok(LineIs::Call);
                }
                if rest.starts_with(b"closed ") {
                    if let Some(mut s) = self.sessions.remove(&pid) {
                        out.append(&mut s.opens);
                    }
                }
                return Ok(NonCall::Housekeeping.into());
            }
            b"open" => {
                let (path, after) = quoted(rest).ok_or_else(|| Error::line(line_no, "path", "no quoted path"))?;
                let flags = after.strip_prefix(b"flags ").map(|f| token(f).0).unwrap_or(b"");
                let writes = flags
                    .split(|c| *c == b',')
                    .any(|f| matches!(f, b"WRITE" | b"CREATE" | b"APPEND" | b"TRUNCATE" | b"EXCL"));
                let op = if writes { Operation::Write } else { Operation::Read };
                let e = self.new_event(at, time, pid, op, "open", Some(path))?;
                let s = self.sessions.entry(pid).or_default();
                s.opens.push(e);
                return Ok(LineIs::Call);
            }
            b"close" | b"forced" => {
                let rest = if word == b"forced" {
                    match token(rest) {
                        (b"close", r) => r,
                        _ => return Ok(NonCall::Housekeeping.into()),
                    }
                } else {
                    rest
                };
                let (path, after) = quoted(rest).ok_or_else(|| Error::line(line_no, "path", "no quoted path"))?;
                // `bytes read R written W`
                let mut n = after.split(|c| *c == b' ');
                let (read, written) = match (n.next(), n.next(), n.next(), n.next(), n.next()) {
                    (Some(b"bytes"), Some(b"read"), Some(r), Some(b"written"), Some(w)) => (parse_u64(r), parse_u64(w)),
                    _ => (None, None),
                };
                if let Some(s) = self.sessions.get_mut(&pid) {
                    if let Some(i) = s.opens.iter().position(|e| e.path.as_deref().map(str::as_bytes) == Some(path)) {
                        let mut e = s.opens.remove(i);
                        e.bytes = match (read, written) {
                            (Some(r), Some(w)) => Some(r.saturating_add(w)),
                            _ => None,
                        };
                        e.duration_ms = Some((time - e.time).num_milliseconds().max(0) as f64);
                        out.push(e);
                    }
                }
                // Its open is the call (and, when the open was before this
                // file began, was counted there).
                return Ok(NonCall::PartOfCall.into());
            }
            b"closedir" => return Ok(NonCall::PartOfCall.into()),
            b"opendir" => (Operation::List, "opendir", quoted(rest).map(|q| q.0)),
            b"stat" | b"lstat" => {
                let method = if word == b"stat" { "stat" } else { "lstat" };
                (Operation::Stat, method, rest.strip_prefix(b"name ").and_then(quoted).map(|q| q.0))
            }
            b"realpath" => (Operation::Stat, "realpath", quoted(rest).map(|q| q.0)),
            b"readlink" => (Operation::Stat, "readlink", quoted(rest).map(|q| q.0)),
            b"statvfs" => (Operation::Stat, "statvfs", quoted(rest).map(|q| q.0)),
            b"remove" => (Operation::Delete, "remove", rest.strip_prefix(b"name ").and_then(quoted).map(|q| q.0)),
            b"rmdir" => (Operation::Delete, "rmdir", rest.strip_prefix(b"name ").and_then(quoted).map(|q| q.0)),
            b"mkdir" => (Operation::Mkdir, "mkdir", rest.strip_prefix(b"name ").and_then(quoted).map(|q| q.0)),
            b"rename" | b"posix-rename" | b"symlink" | b"hardlink" => {
                let (old, new) = old_new(rest).ok_or_else(|| {
                    Error::line(line_no, "path", format!("expected old \"…\" new \"…\": {}", quote(rest)))
                })?;
                let method = String::from_utf8_lossy(word).into_owned();
                let e = if matches!(word, b"rename" | b"posix-rename") {
                    let mut e = self.new_event(at, time, pid, Operation::Move, &method, Some(old))?;
                    e.destination = Some(owned(new));
                    e
                } else {
                    self.new_event(at, time, pid, Operation::Write, &method, Some(new))?
                };
                out.push(e);
                return Ok(LineIs::Call);
            }
            b"set" => {
                let (path, after) = quoted(rest).ok_or_else(|| Error::line(line_no, "path", "no quoted path"))?;
                let bit = set_attribute(after);
                let path_s = owned(path);
                if let Some(s) = self.sessions.get_mut(&pid) {
                    if let Some((p, t, mask)) = &mut s.last_set {
                        if *p == path_s && *t == time && *mask & bit == 0 {
                            *mask |= bit;
                            return Ok(NonCall::PartOfCall.into());
                        }
                    }
                }
                let e = self.new_event(at, time, pid, Operation::Write, "setstat", Some(path))?;
                self.sessions.entry(pid).or_default().last_set = Some((path_s, time, bit));
                out.push(e);
                return Ok(LineIs::Call);
            }
            _ => return Ok(NonCall::Housekeeping.into()),
        };
        let (op, method, path) = call;
        let path = path.ok_or_else(|| Error::line(line_no, "path", format!("no quoted path: {}", quote(msg))))?;
        out.push(self.new_event(at, time, pid, op, method, Some(path))?);
        Ok(LineIs::Call)
    }

    fn finish(&mut self, out: &mut Vec<CallEvent>) {
        let mut left: Vec<CallEvent> = self.sessions.drain().flat_map(|(_, s)| s.opens).collect();
        // In time order (the sessions were in a map): the same order on every read.
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
    use crate::testutil::{ctx, id, non_calls, ops, run, run_errors, run_with, utc};
    use proptest::prelude::*;

    const LOG: &str = r#"Jan 15 10:00:00 files1 sshd[4241]: Accepted publickey for alice from 203.0.113.9 port 50022 ssh2
Jan 15 10:00:00 files1 internal-sftp[4242]: session opened for local user alice from [203.0.113.9]
Jan 15 10:00:01 files1 internal-sftp[4242]: realpath "."
Jan 15 10:00:01 files1 internal-sftp[4242]: opendir "/in box"
Jan 15 10:00:01 files1 internal-sftp[4242]: closedir "/in box"
Jan 15 10:00:02 files1 internal-sftp[4242]: open "/in box/a b.csv" flags WRITE,CREATE,TRUNCATE mode 0644
Jan 15 10:00:02 files1 internal-sftp[4242]: lstat name "/in box/other.csv"
Jan 15 10:00:04 files1 internal-sftp[4242]: close "/in box/a b.csv" bytes read 0 written 1024
Jan 15 10:00:05 files1 internal-sftp[4242]: set "/in box/a b.csv" mode 0644
Jan 15 10:00:05 files1 internal-sftp[4242]: set "/in box/a b.csv" modtime 20240115-10:00:02
Jan 15 10:00:06 files1 internal-sftp[4242]: posix-rename old "/in box/a b.csv" new "/done/a b.csv"
Jan 15 10:00:06 files1 internal-sftp[4242]: mkdir name "/done/sub" mode 0777
Jan 15 10:00:06 files1 internal-sftp[4242]: remove name "/done/old.csv"
Jan 15 10:00:06 files1 internal-sftp[4242]: rmdir name "/done/sub"
Jan 15 10:00:07 files1 internal-sftp[4242]: open "/big.iso" flags READ mode 0666
Jan 15 10:00:09 files1 internal-sftp[4242]: forced close "/big.iso" bytes read 52428800 written 0
Jan 15 10:00:09 files1 internal-sftp[4242]: session closed for local user alice from [203.0.113.9]
"#;

    #[test]
    fn a_session_at_verbose() {
        let events = run(Format::Sftp, LOG);
        assert_eq!(
            ops(&events),
            vec![
                (Operation::Login, None),
                (Operation::Stat, Some(".")),
                (Operation::List, Some("/in box")),
                (Operation::Stat, Some("/in box/other.csv")),
                (Operation::Write, Some("/in box/a b.csv")),
                (Operation::Write, Some("/in box/a b.csv")),
                (Operation::Move, Some("/in box/a b.csv")),
                (Operation::Mkdir, Some("/done/sub")),
                (Operation::Delete, Some("/done/old.csv")),
                (Operation::Delete, Some("/done/sub")),
                (Operation::Read, Some("/big.iso")),
            ]
        );
        assert!(events.iter().all(|e| e.interface == Interface::Sftp && e.user.as_deref() == Some("alice")));
        assert!(events.iter().all(|e| e.client_ip.as_deref() == Some("203.0.113.9") && e.status.is_none()));
        let write = &events[4];
        assert_eq!((write.id.as_str(), write.time), (id(LOG, 6).as_str(), utc("2024-01-15T10:00:02Z")));
        assert_eq!((write.bytes, write.duration_ms, write.method.as_deref()), (Some(1024), Some(2000.0), Some("open")));
        assert_eq!(events[5].method.as_deref(), Some("setstat"));
        assert_eq!(events[6].destination.as_deref(), Some("/done/a b.csv"));
        assert_eq!((events[10].bytes, events[10].id.as_str()), (Some(52_428_800), id(LOG, 15).as_str()));
    }

    #[test]
    fn openssh_9_8_logs_from_sshd_session_with_postauth() {
        let log = concat!(
            "Jan 15 10:00:00 files1 sshd-session[4242]: Accepted publickey for alice from 203.0.113.9 port 50022 ssh2: ED25519 SHA256:x\n",
            "Jan 15 10:00:00 files1 sshd-session[4242]: session opened for local user alice from [203.0.113.9] [postauth]\n",
            "Jan 15 10:00:01 files1 sshd-session[4242]: opendir \"/in\" [postauth]\n",
            "Jan 15 10:00:01 files1 sshd-session[4242]: closedir \"/in\" [postauth]\n",
            "Jan 15 10:00:02 files1 sshd-session[4242]: open \"/in/a.csv\" flags READ mode 0666 [postauth]\n",
            "Jan 15 10:00:03 files1 sshd-session[4242]: close \"/in/a.csv\" bytes read 2048 written 0 [postauth]\n",
            "Jan 15 10:00:03 files1 CRON[99]: pam_unix(cron:session): session opened for user root\n",
            "Jan 15 10:00:04 files1 sshd-session[4242]: session closed for local user alice from [203.0.113.9] [postauth]\n",
        );
        let events = run(Format::Sftp, log);
        assert_eq!(
            ops(&events),
            vec![(Operation::Login, None), (Operation::List, Some("/in")), (Operation::Read, Some("/in/a.csv"))]
        );
        assert!(events
            .iter()
            .all(|e| e.client_ip.as_deref() == Some("203.0.113.9") && e.user.as_deref() == Some("alice")));
        assert_eq!(events[2].bytes, Some(2048));
        use NonCall::*;
        let want = [
            Some(Housekeeping),
            None,
            None,
            Some(PartOfCall),
            None,
            Some(PartOfCall),
            Some(OtherProgram),
            Some(Housekeeping),
        ];
        assert_eq!(non_calls(Format::Sftp, log), want);
    }

    #[test]
    fn opens_never_closed_are_given_at_session_end_or_finish() {
        let log = concat!(
            "Jan 15 10:00:02 h sftp-server[7]: open \"/a\" flags READ mode 0666\n",
            "Jan 15 10:00:02 h sftp-server[8]: open \"/b\" flags APPEND mode 0666\n",
            "Jan 15 10:00:03 h sftp-server[7]: session closed for local user x from [1.2.3.4]\n",
        );
        let events = run(Format::Sftp, log);
        assert_eq!(ops(&events), vec![(Operation::Read, Some("/a")), (Operation::Write, Some("/b"))]);
        assert_eq!(events[0].bytes, None);
    }

    #[test]
    fn syslog_years_and_rfc3339_times() {
        // The reference is 2024-06-30: December lines are from 2023.
        let events = run(Format::Sftp, "Dec 31 23:59:59 h sftp-server[7]: opendir \"/\"\n2024-01-15T10:00:00.250+01:00 h sftp-server[7]: opendir \"/\"\n");
        assert_eq!(events[0].time, utc("2023-12-31T23:59:59Z"));
        assert_eq!(events[1].time, utc("2024-01-15T09:00:00.250Z"));
        let c = ctx().with_timezone("America/New_York".parse().unwrap());
        let (events, _) = run_with(&mut SftpParser::new(c), "Jan  5 10:00:00 h sftp-server: stat name \"/x\"\n");
        assert_eq!(events[0].time, utc("2024-01-05T15:00:00Z"));
    }

    #[test]
    fn user_map_accounts_need_the_session_line() {
        let c = Context { accounts: crate::AccountRule::UserMap([("alice".into(), "globex".into())].into()), ..ctx() };
        let mut p = SftpParser::new(c);
        let (events, errors) = run_with(&mut p, "Jan 15 10:00:01 h sftp-server[9]: opendir \"/\"\n");
        assert!(events.is_empty());
        assert_eq!(
            errors[0].to_string(),
            "line 1: account cannot be resolved: --account-from user, and the line has no user"
        );
        let (events, errors) = run_with(&mut p, &LOG.lines().take(4).collect::<Vec<_>>().join("\n"));
        assert!(errors.is_empty());
        assert!(events.iter().all(|e| e.account == "globex"));
    }

    #[test]
    fn bad_lines() {
        let (_, errors) = run_errors(
            Format::Sftp,
            "Foo 15 10:00:00 h sftp-server[1]: x\nJan 15 10:00:00 h sftp-server[x]: opendir \"/\"\nJan 15 10:00:00 h sftp-server[1]: opendir /\nJan 15 10:00:00 h sftp-server[1]: rename \"a\" \"b\"\nJan 15 10:00:00 h nocolon\n",
        );
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                "line 1: time: not a syslog time: \"Foo 15 10:00:00 h sftp-server[1]: x\"",
                "line 2: pid: not a pid: \"[x]\"",
                "line 3: path: no quoted path: \"opendir /\"",
                "line 4: path: expected old \"…\" new \"…\": \"\\\"a\\\" \\\"b\\\"\"",
                "line 5: program: not a syslog program tag: \"nocolon\"",
            ]
        );
    }

    proptest! {
        #[test]
        fn generated_lines_parse_back(
            day in 1u32..29, h in 0u32..24, m in 0u32..60, s in 0u32..60, pid in 1u64..1_000_000,
            name in "/[a-zA-Z0-9 ._()\"ü-]{0,20}", kind in 0usize..6, read in any::<u32>(), written in any::<u32>(),
        ) {
            let stamp = format!("Mar {day:>2} {h:02}:{m:02}:{s:02} host sftp-server[{pid}]:");
            let time = utc(&format!("2024-03-{day:02}T{h:02}:{m:02}:{s:02}Z"));
            let (text, op) = match kind {
                0 => (format!("{stamp} opendir \"{name}\""), Operation::List),
                1 => (format!("{stamp} stat name \"{name}\""), Operation::Stat),
                2 => (format!("{stamp} remove name \"{name}\""), Operation::Delete),
                3 => (format!("{stamp} mkdir name \"{name}\" mode 0755"), Operation::Mkdir),
                4 => (format!("{stamp} open \"{name}\" flags READ mode 0666\n{stamp} close \"{name}\" bytes read {read} written {written}"), Operation::Read),
                _ => (format!("{stamp} open \"{name}\" flags WRITE,CREATE mode 0666\n{stamp} close \"{name}\" bytes read {read} written {written}"), Operation::Write),
            };
            let events = run(Format::Sftp, &text);
            prop_assert_eq!(events.len(), 1);
            let e = &events[0];
            prop_assert_eq!((e.time, e.operation), (time, op));
            prop_assert_eq!(e.path.as_deref(), Some(name.as_str()));
            if kind >= 4 {
                prop_assert_eq!(e.bytes, Some(u64::from(read) + u64::from(written)));
            }
        }
    }
}
