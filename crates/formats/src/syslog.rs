//! The prefix servers' lines get when they go through syslog or the journal:
//! a time, the host, and the program's tag (`name[pid]:`), before the
//! program's own message. Shared by the readers of such lines (OpenSSH's
//! sftp, vsftpd with `syslog_enable=YES`).
//!
//! ```text
//! Jan 15 10:00:01 files1 internal-sftp[4242]: opendir "/in"          RFC 3164 (the year from the file, DESIGN §5)
//! 2024-01-15T10:00:01.250+01:00 files1 sshd-session[77]: …           RFC 3339 (rsyslog's high precision, journalctl -o short-iso)
//! 2025-03-04T01:06:36.645577 files1 vsftpd[1658]: …                  ISO without a zone: read in --timezone
//! ```

use crate::context::{syslog_year, Context};
use crate::error::{Error, Result};
use crate::text::{month, parse_day, parse_hms, parse_rfc3339_lenient, parse_u64, quote, skip_spaces, token};
use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use memchr::memchr;

/// One syslog line, split.
#[derive(Debug)]
pub(crate) struct SyslogLine<'a> {
    pub time: DateTime<Utc>,
    /// The program's name, without its pid (`sshd-session`, `vsftpd`).
    pub program: &'a [u8],
    pub pid: Option<u64>,
    /// The program's message.
    pub msg: &'a [u8],
}

/// Splits a syslog line, reading its time in the context's zone and year.
pub(crate) fn parse<'a>(ctx: &Context, line_no: u64, line: &'a [u8]) -> Result<SyslogLine<'a>> {
    let bad_time = || Error::line(line_no, "time", format!("not a syslog time: {}", quote(line)));
    let (time, rest) = if line.first().is_some_and(u8::is_ascii_digit) {
        let (t, rest) = token(line);
        let time = match parse_rfc3339_lenient(t) {
            Some(t) => t,
            None => ctx.local(line_no, "time", zoneless_iso(t).ok_or_else(bad_time)?)?,
        };
        (time, rest)
    } else {
        let (mon, rest) = token(line);
        let mo = month(mon).ok_or_else(bad_time)?;
        let (day, rest) = token(skip_spaces(rest));
        let day = parse_day(day).ok_or_else(bad_time)?;
        let (hms, rest) = token(rest);
        let (h, mi, s) = parse_hms(hms).ok_or_else(bad_time)?;
        let year = syslog_year(mo, day, h, mi, s, ctx.timezone, ctx.year_reference);
        let naive = NaiveDate::from_ymd_opt(year, mo, day)
            .and_then(|d| d.and_hms_opt(h, mi, s.min(59)))
            .ok_or_else(bad_time)?;
        (ctx.local(line_no, "time", naive)?, rest)
    };
    let (_host, rest) = token(skip_spaces(rest));
    let (tag, msg) = token(rest);
    let Some(tag) = tag.strip_suffix(b":") else {
        return Err(Error::line(line_no, "program", format!("not a syslog program tag: {}", quote(tag))));
    };
    let (program, pid) = match memchr(b'[', tag) {
        Some(i) => {
            let pid = tag[i + 1..]
                .strip_suffix(b"]")
                .and_then(parse_u64)
                .ok_or_else(|| Error::line(line_no, "pid", format!("not a pid: {}", quote(&tag[i..]))))?;
            (&tag[..i], Some(pid))
        }
        None => (tag, None),
    };
    Ok(SyslogLine { time, program, pid, msg })
}

/// `2025-03-04T01:06:36.645577`: an ISO time without a zone.
fn zoneless_iso(t: &[u8]) -> Option<NaiveDateTime> {
    let s = std::str::from_utf8(t).ok()?;
    NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S%.f").ok()
}

/// The program of a line that starts like a syslog line, without reading
/// its time closely: for `--format auto`.
pub(crate) fn program_of(line: &[u8]) -> Option<&[u8]> {
    let rest = if line.first().is_some_and(u8::is_ascii_digit) {
        let (t, rest) = token(line);
        if t.len() < 19 || t[10] != b'T' {
            return None;
        }
        rest
    } else {
        let (mon, rest) = token(line);
        let (day, rest) = token(skip_spaces(rest));
        let (hms, rest) = token(rest);
        if month(mon).is_none() || parse_day(day).is_none() || parse_hms(hms).is_none() {
            return None;
        }
        rest
    };
    let (_host, rest) = token(skip_spaces(rest));
    let (tag, _) = token(rest);
    let tag = tag.strip_suffix(b":").filter(|t| !t.is_empty())?;
    Some(memchr(b'[', tag).map_or(tag, |i| &tag[..i]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, utc};

    #[test]
    fn the_three_times_and_the_tag() {
        let c = ctx();
        let l = parse(&c, 1, b"Jan  5 10:00:00 h sshd-session[77]: opendir \"/\" [postauth]").unwrap();
        assert_eq!((l.time, l.program, l.pid), (utc("2024-01-05T10:00:00Z"), &b"sshd-session"[..], Some(77)));
        assert_eq!(l.msg, b"opendir \"/\" [postauth]");
        let l = parse(&c, 1, b"2024-01-15T10:00:00.250+01:00 h vsftpd: x").unwrap();
        assert_eq!((l.time, l.pid), (utc("2024-01-15T09:00:00.250Z"), None));
        let c = c.with_timezone("Australia/Sydney".parse().unwrap());
        let l = parse(&c, 1, b"2025-03-04T01:06:36.645577 h vsftpd[1658]: [u] FAIL LOGIN").unwrap();
        assert_eq!(l.time, utc("2025-03-03T14:06:36.645577Z"));
        assert!(parse(&c, 3, b"2025-03-04 h vsftpd: x").unwrap_err().to_string().starts_with("line 3: time:"));
    }

    #[test]
    fn programs_for_detection() {
        assert_eq!(program_of(b"Jan 15 10:00:01 files1 internal-sftp[4242]: opendir"), Some(&b"internal-sftp"[..]));
        assert_eq!(program_of(b"2025-03-04T01:06:36.6 h vsftpd[1]: x"), Some(&b"vsftpd"[..]));
        assert_eq!(program_of(b"Mon Jan 15 10:00:01 2024 [pid 2] x"), None);
        assert_eq!(program_of(b"Jan 15 10:00:01 h :"), None);
    }
}
