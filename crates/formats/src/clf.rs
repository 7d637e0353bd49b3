//! Apache and nginx access logs: Common and Combined Log Format, with
//! optional trailing fields.
//!
//! ```text
//! %h %l %u %t "%r" %>s %b ["%{Referer}i" "%{User-Agent}i"] [trailing…]
//! 203.0.113.9 - alice [15/Jan/2024:10:00:01 +0000] "GET /api/rest/v1/folders/in HTTP/1.1" 200 512 "-" "curl/8.5.0" 0.012 "1" acme.files.example.com
//! ```
//!
//! The trailing fields may each be left out; they are told apart by shape:
//!
//! - an unquoted number is the request time: with a decimal point it is in
//!   seconds (nginx `$request_time`), without one in microseconds (Apache `%D`);
//! - `0`, `1` or `infinity`, quoted or not (unquoted only after a request
//!   time), is the WebDAV `Depth` header;
//! - a quoted list of IP addresses is `X-Forwarded-For`: its first address
//!   is the real client;
//! - any other unquoted word is the host name (`%{Host}i`, `$host`), for
//!   `--account-from host`.
//!
//! The shipped formats that give all of them:
//!
//! ```text
//! LogFormat "%h %l %u %t \"%r\" %>s %b \"%{Referer}i\" \"%{User-Agent}i\" %D \"%{Depth}i\" %{Host}i" callmeter
//! log_format callmeter '$remote_addr - $remote_user [$time_local] "$request" $status $body_bytes_sent '
//!                      '"$http_referer" "$http_user_agent" $request_time "$http_depth" $host';
//! ```
//!
//! Every line is a call (DESIGN §5), a request line that is not one (`"-"`,
//! TLS bytes sent to a plain port) included: it has no method and is `other`.

use crate::classify::{Depth, UaCache};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::http::{forwarded_for, http_event, split_request, HttpLine};
use crate::text::{
    is_blank, parse_f64, parse_seconds_as_ms, parse_u64, quote, quoted_field, token, trim_eol, unescape, ClfTimes,
};
use crate::{Format, LineParser, SourceLine};
use callmeter_model::CallEvent;
use chrono::{DateTime, Utc};
use memchr::memchr;
use std::borrow::Cow;

/// The CLF fields every CLF-like log starts with.
#[derive(Debug)]
pub(crate) struct ClfHead<'a> {
    pub host: &'a [u8],
    pub user: &'a [u8],
    pub time: DateTime<Utc>,
    pub request: Cow<'a, [u8]>,
    pub status: Option<i64>,
    pub bytes: Option<u64>,
    /// What follows `%b`, leading space included.
    pub rest: &'a [u8],
}

/// Reads `%h %l %u %t "%r" %s %b`.
pub(crate) fn parse_clf_head<'a>(line_no: u64, line: &'a [u8], times: &mut ClfTimes) -> Result<ClfHead<'a>> {
    let (host, rest) = token(line);
    if host.is_empty() {
        return Err(Error::line(line_no, "host", "missing"));
    }
    let (_ident, rest) = token(rest);
    // The user runs to the ` [` of the time: it may hold spaces.
    let open = memchr(b'[', rest).ok_or_else(|| Error::line(line_no, "time", "no [time]"))?;
    let user = rest[..open].strip_suffix(b" ").unwrap_or(&rest[..open]);
    let rest = &rest[open + 1..];
    let close = memchr(b']', rest).ok_or_else(|| Error::line(line_no, "time", "no closing ]"))?;
    let time = times.parse(&rest[..close]).ok_or_else(|| {
        Error::line(line_no, "time", format!("not a clf time (10/Oct/2000:13:55:36 -0700): {}", quote(&rest[..close])))
    })?;
    let rest = &rest[close + 1..];
    let rest = rest.strip_prefix(b" \"").ok_or_else(|| Error::line(line_no, "request", "no quoted request"))?;
    let (end, escaped) = quoted_field(rest, 0).ok_or_else(|| Error::line(line_no, "request", "no closing quote"))?;
    let request = if escaped { unescape(&rest[..end]) } else { Cow::Borrowed(&rest[..end]) };
    let rest = rest[end + 1..].strip_prefix(b" ").ok_or_else(|| Error::line(line_no, "status", "missing"))?;
    let (status, rest) = token(rest);
    let status = match status {
        b"-" => None,
        s => Some(
            parse_u64(s)
                .filter(|s| *s < 1000)
                .ok_or_else(|| Error::line(line_no, "status", format!("not a status code: {}", quote(s))))?
                as i64,
        ),
    };
    let (bytes, rest_after) = match memchr(b' ', rest) {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, &b""[..]),
    };
    let bytes = match bytes {
        b"-" => None,
        b => {
            Some(parse_u64(b).ok_or_else(|| Error::line(line_no, "bytes", format!("not a byte count: {}", quote(b))))?)
        }
    };
    Ok(ClfHead { host, user, time, request, status, bytes, rest: rest_after })
}

/// The optional fields after `%b`.
#[derive(Debug, Default)]
struct Trailing<'a> {
    user_agent: Option<Cow<'a, [u8]>>,
    duration_ms: Option<f64>,
    depth: Option<Depth>,
    host: Option<&'a [u8]>,
    forwarded: Option<Cow<'a, [u8]>>,
}

fn parse_trailing(line_no: u64, mut s: &[u8]) -> Result<Trailing<'_>> {
    let mut t = Trailing::default();
    let mut quoted = 0;
    loop {
        s = s.trim_ascii_start();
        if s.is_empty() {
            return Ok(t);
        }
        if s[0] == b'"' {
            let (end, escaped) =
                quoted_field(s, 1).ok_or_else(|| Error::line(line_no, "line", "unterminated quoted field"))?;
            let raw = &s[1..end];
            s = &s[end + 1..];
            if let Some(d) = Depth::parse(raw).filter(|_| t.depth.is_none()) {
                t.depth = Some(d);
                continue;
            }
            match quoted {
                0 => {} // Referer: not part of a call event.
                1 => t.user_agent = Some(if escaped { unescape(raw) } else { Cow::Borrowed(raw) }),
                _ => {
                    if t.forwarded.is_none() {
                        t.forwarded = forwarded_for(raw).map(Cow::Borrowed);
                    }
                }
            }
            quoted += 1;
        } else {
            let (word, rest) = token(s);
            s = rest;
            if t.duration_ms.is_none() && t.depth.is_none() && t.host.is_none() {
                // `%T` with a fraction is seconds (nginx `$request_time`),
                // a bare integer is Apache's `%D` microseconds.
                let ms = if word.contains(&b'.') {
                    parse_seconds_as_ms(word)
                } else {
                    parse_f64(word).map(|us| us / 1000.0)
                };
                if let Some(ms) = ms {
                    t.duration_ms = Some(ms);
                    continue;
                }
            }
            if t.depth.is_none() && t.host.is_none() {
                if let Some(d) = Depth::parse(word) {
                    t.depth = Some(d);
                    continue;
                }
            }
            if t.host.is_none() && word != b"-" {
                t.host = Some(word);
            }
        }
    }
}

/// The reader of Common and Combined logs.
#[derive(Debug)]
pub struct ClfParser {
    format: Format,
    ctx: Context,
    agents: UaCache,
    times: ClfTimes,
}

impl ClfParser {
    /// A reader; `format` is [`Format::Common`] or [`Format::Combined`] (both read either).
    pub fn new(format: Format, ctx: Context) -> ClfParser {
        ClfParser { format, ctx, agents: UaCache::default(), times: ClfTimes::default() }
    }

    /// Reads one line into its call.
    pub fn parse(&mut self, at: SourceLine, line: &[u8]) -> Result<Option<CallEvent>> {
        let line_no = at.number;
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(None);
        }
        let head = parse_clf_head(line_no, line, &mut self.times)?;
        let trailing = parse_trailing(line_no, head.rest)?;
        let (method, target) = match split_request(&head.request) {
            Some((m, t)) => (Some(m), t),
            None => (None, &b""[..]),
        };
        let client = trailing.forwarded.unwrap_or(Cow::Borrowed(head.host));
        let l = HttpLine {
            time: Some(head.time),
            method,
            target,
            status: head.status,
            bytes: head.bytes,
            duration_ms: trailing.duration_ms,
            depth: trailing.depth,
            host: trailing.host.map(Cow::Borrowed),
            client_ip: Some(client),
            user: Some(Cow::Borrowed(head.user)),
            user_agent: trailing.user_agent,
            api_key: None,
            destination: None,
        };
        http_event(&self.ctx, &mut self.agents, at, l).map(Some)
    }
}

impl LineParser for ClfParser {
    fn format(&self) -> Format {
        self.format
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<()> {
        if let Some(e) = self.parse(at, line)? {
            out.push(e);
        }
        Ok(())
    }

    fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{at, id, one, run, run_errors, utc};
    use callmeter_model::{Interface, Operation};
    use proptest::prelude::*;

    #[test]
    fn apache_documentation_examples() {
        let line = r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#;
        let e = one(Format::Common, line);
        assert_eq!(e.id, id(line, 1));
        assert_eq!(e.account, "acme");
        assert_eq!(e.time, utc("2000-10-10T20:55:36Z"));
        assert_eq!((e.interface, e.operation), (Interface::Rest, Operation::Other));
        assert_eq!((e.method.as_deref(), e.path.as_deref()), (Some("GET"), Some("/apache_pb.gif")));
        assert_eq!((e.status, e.bytes), (Some(200), Some(2326)));
        assert_eq!((e.user.as_deref(), e.client_ip.as_deref()), (Some("frank"), Some("127.0.0.1")));
        let e = one(
            Format::Combined,
            r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326 "http://www.example.com/start.html" "Mozilla/4.08 [en] (Win98; I ;Nav)""#,
        );
        assert_eq!(e.user_agent.as_deref(), Some("Mozilla/4.08 [en] (Win98; I ;Nav)"));
        assert_eq!(e.interface, Interface::Web);
    }

    #[test]
    fn nginx_combined_with_rest_calls() {
        let log = r#"203.0.113.9 - - [15/Jan/2024:10:00:01 +0000] "GET /api/rest/v1/folders/in?per_page=1000&cursor=c2 HTTP/1.1" 200 5120 "-" "Files.com Python SDK v1.4""#;
        let e = one(Format::Combined, log);
        assert_eq!((e.interface, e.operation), (Interface::Sdk, Operation::List));
        assert_eq!((e.path.as_deref(), e.cursor.as_deref(), e.user.as_deref()), (Some("/in"), Some("c2"), None));
        let log = r#"203.0.113.9 - - [15/Jan/2024:10:00:02 +0000] "POST /api/rest/v1/file_actions/begin_upload/in/My%20Report%20(final).csv HTTP/2.0" 200 312 "-" "python-requests/2.31""#;
        let e = one(Format::Combined, log);
        assert_eq!((e.operation, e.path.as_deref()), (Operation::Write, Some("/in/My Report (final).csv")));
    }

    #[test]
    fn ipv6_spaces_and_escaped_quotes() {
        let log = r#"2001:db8::42 - bob smith [15/Jan/2024:10:00:01 +0100] "GET /api/rest/v1/files/a b/c d.txt HTTP/1.1" 404 - "-" "Mozilla/5.0 \"quoted\" \\ agent""#;
        let e = one(Format::Combined, log);
        assert_eq!(e.client_ip.as_deref(), Some("2001:db8::42"));
        assert_eq!(e.user.as_deref(), Some("bob smith"));
        assert_eq!(e.path.as_deref(), Some("/a b/c d.txt"));
        assert_eq!((e.status, e.bytes), (Some(404), None));
        assert_eq!(e.user_agent.as_deref(), Some(r#"Mozilla/5.0 "quoted" \ agent"#));
        assert_eq!(e.time, utc("2024-01-15T09:00:01Z"));
        // nginx escapes quotes as \x22.
        let log = r#"::1 - - [15/Jan/2024:10:00:01 +0000] "GET /x HTTP/1.1" 200 1 "-" "a\x22b""#;
        assert_eq!(one(Format::Combined, log).user_agent.as_deref(), Some("a\"b"));
    }

    #[test]
    fn trailing_time_depth_and_host() {
        let ctx = crate::testutil::ctx();
        let ctx = Context { accounts: crate::AccountRule::Host, ..ctx };
        let mut p = ClfParser::new(Format::Combined, ctx);
        let e = p
            .parse(at(3), br#"198.51.100.7 - alice [15/Jan/2024:10:00:01 +0000] "PROPFIND /dav/reports/ HTTP/1.1" 207 900 "-" "Microsoft-WebDAV-MiniRedir/10.0.19045" 0.012 "1" Globex.files.example.com"#)
            .unwrap()
            .unwrap();
        assert_eq!(
            (e.interface, e.operation, e.path.as_deref()),
            (Interface::Webdav, Operation::List, Some("/reports/"))
        );
        assert_eq!((e.account.as_str(), e.duration_ms), ("globex", Some(12.0)));
        let e = p
            .parse(at(4), br#"198.51.100.7 - - [15/Jan/2024:10:00:01 +0000] "PROPFIND /dav/reports/a.csv HTTP/1.1" 207 900 "-" "-" 15000 0 acme.example.com"#)
            .unwrap()
            .unwrap();
        assert_eq!((e.operation, e.duration_ms, e.account.as_str()), (Operation::Stat, Some(15.0), "acme"));
        // Common with a quoted Depth only, and no host: the account cannot be resolved.
        let err = p
            .parse(at(5), br#"198.51.100.7 - - [15/Jan/2024:10:00:01 +0000] "PROPFIND /dav/ HTTP/1.1" 207 9 "0""#)
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            "line 5: account cannot be resolved: --account-from host, and the line has no host name"
        );
        // X-Forwarded-For names the real client.
        let log = r#"10.0.0.2 - - [15/Jan/2024:10:00:01 +0000] "GET /x HTTP/1.1" 200 1 "-" "curl/8" "203.0.113.50, 10.0.0.1" 0.001 acme.example.com"#;
        let e = one(Format::Combined, log);
        assert_eq!(e.client_ip.as_deref(), Some("203.0.113.50"));
    }

    #[test]
    fn every_request_line_is_a_call() {
        let log = concat!(
            "10.0.0.1 - - [15/Jan/2024:10:00:01 +0000] \"-\" 408 0 \"-\" \"-\"\n",
            "10.0.0.1 - - [15/Jan/2024:10:00:01 +0000] \"\\x16\\x03\\x01\\x02\" 400 157 \"-\" \"-\"\n",
            "\n",
            "10.0.0.1 - - [15/Jan/2024:10:00:02 +0000] \"OPTIONS * HTTP/1.1\" 200 0\r\n",
        );
        let events = run(Format::Combined, log);
        assert_eq!(events.len(), 3);
        assert_eq!((events[0].method.as_deref(), events[0].operation), (None, Operation::Other));
        assert_eq!(events[2].id, id(log, 4));
    }

    #[test]
    fn bad_lines_say_what_is_wrong() {
        let cases = [
            ("x", "line 1: time: no [time]"),
            ("1.2.3.4 - - [15/Jan/2024:10:00:01 +0000", "line 1: time: no closing ]"),
            (
                "1.2.3.4 - - [15/Jan/2024 10:00:01] \"GET / HTTP/1.1\" 200 1",
                "line 1: time: not a clf time (10/Oct/2000:13:55:36 -0700): \"15/Jan/2024 10:00:01\"",
            ),
            ("1.2.3.4 - - [15/Jan/2024:10:00:01 +0000] GET", "line 1: request: no quoted request"),
            ("1.2.3.4 - - [15/Jan/2024:10:00:01 +0000] \"GET / HTTP/1.1", "line 1: request: no closing quote"),
            ("1.2.3.4 - - [15/Jan/2024:10:00:01 +0000] \"GET / HTTP/1.1\"", "line 1: status: missing"),
            (
                "1.2.3.4 - - [15/Jan/2024:10:00:01 +0000] \"GET / HTTP/1.1\" OK 1",
                "line 1: status: not a status code: \"OK\"",
            ),
            (
                "1.2.3.4 - - [15/Jan/2024:10:00:01 +0000] \"GET / HTTP/1.1\" 200 1k",
                "line 1: bytes: not a byte count: \"1k\"",
            ),
            (
                "1.2.3.4 - - [15/Jan/2024:10:00:01 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"open",
                "line 1: line: unterminated quoted field",
            ),
        ];
        for (line, want) in cases {
            let (events, errors) = run_errors(Format::Combined, line);
            assert!(events.is_empty());
            assert_eq!(errors.len(), 1, "{line}");
            assert_eq!(errors[0].to_string(), want);
        }
    }

    fn escape_apache(s: &str) -> String {
        let mut out = String::new();
        for c in s.chars() {
            match c {
                '"' => out.push_str("\\\""),
                '\\' => out.push_str("\\\\"),
                c if c.is_ascii() && !c.is_ascii_control() => out.push(c),
                c => {
                    let mut b = [0u8; 4];
                    for byte in c.encode_utf8(&mut b).bytes() {
                        out.push_str(&format!("\\x{byte:02x}"));
                    }
                }
            }
        }
        out
    }

    fn segment() -> impl Strategy<Value = String> {
        "[a-zA-Z0-9 _.()\"\\\\ü€-]{1,12}".prop_filter("not dots", |s| s != "." && s != "..")
    }

    proptest! {
        #[test]
        fn generated_lines_parse_back(
            v6 in any::<bool>(), a in any::<u32>(), b in any::<u128>(),
            user in proptest::option::of("[a-z][a-z0-9 ._@-]{0,10}[a-z0-9]"),
            secs in 0i64..4_000_000_000, offset_min in -720i32..=840,
            dav in any::<bool>(), segs in proptest::collection::vec(segment(), 1..4),
            status in 100i64..600, bytes in proptest::option::of(0..=callmeter_model::MAX_COUNT),
            agent in 0usize..4, micros in proptest::option::of(0u64..10_000_000_000),
        ) {
            let ip = if v6 { std::net::Ipv6Addr::from(b).to_string() } else { std::net::Ipv4Addr::from(a).to_string() };
            let time = DateTime::from_timestamp(secs, 0).unwrap();
            let offset = chrono::FixedOffset::east_opt(offset_min * 60).unwrap();
            let clf_time = time.with_timezone(&offset).format("%d/%b/%Y:%H:%M:%S %z").to_string();
            let rel = segs.join("/");
            let (method, target, op, iface_path) = if dav {
                ("PROPFIND", format!("/dav/{rel}/"), Operation::List, format!("/{rel}/"))
            } else {
                ("GET", format!("/api/rest/v1/files/{rel}"), Operation::Read, format!("/{rel}"))
            };
            let agents = [("Mozilla/5.0 (X11) \"x\"", Interface::Web), ("curl/8.5.0", Interface::Sdk), ("Other\\Agent", Interface::Rest), ("-", Interface::Rest)];
            let (ua, iface) = agents[agent];
            let iface = if dav { Interface::Webdav } else { iface };
            let line = format!(
                "{ip} - {} [{clf_time}] \"{method} {} HTTP/1.1\" {status} {} \"-\" \"{}\"{}",
                user.as_deref().unwrap_or("-"),
                escape_apache(&target),
                bytes.map_or("-".to_string(), |b| b.to_string()),
                escape_apache(ua),
                micros.map_or(String::new(), |m| format!(" {m}")),
            );
            // The record, as the event it must read back as: every field.
            let want = CallEvent {
                id: id(&line, 1),
                account: "acme".into(),
                time,
                interface: iface,
                operation: op,
                method: Some(method.into()),
                path: Some(iface_path),
                destination: None,
                status: Some(status),
                api_key: None,
                user,
                client_ip: Some(ip),
                user_agent: (ua != "-").then(|| ua.to_owned()),
                integration: None,
                cursor: None,
                result_count: None,
                bytes,
                duration_ms: micros.map(|m| m as f64 / 1000.0),
            };
            prop_assert_eq!(one(Format::Combined, &line), want);
        }
    }
}
