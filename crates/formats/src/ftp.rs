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
//! destination. A move's method is `RNFR` either way: the command its path,
//! id and account come from (as a login's is `PASS`), so that one move has
//! one method however much of it was logged. Relative paths are resolved
//! against the working folder the session's CWD commands set (from `/` until
//! one is seen).
//!
//! A call's id comes from the line that starts it, whatever lines complete
//! it: a move's from its RNFR (with or without an RNTO after it), a login's
//! from its PASS (the request that is the login attempt), every other call's
//! from its command. Its account is resolved on that line too, so that an
//! account that cannot be resolved is that line's error, and a call that
//! waits for a later line (an RNFR) cannot be lost when it is given.
//! [`FtpSession::command`] says what each line is: a call, a part of one
//! (USER before PASS, RNTO after RNFR), or housekeeping.

use crate::error::Result;
use crate::line_key::SourceLine;
use crate::text::{self, owned};
use crate::{LineIs, NonCall};
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

/// FTP housekeeping verbs (DESIGN §5, and the other commands of RFC 959 and
/// its extensions that touch no file): not calls, but they tell an FTP line
/// from an HTTP one.
const FTP_HOUSEKEEPING: &[&[u8]] = &[
    b"PASV", b"EPSV", b"PORT", b"EPRT", b"TYPE", b"NOOP", b"PWD", b"XPWD", b"SYST", b"FEAT", b"OPTS", b"QUIT", b"AUTH",
    b"PBSZ", b"PROT", b"REST", b"ABOR", b"SITE", b"HELP", b"MODE", b"STRU", b"ALLO", b"CLNT", b"HOST", b"ACCT",
    b"REIN", b"SMNT", b"LANG", b"CCC", b"ADAT", b"MIC", b"CONF", b"ENC",
];

/// Whether a word is an FTP command, a file operation or housekeeping (any case).
pub(crate) fn is_ftp_verb(v: &[u8]) -> bool {
    verb(v, b"x") != Verb::None || FTP_HOUSEKEEPING.iter().any(|h| h.eq_ignore_ascii_case(v))
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
    /// The account, resolved on the line that starts the call.
    pub account: String,
}

#[derive(Debug, Clone)]
struct Rnfr {
    line: SourceLine,
    time: DateTime<Utc>,
    path: String,
    method: String,
    status: Option<i64>,
    account: String,
}

/// The account of a call by this user (`None`: no user known), or why there is none.
pub(crate) type AccountOf<'a> = &'a dyn Fn(Option<&str>) -> Result<String>;

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

    /// One command, and what its line is. `status` is its reply when the
    /// log gives it on the same line (ProFTPD, IIS), else `None` (vsftpd: see
    /// [`FtpSession::reply`]). A call's account comes from `account`, asked
    /// on this line; if it fails, the line is that error (the calls of
    /// earlier lines it gives, an RNFR no RNTO followed, are pushed all the same).
    #[allow(clippy::too_many_arguments)]
    pub fn command(
        &mut self,
        line: SourceLine,
        time: DateTime<Utc>,
        verb_name: &[u8],
        arg: &[u8],
        status: Option<i64>,
        account: AccountOf<'_>,
        out: &mut Vec<FtpCall>,
    ) -> Result<LineIs> {
        self.last_seen = Some(time);
        let v = verb(verb_name, arg);
        if v != Verb::Rnto {
            self.flush(out);
        }
        let method = || owned(verb_name).to_ascii_uppercase();
        let call = |operation, path, destination, user: &Option<String>, account| FtpCall {
            line,
            reply_to: line.number,
            time,
            operation,
            method: method(),
            path,
            destination,
            status,
            user: user.clone(),
            account,
        };
        let arg_s = String::from_utf8_lossy(arg);
        match v {
            Verb::Call(op) => {
                let account = account(self.user.as_deref())?;
                let a = if op == Operation::List || verb_name.eq_ignore_ascii_case(b"STAT") {
                    strip_list_options(arg)
                } else {
                    arg
                };
                let path = resolve(&self.cwd, &String::from_utf8_lossy(a));
                out.push(call(op, Some(path), None, &self.user, account));
                Ok(LineIs::Call)
            }
            Verb::User => {
                if !arg.is_empty() {
                    self.user = Some(owned(arg));
                }
                if status == Some(230) {
                    let account = account(self.user.as_deref())?;
                    out.push(call(Operation::Login, None, None, &self.user, account));
                    return Ok(LineIs::Call);
                }
                // The login is its PASS.
                Ok(NonCall::PartOfCall.into())
            }
            Verb::Pass => {
                let account = account(self.user.as_deref())?;
                out.push(call(Operation::Login, None, None, &self.user, account));
                Ok(LineIs::Call)
            }
            Verb::Rnfr => {
                let account = account(self.user.as_deref())?;
                let path = resolve(&self.cwd, &arg_s);
                self.rnfr = Some(Rnfr { line, time, path, method: method(), status, account });
                Ok(LineIs::Call)
            }
            Verb::Rnto => {
                let to = resolve(&self.cwd, &arg_s);
                // The move is the RNFR's call: its id and account come from the RNFR line, as when no RNTO follows.
                match self.rnfr.take() {
                    Some(r) => {
                        let mut c = call(Operation::Move, Some(r.path), Some(to), &self.user, r.account);
                        c.line = r.line;
                        c.method = r.method;
                        out.push(c);
                        Ok(NonCall::PartOfCall.into())
                    }
                    None => {
                        let account = account(self.user.as_deref())?;
                        out.push(call(Operation::Move, None, Some(to), &self.user, account));
                        Ok(LineIs::Call)
                    }
                }
            }
            Verb::Cwd | Verb::Cdup => {
                if status.is_none_or(|s| (200..300).contains(&s)) {
                    let to = if v == Verb::Cdup { resolve(&self.cwd, "..") } else { resolve(&self.cwd, &arg_s) };
                    let before = std::mem::replace(&mut self.cwd, to);
                    self.cwd_undo = status.is_none().then_some(before);
                }
                Ok(NonCall::Housekeeping.into())
            }
            Verb::Quit | Verb::None => Ok(NonCall::Housekeeping.into()),
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
                account: r.account,
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

    fn acme(_: Option<&str>) -> Result<String> {
        Ok("acme".into())
    }

    #[test]
    fn a_session_with_replies_on_the_same_line() {
        use LineIs::Call;
        let t = utc("2024-01-15T10:00:00Z");
        let mut s = FtpSession::default();
        let mut out = Vec::new();
        let part = LineIs::NonCall(NonCall::PartOfCall);
        let hk = LineIs::NonCall(NonCall::Housekeeping);
        let lines: [(&[u8], &[u8], i64, LineIs); 9] = [
            (b"USER", b"alice", 331, part),
            (b"PASS", b"(hidden)", 230, Call),
            (b"CWD", b"in", 250, hk),
            (b"CWD", b"nowhere", 550, hk),
            (b"LIST", b"-la", 226, Call),
            (b"RNFR", b"a.txt", 350, Call),
            (b"RNTO", b"../b.txt", 250, part),
            (b"RNFR", b"gone.txt", 550, Call),
            (b"QUIT", b"", 221, hk),
        ];
        for (i, (v, arg, status, is)) in lines.into_iter().enumerate() {
            assert_eq!(s.command(at(i as u64 + 1), t, v, arg, Some(status), &acme, &mut out).unwrap(), is);
        }
        let got: Vec<_> = out
            .iter()
            .map(|c| (c.line.number, c.operation, c.path.as_deref(), c.destination.as_deref(), c.status))
            .collect();
        let methods: Vec<&str> = out.iter().map(|c| c.method.as_str()).collect();
        assert_eq!(methods, ["PASS", "LIST", "RNFR", "RNFR"], "a move is its RNFR, with or without an RNTO");
        assert_eq!(
            got,
            vec![
                (2, Operation::Login, None, None, Some(230)),
                (5, Operation::List, Some("/in"), None, Some(226)),
                (6, Operation::Move, Some("/in/a.txt"), Some("/b.txt"), Some(250)),
                (8, Operation::Move, Some("/in/gone.txt"), None, Some(550)),
            ]
        );
        assert!(out.iter().all(|c| c.user.as_deref() == Some("alice") && c.account == "acme"));
    }

    #[test]
    fn an_account_is_resolved_on_the_line_that_starts_the_call() {
        let t = utc("2024-01-15T10:00:00Z");
        let mut s = FtpSession::default();
        let mut out = Vec::new();
        let by_user = |u: Option<&str>| match u {
            Some("alice") => Ok("acme".to_owned()),
            _ => Err(crate::Error::Account { line: 0, why: "no user".into() }),
        };
        assert!(s.command(at(1), t, b"RNFR", b"a", Some(350), &by_user, &mut out).is_err());
        s.command(at(2), t, b"USER", b"alice", Some(331), &by_user, &mut out).unwrap();
        s.command(at(3), t, b"RNFR", b"b", Some(350), &by_user, &mut out).unwrap();
        // The waiting RNFR is given by the next command, whatever that command's fate.
        assert!(s.command(at(4), t, b"USER", b"", Some(331), &by_user, &mut out).is_ok());
        assert_eq!(out.len(), 1);
        assert_eq!((out[0].line.number, out[0].account.as_str()), (3, "acme"));
    }

    #[test]
    fn replies_on_their_own_lines() {
        let t = utc("2024-01-15T10:00:00Z");
        let mut s = FtpSession::default();
        let mut out = Vec::new();
        s.command(at(1), t, b"CWD", b"missing", None, &acme, &mut out).unwrap();
        s.reply(550);
        assert_eq!(s.cwd, "/");
        s.pwd_reply(br#"257 "/home/a ""q"" b" is the current directory"#);
        assert_eq!(s.cwd, "/home/a \"q\" b");
        s.command(at(2), t, b"RNFR", b"x", None, &acme, &mut out).unwrap();
        s.reply(350);
        s.flush(&mut out);
        assert_eq!((out[0].operation, out[0].status), (Operation::Move, Some(350)));
    }
}
