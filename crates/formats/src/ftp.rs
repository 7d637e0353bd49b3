//! FTP commands and sessions, shared by the FTP readers (vsftpd, ProFTPD, IIS FTP).
//!
//! DESIGN §5: LIST, NLST, MLSD → list; RETR → read; STOR, APPE, STOU → write;
//! DELE, RMD → delete; RNFR followed by RNTO → one move; MKD → mkdir; SIZE,
//! MDTM, MLST, STAT with a path → stat; USER/PASS → one login. Session
//! housekeeping (PASV, EPSV, PORT, TYPE, NOOP, CWD, CDUP, PWD, SYST, FEAT,
//! OPTS, QUIT) is not a call, nor is anything else.
//!
//! A refused login is a call too (DESIGN §1: refused logins count): the
//! login is the PASS, whatever its reply, or a USER answered 230 at once.
//! An RNFR that no RNTO follows is still a request: it is one move with no
//! destination. Relative paths are resolved against the working folder the
//! session's CWD commands set (from `/` until one is seen).
//!
//! A call's id comes from the line that starts it, whatever lines complete
//! it: a move's from its RNFR (with or without an RNTO after it), a login's
//! from its PASS (the request that is the login attempt), every other call's
//! from its command.

use crate::line_key::SourceLine;
use crate::text::{self, owned};
use callmeter_model::Operation;
use chrono::{DateTime, Utc};

/// What an FTP command is, for metering.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verb {
    /// A file operation: one call.
    Call(Operation),
    /// USER.
    User,
    /// PASS.
    Pass,
    /// RNFR: the first half of a move.
    Rnfr,
    /// RNTO: the second half.
    Rnto,
    /// CWD (or XCWD).
    Cwd,
    /// CDUP (or XCUP).
    Cdup,
    /// QUIT: the session ends.
    Quit,
    /// Housekeeping and anything unknown: not a call.
    None,
}

/// Splits `VERB arg` and classifies the verb (any case).
/// The argument is everything after the first space, as FTP defines it: a
/// file name may begin or end with spaces.
pub(crate) fn split_command(cmd: &[u8]) -> (&[u8], &[u8]) {
    let cmd = cmd.trim_ascii_start();
    let cmd = cmd.strip_suffix(b"\r\n").or_else(|| cmd.strip_suffix(b"\n")).unwrap_or(cmd);
    match memchr::memchr(b' ', cmd) {
        Some(i) => (&cmd[..i], &cmd[i + 1..]),
        None => (cmd, &[]),
    }
}

/// The metering class of a verb with its argument.
pub(crate) fn verb(v: &[u8], arg: &[u8]) -> Verb {
    let mut buf = [0u8; 8];
    if v.len() > buf.len() {
        return Verb::None;
    }
    let name = &mut buf[..v.len()];
    name.copy_from_slice(v);
    name.make_ascii_uppercase();
    match &*name {
        b"LIST" | b"NLST" | b"MLSD" => Verb::Call(Operation::List),
        b"RETR" => Verb::Call(Operation::Read),
        b"STOR" | b"APPE" | b"STOU" => Verb::Call(Operation::Write),
        b"DELE" | b"RMD" | b"XRMD" => Verb::Call(Operation::Delete),
        b"MKD" | b"XMKD" => Verb::Call(Operation::Mkdir),
        b"SIZE" | b"MDTM" | b"MLST" => Verb::Call(Operation::Stat),
        b"STAT" if !arg.is_empty() => Verb::Call(Operation::Stat),
        b"USER" => Verb::User,
        b"PASS" => Verb::Pass,
        b"RNFR" => Verb::Rnfr,
        b"RNTO" => Verb::Rnto,
        b"CWD" | b"XCWD" => Verb::Cwd,
        b"CDUP" | b"XCUP" => Verb::Cdup,
        b"QUIT" => Verb::Quit,
        _ => Verb::None,
    }
}

/// The path argument of LIST/NLST/STAT: options such as `-la` are not a path.
pub(crate) fn strip_list_options(arg: &[u8]) -> &[u8] {
    let mut a = arg;
    while a.first() == Some(&b'-') {
        match memchr::memchr(b' ', a) {
            Some(i) => a = a[i + 1..].trim_ascii_start(),
            None => return &[],
        }
    }
    a
}

/// `arg` resolved against the folder `cwd`: `.` and `..` followed, no trailing `/`.
pub(crate) fn resolve(cwd: &str, arg: &str) -> String {
    let mut parts: Vec<&str> = Vec::new();
    let joined;
    let full = if arg.starts_with('/') {
        arg
    } else {
        joined = format!("{cwd}/{arg}");
        &joined
    };
    for p in full.split('/') {
        match p {
            "" | "." => {}
            ".." => {
                parts.pop();
            }
            p => parts.push(p),
        }
    }
    if parts.is_empty() {
        return "/".into();
    }
    let mut s = String::with_capacity(full.len() + 1);
    for p in parts {
        s.push('/');
        s.push_str(p);
    }
    text::clip(s)
}

/// One call an FTP session made.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FtpCall {
    /// The line that starts the call (RNFR for a move, PASS for a login): its id is made from it.
    pub line: SourceLine,
    /// The number of the line whose command the call's reply answers (RNTO for a move).
    pub reply_to: u64,
    pub time: DateTime<Utc>,
    pub operation: Operation,
    /// The verb as sent.
    pub method: String,
    pub path: Option<String>,
    pub destination: Option<String>,
    pub status: Option<i64>,
    pub user: Option<String>,
}

#[derive(Debug, Clone)]
struct Rnfr {
    line: SourceLine,
    time: DateTime<Utc>,
    path: String,
    method: String,
    status: Option<i64>,
}

/// What one FTP control connection remembers between commands.
#[derive(Debug, Clone)]
pub(crate) struct FtpSession {
    /// The user named by USER (or the log).
    pub user: Option<String>,
    /// The working folder.
    pub cwd: String,
    /// The folder before the last CWD, until its reply is known.
    cwd_undo: Option<String>,
    rnfr: Option<Rnfr>,
    /// The time of the last line seen, for forgetting idle sessions.
    pub last_seen: Option<DateTime<Utc>>,
}

impl Default for FtpSession {
    fn default() -> Self {
        FtpSession { user: None, cwd: "/".into(), cwd_undo: None, rnfr: None, last_seen: None }
    }
}

impl FtpSession {
    /// Whether anything waits for a later line.
    pub fn is_idle(&self) -> bool {
        self.rnfr.is_none()
    }

    /// One command. `status` is its reply when the log gives it on the same
    /// line (ProFTPD, IIS), else `None` (vsftpd: see [`FtpSession::reply`]).
    pub fn command(
        &mut self,
        line: SourceLine,
        time: DateTime<Utc>,
        verb_name: &[u8],
        arg: &[u8],
        status: Option<i64>,
        out: &mut Vec<FtpCall>,
    ) {
        self.last_seen = Some(time);
        let v = verb(verb_name, arg);
        if v != Verb::Rnto {
            self.flush(out);
        }
        let method = owned(verb_name).to_ascii_uppercase();
        let call = |operation, path, destination, status, user: &Option<String>| FtpCall {
            line,
            reply_to: line.number,
            time,
            operation,
            method: method.clone(),
            path,
            destination,
            status,
            user: user.clone(),
        };
        let arg_s = String::from_utf8_lossy(arg);
        match v {
            Verb::Call(op) => {
                let a = if op == Operation::List || &*method == "STAT" { strip_list_options(arg) } else { arg };
                let a = String::from_utf8_lossy(a);
                let path = resolve(&self.cwd, &a);
                out.push(call(op, Some(path), None, status, &self.user));
            }
            Verb::User => {
                if !arg.is_empty() {
                    self.user = Some(owned(arg));
                }
                if status == Some(230) {
                    out.push(call(Operation::Login, None, None, status, &self.user));
                }
            }
            Verb::Pass => out.push(call(Operation::Login, None, None, status, &self.user)),
            Verb::Rnfr => {
                let path = resolve(&self.cwd, &arg_s);
                self.rnfr = Some(Rnfr { line, time, path, method, status });
            }
            Verb::Rnto => {
                // The move is the RNFR's call: its id comes from the RNFR line, as when no RNTO follows.
                let (started, from) = match self.rnfr.take() {
                    Some(r) => (r.line, Some(r.path)),
                    None => (line, None),
                };
                let to = resolve(&self.cwd, &arg_s);
                let mut c = call(Operation::Move, from, Some(to), status, &self.user);
                c.line = started;
                out.push(c);
            }
            Verb::Cwd | Verb::Cdup => {
                if status.is_none_or(|s| (200..300).contains(&s)) {
                    let to = if v == Verb::Cdup { resolve(&self.cwd, "..") } else { resolve(&self.cwd, &arg_s) };
                    let before = std::mem::replace(&mut self.cwd, to);
                    self.cwd_undo = status.is_none().then_some(before);
                }
            }
            Verb::Quit | Verb::None => {}
        }
    }

    /// A reply to the last command, for logs that give replies on lines of their own.
    pub fn reply(&mut self, code: i64) {
        if let Some(before) = self.cwd_undo.take() {
            if code >= 400 {
                self.cwd = before;
            }
        }
        if let Some(r) = &mut self.rnfr {
            if r.status.is_none() && code >= 200 {
                r.status = Some(code);
            }
        }
    }

    /// A PWD reply (`257 "/home/alice" is the current directory`) tells the working folder.
    pub fn pwd_reply(&mut self, text: &[u8]) {
        let Some(start) = memchr::memchr(b'"', text) else { return };
        let Some(end) = memchr::memrchr(b'"', text).filter(|e| *e > start) else { return };
        // Quotes inside the name are doubled.
        let name = String::from_utf8_lossy(&text[start + 1..end]).replace("\"\"", "\"");
        if name.starts_with('/') {
            self.cwd = resolve("/", &name);
        }
    }

    /// An RNFR that no RNTO followed is a move of its own.
    pub fn flush(&mut self, out: &mut Vec<FtpCall>) {
        if let Some(r) = self.rnfr.take() {
            out.push(FtpCall {
                line: r.line,
                reply_to: r.line.number,
                time: r.time,
                operation: Operation::Move,
                method: r.method,
                path: Some(r.path),
                destination: None,
                status: r.status,
                user: self.user.clone(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{at, utc};

    #[test]
    fn verbs() {
        assert_eq!(verb(b"list", b""), Verb::Call(Operation::List));
        assert_eq!(verb(b"STAT", b""), Verb::None);
        assert_eq!(verb(b"STAT", b"/x"), Verb::Call(Operation::Stat));
        assert_eq!(verb(b"XMKD", b"d"), Verb::Call(Operation::Mkdir));
        for h in
            ["PASV", "EPSV", "PORT", "TYPE", "NOOP", "PWD", "SYST", "FEAT", "OPTS", "SITE", "ABOR", "WAYTOOLONGVERB"]
        {
            assert_eq!(verb(h.as_bytes(), b"x"), Verb::None, "{h}");
        }
    }

    #[test]
    fn paths_resolve() {
        assert_eq!(resolve("/", "a b.txt"), "/a b.txt");
        assert_eq!(resolve("/in", "../out/./x"), "/out/x");
        assert_eq!(resolve("/in", "/abs/"), "/abs");
        assert_eq!(resolve("/", "../.."), "/");
        assert_eq!(resolve("/in", ""), "/in");
        assert_eq!(strip_list_options(b"-la"), b"");
        assert_eq!(strip_list_options(b"-l -a my dir"), b"my dir");
        assert_eq!(split_command(b"STOR  my file.txt "), (&b"STOR"[..], &b" my file.txt "[..]));
        assert_eq!(split_command(b"QUIT"), (&b"QUIT"[..], &b""[..]));
    }

    #[test]
    fn a_session_with_replies_on_the_same_line() {
        let t = utc("2024-01-15T10:00:00Z");
        let mut s = FtpSession::default();
        let mut out = Vec::new();
        s.command(at(1), t, b"USER", b"alice", Some(331), &mut out);
        s.command(at(2), t, b"PASS", b"(hidden)", Some(230), &mut out);
        s.command(at(3), t, b"CWD", b"in", Some(250), &mut out);
        s.command(at(4), t, b"CWD", b"nowhere", Some(550), &mut out);
        s.command(at(5), t, b"LIST", b"-la", Some(226), &mut out);
        s.command(at(6), t, b"RNFR", b"a.txt", Some(350), &mut out);
        s.command(at(7), t, b"RNTO", b"../b.txt", Some(250), &mut out);
        s.command(at(8), t, b"RNFR", b"gone.txt", Some(550), &mut out);
        s.command(at(9), t, b"QUIT", b"", Some(221), &mut out);
        let got: Vec<_> = out
            .iter()
            .map(|c| (c.line.number, c.operation, c.path.as_deref(), c.destination.as_deref(), c.status))
            .collect();
        assert_eq!(
            got,
            vec![
                (2, Operation::Login, None, None, Some(230)),
                (5, Operation::List, Some("/in"), None, Some(226)),
                (6, Operation::Move, Some("/in/a.txt"), Some("/b.txt"), Some(250)),
                (8, Operation::Move, Some("/in/gone.txt"), None, Some(550)),
            ]
        );
        assert!(out.iter().all(|c| c.user.as_deref() == Some("alice")));
    }

    #[test]
    fn replies_on_their_own_lines() {
        let t = utc("2024-01-15T10:00:00Z");
        let mut s = FtpSession::default();
        let mut out = Vec::new();
        s.command(at(1), t, b"CWD", b"missing", None, &mut out);
        s.reply(550);
        assert_eq!(s.cwd, "/");
        s.pwd_reply(br#"257 "/home/a ""q"" b" is the current directory"#);
        assert_eq!(s.cwd, "/home/a \"q\" b");
        s.command(at(2), t, b"RNFR", b"x", None, &mut out);
        s.reply(350);
        s.flush(&mut out);
        assert_eq!((out[0].operation, out[0].status), (Operation::Move, Some(350)));
    }
}
