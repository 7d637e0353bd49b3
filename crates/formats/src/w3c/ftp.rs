//! The FTP lines of a W3C log: IIS FTP sites (`FTPSVC…`, and IIS 4–6's
//! `MSFTPSVC…` with its numbered sessions, `[3]sent /file 226`).
//!
//! IIS 7.5 and later log the commands as sent, with `x-session` naming the
//! control connection. IIS 4–6 prefix each method with the session's number
//! and name transfers by what happened: `sent` stands for `RETR` (read),
//! `created` for `STOR` and `appended` for `APPE` (write), `deleted` for
//! `DELE` (delete); `USER` and `PASS` are one login and `QUIT` ends the
//! session. The FTP rules then apply as to every FTP log (DESIGN §5).

use super::columns::{spaces, Col, Row};
use super::W3cParser;
use crate::error::Result;
use crate::ftp::{verb, FtpCall, Verb};
use crate::text::owned;
use crate::{LineIs, NonCall, SourceLine};
use callmeter_model::{CallEvent, Interface, Operation};
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// The IIS FTP service's own events, which are not commands.
pub(super) const IIS_FTP_EVENTS: &[&[u8]] =
    &[b"ControlChannelOpened", b"ControlChannelClosed", b"DataChannelOpened", b"DataChannelClosed"];

/// At most this many FTP sessions are remembered; idle ones are forgotten first.
pub(super) const MAX_SESSIONS: usize = 10_000;

/// IIS 4–6 name transfers by what happened; the FTP command each stands for.
fn iis_event_verb(m: &[u8]) -> Option<&'static [u8]> {
    let names: [(&[u8], &[u8]); 4] =
        [(b"sent", b"RETR"), (b"created", b"STOR"), (b"appended", b"APPE"), (b"deleted", b"DELE")];
    names.iter().find(|(n, _)| n.eq_ignore_ascii_case(m)).map(|(_, v)| *v)
}

/// `[3]sent` → the session number `3` and the method `sent`.
pub(super) fn session_prefix(m: &[u8]) -> Option<(&[u8], &[u8])> {
    let rest = m.strip_prefix(b"[")?;
    let end = memchr::memchr(b']', rest)?;
    let n = &rest[..end];
    (!n.is_empty() && n.iter().all(u8::is_ascii_digit)).then(|| (n, &rest[end + 1..]))
}

/// What the reader took from an FTP line besides its columns.
pub(super) struct FtpLine<'a> {
    pub at: SourceLine,
    pub time: DateTime<Utc>,
    pub status: Option<i64>,
    /// The method, its `[N]` taken off.
    pub method: Option<&'a [u8]>,
    /// The `[N]` session number of IIS 4–6.
    pub numbered: Option<&'a [u8]>,
    pub user: Option<Cow<'a, [u8]>>,
    pub host: Option<&'a [u8]>,
    pub duration_ms: Option<f64>,
    pub sc_bytes: Option<u64>,
    pub cs_bytes: Option<u64>,
}

impl W3cParser {
    /// One FTP line, through its session.
    pub(super) fn ftp_line(&mut self, row: &Row<'_>, l: FtpLine<'_>, out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let (at, time, status, user, host, duration_ms) = (l.at, l.time, l.status, l.user, l.host, l.duration_ms);
        let line_no = at.number;
        let numbered = l.numbered;
        let bytes_for = |op: Operation| match op.direction() {
            callmeter_model::Direction::Write => l.cs_bytes.or(l.sc_bytes),
            callmeter_model::Direction::Read => l.sc_bytes.or(l.cs_bytes),
        };
        let Some(method) = l.method else { return Ok(NonCall::Housekeeping.into()) };
        let method = iis_event_verb(method).unwrap_or(method);
        let client = row.get(Col::ClientIp);
        let key = match (row.get(Col::Session), numbered, client) {
            (Some(s), _, _) => String::from_utf8_lossy(s).into_owned(),
            (None, Some(n), c) => {
                format!("[{}]{}", String::from_utf8_lossy(n), String::from_utf8_lossy(c.unwrap_or(b"")))
            }
            (None, None, Some(c)) => String::from_utf8_lossy(c).into_owned(),
            (None, None, None) => String::new(),
        };
        let v = verb(method, b"x");
        let stem = row.get(Col::UriStem).map(spaces);
        let arg: Cow<'_, [u8]> = match (v, row.get(Col::FullPath)) {
            (Verb::Call(_) | Verb::Rnfr | Verb::Rnto | Verb::Cwd, Some(full)) if full.starts_with(b"/") => spaces(full),
            _ => stem.unwrap_or(Cow::Borrowed(b"")),
        };
        self.forget_idle(out);
        let ctx = &self.ctx;
        let session = self.sessions.entry(key.clone()).or_default();
        if let Some(u) = &user {
            session.user = Some(owned(u));
        }
        let mut calls = Vec::new();
        let host_s = host.map(String::from_utf8_lossy);
        let account = |u: Option<&str>| ctx.account(line_no, host_s.as_deref(), u);
        let is = session.command(at, time, method, &arg, status, &account, &mut calls);
        if v == Verb::Quit || IIS_FTP_EVENTS[1].eq_ignore_ascii_case(method) {
            self.sessions.remove(&key);
        }
        for c in calls {
            let mut e = self.ftp_event(c, client);
            e.bytes = bytes_for(e.operation);
            e.duration_ms = duration_ms;
            out.push(e);
        }
        is
    }

    /// Makes room for one more session: idle ones are forgotten, and if
    /// that is not enough the waiting RNFRs are given as moves of their own.
    fn forget_idle(&mut self, out: &mut Vec<CallEvent>) {
        if self.sessions.len() >= MAX_SESSIONS {
            self.sessions.retain(|_, s| !s.is_idle());
            if self.sessions.len() >= MAX_SESSIONS {
                self.flush_sessions(out);
            }
        }
    }

    /// Every session ends: the RNFRs no RNTO followed are moves of their own.
    pub(super) fn flush_sessions(&mut self, out: &mut Vec<CallEvent>) {
        let mut sessions: Vec<_> = self.sessions.drain().collect();
        sessions.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, mut s) in sessions {
            let mut calls = Vec::new();
            s.flush(&mut calls);
            // The key names the client when it is an address (`[N]` first for IIS 4-6).
            let client = key.rsplit(']').next().filter(|k| k.parse::<std::net::IpAddr>().is_ok());
            out.extend(calls.into_iter().map(|c| self.ftp_event(c, client.map(str::as_bytes))));
        }
    }

    fn ftp_event(&self, c: FtpCall, client: Option<&[u8]>) -> CallEvent {
        let mut e = self.ctx.event(c.line, c.time, Interface::Ftp, c.operation, c.account);
        e.method = Some(c.method);
        e.path = c.path;
        e.destination = c.destination;
        e.status = c.status;
        e.user = c.user;
        e.client_ip = client.map(owned);
        self.ctx.overrides(&mut e);
        e
    }
}

#[cfg(test)]
mod tests {
    use crate::testutil::{id, non_calls, ops, run};
    use crate::{Format, NonCall};
    use callmeter_model::{Interface, Operation};

    const FTP: &str = "\
#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2024-01-15 10:00:00
#Fields: date time s-sitename c-ip cs-username s-ip s-port cs-method cs-uri-stem sc-status sc-win32-status sc-substatus sc-bytes cs-bytes time-taken x-session x-fullpath
2024-01-15 10:00:00 FTPSVC2 203.0.113.9 - 10.0.0.5 21 ControlChannelOpened - - 0 0 0 0 0 8c1f -
2024-01-15 10:00:01 FTPSVC2 203.0.113.9 - 10.0.0.5 21 USER alice 331 0 0 23 12 0 8c1f -
2024-01-15 10:00:01 FTPSVC2 203.0.113.9 alice 10.0.0.5 21 PASS *** 230 0 0 21 15 15 8c1f /
2024-01-15 10:00:02 FTPSVC2 203.0.113.9 alice 10.0.0.5 21 CWD in 250 0 0 33 8 0 8c1f /in
2024-01-15 10:00:02 FTPSVC2 203.0.113.9 alice 10.0.0.5 21 PASV - 227 0 0 50 6 0 8c1f -
2024-01-15 10:00:03 FTPSVC2 203.0.113.9 alice 10.0.0.5 21 DataChannelOpened - - 0 0 0 0 0 8c1f -
2024-01-15 10:00:03 FTPSVC2 203.0.113.9 alice 10.0.0.5 21 STOR my+report.csv 226 0 0 0 4096 31 8c1f /in/my+report.csv
2024-01-15 10:00:04 FTPSVC2 203.0.113.9 alice 10.0.0.5 21 NLST - 226 0 0 120 6 0 8c1f /in
2024-01-15 10:00:05 FTPSVC2 203.0.113.9 alice 10.0.0.5 21 RNFR my+report.csv 350 0 0 0 20 0 8c1f /in/my+report.csv
2024-01-15 10:00:05 FTPSVC2 203.0.113.9 alice 10.0.0.5 21 RNTO done.csv 250 0 0 0 13 0 8c1f /in/done.csv
2024-01-15 10:00:06 FTPSVC2 203.0.113.9 alice 10.0.0.5 21 ControlChannelClosed - - 0 0 0 0 0 8c1f -
";

    #[test]
    fn iis_ftp_sessions() {
        let events = run(Format::W3c, FTP);
        assert_eq!(
            ops(&events),
            vec![
                (Operation::Login, None),
                (Operation::Write, Some("/in/my report.csv")),
                (Operation::List, Some("/in")),
                (Operation::Move, Some("/in/my report.csv")),
            ]
        );
        assert!(events.iter().all(|e| e.interface == Interface::Ftp && e.user.as_deref() == Some("alice")));
        assert_eq!((events[0].status, events[0].id.as_str()), (Some(230), id(FTP, 7).as_str()));
        assert_eq!((events[1].bytes, events[1].duration_ms), (Some(4096), Some(31.0)));
        assert_eq!(events[3].destination.as_deref(), Some("/in/done.csv"));
        assert_eq!(events[3].id, id(FTP, 13), "a move's id is its RNFR line's");
    }

    #[test]
    fn iis_4_to_6_numbered_sessions() {
        // lnav's test log of an IIS 4.0 FTP site (two days, sessions [2] and [3]).
        let log = "\
#Software: Microsoft Internet Information Server 4.0
#Version: 1.0
#Date: 2000-10-09 16:44:49
#Fields: time c-ip cs-method cs-uri-stem sc-status
16:44:49 1.1.1.1 [2]USER anonymous 331
16:44:49 1.1.1.1 [2]PASS - 230
16:48:05 1.1.1.1 [2]QUIT - 226
16:48:17 1.1.1.1 [3]USER anonymous 331
16:48:24 1.1.1.1 [3]PASS user@domain.com 230
16:48:35 1.1.1.1 [3]sent /user/test.c 226
16:48:41 1.1.1.1 [3]created readme.txt 226
16:48:42 1.1.1.1 [3]deleted old.txt 250
16:48:44 1.1.1.1 [3]QUIT - 226
";
        let events = run(Format::W3c, log);
        assert_eq!(
            ops(&events),
            vec![
                (Operation::Login, None),
                (Operation::Login, None),
                (Operation::Read, Some("/user/test.c")),
                (Operation::Write, Some("/readme.txt")),
                (Operation::Delete, Some("/old.txt")),
            ]
        );
        let methods: Vec<_> = events.iter().map(|e| e.method.as_deref().unwrap_or("")).collect();
        assert_eq!(methods, ["PASS", "PASS", "RETR", "STOR", "DELE"]);
        assert!(events.iter().all(|e| e.interface == Interface::Ftp && e.user.as_deref() == Some("anonymous")));
        assert!(events.iter().all(|e| e.client_ip.as_deref() == Some("1.1.1.1")));
        assert_eq!(events[0].id, id(log, 6));
        use NonCall::*;
        let kinds = non_calls(Format::W3c, log);
        assert_eq!(&kinds[4..8], [Some(PartOfCall), None, Some(Housekeeping), Some(PartOfCall)]);
    }
}
