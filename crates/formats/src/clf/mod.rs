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
//! The client field (`%h`, `$remote_addr`) may hold an X-Forwarded-For list
//! (`10.0.0.2, 10.0.0.1, 127.0.0.1 - - [` or quoted, perhaps followed by the
//! proxy's address): the client is its first address, the user the field
//! after the ident. A line may start with the virtual host (Apache's
//! `vhost_combined`, `%v:%p %h %l %u %t …`, Debian's
//! `other_vhosts_access.log`; nginx formats that put `$host` first): the
//! `vhost-combined` format reads every line so, and the Common and Combined
//! reader a line whose fields read so (`- USER` after the client). The
//! virtual host is the host for `--account-from host`.
//!
//! Every request line is a call (DESIGN §5). A line whose request never
//! was (`"-"` with 408, an empty request line, TLS or other bytes that are
//! not `METHOD TARGET`) is not: it is a non-call of kind `no_request`.

mod head;

pub(crate) use head::{parse_clf_head, Vhost};

use crate::classify::{Depth, UaCache};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::http::{forwarded_for, http_event, split_request, HttpLine};
use crate::text::{is_blank, parse_f64, parse_seconds_as_ms, quoted_field, token, trim_eol, unescape, ClfTimes};
use crate::{Format, LineIs, LineParser, NonCall, SourceLine};
use callmeter_model::CallEvent;
use std::borrow::Cow;

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

/// The reader of Common and Combined logs, with or without a virtual host first.
#[derive(Debug)]
pub struct ClfParser {
    format: Format,
    vhost: Vhost,
    ctx: Context,
    agents: UaCache,
    times: ClfTimes,
}

impl ClfParser {
    /// A reader; `format` is [`Format::Common`] or [`Format::Combined`] (both
    /// read either, and a line that starts with a virtual host), or
    /// [`Format::VhostCombined`] (every line starts with one).
    pub fn new(format: Format, ctx: Context) -> ClfParser {
        let vhost = if format == Format::VhostCombined { Vhost::Yes } else { Vhost::Auto };
        ClfParser { format, vhost, ctx, agents: UaCache::default(), times: ClfTimes::default() }
    }

    /// Reads one line: `Ok(Ok(call))`, or `Ok(Err(kind))` for a line that is
    /// not a call (blank, or a request that never was).
    pub fn parse(&mut self, at: SourceLine, line: &[u8]) -> Result<Result<CallEvent, NonCall>> {
        let mut out = Vec::with_capacity(1);
        Ok(match self.read(at, line, &mut out)? {
            LineIs::Call => Ok(out.pop().expect("a call")),
            LineIs::NonCall(kind) => Err(kind),
        })
    }

    /// [`ClfParser::parse`], pushing the call: a call (hundreds of bytes)
    /// handed back through nested results was copied at every level.
    fn read(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        let line_no = at.number;
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(NonCall::Blank.into());
        }
        let head = parse_clf_head(line_no, line, &mut self.times, self.vhost)?;
        let trailing = parse_trailing(line_no, head.rest)?;
        // `"-"` (a connection closed before its request, 408), `""`, TLS
        // bytes sent to a plain port: no request was made (DESIGN §5).
        let Some((method, target)) = split_request(&head.request) else { return Ok(NonCall::NoRequest.into()) };
        let client = trailing.forwarded.unwrap_or(Cow::Borrowed(head.client()));
        let host = head.vhost.or(trailing.host);
        let l = HttpLine {
            time: Some(head.time),
            method: Some(method),
            target,
            status: head.status,
            bytes: head.bytes,
            duration_ms: trailing.duration_ms,
            depth: trailing.depth,
            host: host.map(Cow::Borrowed),
            client_ip: Some(client),
            user: Some(Cow::Borrowed(head.user)),
            user_agent: trailing.user_agent,
            api_key: None,
            destination: None,
        };
        http_event(&self.ctx, &mut self.agents, at, l, out)?;
        Ok(LineIs::Call)
    }
}

impl LineParser for ClfParser {
    fn format(&self) -> Format {
        self.format
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        self.read(at, line, out)
    }

    fn context_mut(&mut self) -> &mut Context {
        &mut self.ctx
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{at, id, non_calls, one, run, run_errors, run_with, utc};
    use callmeter_model::{Interface, Operation};
    use chrono::DateTime;
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
    fn requests_that_never_were_are_not_calls() {
        let log = concat!(
            "10.0.0.1 - - [15/Jan/2024:10:00:01 +0000] \"-\" 408 0 \"-\" \"-\"\n",
            "10.0.0.1 - - [15/Jan/2024:10:00:01 +0000] \"\\x16\\x03\\x01\\x02\" 400 157 \"-\" \"-\"\n",
            "10.0.0.1 - - [15/Jan/2024:10:00:01 +0000] \"\" 400 0 \"-\" \"-\"\n",
            "\n",
            "10.0.0.1 - - [15/Jan/2024:10:00:02 +0000] \"OPTIONS * HTTP/1.1\" 200 0\r\n",
            "10.0.0.1 - - [15/Jan/2024:10:00:03 +0000] \"GET /x HTTP/1.1\" 408 0\n",
            "10.0.0.1 - - [15/Jan/2024:10:00:04 +0000] \"PRI * HTTP/2.0\" 400 0 \"-\" \"-\"\n",
        );
        let events = run(Format::Combined, log);
        assert_eq!(events.len(), 2, "OPTIONS and a GET that timed out are requests");
        assert_eq!(events[0].id, id(log, 5));
        use NonCall::*;
        let kinds = non_calls(Format::Combined, log);
        assert_eq!(
            kinds,
            [Some(NoRequest), Some(NoRequest), Some(NoRequest), Some(Blank), None, None, Some(NoRequest)]
        );
    }

    #[test]
    fn forwarded_lists_in_the_client_field() {
        // As nginx logs them when $remote_addr is fed from X-Forwarded-For (Filebeat's nginx fixtures).
        let cases = [
            ("10.0.0.2, 10.0.0.1, 127.0.0.1 - - [", "10.0.0.2", None),
            ("\"10.5.102.222, 199.96.1.1, 204.246.1.1\" 10.2.1.185 - - [", "10.5.102.222", None),
            (
                "2a03:0000:10ff:f00f:0000:0000:0:8000, 10.225.192.17 10.2.2.121 - - [",
                "2a03:0000:10ff:f00f:0000:0000:0:8000",
                None,
            ),
            ("localhost, localhost - bob [", "localhost", Some("bob")),
            ("203.0.113.9 - bob smith [", "203.0.113.9", Some("bob smith")),
        ];
        for (prefix, client, user) in cases {
            let line = format!("{prefix}15/Jan/2024:10:00:01 +0000] \"GET /x HTTP/1.1\" 200 1 \"-\" \"curl/8\"");
            let e = one(Format::Combined, &line);
            assert_eq!((e.client_ip.as_deref(), e.user.as_deref()), (Some(client), user), "{line}");
        }
    }

    #[test]
    fn the_virtual_host_first() {
        let ctx = Context { accounts: crate::AccountRule::Host, ..crate::testutil::ctx() };
        let log = concat!(
            "acme.files.example.com:443 203.0.113.9 - alice [15/Jan/2024:10:00:01 +0000] \"GET /api/rest/v1/folders/in HTTP/1.1\" 200 512 \"-\" \"curl/8.5.0\"\n",
            "globex.example.com 10.0.0.2, 10.0.0.1, 127.0.0.1 - - [15/Jan/2024:10:00:02 +0000] \"GET /x HTTP/1.1\" 200 5 \"-\" \"-\"\n",
            "globex.example.com:80 unix: - - [15/Jan/2024:10:00:03 +0100] \"hello\" 400 173 \"-\" \"-\"\n",
        );
        for format in [Format::VhostCombined, Format::Combined] {
            let (events, errors) = run_with(&mut ClfParser::new(format, ctx.clone()), log);
            assert!(errors.is_empty(), "{errors:?}");
            let got: Vec<_> =
                events.iter().map(|e| (e.account.as_str(), e.client_ip.as_deref(), e.user.as_deref())).collect();
            assert_eq!(got, [("acme", Some("203.0.113.9"), Some("alice")), ("globex", Some("10.0.0.2"), None)]);
            assert_eq!(events[0].operation, Operation::List);
        }
        // A user name with a space is not a virtual host.
        let e = one(Format::Combined, "1.2.3.4 - bob smith [15/Jan/2024:10:00:01 +0000] \"GET / HTTP/1.1\" 200 1");
        assert_eq!((e.client_ip.as_deref(), e.user.as_deref()), (Some("1.2.3.4"), Some("bob smith")));
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
