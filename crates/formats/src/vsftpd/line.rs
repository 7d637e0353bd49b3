//! The layouts of a vsftpd log line: vsftpd's own (a ctime date, then
//! `[pid N]`, `[user]`, what happened and the client), and the same message
//! sent through syslog or the journal (`syslog_enable=YES`), whose prefix
//! gives the time and pid.

use crate::context::Context;
use crate::error::{Error, Result};
use crate::syslog;
use crate::text::{parse_ctime, parse_u64, quote};
use crate::NonCall;
use chrono::{DateTime, Utc};
use memchr::{memchr, memmem, memrchr};

/// A line's parts.
#[derive(Debug)]
pub(super) struct Line<'a> {
    pub time: DateTime<Utc>,
    pub pid: Option<u64>,
    pub user: Option<&'a [u8]>,
    pub kind: &'a [u8],
    pub client: &'a [u8],
    pub arg: Option<&'a [u8]>,
    pub tail: &'a [u8],
}

/// The byte count in `, 1024 bytes, 512.00Kbyte/sec`.
pub(super) fn bytes_of(tail: &[u8]) -> Option<u64> {
    let t = tail.strip_prefix(b", ")?;
    let end = memchr(b' ', t)?;
    t[end..].starts_with(b" bytes").then(|| parse_u64(&t[..end])).flatten()
}

/// Whether a syslog tag's program is vsftpd: `vsftpd`, or `vsftpd(pam_unix)`
/// for the messages its PAM modules log in its name.
pub(crate) fn is_vsftpd_program(program: &[u8]) -> bool {
    program == b"vsftpd" || program.starts_with(b"vsftpd(")
}

/// A line's parts; `Err(kind)` for a line that is about no client
/// (a notice) or is another program's.
pub(super) fn split<'a>(ctx: &Context, line_no: u64, line: &'a [u8]) -> Result<Result<Line<'a>, NonCall>> {
    let (time, mut pid, mut rest) = match parse_ctime(line) {
        Some((naive, rest)) => (ctx.local(line_no, "time", naive)?, None, rest),
        None => {
            let not_ctime = || {
                Error::line(line_no, "time", format!("not a ctime date (Mon Jan 15 10:00:05 2024): {}", quote(line)))
            };
            // `syslog_enable=YES`: the time, host and tag of syslog or the journal.
            let l = syslog::parse(ctx, line_no, line).map_err(|_| not_ctime())?;
            if !is_vsftpd_program(l.program) {
                return Ok(Err(NonCall::OtherProgram));
            }
            if l.program != b"vsftpd" {
                // `vsftpd(pam_unix)[3]: authentication failure…`: vsftpd's PAM messages, about no call.
                return Ok(Err(NonCall::Housekeeping));
            }
            match parse_ctime(l.msg) {
                Some((naive, rest)) => (ctx.local(line_no, "time", naive)?, l.pid, rest),
                None => (l.time, l.pid, l.msg),
            }
        }
    };
    if let Some(r) = rest.strip_prefix(b"[pid ") {
        let end = memchr(b']', r).ok_or_else(|| Error::line(line_no, "pid", "no closing ]"))?;
        pid = Some(
            parse_u64(&r[..end])
                .ok_or_else(|| Error::line(line_no, "pid", format!("not a number: {}", quote(&r[..end]))))?,
        );
        rest = r[end + 1..].trim_ascii_start();
    }
    let mut user = None;
    if rest.first() == Some(&b'[') {
        let end = memmem::find(rest, b"] ").ok_or_else(|| Error::line(line_no, "user", "no closing ]"))?;
        user = Some(&rest[1..end]);
        rest = &rest[end + 2..];
    }
    let Some(at) = memmem::find(rest, b": Client \"") else {
        // Lines about no client (DEBUG, PAM messages and the like) are not calls.
        return Ok(Err(NonCall::Housekeeping));
    };
    let kind = &rest[..at];
    let after = &rest[at + 10..];
    let end = memchr(b'"', after).ok_or_else(|| Error::line(line_no, "client", "no closing quote"))?;
    let client = &after[..end];
    let rest = &after[end + 1..];
    let (arg, tail) = match rest.strip_prefix(b", \"") {
        Some(r) => match memrchr(b'"', r) {
            Some(q) => (Some(&r[..q]), &r[q + 1..]),
            None => return Err(Error::line(line_no, "argument", "no closing quote")),
        },
        None => (None, rest),
    };
    Ok(Ok(Line { time, pid, user: user.filter(|u| !u.is_empty()), kind, client, arg, tail }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{ctx, utc};

    #[test]
    fn own_syslog_and_journal_layouts() {
        let c = ctx();
        let native = br#"Fri Jan 19 12:20:33 2007 [pid 27202] [anonymous] FAIL LOGIN: Client "64.106.46.98""#;
        let syslog = br#"Jan 19 12:20:33 ftp1 vsftpd[27202]: [anonymous] FAIL LOGIN: Client "64.106.46.98""#;
        let journal =
            br#"2007-01-19T12:20:33.000000 ftp1 vsftpd[27202]: [anonymous] FAIL LOGIN: Client "64.106.46.98""#;
        let c = c.with_year_reference(utc("2007-06-30T00:00:00Z"));
        for line in [&native[..], syslog, journal] {
            let l = split(&c, 1, line).unwrap().unwrap();
            assert_eq!(
                (l.time, l.pid, l.user, l.kind),
                (utc("2007-01-19T12:20:33Z"), Some(27202), Some(&b"anonymous"[..]), &b"FAIL LOGIN"[..])
            );
            assert_eq!(l.client, b"64.106.46.98");
        }
        let other = b"Oct 11 01:06:47 ServerJV sshd[1]: Accepted password for root";
        assert_eq!(split(&c, 1, other).unwrap().unwrap_err(), NonCall::OtherProgram);
        let pam = b"Oct 11 01:06:47 ServerJV vsftpd: (pam_unix) authentication failure; rhost=209.67.1.67";
        assert_eq!(split(&c, 1, pam).unwrap().unwrap_err(), NonCall::Housekeeping);
        // The same PAM message with the module in the tag is vsftpd's too.
        let pam = b"Dec  1 10:00:07 ftp1 vsftpd(pam_unix)[3]: authentication failure; logname= uid=0 ruser=bob";
        assert_eq!(split(&c, 1, pam).unwrap().unwrap_err(), NonCall::Housekeeping);
        let bad = split(&c, 7, b"garbage here").unwrap_err().to_string();
        assert!(bad.starts_with("line 7: time: not a ctime date"), "{bad}");
    }
}
