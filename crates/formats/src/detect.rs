//! `--format auto`: which format a source is, from its first lines.
//!
//! Each line is looked at on its own, and the format most lines agree on
//! wins (lines of no known shape do not vote). Common and Combined are one
//! reader: a source is `combined` when any line has a user agent.
//!
//! The shape of a line is not always enough. ProFTPD's ExtendedLog has the
//! shape of Apache's common format, and a session that starts with a login
//! (`"USER alice"`, `"PASS (hidden)"`, `"SYST"`, `"PWD"`) looks like requests
//! without a target: what the request field holds decides, an FTP command
//! (or a ProFTPD SFTP request) against an HTTP method. A line that starts
//! with a virtual host (`vhost1.example.com 203.0.113.9 - - [`) votes for
//! `vhost-combined`. A syslog line votes `syslog`, whatever its program: a
//! syslog file mixes programs (OpenSSH's and vsftpd's lines side by side, and
//! ones that come only further on than the first lines), and the `syslog`
//! reader reads each line by its program. A Windows Firewall log is W3C but
//! no API's log: it is refused.
//!
//! A UTF-8 byte order mark before the first line (Windows editors and IIS
//! tools write one) is not part of it ([`crate::strip_bom`]).

use crate::clf::{parse_clf_head, Vhost};
use crate::ftp::is_ftp_verb;
use crate::http::is_http_method;
use crate::proftpd::is_sftp_request;
use crate::text::{closing_quote, is_blank, parse_ctime, parse_hms, parse_u64, token, trim_eol};
use crate::Format;
use serde_json::Value;

/// How many lines are looked at, at most.
pub const DETECT_LINES: usize = 50;

/// What one line says about its source.
enum Vote {
    For(Format),
    /// A source no reader should read (a Windows Firewall log).
    Refuse,
}

/// The format of a source that starts with these lines, if any known one fits.
pub fn detect(first_lines: &[&[u8]]) -> Option<Format> {
    let mut votes = [0usize; Format::ALL.len()];
    let at = |f: Format| Format::ALL.iter().position(|x| *x == f).unwrap_or(0);
    for (i, line) in first_lines.iter().take(DETECT_LINES).enumerate() {
        let line = trim_eol(if i == 0 { crate::strip_bom(line) } else { line });
        if is_blank(line) {
            continue;
        }
        match line_format(line) {
            Some(Vote::Refuse) => return None,
            // A W3C directive settles it, unless a later one says whose log it is.
            Some(Vote::For(Format::W3c)) if line.starts_with(b"#") => {
                let rest = first_lines.iter().take(DETECT_LINES).skip(i + 1).map(|l| trim_eol(l));
                let refused = rest
                    .take_while(|l| l.starts_with(b"#") || is_blank(l))
                    .any(|l| !is_blank(l) && matches!(line_format(l), Some(Vote::Refuse)));
                return (!refused).then_some(Format::W3c);
            }
            Some(Vote::For(f)) => votes[at(f)] += 1,
            None => {}
        }
    }
    let (common, combined) = (at(Format::Common), at(Format::Combined));
    if votes[combined] > 0 {
        votes[combined] += std::mem::take(&mut votes[common]);
    }
    let (best, n) = votes.iter().enumerate().max_by_key(|(i, n)| (**n, usize::MAX - i))?;
    (*n > 0).then(|| Format::ALL[best])
}

fn json_format(line: &[u8]) -> Option<Format> {
    let v: Value = serde_json::from_slice(line).ok()?;
    let obj = match &v {
        Value::Object(o) => o,
        Value::Array(a) => match a.first() {
            Some(Value::Object(o)) if o.contains_key("specversion") => return Some(Format::CloudEvents),
            _ => return None,
        },
        _ => return None,
    };
    let has = |k: &str| obj.contains_key(k);
    if has("specversion") {
        Some(Format::CloudEvents)
    } else if has("interface") {
        Some(Format::Ndjson)
    } else if ["request", "request_uri", "request_method", "remote_addr", "time_local", "time_iso8601", "msec"]
        .iter()
        .any(|k| has(k))
        || (has("method") && ["uri", "path", "url"].iter().any(|k| has(k)))
    {
        Some(Format::NginxJson)
    } else {
        None
    }
}

/// What a CLF-shaped line's request field holds: an FTP command or a ProFTPD
/// SFTP request makes it ProFTPD's; anything else (an HTTP method, a request
/// that never was) Apache's or nginx's.
fn is_ftp_request(request: &[u8]) -> bool {
    let word = match memchr::memchr(b' ', request) {
        Some(i) => &request[..i],
        None => request,
    };
    !is_http_method(word) && (is_ftp_verb(word) || is_sftp_request(word))
}

fn line_format(line: &[u8]) -> Option<Vote> {
    match line[0] {
        b'{' | b'[' => return json_format(line).map(Vote::For),
        b'#' => {
            if line.starts_with(b"#Software: Microsoft Windows Firewall") {
                return Some(Vote::Refuse);
            }
            let directive = ["#Software:", "#Version:", "#Fields:", "#Date:", "#Remark:", "#Start-Date:"];
            return directive.iter().any(|d| line.starts_with(d.as_bytes())).then_some(Vote::For(Format::W3c));
        }
        _ => {}
    }
    // W3C data: `2024-01-15 10:00:01 …`.
    if line.len() > 19 && line[4] == b'-' && line[7] == b'-' && line[10] == b' ' && parse_hms(&line[11..19]).is_some() {
        return Some(Vote::For(Format::W3c));
    }
    if let Some((_, rest)) = parse_ctime(line) {
        let (first, _) = token(rest);
        let fields = rest.split(|c| *c == b' ').filter(|t| !t.is_empty()).count();
        if parse_u64(first).is_some() && fields >= 11 {
            return Some(Vote::For(Format::Xferlog));
        }
        return Some(Vote::For(Format::Vsftpd));
    }
    if let Ok(head) = parse_clf_head(0, line, &mut crate::text::ClfTimes::default(), Vhost::Auto) {
        return Some(Vote::For(if head.vhost.is_some() {
            Format::VhostCombined
        } else if is_ftp_request(&head.request) {
            Format::Proftpd
        } else {
            clf_kind(head.rest)
        }));
    }
    crate::syslog::program_of(line).map(|_| Vote::For(Format::Syslog))
}

/// Combined when the line has a user agent (a second quoted field).
fn clf_kind(rest: &[u8]) -> Format {
    let mut quoted = 0;
    let mut s = rest;
    while let Some(i) = memchr::memchr(b'"', s) {
        match closing_quote(s, i + 1) {
            Some(end) => {
                quoted += 1;
                s = &s[end + 1..];
            }
            None => break,
        }
    }
    if quoted >= 2 {
        Format::Combined
    } else {
        Format::Common
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(text: &str) -> Option<Format> {
        let lines: Vec<&[u8]> = text.lines().map(str::as_bytes).collect();
        detect(&lines)
    }

    #[test]
    fn every_format_is_recognised() {
        let cases = [
            (r#"127.0.0.1 - frank [10/Oct/2000:13:55:36 -0700] "GET /apache_pb.gif HTTP/1.0" 200 2326"#, Format::Common),
            (
                "127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1\n::1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1 \"-\" \"curl/8\"",
                Format::Combined,
            ),
            (r#"{"time_local":"15/Jan/2024:10:00:01 +0000","remote_addr":"1.2.3.4","request":"GET / HTTP/1.1","status":"200"}"#, Format::NginxJson),
            ("#Software: Microsoft Internet Information Services 10.0\n#Version: 1.0", Format::W3c),
            ("2024-01-15 10:00:01 10.0.0.5 GET / - 443 - 1.2.3.4 - - 200 0 0 15", Format::W3c),
            ("Mon Jan 15 10:00:05 2024 1 192.168.1.10 1024 /home/alice/report.csv b _ i r alice ftp 0 * c", Format::Xferlog),
            (r#"Mon Jan 15 10:00:01 2024 [pid 2] FTP command: Client "192.168.1.10", "USER alice""#, Format::Vsftpd),
            (r#"Mon Jan 15 10:00:01 2024 [alice] OK UPLOAD: Client "1.2.3.4", "/a", 1 bytes, 1.00Kbyte/sec"#, Format::Vsftpd),
            (r#"192.168.1.10 UNKNOWN alice [15/Jan/2024:10:00:04 +0000] "STOR report.csv" 226 1024"#, Format::Proftpd),
            ("Jan 15 10:00:01 files1 internal-sftp[4242]: opendir \"/in\"\nJan 15 10:00:00 files1 sshd[1]: Accepted", Format::Syslog),
            (r#"{"id":"e1","account":"acme","time":"2026-02-27T07:59:58Z","interface":"rest"}"#, Format::Ndjson),
            (r#"{"specversion":"1.0","id":"x","data":{}}"#, Format::CloudEvents),
            (r#"[{"specversion":"1.0","id":"x","data":{}}]"#, Format::CloudEvents),
        ];
        for (text, want) in cases {
            assert_eq!(d(text), Some(want), "{text}");
        }
    }

    #[test]
    fn unknown_and_empty_sources() {
        assert_eq!(d(""), None);
        assert_eq!(d("hello world\n\n"), None);
        assert_eq!(d("{\"a\":1}"), None);
        assert_eq!(detect(&[b"\xff\xfe", b""]), None);
    }

    #[test]
    fn a_byte_order_mark_before_the_first_line_is_not_part_of_it() {
        let iis = "\u{feff}#Software: Microsoft Internet Information Services 10.0\n#Fields: date time cs-method";
        assert_eq!(d(iis), Some(Format::W3c));
        let ndjson =
            "\u{feff}{\"id\":\"e1\",\"account\":\"acme\",\"time\":\"2026-02-27T07:59:58Z\",\"interface\":\"rest\"}";
        assert_eq!(d(ndjson), Some(Format::Ndjson));
        assert_eq!(d("\u{feff}Jan 15 10:00:01 h sshd-session[7]: opendir \"/in\" [postauth]"), Some(Format::Syslog));
        assert_eq!(d("\u{feff}\u{feff}#Software: x"), None, "one mark is skipped, once");
    }

    #[test]
    fn what_real_servers_write() {
        let cases = [
            // ProFTPD starting with a login and housekeeping: FTP verbs, not HTTP methods.
            (
                "1.2.3.4 UNKNOWN nobody [10/Jan/2006:10:48:12 -0500] \"USER steve\" 331 -\n1.2.3.4 UNKNOWN steve [10/Jan/2006:10:48:12 -0500] \"PASS (hidden)\" 230 -\n1.2.3.4 UNKNOWN steve [10/Jan/2006:10:48:12 -0500] \"SYST\" 215 -\n1.2.3.4 UNKNOWN steve [10/Jan/2006:10:48:12 -0500] \"PWD\" 257 -\n1.2.3.4 UNKNOWN steve [10/Jan/2006:10:48:12 -0500] \"PASV\" 227 -",
                Some(Format::Proftpd),
            ),
            ("::1 - bob [15/Jan/2024:10:00:01 +0100] \"OPENDIR /home/bob\" 0 - sftp", Some(Format::Proftpd)),
            // Debian's other_vhosts_access.log, and nginx with $host first.
            (
                "files.example.com:443 203.0.113.9 - - [15/Jan/2024:10:00:01 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"curl/8\"\nexample.com 10.0.0.2, 10.0.0.1 - - [15/Jan/2024:10:00:01 +0000] \"GET / HTTP/1.1\" 200 1 \"-\" \"-\"",
                Some(Format::VhostCombined),
            ),
            ("10.0.0.2, 10.0.0.1, 127.0.0.1 - - [07/Dec/2016:11:05:07 +0100] \"GET /ocelot HTTP/1.1\" 200 571 \"-\" \"F\"", Some(Format::Combined)),
            ("::1 - - [26/Dec/2016:16:16:48 +0200] \"-\" 408 -", Some(Format::Common)),
            // vsftpd through syslog and the journal; OpenSSH 9.8; both in one file: syslog, read by program.
            (
                "Oct 11 01:06:47 h vsftpd: (pam_unix) authentication failure; rhost=209.67.1.67\n2025-03-04T01:06:36.645577 h vsftpd[1658]: [u] FAIL LOGIN: Client \"192.0.2.222\"",
                Some(Format::Syslog),
            ),
            ("Jan 15 10:00:01 h sshd-session[7]: opendir \"/in\" [postauth]", Some(Format::Syslog)),
            (
                "Dec  1 10:00:00 f sshd-session[4]: opendir \"/in\" [postauth]\nDec  1 10:00:01 f vsftpd[2]: [pid 2] [a] OK LOGIN: Client \"1.2.3.4\"",
                Some(Format::Syslog),
            ),
            (r#"{"time":"2024-01-15T10:00:01Z","remote_ip":"1.2.3.4","method":"GET","uri":"/","response_code":"200"}"#, Some(Format::NginxJson)),
            // A Windows Firewall log is W3C, but no API's.
            ("#Version: 1.5\n\n#Software: Microsoft Windows Firewall\n#Fields: date time action\n2005-04-11 08:05:57 DROP", None),
        ];
        for (text, want) in cases {
            assert_eq!(d(text), want, "{text}");
        }
    }

    #[test]
    fn the_majority_wins() {
        let text = "garbage\n127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1\n127.0.0.1 - - [10/Oct/2000:13:55:36 -0700] \"GET / HTTP/1.0\" 200 1\n{\"specversion\":\"1.0\"}";
        assert_eq!(d(text), Some(Format::Common));
    }
}
