//! One HTTP request line, whatever log it came from, into a call event:
//! shared by the Common/Combined, nginx JSON and W3C readers.

use crate::classify::{destination_path, Depth, HttpRequest, UaCache};
use crate::context::Context;
use crate::error::Result;
use crate::line_key::SourceLine;
use crate::text::owned;
use callmeter_model::CallEvent;
use chrono::{DateTime, Utc};
use std::borrow::Cow;

/// The parts of a request that HTTP logs carry, borrowed from the line.
#[derive(Debug, Default)]
pub(crate) struct HttpLine<'a> {
    pub time: Option<DateTime<Utc>>,
    pub method: Option<&'a [u8]>,
    pub target: &'a [u8],
    pub status: Option<i64>,
    pub bytes: Option<u64>,
    pub duration_ms: Option<f64>,
    pub depth: Option<Depth>,
    pub host: Option<Cow<'a, [u8]>>,
    pub client_ip: Option<Cow<'a, [u8]>>,
    pub user: Option<Cow<'a, [u8]>>,
    pub user_agent: Option<Cow<'a, [u8]>>,
    pub api_key: Option<Cow<'a, [u8]>>,
    pub destination: Option<Cow<'a, [u8]>>,
}

/// A value that is present: not empty, not `-`.
pub(crate) fn present(v: Option<Cow<'_, [u8]>>) -> Option<Cow<'_, [u8]>> {
    v.filter(|v| !v.is_empty() && v.as_ref() != b"-")
}

/// Builds the event and pushes it to `out`: classifies the request, resolves
/// the account, applies the overrides. The event's fields are written where
/// it lies in `out`: a call handed back by value was copied (hundreds of
/// bytes, just written, so read back at a stall) at every level.
pub(crate) fn http_event(
    ctx: &Context,
    cache: &mut UaCache,
    at: SourceLine,
    l: HttpLine<'_>,
    out: &mut Vec<CallEvent>,
) -> Result<()> {
    let user_agent = present(l.user_agent);
    let class = ctx.classifier.classify_http(
        &HttpRequest { method: l.method, target: l.target, depth: l.depth, user_agent: user_agent.as_deref() },
        cache,
    );
    let user = present(l.user).map(|u| owned(&u));
    let host = present(l.host).map(|h| crate::text::lossy(&h).into_owned());
    let account = ctx.account(at.number, host.as_deref(), user.as_deref())?;
    let time = l.time.ok_or_else(|| crate::Error::line(at.number, "time", "missing"))?;
    out.push(ctx.event(at, time, class.interface, class.operation, account));
    let e = out.last_mut().expect("the event just pushed");
    e.method = l.method.map(owned);
    e.path = class.path;
    e.cursor = class.cursor;
    e.status = l.status;
    e.bytes = l.bytes;
    e.duration_ms = l.duration_ms;
    e.user = user;
    e.client_ip = present(l.client_ip).map(|c| owned(&c));
    e.user_agent = class.user_agent;
    e.api_key = present(l.api_key).map(|k| owned(&k));
    e.destination = present(l.destination).and_then(|d| destination_path(&ctx.classifier, &d));
    ctx.overrides(e);
    Ok(())
}

/// HTTP's methods and WebDAV's: a request field that starts with one is an HTTP request.
const HTTP_METHODS: &[&[u8]] = &[
    b"GET",
    b"HEAD",
    b"POST",
    b"PUT",
    b"DELETE",
    b"OPTIONS",
    b"PATCH",
    b"TRACE",
    b"CONNECT",
    b"PROPFIND",
    b"PROPPATCH",
    b"MKCOL",
    b"COPY",
    b"MOVE",
    b"LOCK",
    b"UNLOCK",
    b"SEARCH",
    b"REPORT",
];

/// Whether a word is an HTTP or WebDAV method (any case).
pub(crate) fn is_http_method(m: &[u8]) -> bool {
    HTTP_METHODS.iter().any(|h| h.eq_ignore_ascii_case(m))
}

/// The first address of an `X-Forwarded-For` list, if it is one.
pub(crate) fn forwarded_for(v: &[u8]) -> Option<&[u8]> {
    let first = v.split(|c| *c == b',').next()?.trim_ascii();
    let s = std::str::from_utf8(first).ok()?;
    s.parse::<std::net::IpAddr>().ok().map(|_| first)
}

/// Splits a request line `METHOD TARGET PROTOCOL` (the protocol may be absent,
/// and the target may hold spaces). `None` when it is not a request line,
/// and for HTTP/2's connection preface (`PRI * HTTP/2.0`): a client speaking
/// HTTP/2 to a server that speaks HTTP/1 sends it in place of a request, and
/// the server answers 400 to no request at all.
pub(crate) fn split_request(r: &[u8]) -> Option<(&[u8], &[u8])> {
    if r == b"PRI * HTTP/2.0" {
        return None;
    }
    let sp = memchr::memchr(b' ', r)?;
    let method = &r[..sp];
    if method.is_empty() || method.len() > 32 || !method.iter().all(|c| c.is_ascii_alphabetic() || *c == b'-') {
        return None;
    }
    let rest = &r[sp + 1..];
    let target = match memchr::memrchr(b' ', rest) {
        Some(i) if rest[i + 1..].starts_with(b"HTTP/") => &rest[..i],
        _ => rest,
    };
    Some((method, target))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines() {
        assert_eq!(split_request(b"GET /a HTTP/1.1"), Some((&b"GET"[..], &b"/a"[..])));
        assert_eq!(split_request(b"GET /my file.txt HTTP/1.0"), Some((&b"GET"[..], &b"/my file.txt"[..])));
        assert_eq!(split_request(b"GET /a"), Some((&b"GET"[..], &b"/a"[..])));
        assert_eq!(split_request(b"-"), None);
        assert_eq!(split_request(b"PRI * HTTP/2.0"), None, "HTTP/2's preface sent to HTTP/1");
        assert_eq!(split_request(b"OPTIONS * HTTP/1.1"), Some((&b"OPTIONS"[..], &b"*"[..])));
        assert_eq!(split_request(b"\x16\x03\x01 x"), None);
    }

    #[test]
    fn forwarded() {
        assert_eq!(forwarded_for(b"203.0.113.9, 10.0.0.1"), Some(&b"203.0.113.9"[..]));
        assert_eq!(forwarded_for(b"2001:db8::1"), Some(&b"2001:db8::1"[..]));
        assert_eq!(forwarded_for(b"unknown"), None);
    }
}
