//! The fields every CLF-like line starts with (`[%v] %h %l %u %t "%r" %s %b`),
//! shared by the Common/Combined and ProFTPD readers and by detection.
//!
//! Real servers vary the part before the time: the client field may hold an
//! X-Forwarded-For list (nginx's `$remote_addr` fed from the header, or the
//! header logged first, perhaps quoted and followed by the proxy's address),
//! and the virtual host may come first (Apache's `vhost_combined`, nginx
//! formats that start with `$host`).

use crate::error::{Error, Result};
use crate::text::{parse_u64, quote, quoted_field, token, unescape, ClfTimes};
use chrono::{DateTime, Utc};
use memchr::memchr;
use std::borrow::Cow;

/// The CLF fields every CLF-like log starts with.
#[derive(Debug)]
pub(crate) struct ClfHead<'a> {
    /// The virtual host, when the line starts with one (`%v`, `$host`).
    pub vhost: Option<&'a [u8]>,
    /// `%h`: one address, or an X-Forwarded-For list (see [`ClfHead::client`]).
    pub clients: &'a [u8],
    pub user: &'a [u8],
    pub time: DateTime<Utc>,
    pub request: Cow<'a, [u8]>,
    pub status: Option<i64>,
    pub bytes: Option<u64>,
    /// What follows `%b`, leading space included.
    pub rest: &'a [u8],
}

impl<'a> ClfHead<'a> {
    /// The client: the first address of the client field (an X-Forwarded-For
    /// list names the original client first).
    pub fn client(&self) -> &'a [u8] {
        match memchr::memchr2(b',', b' ', self.clients) {
            Some(i) => &self.clients[..i],
            None => self.clients,
        }
    }
}

/// Whether a line starts with a virtual host (`%v %h %l %u`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Vhost {
    /// Never (ProFTPD).
    No,
    /// Always (`vhost-combined`).
    Yes,
    /// When the line reads better so (Common and Combined): see [`split_prefix`].
    Auto,
}

/// What comes before `[time]`, split: the virtual host, the client field, the ident, the user.
type Prefix<'a> = (Option<&'a [u8]>, &'a [u8], &'a [u8], &'a [u8]);

/// Splits `[%v] %h %l %u` (the `[` of the time excluded).
///
/// `%h` may be an X-Forwarded-For list that nginx logs as `$remote_addr`
/// or that an operator put first: `10.0.0.2, 10.0.0.1, 127.0.0.1`, or
/// quoted, and then perhaps followed by the proxy's own address. Words that
/// end in a comma continue the list. The user runs to the time: it may hold
/// spaces. With [`Vhost::Auto`], a line whose user would hold a space is
/// read with a virtual host first when that leaves the usual `- USER`
/// (`vhost1.example.com 203.0.113.9 - -`); a user name with a space
/// (`1.2.3.4 - bob smith`) does not, since its ident is not `-`.
fn split_prefix(prefix: &[u8], vhost: Vhost) -> Option<Prefix<'_>> {
    if vhost == Vhost::Auto {
        let plain = split_prefix(prefix, Vhost::No)?;
        if memchr(b' ', plain.3).is_none() {
            return Some(plain);
        }
        return match split_prefix(prefix, Vhost::Yes) {
            Some(v) if memchr(b' ', v.3).is_none() && v.2 == b"-" => Some(v),
            _ => Some(plain),
        };
    }
    let mut s = prefix;
    let host = if vhost == Vhost::Yes {
        let (h, rest) = token(s);
        s = rest.trim_ascii_start();
        Some(h)
    } else {
        None
    };
    let (clients, mut rest) = if let Some(q) = s.strip_prefix(b"\"") {
        let end = memchr(b'"', q)?;
        (&q[..end], q[end + 1..].trim_ascii_start())
    } else {
        let mut i = 0;
        loop {
            match memchr(b' ', &s[i..]).map(|k| i + k) {
                Some(k) if k > 0 && s[k - 1] == b',' => {
                    i = k + 1 + s[k + 1..].iter().take_while(|c| **c == b' ').count()
                }
                Some(k) => break (&s[..k], &s[k + 1..]),
                None => break (s, &b""[..]),
            }
        }
    };
    if clients.is_empty() {
        return None;
    }
    // After a list, the proxy's own address may follow (`$http_x_forwarded_for $remote_addr`).
    if memchr(b',', clients).is_some() {
        let (next, after) = token(rest);
        if is_ip(next) && memchr(b' ', after).is_some() {
            rest = after;
        }
    }
    let (ident, user) = token(rest);
    if ident.is_empty() {
        return None;
    }
    Some((host, clients, ident, user))
}

fn is_ip(s: &[u8]) -> bool {
    std::str::from_utf8(s).is_ok_and(|s| s.parse::<std::net::IpAddr>().is_ok())
}

/// Reads `[%v] %h %l %u %t "%r" %s %b`.
pub(crate) fn parse_clf_head<'a>(
    line_no: u64,
    line: &'a [u8],
    times: &mut ClfTimes,
    vhost: Vhost,
) -> Result<ClfHead<'a>> {
    let open = memchr(b'[', line).ok_or_else(|| Error::line(line_no, "time", "no [time]"))?;
    let prefix = line[..open].strip_suffix(b" ").unwrap_or(&line[..open]);
    let (vhost, clients, _ident, user) = split_prefix(prefix, vhost)
        .ok_or_else(|| Error::line(line_no, "host", "expected host, ident and user before [time]"))?;
    let rest = &line[open + 1..];
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
    Ok(ClfHead { vhost, clients, user, time, request, status, bytes, rest: rest_after })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(prefix: &str, vhost: Vhost) -> Option<(Option<&str>, &str, &str, &str)> {
        fn s(b: &[u8]) -> &str {
            std::str::from_utf8(b).unwrap()
        }
        split_prefix(prefix.as_bytes(), vhost).map(|(v, c, i, u)| (v.map(s), s(c), s(i), s(u)))
    }

    #[test]
    fn client_fields_and_virtual_hosts() {
        use Vhost::*;
        let cases = [
            ("203.0.113.9 - alice", Auto, Some((None, "203.0.113.9", "-", "alice"))),
            ("203.0.113.9 - bob smith", Auto, Some((None, "203.0.113.9", "-", "bob smith"))),
            ("10.0.0.2, 10.0.0.1, 127.0.0.1 - -", No, Some((None, "10.0.0.2, 10.0.0.1, 127.0.0.1", "-", "-"))),
            ("\"10.5.102.222, 199.96.1.1\" 10.2.1.185 - -", No, Some((None, "10.5.102.222, 199.96.1.1", "-", "-"))),
            ("2a03::8000, 10.225.192.17 10.2.2.121 - -", No, Some((None, "2a03::8000, 10.225.192.17", "-", "-"))),
            (
                "vhost1.example.fr 123.123.123.123 - -",
                Auto,
                Some((Some("vhost1.example.fr"), "123.123.123.123", "-", "-")),
            ),
            ("example.com:80 unix: - -", Auto, Some((Some("example.com:80"), "unix:", "-", "-"))),
            ("example.com 10.0.0.2, 127.0.0.1 - -", Auto, Some((Some("example.com"), "10.0.0.2, 127.0.0.1", "-", "-"))),
            ("192.168.1.10 UNKNOWN alice", No, Some((None, "192.168.1.10", "UNKNOWN", "alice"))),
            ("a.example b.example - -", Yes, Some((Some("a.example"), "b.example", "-", "-"))),
            ("192.168.202.254", Auto, None),
            ("", No, None),
        ];
        for (prefix, vhost, want) in cases {
            assert_eq!(split(prefix, vhost), want, "{prefix:?}");
        }
    }
}
