//! nginx access logs written as JSON (`log_format … escape=json`), one object per line.
//!
//! The keys are the operator's choice. The shipped lists read the common
//! names (the first present wins), and the config's `[import.nginx_json]`
//! table replaces any field's list ([`JsonKeys`]):
//!
//! | event field | keys |
//! |---|---|
//! | time | `time_iso8601`, `time_local`, `msec`, `time`, `timestamp`, `@timestamp`, `ts` |
//! | client_ip | the first address of `http_x_forwarded_for` (`x_forwarded_for`, `forwarded_for`), else `remote_addr`, `client_ip`, `remote_ip`, `realip_remote_addr`, `remote`, `client`, `ip` |
//! | user | `remote_user`, `user` |
//! | method, path | `request` (`GET /x HTTP/1.1`), or `request_method` (`method`) with `request_uri` (`uri`, `path`; plus `args` or `query_string` when it has no query) |
//! | status | `status`, `response_code`, `status_code` |
//! | bytes | `body_bytes_sent`, `bytes_sent`, `bytes`, `body_bytes`, `size`, `response_size` |
//! | duration_ms | `request_time` (seconds), `duration_ms` |
//! | user_agent | `http_user_agent`, `user_agent`, `ua`, `agent` |
//! | WebDAV `Depth` | `http_depth`, `depth` |
//! | destination | `http_destination`, `destination` |
//! | host (for `--account-from host`) | `host`, `http_host`, `server_name`, `vhost` |
//! | api_key | `api_key` (an id or prefix the operator logs, never the secret) |
//!
//! Values may be strings (as `escape=json` writes them) or numbers. A line
//! whose request key is there but holds no request (`""`, `"-"`, TLS bytes:
//! a connection that sent none) is not a call: a non-call of kind `no_request`.
//!
//! ```text
//! log_format callmeter escape=json '{"time_iso8601":"$time_iso8601","remote_addr":"$remote_addr",'
//!   '"remote_user":"$remote_user","request":"$request","status":$status,"body_bytes_sent":$body_bytes_sent,'
//!   '"request_time":$request_time,"http_user_agent":"$http_user_agent","http_depth":"$http_depth","host":"$host"}';
//! ```

use crate::classify::{Depth, JsonKeys, UaCache};
use crate::context::Context;
use crate::error::{Error, Result};
use crate::http::{forwarded_for, http_event, split_request, HttpLine};
use crate::text::{
    is_blank, parse_clf_time, parse_f64, parse_rfc3339_lenient, parse_seconds_as_ms, parse_u64, quote, trim_eol,
};
use crate::{Format, LineIs, LineParser, NonCall, SourceLine};
use callmeter_model::CallEvent;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use std::borrow::Cow;

/// The reader of nginx JSON logs.
#[derive(Debug)]
pub struct NginxJsonParser {
    ctx: Context,
    agents: UaCache,
    keys: JsonKeys,
}

/// A value as text: strings as they are, numbers written out; null and empty are absent.
fn text(v: &Value) -> Option<Cow<'_, [u8]>> {
    match v {
        Value::String(s) if !s.is_empty() => Some(Cow::Borrowed(s.as_bytes())),
        Value::Number(n) => Some(Cow::Owned(n.to_string().into_bytes())),
        _ => None,
    }
}

fn first<'a>(obj: &'a Map<String, Value>, keys: &[String]) -> Option<Cow<'a, [u8]>> {
    keys.iter().find_map(|k| obj.get(k.as_str()).and_then(text)).filter(|v| v.as_ref() != b"-")
}

fn any_key(obj: &Map<String, Value>, keys: &[String]) -> bool {
    keys.iter().any(|k| obj.contains_key(k.as_str()))
}

fn parse_time(v: &[u8]) -> Option<DateTime<Utc>> {
    // `"[$time_local]"`, as some formats write it.
    let v = v.strip_prefix(b"[").and_then(|v| v.strip_suffix(b"]")).unwrap_or(v);
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
    /// A reader, with the keys of the context's `[import.nginx_json]` table.
    pub fn new(ctx: Context) -> NginxJsonParser {
        let keys = (*ctx.classifier.config().nginx_json).clone();
        NginxJsonParser { ctx, agents: UaCache::default(), keys }
    }

    /// Reads one line: `Ok(Ok(call))`, or `Ok(Err(kind))` for a line that is
    /// not a call (blank, or a request that never was).
    pub fn parse(&mut self, at: SourceLine, line: &[u8]) -> Result<Result<CallEvent, NonCall>> {
        let line_no = at.number;
        let line = trim_eol(line);
        if is_blank(line) {
            return Ok(Err(NonCall::Blank));
        }
        // nginx writes bytes above 0x7f as they are: the line need not be UTF-8.
        let obj: Map<String, Value> = match serde_json::from_slice(line) {
            Ok(o) => o,
            Err(first_err) => match serde_json::from_str(&String::from_utf8_lossy(line)) {
                Ok(o) => o,
                Err(_) => return Err(Error::line(line_no, "line", format!("not a json object: {first_err}"))),
            },
        };
        let k = &self.keys;
        let time_raw = first(&obj, &k.time)
            .ok_or_else(|| Error::line(line_no, "time", "missing (time_iso8601, time_local or msec)"))?;
        let time = parse_time(&time_raw)
            .ok_or_else(|| Error::line(line_no, "time", format!("not a time: {}", quote(&time_raw))))?;
        let method_key = first(&obj, &k.method);
        let request = if method_key.is_none() { first(&obj, &k.request) } else { None };
        let (target_key, args) =
            if method_key.is_some() { (first(&obj, &k.target), first(&obj, &k.args)) } else { (None, None) };
        let joined;
        let (method, target): (&[u8], &[u8]) = if let Some(m) = method_key.as_deref() {
            let target = match (target_key.as_deref(), args.as_deref()) {
                (Some(t), Some(a)) if !t.contains(&b'?') => {
                    joined = [t, b"?", a].concat();
                    &joined
                }
                (Some(t), _) => t,
                (None, _) => b"",
            };
            (m, target)
        } else if let Some(r) = request.as_deref() {
            match split_request(r) {
                Some(mt) => mt,
                None => return Ok(Err(NonCall::NoRequest)),
            }
        } else if any_key(&obj, &k.request) || any_key(&obj, &k.method) {
            // The key is there and holds nothing: no request was made.
            return Ok(Err(NonCall::NoRequest));
        } else {
            return Err(Error::line(line_no, "request", "missing (request, or request_method and request_uri)"));
        };
        if method.is_empty() || !method.iter().all(|c| c.is_ascii_alphabetic() || *c == b'-' || *c == b'_') {
            return Ok(Err(NonCall::NoRequest));
        }
        let status = match first(&obj, &k.status) {
            None => None,
            Some(s) => Some(
                parse_u64(&s)
                    .filter(|s| *s < 1000)
                    .ok_or_else(|| Error::line(line_no, "status", format!("not a status code: {}", quote(&s))))?
                    as i64,
            ),
        };
        let bytes = match first(&obj, &k.bytes) {
            None => None,
            Some(b) => Some(
                parse_u64(&b)
                    .ok_or_else(|| Error::line(line_no, "bytes", format!("not a byte count: {}", quote(&b))))?,
            ),
        };
        let duration_ms = match (first(&obj, &k.request_time), first(&obj, &k.duration_ms)) {
            (Some(t), _) => Some(parse_seconds_as_ms(&t).ok_or_else(|| {
                Error::line(line_no, "request_time", format!("not a number of seconds: {}", quote(&t)))
            })?),
            (None, Some(d)) => parse_f64(&d),
            (None, None) => None,
        };
        let forwarded = first(&obj, &k.forwarded_for);
        let client = match forwarded.as_deref().and_then(forwarded_for) {
            Some(f) => Some(Cow::Owned(f.to_vec())),
            None => first(&obj, &k.client_ip),
        };
        let l = HttpLine {
            time: Some(time),
            method: Some(method),
            target,
            status,
            bytes,
            duration_ms,
            depth: first(&obj, &k.depth).and_then(|d| Depth::parse(&d)),
            host: first(&obj, &k.host),
            client_ip: client,
            user: first(&obj, &k.user),
            user_agent: first(&obj, &k.user_agent),
            api_key: first(&obj, &k.api_key),
            destination: first(&obj, &k.destination),
        };
        let mut out = Vec::with_capacity(1);
        http_event(&self.ctx, &mut self.agents, at, l, &mut out)?;
        Ok(Ok(out.pop().expect("the event just pushed")))
    }
}

impl LineParser for NginxJsonParser {
    fn format(&self) -> Format {
        Format::NginxJson
    }

    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs> {
        Ok(match self.parse(at, line)? {
            Ok(e) => {
                out.push(e);
                LineIs::Call
            }
            Err(kind) => kind.into(),
        })
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
    fn key_variants_and_the_config_map() {
        // As operators name them (hand-written after common log_format lines).
        let line = r#"{"time":"2024-01-15T10:00:01+00:00","remote_ip":"203.0.113.9","method":"GET","uri":"/api/rest/v1/folders/in","args":"cursor=c2","response_code":"200","size":"512","ua":"curl/8.5.0"}"#;
        let e = one(Format::NginxJson, line);
        assert_eq!((e.operation, e.path.as_deref(), e.cursor.as_deref()), (Operation::List, Some("/in"), Some("c2")));
        assert_eq!((e.client_ip.as_deref(), e.status, e.bytes), (Some("203.0.113.9"), Some(200), Some(512)));
        assert_eq!(e.interface, Interface::Sdk);
        let line = r#"{"@timestamp":"1705312801.250","remote":"10.0.0.1","method":"DELETE","request_uri":"/api/rest/v1/files/a?x=1","status":204,"time":"[15/Jan/2024:10:00:01 +0000]"}"#;
        let e = one(Format::NginxJson, line);
        assert_eq!((e.operation, e.time), (Operation::Delete, utc("2024-01-15T10:00:01Z")), "time before @timestamp");
        // Keys the shipped lists do not know, mapped in [import.nginx_json].
        let cfg: crate::ImportConfig =
            toml::from_str("[nginx_json]\nclient_ip = [\"peer\"]\ntime = [\"when\"]\n").unwrap();
        let ctx = crate::testutil::ctx().with_classifier(std::sync::Arc::new(crate::Classifier::new(&cfg).unwrap()));
        let mut p = NginxJsonParser::new(ctx);
        let line = br#"{"when":"2024-01-15T10:00:01Z","peer":"198.51.100.4","remote_addr":"10.0.0.1","request":"GET /x HTTP/1.1"}"#;
        let e = p.parse(at(1), line).unwrap().unwrap();
        assert_eq!(e.client_ip.as_deref(), Some("198.51.100.4"));
    }

    #[test]
    fn requests_that_never_were() {
        for line in [
            r#"{"msec":"1705312801","request":"","status":"400"}"#,
            r#"{"msec":"1705312801","request":"-","status":"408"}"#,
            r#"{"msec":"1705312801","request":"\u0016\u0003\u0001\u0002\u0000","status":"400"}"#,
            r#"{"msec":"1705312801","request_method":"","request_uri":"","status":"400"}"#,
        ] {
            let mut p = NginxJsonParser::new(crate::testutil::ctx());
            assert_eq!(p.parse(at(1), line.as_bytes()).unwrap(), Err(NonCall::NoRequest), "{line}");
        }
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
