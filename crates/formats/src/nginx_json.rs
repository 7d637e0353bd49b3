//! nginx access logs written as JSON (`log_format … escape=json`), one object per line.
//!
//! The keys are the operator's choice; these are read (the first present wins):
//!
//! | event field | keys |
//! |---|---|
//! | time | `time_iso8601`, `time_local`, `msec`, `time`, `timestamp` |
//! | client_ip | `http_x_forwarded_for` (its first address), `remote_addr`, `client_ip`, `realip_remote_addr` |
//! | user | `remote_user`, `user` |
//! | method, path | `request` (`GET /x HTTP/1.1`), or `request_method` with `request_uri` (or `uri` and `args`) |
//! | status | `status` |
//! | bytes | `body_bytes_sent`, `bytes_sent`, `bytes` |
//! | duration_ms | `request_time` (seconds), `duration_ms` |
//! | user_agent | `http_user_agent`, `user_agent` |
//! | WebDAV `Depth` | `http_depth`, `depth` |
//! | destination | `http_destination`, `destination` |
//! | host (for `--account-from host`) | `host`, `http_host`, `server_name` |
//! | api_key | `api_key` (an id or prefix the operator logs, never the secret) |
//!
//! Values may be strings (as `escape=json` writes them) or numbers.
//!
//! ```text
//! log_format callmeter escape=json '{"time_iso8601":"$time_iso8601","remote_addr":"$remote_addr",'
//!   '"remote_user":"$remote_user","request":"$request","status":$status,"body_bytes_sent":$body_bytes_sent,'
//!   '"request_time":$request_time,"http_user_agent":"$http_user_agent","http_depth":"$http_depth","host":"$host"}';
//! ```

use crate::classify::{Depth, UaCache};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::http::{forwarded_for, http_event, split_request, HttpLine};
use crate::text::{
    is_blank, parse_clf_time, parse_f64, parse_rfc3339_lenient, parse_seconds_as_ms, parse_u64, quote, trim_eol,
};
use crate::{Format, LineParser, SourceLine};
use callmeter_model::CallEvent;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The reader of nginx JSON logs.
#[derive(Debug)]
pub struct NginxJsonParser {
    ctx: Context,
    agents: UaCache,
}

/// A value as text: strings as they are, numbers written out; null and empty are absent.
fn text(v: &Value) -> Option<Cow<'_, [u8]>> {
    match v {
        Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s.as_bytes())),
        Value::Number(n) => Some(Cow::Owned(n.to_string().into_bytes())),
        _ => None,
    }
}

fn first<'a>(obj: &'a Map<String, Value>, keys: &[&str]) -> Option<Cow<'a, [u8]>> {
    keys.iter().find_map(|k| obj.get(*k).and_then(text)).filter(|v| v.as_ref() != b"-")
}

fn parse_time(v: &[u8]) -> Option<DateTime<Utc>> {
    if let Some(t) = parse_clf_time(v) {
        return Some(t);
    }
    if let Some(t) = parse_rfc3339_lenient(v) {
        return Some(t);
    }
    // `$msec`: seconds since the epoch with milliseconds.
    let secs = parse_f64(v)?;
    if !(0.0..1e11).contains(&secs) {
        return None;
    }
    DateTime::from_timestamp_millis((secs * 1000.0).round() as i64)
}

impl NginxJsonParser {
    /// A reader.
    pub fn new(ctx: Context) -> NginxJsonParser {
        NginxJsonParser { ctx, agents: UaCache::default() }
    }

    /// Reads one line into its call.
    pub fn parse(&mut self, at: SourceLine, line: &[u8]) -> Result<Option<CallEvent>> {
        let line_no = at.number;
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(None);
        }
        // nginx writes bytes above 0x7f as they are: the line need not be UTF-8.
        let obj: Map<String, Value> = match serde_json::from_slice(line) {
            Ok(o) => o,
            Err(first_err) => match serde_json::from_str(&String::from_utf8_lossy(line)) {
                Ok(o) => o,
                Err(_) => return Err(Error::line(line_no, "line", format!("not a json object: {first_err}"))),
            },
        };
        let time_raw = first(&obj, &["time_iso8601", "time_local", "msec", "time", "timestamp"])
            .ok_or_else(|| Error::line(line_no, "time", "missing (time_iso8601, time_local or msec)"))?;
        let time = parse_time(&time_raw)
            .ok_or_else(|| Error::line(line_no, "time", format!("not a time: {}", quote(&time_raw))))?;
        let request = first(&obj, &["request"]);
        let method_key = first(&obj, &["request_method"]);
        let uri = first(&obj, &["request_uri"]);
        let (uri_key, args) = (first(&obj, &["uri"]), first(&obj, &["args"]));
        let joined;
        let (method, target): (Option<&[u8]>, &[u8]) = if let Some(m) = method_key.as_deref() {
            let target = match (uri.as_deref(), uri_key.as_deref()) {
                (Some(u), _) => u,
                (None, Some(u)) => {
                    joined = match args.as_deref() {
                        Some(a) => [u, b"?", a].concat(),
                        None => u.to_vec(),
                    };
                    &joined
                }
                (None, None) => b"",
            };
            (Some(m), target)
        } else if let Some(r) = request.as_deref() {
            match split_request(r) {
                Some((m, t)) => (Some(m), t),
                None => (None, b""),
            }
        } else {
            return Err(Error::line(line_no, "request", "missing (request, or request_method and request_uri)"));
        };
        let status = match first(&obj, &["status"]) {
            None => None,
            Some(s) => Some(
                parse_u64(&s)
                    .filter(|s| *s < 1000)
                    .ok_or_else(|| Error::line(line_no, "status", format!("not a status code: {}", quote(&s))))?
                    as i64,
            ),
        };
        let bytes = match first(&obj, &["body_bytes_sent", "bytes_sent", "bytes"]) {
            None => None,
            Some(b) => Some(
                parse_u64(&b)
                    .ok_or_else(|| Error::line(line_no, "bytes", format!("not a byte count: {}", quote(&b))))?,
            ),
        };
        let duration_ms = match (first(&obj, &["request_time"]), first(&obj, &["duration_ms"])) {
            (Some(t), _) => Some(parse_seconds_as_ms(&t).ok_or_else(|| {
                Error::line(line_no, "request_time", format!("not a number of seconds: {}", quote(&t)))
            })?),
            (None, Some(d)) => parse_f64(&d),
            (None, None) => None,
        };
        let forwarded = first(&obj, &["http_x_forwarded_for"]);
        let client = match forwarded.as_deref().and_then(forwarded_for) {
            Some(f) => Some(Cow::Owned(f.to_vec())),
            None => first(&obj, &["remote_addr", "client_ip", "realip_remote_addr"]),
        };
        let l = HttpLine {
            time: Some(time),
            method,
            target,
            status,
            bytes,
            duration_ms,
            depth: first(&obj, &["http_depth", "depth"]).and_then(|d| Depth::parse(&d)),
            host: first(&obj, &["host", "http_host", "server_name"]),
            client_ip: client,
            user: first(&obj, &["remote_user", "user"]),
            user_agent: first(&obj, &["http_user_agent", "user_agent"]),
            api_key: first(&obj, &["api_key"]),
            destination: first(&obj, &["http_destination", "destination"]),
        };
        http_event(&self.ctx, &mut self.agents, at, l).map(Some)
    }
}

impl LineParser for NginxJsonParser {
    fn format(&self) -> Format {
        Format::NginxJson
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
    use crate::testutil::{at, one, run_errors, utc};
    use callmeter_model::{Interface, Operation};
    use proptest::prelude::*;

    #[test]
    fn a_documented_line() {
        let line = r#"{"time_iso8601":"2024-01-15T10:00:01+01:00","remote_addr":"2001:db8::7","remote_user":"","request":"GET /api/rest/v1/folders/in%20box?cursor=abc HTTP/1.1","status":"200","body_bytes_sent":"5120","request_time":"0.034","http_user_agent":"Mozilla/5.0 \"Quoted\" (X11)","http_depth":"","host":"acme.files.example.com"}"#;
        let e = one(Format::NginxJson, line);
        assert_eq!(e.time, utc("2024-01-15T09:00:01Z"));
        assert_eq!((e.interface, e.operation), (Interface::Web, Operation::List));
        assert_eq!((e.path.as_deref(), e.cursor.as_deref()), (Some("/in box"), Some("abc")));
        assert_eq!((e.status, e.bytes, e.duration_ms), (Some(200), Some(5120), Some(34.0)));
        assert_eq!(e.user_agent.as_deref(), Some("Mozilla/5.0 \"Quoted\" (X11)"));
        assert_eq!((e.user, e.client_ip.as_deref()), (None, Some("2001:db8::7")));
    }

    #[test]
    fn split_request_fields_numbers_and_webdav() {
        let line = r#"{"time_local":"15/Jan/2024:10:00:01 +0000","remote_addr":"10.0.0.1","http_x_forwarded_for":"198.51.100.4","request_method":"MOVE","uri":"/dav/a.txt","args":"","status":201,"bytes_sent":0,"http_destination":"https://acme.example.com/dav/b%20c.txt","http_user_agent":"davfs2/1.6","api_key":"key_7f3a"}"#;
        let e = one(Format::NginxJson, line);
        assert_eq!((e.interface, e.operation), (Interface::Webdav, Operation::Move));
        assert_eq!((e.path.as_deref(), e.destination.as_deref()), (Some("/a.txt"), Some("/b c.txt")));
        assert_eq!(
            (e.status, e.client_ip.as_deref(), e.api_key.as_deref()),
            (Some(201), Some("198.51.100.4"), Some("key_7f3a"))
        );
        let line = r#"{"msec":"1705312801.250","request_method":"PROPFIND","request_uri":"/dav/x/","http_depth":"0","status":"207"}"#;
        let e = one(Format::NginxJson, line);
        assert_eq!((e.operation, e.time), (Operation::Stat, utc("2024-01-15T10:00:01.250Z")));
    }

    #[test]
    fn raw_high_bytes_are_read() {
        let mut line = br#"{"msec":"1705312801","request":"GET /api/rest/v1/files/"#.to_vec();
        line.extend_from_slice(b"caf\xe9 HTTP/1.1\"}");
        let mut p = NginxJsonParser::new(crate::testutil::ctx());
        let e = p.parse(at(1), &line).unwrap().unwrap();
        assert_eq!(e.path.as_deref(), Some("/caf\u{fffd}"));
    }

    #[test]
    fn bad_lines() {
        let cases = [
            ("{", "line 1: line: not a json object: EOF while parsing an object at line 1 column 1"),
            ("[]", "line 1: line: not a json object: invalid type: sequence, expected a map at line 1 column 0"),
            (r#"{"request":"GET / HTTP/1.1"}"#, "line 1: time: missing (time_iso8601, time_local or msec)"),
            (r#"{"msec":"yesterday","request":"GET /"}"#, "line 1: time: not a time: \"yesterday\""),
            (r#"{"msec":"1"}"#, "line 1: request: missing (request, or request_method and request_uri)"),
            (r#"{"msec":"1","request":"GET /","status":"x"}"#, "line 1: status: not a status code: \"x\""),
            (
                r#"{"msec":"1","request":"GET /","request_time":"-1"}"#,
                "line 1: request_time: not a number of seconds: \"-1\"",
            ),
        ];
        for (line, want) in cases {
            let (_, errors) = run_errors(Format::NginxJson, line);
            assert_eq!(errors.len(), 1, "{line}");
            assert_eq!(errors[0].to_string(), want);
        }
    }

    proptest! {
        #[test]
        fn generated_lines_parse_back(
            secs in 0i64..4_000_000_000, millis in 0i64..1000,
            name in "[ -.0-~ü]{1,20}", status in 100u64..600, bytes in 0..=callmeter_model::MAX_COUNT,
            ua in "[ -~\"\\\\é]{0,30}", user in proptest::option::of("[a-z]{1,8}"),
        ) {
            let time = DateTime::from_timestamp_millis(secs * 1000 + millis).unwrap();
            let encoded: String = name.bytes().map(|b| format!("%{b:02X}")).collect();
            let obj = serde_json::json!({
                "time_iso8601": time.to_rfc3339(),
                "remote_addr": "203.0.113.9",
                "remote_user": user.clone().unwrap_or_default(),
                "request": format!("DELETE /api/rest/v1/files/dir/{encoded} HTTP/1.1"),
                "status": status.to_string(),
                "body_bytes_sent": bytes,
                "http_user_agent": ua,
            });
            let e = one(Format::NginxJson, &obj.to_string());
            prop_assert_eq!(e.time, time);
            prop_assert_eq!(e.operation, Operation::Delete);
            prop_assert_eq!(e.path, Some(format!("/dir/{name}")));
            prop_assert_eq!((e.status, e.bytes), (Some(status as i64), Some(bytes)));
            prop_assert_eq!(e.user_agent.as_deref(), (!ua.is_empty() && ua != "-").then_some(ua.as_str()));
            prop_assert_eq!(e.user, user);
        }
    }
}
