//! W3C Extended Log File Format, as IIS writes it for web sites and FTP sites.
//!
//! ```text
//! #Software: Microsoft Internet Information Services 10.0
//! #Version: 1.0
//! #Date: 2024-01-15 10:00:00
//! #Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken
//! 2024-01-15 10:00:01 10.0.0.5 GET /api/rest/v1/folders/in per_page=100 443 - 203.0.113.9 curl/8.5.0 - 200 0 0 15
//! ```
//!
//! The `#Fields` directive names the columns; a new one (IIS writes one
//! whenever the site's logging settings change, and after each restart)
//! changes them from the next line on. Values are separated by single
//! spaces; IIS writes a space inside a value as `+`, and `-` for no value.
//! Times are UTC. When there is no `date` column, the `#Date` directive's day
//! is used.
//!
//! A line is FTP when the site is `FTPSVC…`, the columns include `x-session`,
//! or the method is an FTP command or an IIS FTP event
//! (`ControlChannelOpened`…); FTP lines follow the FTP rules (only file
//! operations are calls, RNFR+RNTO is one move, USER/PASS one login), with
//! sessions told apart by `x-session` (or the client address), and the path
//! from `x-fullpath` when logged. Every other line is an HTTP request,
//! classified as the access-log readers do. Columns read, besides those above:
//! `sc-bytes`, `cs-bytes`, `cs-host`, `s-sitename`, and the custom
//! `cs(Depth)`, `cs(Destination)`, `cs(X-Forwarded-For)`, `cs(Host)`.

use crate::classify::{Depth, UaCache};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::ftp::{verb, FtpCall, FtpSession, Verb};
use crate::http::{forwarded_for, http_event, HttpLine};
use crate::text::{is_blank, owned, parse_u64, parse_w3c_time, quote, trim_eol};
use crate::{Format, LineParser, SourceLine};
use callmeter_model::{CallEvent, Interface, Operation};
use std::borrow::Cow;
use std::collections::HashMap;

/// The columns this reader uses; others are skipped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Col {
    Date,
    Time,
    ClientIp,
    Username,
    SiteName,
    Method,
    UriStem,
    UriQuery,
    Status,
    ScBytes,
    CsBytes,
    TimeTaken,
    Host,
    UserAgent,
    Session,
    FullPath,
    Depth,
    Destination,
    Forwarded,
    Other,
}

fn column(name: &str) -> Col {
    match name.to_ascii_lowercase().as_str() {
        "date" => Col::Date,
        "time" => Col::Time,
        "c-ip" => Col::ClientIp,
        "cs-username" => Col::Username,
        "s-sitename" => Col::SiteName,
        "cs-method" => Col::Method,
        "cs-uri-stem" => Col::UriStem,
        "cs-uri-query" => Col::UriQuery,
        "sc-status" => Col::Status,
        "sc-bytes" => Col::ScBytes,
        "cs-bytes" => Col::CsBytes,
        "time-taken" => Col::TimeTaken,
        "cs-host" | "cs(host)" => Col::Host,
        "cs(user-agent)" => Col::UserAgent,
        "x-session" => Col::Session,
        "x-fullpath" => Col::FullPath,
        "cs(depth)" => Col::Depth,
        "cs(destination)" => Col::Destination,
        "cs(x-forwarded-for)" => Col::Forwarded,
        _ => Col::Other,
    }
}

/// The IIS FTP service's own events, which are not commands.
const IIS_FTP_EVENTS: &[&[u8]] =
    &[b"ControlChannelOpened", b"ControlChannelClosed", b"DataChannelOpened", b"DataChannelClosed"];

/// FTP housekeeping verbs, which tell an FTP line from an HTTP one.
const FTP_HOUSEKEEPING: &[&[u8]] = &[
    b"PASV", b"EPSV", b"PORT", b"EPRT", b"TYPE", b"NOOP", b"PWD", b"XPWD", b"SYST", b"FEAT", b"OPTS", b"QUIT", b"AUTH",
    b"PBSZ", b"PROT", b"REST", b"ABOR", b"SITE", b"HELP", b"MODE", b"STRU", b"ALLO", b"CLNT", b"HOST",
];

/// At most this many FTP sessions are remembered; idle ones are forgotten first.
const MAX_SESSIONS: usize = 10_000;

/// The reader of W3C Extended logs.
#[derive(Debug)]
pub struct W3cParser {
    ctx: Context,
    agents: UaCache,
    columns: Vec<Col>,
    date: Option<Vec<u8>>,
    sessions: HashMap<String, FtpSession>,
}

/// One data line, split into its columns.
#[derive(Default)]
struct Row<'a> {
    values: [Option<&'a [u8]>; 20],
}

impl<'a> Row<'a> {
    fn get(&self, c: Col) -> Option<&'a [u8]> {
        self.values[c as usize].filter(|v| *v != b"-" && !v.is_empty())
    }
}

/// IIS writes a space as `+`.
fn spaces(v: &[u8]) -> Cow<'_, [u8]> {
    if v.contains(&b'+') {
        Cow::Owned(v.iter().map(|&c| if c == b'+' { b' ' } else { c }).collect())
    } else {
        Cow::Borrowed(v)
    }
}

impl W3cParser {
    /// A reader.
    pub fn new(ctx: Context) -> W3cParser {
        W3cParser { ctx, agents: UaCache::default(), columns: Vec::new(), date: None, sessions: HashMap::new() }
    }

    fn directive(&mut self, line: &[u8]) {
        let Some((name, value)) = line[1..].split_once_byte(b':') else { return };
        let value = value.trim_ascii();
        if name.eq_ignore_ascii_case(b"Fields") {
            let text = String::from_utf8_lossy(value);
            self.columns = text.split_ascii_whitespace().map(column).collect();
        } else if name.eq_ignore_ascii_case(b"Date") {
            self.date = value.get(..10).map(<[u8]>::to_vec);
        }
    }

    fn forget_idle(&mut self) {
        if self.sessions.len() >= MAX_SESSIONS {
            self.sessions.retain(|_, s| !s.is_idle());
            if self.sessions.len() >= MAX_SESSIONS {
                self.sessions.clear();
            }
        }
    }

    fn data(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<()> {
        let line_no = at.number;
        if self.columns.is_empty() {
            return Err(Error::line(line_no, "line", "no #Fields directive before this line"));
        }
        let mut row = Row::default();
        let mut n = 0;
        for v in line.split(|c| *c == b' ') {
            if let Some(col) = self.columns.get(n) {
                if *col != Col::Other {
                    row.values[*col as usize] = Some(v);
                }
            }
            n += 1;
        }
        if n != self.columns.len() {
            return Err(Error::line(line_no, "line", format!("{n} values for {} #Fields columns", self.columns.len())));
        }
        let date = row
            .get(Col::Date)
            .or(self.date.as_deref())
            .ok_or_else(|| Error::line(line_no, "date", "no date column and no #Date directive"))?;
        let time_v = row.get(Col::Time).ok_or_else(|| Error::line(line_no, "time", "missing"))?;
        let time = parse_w3c_time(date, time_v).ok_or_else(|| {
            Error::line(line_no, "time", format!("not a w3c date and time: {} {}", quote(date), quote(time_v)))
        })?;
        let method = row.get(Col::Method);
        let status = match row.get(Col::Status) {
            None => None,
            Some(s) => Some(
                parse_u64(s)
                    .filter(|s| *s < 1000)
                    .ok_or_else(|| Error::line(line_no, "sc-status", format!("not a status code: {}", quote(s))))?
                    as i64,
            ),
        };
        let num = |c: Col, name: &'static str| -> Result<Option<u64>> {
            match row.get(c) {
                None => Ok(None),
                Some(v) => parse_u64(v)
                    .map(Some)
                    .ok_or_else(|| Error::line(line_no, name, format!("not a number: {}", quote(v)))),
            }
        };
        let (sc_bytes, cs_bytes) = (num(Col::ScBytes, "sc-bytes")?, num(Col::CsBytes, "cs-bytes")?);
        let duration_ms = num(Col::TimeTaken, "time-taken")?.map(|ms| ms as f64);
        let bytes_for = |op: Operation| match op.direction() {
            callmeter_model::Direction::Write => cs_bytes.or(sc_bytes),
            callmeter_model::Direction::Read => sc_bytes.or(cs_bytes),
        };
        let is_ftp = row.get(Col::SiteName).is_some_and(|s| s.len() >= 6 && s[..6].eq_ignore_ascii_case(b"FTPSVC"))
            || self.columns.contains(&Col::Session)
            || method.is_some_and(|m| {
                verb(m, b"x") != Verb::None
                    || IIS_FTP_EVENTS.iter().any(|e| e.eq_ignore_ascii_case(m))
                    || FTP_HOUSEKEEPING.iter().any(|e| e.eq_ignore_ascii_case(m))
            });
        let user = row.get(Col::Username).map(spaces);
        let host = row.get(Col::Host);
        if is_ftp {
            let Some(method) = method else { return Ok(()) };
            let key = match (row.get(Col::Session), row.get(Col::ClientIp)) {
                (Some(s), _) | (None, Some(s)) => String::from_utf8_lossy(s).into_owned(),
                (None, None) => String::new(),
            };
            let v = verb(method, b"x");
            let stem = row.get(Col::UriStem).map(spaces);
            let arg: Cow<'_, [u8]> = match (v, row.get(Col::FullPath)) {
                (Verb::Call(_) | Verb::Rnfr | Verb::Rnto | Verb::Cwd, Some(full)) if full.starts_with(b"/") => {
                    spaces(full)
                }
                _ => stem.unwrap_or(Cow::Borrowed(b"")),
            };
            self.forget_idle();
            let session = self.sessions.entry(key).or_default();
            if let Some(u) = &user {
                session.user = Some(owned(u));
            }
            let mut calls = Vec::new();
            session.command(at, time, method, &arg, status, &mut calls);
            if v == Verb::Quit || IIS_FTP_EVENTS[1].eq_ignore_ascii_case(method) {
                if let Some(k) = row.get(Col::Session).or(row.get(Col::ClientIp)) {
                    self.sessions.remove(&*String::from_utf8_lossy(k));
                }
            }
            for c in calls {
                let mut e = self.ftp_event(c, host, row.get(Col::ClientIp))?;
                e.bytes = bytes_for(e.operation);
                e.duration_ms = duration_ms;
                self.ctx.overrides(&mut e);
                out.push(e);
            }
            return Ok(());
        }
        let stem = row.get(Col::UriStem).map(spaces).unwrap_or(Cow::Borrowed(b"/"));
        let target: Cow<'_, [u8]> = match row.get(Col::UriQuery) {
            Some(q) => Cow::Owned([&stem[..], b"?", q].concat()),
            None => stem,
        };
        let client = match row.get(Col::Forwarded).and_then(forwarded_for) {
            Some(f) => Some(Cow::Borrowed(f)),
            None => row.get(Col::ClientIp).map(Cow::Borrowed),
        };
        let l = HttpLine {
            time: Some(time),
            method,
            target: &target,
            status,
            bytes: None,
            duration_ms,
            depth: row.get(Col::Depth).and_then(Depth::parse),
            host: host.map(Cow::Borrowed),
            client_ip: client,
            user,
            user_agent: row.get(Col::UserAgent).map(spaces),
            api_key: None,
            destination: row.get(Col::Destination).map(Cow::Borrowed),
        };
        let mut e = http_event(&self.ctx, &mut self.agents, at, l)?;
        e.bytes = bytes_for(e.operation);
        out.push(e);
        Ok(())
    }

    fn ftp_event(&self, c: FtpCall, host: Option<&[u8]>, client: Option<&[u8]>) -> Result<CallEvent> {
        let host = host.map(String::from_utf8_lossy);
        let account = self.ctx.account(c.line.number, host.as_deref(), c.user.as_deref())?;
        let mut e = self.ctx.event(c.line, c.time, Interface::Ftp, c.operation, account);
        e.method = Some(c.method);
        e.path = c.path;
        e.destination = c.destination;
        e.status = c.status;
        e.user = c.user;
        e.client_ip = client.map(owned);
        Ok(e)
    }
}

/// `split_once` for byte slices.
trait SplitOnceByte {
    fn split_once_byte(&self, b: u8) -> Option<(&[u8], &[u8])>;
}

impl SplitOnceByte for [u8] {
    fn split_once_byte(&self, b: u8) -> Option<(&[u8], &[u8])> {
        memchr::memchr(b, self).map(|i| (&self[..i], &self[i + 1..]))
    }
}

impl LineParser for W3cParser {
    fn format(&self) -> Format {
        Format::W3c
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<()> {
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(());
        }
        if line[0] == b'#' {
            self.directive(line);
            return Ok(());
        }
        self.data(at, line, out)
    }

    fn finish(&mut self, out: &mut Vec<CallEvent>) {
        let mut sessions: Vec<_> = self.sessions.drain().collect();
        sessions.sort_by(|a, b| a.0.cmp(&b.0));
        for (key, mut s) in sessions {
            let mut calls = Vec::new();
            s.flush(&mut calls);
            for c in calls {
                let client = key.parse::<std::net::IpAddr>().ok().map(|_| key.as_bytes());
                if let Ok(mut e) = self.ftp_event(c, None, client) {
                    self.ctx.overrides(&mut e);
                    out.push(e);
                }
            }
        }
    }

    fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{id, ops, run, run_errors, utc};
    use chrono::DateTime;
    use proptest::prelude::*;

    const WEB: &str = "\
#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2024-01-15 10:00:00
#Fields: date time s-ip cs-method cs-uri-stem cs-uri-query s-port cs-username c-ip cs(User-Agent) cs(Referer) sc-status sc-substatus sc-win32-status time-taken
2024-01-15 10:00:01 10.0.0.5 GET /api/rest/v1/folders/My+Docs per_page=100&cursor=c9 443 - 203.0.113.9 Mozilla/5.0+(Windows+NT+10.0;+Win64;+x64) - 200 0 0 15
2024-01-15 10:00:02 10.0.0.5 PROPFIND /dav/reports/ - 443 ACME\\alice 2001:db8::9 Microsoft-WebDAV-MiniRedir/10.0.19045 - 207 0 0 3
#Software: Microsoft Internet Information Services 10.0
#Version: 1.0
#Date: 2024-01-15 11:00:00
#Fields: time cs-method cs-uri-stem sc-status sc-bytes cs-bytes cs(Depth)
11:00:03 PUT /dav/reports/q1.csv 201 0 2048 -
11:00:04 PROPFIND /dav/reports/q1.csv 207 512 0 0
";

    #[test]
    fn iis_web_with_fields_changing_mid_file() {
        let events = run(Format::W3c, WEB);
        assert_eq!(
            ops(&events),
            vec![
                (Operation::List, Some("/My Docs")),
                (Operation::List, Some("/reports/")),
                (Operation::Write, Some("/reports/q1.csv")),
                (Operation::Stat, Some("/reports/q1.csv")),
            ]
        );
        let e = &events[0];
        assert_eq!((e.id.as_str(), e.time), (id(WEB, 5).as_str(), utc("2024-01-15T10:00:01Z")));
        assert_eq!((e.interface, e.cursor.as_deref(), e.duration_ms), (Interface::Web, Some("c9"), Some(15.0)));
        assert_eq!(e.user_agent.as_deref(), Some("Mozilla/5.0 (Windows NT 10.0; Win64; x64)"));
        let e = &events[1];
        assert_eq!(
            (e.interface, e.user.as_deref(), e.client_ip.as_deref()),
            (Interface::Webdav, Some("ACME\\alice"), Some("2001:db8::9"))
        );
        // The second #Fields: no date column (the #Date day is used), bytes by direction.
        let e = &events[2];
        assert_eq!(
            (e.time, e.bytes, e.status, e.id.as_str()),
            (utc("2024-01-15T11:00:03Z"), Some(2048), Some(201), id(WEB, 11).as_str())
        );
        assert_eq!(events[3].bytes, Some(512));
    }

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
    fn bad_lines() {
        let (_, errors) = run_errors(Format::W3c, "2024-01-15 10:00:01 GET /\n#Fields: date time cs-method\n2024-01-15 10:00:01 GET\n2024-01-15 10:00:01 GET / extra\n2024-01-32 10:00:01 GET\n- 10:00:01 GET\n");
        let got: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            vec![
                "line 1: line: no #Fields directive before this line",
                "line 4: line: 5 values for 3 #Fields columns",
                "line 5: time: not a w3c date and time: \"2024-01-32\" \"10:00:01\"",
                "line 6: date: no date column and no #Date directive",
            ]
        );
    }

    proptest! {
        #[test]
        fn generated_lines_parse_back(
            secs in 0i64..4_000_000_000, name in "[a-zA-Z0-9 ._()-]{1,16}", status in 100u64..600,
            sc in any::<u32>(), taken in 0u32..100_000, del in any::<bool>(),
        ) {
            let time = DateTime::from_timestamp(secs, 0).unwrap();
            let stem = format!("/api/rest/v1/files/{}", name.replace(' ', "+"));
            let method = if del { "DELETE" } else { "GET" };
            let log = format!(
                "#Fields: date time cs-method cs-uri-stem cs-uri-query sc-status sc-bytes cs-bytes time-taken\n{} {method} {stem} - {status} {sc} 7 {taken}\n",
                time.format("%Y-%m-%d %H:%M:%S"),
            );
            let e = run(Format::W3c, &log).pop().unwrap();
            prop_assert_eq!(e.time, time);
            prop_assert_eq!(e.operation, if del { Operation::Delete } else { Operation::Read });
            prop_assert_eq!(e.path, Some(format!("/{name}")));
            prop_assert_eq!(e.status, Some(status as i64));
            prop_assert_eq!(e.bytes, Some(if del { 7 } else { u64::from(sc) }));
            prop_assert_eq!(e.duration_ms, Some(f64::from(taken)));
        }
    }
}
