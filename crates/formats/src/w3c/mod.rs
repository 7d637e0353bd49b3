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
//! changes them from the next line on. Values are separated by spaces (runs
//! of them, and tabs, as other writers use: IIS Advanced Logging, Oracle Web
//! Cache) and may be quoted (`"Mozilla/5.0 (X11)"`, a doubled `""` inside);
//! IIS writes a space inside a value as `+`, and `-` for no value. Times are
//! UTC (`date`, `time`), or local and read in `--timezone` (`date-local`,
//! `time-local`), less a `#GMT-Offset` directive's offset when there is one.
//! When there is no date column, the `#Date` directive's day is used.
//!
//! A line is FTP when the site is `FTPSVC…` or `MSFTPSVC…`, the columns
//! include `x-session`, or the method is an FTP command, an IIS FTP event
//! (`ControlChannelOpened`…) or carries the session number of IIS 4–6
//! (`[3]sent`, `[2]USER`). FTP lines follow the FTP rules (only file
//! operations are calls, RNFR+RNTO is one move, USER/PASS one login, QUIT
//! and the channel events housekeeping), with sessions told apart by
//! `x-session`, the `[N]` session number, or the client address, and the path
//! from `x-fullpath` when logged. IIS 4–6 name transfers by what happened:
//! `sent` → `RETR` (read), `created` → `STOR` and `appended` → `APPE`
//! (write), `deleted` → `DELE` (delete). Every other line is an HTTP
//! request, classified as the access-log readers do; one without a method
//! records no request (a non-call of kind `no_request`). Columns read,
//! besides those above: `cs-uri` (the target with its query), `sc-bytes`
//! (`bytes`), `cs-bytes`, `time-taken` (`TimeTakenMS`), `cs-host`,
//! `s-sitename`, `c-auth-id`, and the custom `cs(Depth)`, `cs(Destination)`,
//! `cs(X-Forwarded-For)` (or IIS 8.5's custom field `X-Forwarded-For`: its
//! first address is the client, as in the access logs), `cs(Host)`.
//!
//! A Windows Firewall log is W3C too (`#Software: Microsoft Windows
//! Firewall`); it records no API requests, so its lines are `no_request`
//! non-calls (and `--format auto` refuses it).

mod columns;
mod ftp;

use crate::classify::{Depth, UaCache};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::ftp::{is_ftp_verb, FtpSession};
use crate::http::{forwarded_for, http_event, HttpLine};
use crate::text::{is_blank, parse_u64, parse_w3c_time, quote, trim_eol};
use crate::{Format, LineIs, LineParser, NonCall, SourceLine};
use callmeter_model::{CallEvent, Operation};
use chrono::NaiveDateTime;
use columns::{column, parse_offset, spaces, values, Col, Row};
use ftp::{session_prefix, FtpLine, IIS_FTP_EVENTS};
use std::borrow::Cow;
use std::collections::HashMap;

/// The reader of W3C Extended logs.
#[derive(Debug)]
pub struct W3cParser {
    ctx: Context,
    agents: UaCache,
    columns: Vec<Col>,
    date: Option<Vec<u8>>,
    /// `#GMT-Offset`, in seconds east of UTC: the times are local to it.
    gmt_offset: Option<i64>,
    /// The log is a Windows Firewall's: no line of it is a request.
    firewall: bool,
    sessions: HashMap<String, FtpSession>,
}

impl W3cParser {
    /// A reader.
    pub fn new(ctx: Context) -> W3cParser {
        W3cParser {
            ctx,
            agents: UaCache::default(),
            columns: Vec::new(),
            date: None,
            gmt_offset: None,
            firewall: false,
            sessions: HashMap::new(),
        }
    }

    fn directive(&mut self, line: &[u8]) {
        let Some(i) = memchr::memchr(b':', line) else { return };
        let (name, value) = (&line[1..i], line[i + 1..].trim_ascii());
        if name.eq_ignore_ascii_case(b"Fields") {
            let text = String::from_utf8_lossy(value);
            self.columns = text.split_ascii_whitespace().map(column).collect();
        } else if name.eq_ignore_ascii_case(b"Date") {
            self.date = value.get(..10).map(<[u8]>::to_vec);
        } else if name.eq_ignore_ascii_case(b"GMT-Offset") {
            self.gmt_offset = parse_offset(value);
        } else if name.eq_ignore_ascii_case(b"Software") {
            self.firewall = value.starts_with(b"Microsoft Windows Firewall");
        }
    }

    /// The line's time: UTC columns, or local ones read in `--timezone`, less any `#GMT-Offset`.
    fn time(&self, line_no: u64, row: &Row<'_>) -> Result<chrono::DateTime<chrono::Utc>> {
        let local = row.get(Col::TimeLocal).is_some() && row.get(Col::Time).is_none();
        let (date_col, time_col) = if local { (Col::DateLocal, Col::TimeLocal) } else { (Col::Date, Col::Time) };
        let date = row
            .get(date_col)
            .or(self.date.as_deref())
            .ok_or_else(|| Error::line(line_no, "date", "no date column and no #Date directive"))?;
        let time_v = row.get(time_col).ok_or_else(|| Error::line(line_no, "time", "missing"))?;
        let utc = parse_w3c_time(date, time_v).ok_or_else(|| {
            Error::line(line_no, "time", format!("not a w3c date and time: {} {}", quote(date), quote(time_v)))
        })?;
        let t = if local {
            let naive: NaiveDateTime = utc.naive_utc();
            self.ctx.local(line_no, "time", naive)?
        } else {
            utc
        };
        Ok(match self.gmt_offset {
            Some(off) => t - chrono::Duration::seconds(off),
            None => t,
        })
    }

    fn data(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let line_no = at.number;
        if self.columns.is_empty() {
            return Err(Error::line(line_no, "line", "no #Fields directive before this line"));
        }
        let mut row = Row::default();
        let mut n = 0;
        for v in values(line) {
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
        let time = self.time(line_no, &row)?;
        if self.firewall {
            return Ok(NonCall::NoRequest.into());
        }
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
        let raw_method = row.get(Col::Method);
        let (numbered, method) = match raw_method.and_then(session_prefix) {
            Some((n, m)) => (Some(n), Some(m)),
            None => (None, raw_method),
        };
        let site_is_ftp = row.get(Col::SiteName).is_some_and(|s| {
            let s = s.strip_prefix(b"MS").or_else(|| s.strip_prefix(b"ms")).unwrap_or(s);
            s.len() >= 6 && s[..6].eq_ignore_ascii_case(b"FTPSVC")
        });
        let is_ftp = site_is_ftp
            || numbered.is_some()
            || self.columns.contains(&Col::Session)
            || method.is_some_and(|m| is_ftp_verb(m) || IIS_FTP_EVENTS.iter().any(|e| e.eq_ignore_ascii_case(m)));
        let user = row.get(Col::Username).map(spaces);
        let host = row.get(Col::Host);
        if is_ftp {
            let line = FtpLine { at, time, status, method, numbered, user, host, duration_ms, sc_bytes, cs_bytes };
            return self.ftp_line(&row, line, out);
        }
        let Some(method) = method else { return Ok(NonCall::NoRequest.into()) };
        let target: Cow<'_, [u8]> = match (row.get(Col::UriStem), row.get(Col::Uri)) {
            (Some(stem), _) => {
                let stem = spaces(stem);
                match row.get(Col::UriQuery) {
                    Some(q) => Cow::Owned([&stem[..], b"?", q].concat()),
                    None => stem,
                }
            }
            (None, Some(uri)) => Cow::Borrowed(uri),
            (None, None) => Cow::Borrowed(b"/"),
        };
        let client = match row.get(Col::Forwarded).and_then(forwarded_for) {
            Some(f) => Some(Cow::Borrowed(f)),
            None => row.get(Col::ClientIp).map(Cow::Borrowed),
        };
        let l = HttpLine {
            time: Some(time),
            method: Some(method),
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
        http_event(&self.ctx, &mut self.agents, at, l, out)?;
        let e = out.last_mut().expect("the event just pushed");
        e.bytes = bytes_for(e.operation);
        Ok(LineIs::Call)
    }
}

impl LineParser for W3cParser {
    fn format(&self) -> Format {
        Format::W3c
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(NonCall::Blank.into());
        }
        if line[0] == b'#' {
            self.directive(line);
            return Ok(NonCall::Directive.into());
        }
        self.data(at, line, out)
    }

    fn finish(&mut self, out: &mut Vec<CallEvent>) {
        self.flush_sessions(out);
    }

    fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{id, non_calls, ops, run, run_errors, utc};
    use callmeter_model::Interface;
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

    #[test]
    fn other_writers_quote_pad_and_use_local_times() {
        // IIS Advanced Logging (lnav's test log): runs of spaces, quoted values, local times.
        let log = concat!(
            "#Software: IIS Advanced Logging Module\n",
            "\n",
            "#Fields:   date-local time-local   s-ip   cs-method cs-uri-stem cs-uri-query c-ip cs(User-Agent) sc-status TimeTakenMS\n",
            "2012-08-15 17:00:00.660 10.10.28.140 GET /api/rest/v1/files/a - \"70.95.0.0\" \"Mozilla/5.0 (X11) \"\"q\"\"\" 301 7 \n",
        );
        let ctx = crate::testutil::ctx().with_timezone("America/Chicago".parse().unwrap());
        let (events, errors) = crate::testutil::run_with(&mut W3cParser::new(ctx), log);
        assert!(errors.is_empty(), "{errors:?}");
        let e = &events[0];
        assert_eq!(
            (e.time, e.operation, e.path.as_deref()),
            (utc("2012-08-15T22:00:00.660Z"), Operation::Read, Some("/a"))
        );
        assert_eq!((e.client_ip.as_deref(), e.duration_ms), (Some("70.95.0.0"), Some(7.0)));
        // Oracle Web Cache: #GMT-Offset, cs-uri with its query, c-auth-id.
        let log = "#GMT-Offset: -0800\n#Fields:  c-ip  c-auth-id  date  time  cs-method  cs-uri  sc-status  bytes\n64.103.37.2      DMS.user      2001-10-31     00:00:18      GET      /api/rest/v1/folders/x?cursor=c1    200     350\n";
        let e = run(Format::W3c, log).pop().unwrap();
        assert_eq!(
            (e.time, e.operation, e.cursor.as_deref()),
            (utc("2001-10-31T08:00:18Z"), Operation::List, Some("c1"))
        );
        assert_eq!((e.user.as_deref(), e.bytes), (Some("DMS.user"), Some(350)));
    }

    #[test]
    fn x_forwarded_for_names_the_client_whatever_the_field_is_called() {
        for field in ["X-Forwarded-For", "cs(X-Forwarded-For)"] {
            let log = format!(
                "#Fields: date time cs-method cs-uri-stem c-ip sc-status {field}\n\
                 2026-12-01 10:00:01 GET /x 10.0.0.1 200 198.51.100.7,+10.0.0.2\n\
                 2026-12-01 10:00:02 GET /x 10.0.0.1 200 -\n\
                 2026-12-01 10:00:03 GET /x 10.0.0.1 200 unknown\n"
            );
            let clients: Vec<_> = run(Format::W3c, &log).into_iter().map(|e| e.client_ip).collect();
            let want = [Some("198.51.100.7"), Some("10.0.0.1"), Some("10.0.0.1")].map(|c| c.map(String::from));
            assert_eq!(clients, want, "{field}");
        }
    }

    #[test]
    fn lines_that_are_not_calls() {
        use NonCall::*;
        let log = "#Fields: date time cs-method cs-uri-stem sc-status\n\n2024-01-15 10:00:01 - - 400\n2024-01-15 10:00:02 GET /x 200\n";
        assert_eq!(non_calls(Format::W3c, log), [Some(Directive), Some(Blank), Some(NoRequest), None]);
        // A Windows Firewall log (plaso's test data) read as W3C: no line is a request.
        let firewall = "#Version: 1.5\n#Software: Microsoft Windows Firewall\n#Time Format: Local\n#Fields: date time action protocol src-ip dst-ip src-port dst-port size tcpflags tcpsyn tcpack tcpwin icmptype icmpcode info path\n2005-04-11 08:05:57 DROP UDP 123.45.78.90 123.156.78.255 137 137 78 - - - - - - - RECEIVE\n";
        assert!(run(Format::W3c, firewall).is_empty());
        assert_eq!(non_calls(Format::W3c, firewall)[4], Some(NoRequest));
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
