//! The same calls written as the logs callmeter reads (DESIGN §5), so that
//! an audit can be checked end to end through the formats crate. Written
//! apart (the SFTP calls in an sftp-server log, the others in an access log),
//! they are the two logs an operator audits together.
//!
//! What survives each format:
//!
//! | format | kept | lost |
//! |---|---|---|
//! | NDJSON | everything | nothing |
//! | Combined | time (to the nearest second), client IP, user, user agent, method, path, cursor (in the REST query), status (an FTP or SFTP call's as 200, or 503 when it failed), bytes | API key (the source becomes the user, else IP + agent), `result_count`, interface (told again from the user agent), integration |
//! | vsftpd (`log_ftp_protocol=YES`) | time (second), client IP, user (API-key sources log in with the key as user name), path, operation | later pages (one `LIST` per listing), cursors, `result_count`, copies (not an FTP command), failed answers (every command succeeds: a retry after a 503 reads as a duplicate) |
//! | sftp-server (`-l VERBOSE`, rsyslog high-precision time) | time (µs), user (as for vsftpd), client IP, path, operation | later pages (one `opendir` per listing), cursors, `result_count`, user agent, status (as for vsftpd); each source's session adds one login |

use crate::error::AuditError;
use callmeter_model::{CallEvent, Interface, Operation};
use chrono::{DateTime, Duration, SecondsFormat, Timelike, Utc};
use std::collections::HashMap;
use std::io::Write;

fn w(e: std::io::Error) -> AuditError {
    AuditError::Write(e)
}

/// Canonical call events, one JSON object per line.
pub fn write_ndjson<W: Write>(events: &[CallEvent], mut out: W) -> Result<(), AuditError> {
    for e in events {
        serde_json::to_writer(&mut out, e).map_err(|e| w(e.into()))?;
        out.write_all(b"\n").map_err(w)?;
    }
    Ok(())
}

/// The time to the nearest second (logs with whole seconds).
fn nearest_second(t: DateTime<Utc>) -> DateTime<Utc> {
    let rounded = t + Duration::microseconds(500_000);
    rounded.with_nanosecond(0).unwrap_or(rounded)
}

/// `%`-encodes what a request target cannot hold as is.
fn encode_path(p: &str) -> String {
    let mut out = String::with_capacity(p.len());
    for b in p.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => out.push(b as char),
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// The platform's REST request for a call (DESIGN §5's route table).
fn rest_request(e: &CallEvent) -> (&'static str, String) {
    let path = encode_path(e.path.as_deref().unwrap_or("/").trim_start_matches('/'));
    let base = "/api/rest/v1";
    match e.operation {
        Operation::List => {
            let mut target = format!("{base}/folders/{path}?per_page=10000");
            if let Some(c) = &e.cursor {
                target.push_str("&cursor=");
                target.push_str(&encode_path(c));
            }
            ("GET", target)
        }
        Operation::Stat => ("GET", format!("{base}/file_actions/metadata/{path}")),
        Operation::Read => ("GET", format!("{base}/files/{path}")),
        Operation::Write => ("POST", format!("{base}/files/{path}")),
        Operation::Delete => ("DELETE", format!("{base}/files/{path}")),
        Operation::Move => ("POST", format!("{base}/file_actions/move/{path}")),
        Operation::Copy => ("POST", format!("{base}/file_actions/copy/{path}")),
        Operation::Mkdir => ("POST", format!("{base}/folders/{path}")),
        Operation::Login => ("POST", format!("{base}/sessions")),
        Operation::Other => ("GET", format!("{base}/other/{path}")),
    }
}

/// The status of a call written as an HTTP request: its own over HTTP; for an
/// FTP or SFTP call (whose statuses mean other things: SFTP's 0 is success,
/// HTTP's 0 no answer), 200, or 503 when its answer failed.
fn http_status(e: &CallEvent) -> i64 {
    match e.interface {
        Interface::Ftp | Interface::Sftp if crate::failed_answer::is_failed_answer(e.interface, e.status) => 503,
        Interface::Ftp | Interface::Sftp => 200,
        _ => e.status.unwrap_or(200),
    }
}

/// An Apache/nginx Combined log of the calls, as REST requests.
pub fn write_combined<W: Write>(events: &[CallEvent], mut out: W) -> Result<(), AuditError> {
    for e in events {
        let (method, target) = rest_request(e);
        let time = nearest_second(e.time).format("%d/%b/%Y:%H:%M:%S +0000");
        let clean = |s: &str| s.replace(['"', '\\'], "_");
        writeln!(
            out,
            "{} - {} [{}] \"{} {} HTTP/1.1\" {} {} \"-\" \"{}\"",
            e.client_ip.as_deref().unwrap_or("-"),
            e.user.as_deref().map_or("-".to_owned(), |u| u.replace(' ', "_")),
            time,
            method,
            target,
            http_status(e),
            e.bytes.unwrap_or(0),
            e.user_agent.as_deref().map_or("-".to_owned(), clean),
        )
        .map_err(w)?;
    }
    Ok(())
}

/// The name a source logs in with over FTP or SFTP: its user, else its API key.
fn login_name(e: &CallEvent) -> String {
    e.user.clone().or_else(|| e.api_key.clone()).unwrap_or_else(|| "anonymous".to_owned())
}

/// A vsftpd log (`log_ftp_protocol=YES`, `[pid N]`): one session per source.
pub fn write_vsftpd<W: Write>(events: &[CallEvent], mut out: W) -> Result<(), AuditError> {
    let mut pids: HashMap<String, u64> = HashMap::new();
    for e in events {
        let user = login_name(e);
        let ip = e.client_ip.clone().unwrap_or_else(|| "0.0.0.0".to_owned());
        let time = nearest_second(e.time).format("%a %b %e %H:%M:%S %Y").to_string();
        let next = pids.len() as u64 + 100;
        let (pid, new) = match pids.get(&user) {
            Some(p) => (*p, false),
            None => {
                pids.insert(user.clone(), next);
                (next, true)
            }
        };
        let head = format!("{time} [pid {pid}]");
        if new {
            writeln!(out, "{head} CONNECT: Client \"{ip}\"").map_err(w)?;
            writeln!(out, "{head} FTP command: Client \"{ip}\", \"USER {user}\"").map_err(w)?;
            writeln!(out, "{head} [{user}] FTP response: Client \"{ip}\", \"331 Please specify the password.\"")
                .map_err(w)?;
            writeln!(out, "{head} [{user}] FTP command: Client \"{ip}\", \"PASS <password>\"").map_err(w)?;
            writeln!(out, "{head} [{user}] OK LOGIN: Client \"{ip}\"").map_err(w)?;
            writeln!(out, "{head} [{user}] FTP response: Client \"{ip}\", \"230 Login successful.\"").map_err(w)?;
        }
        let path = e.path.as_deref().unwrap_or("/");
        let mut cmd = |c: &str, replies: &[&str]| -> std::io::Result<()> {
            writeln!(out, "{head} [{user}] FTP command: Client \"{ip}\", \"{c}\"")?;
            for r in replies {
                if let Some(kind) = r.strip_prefix('!') {
                    writeln!(out, "{head} [{user}] {kind}: Client \"{ip}\", \"{path}\", 2048 bytes, 100.00Kbyte/sec")?;
                } else {
                    writeln!(out, "{head} [{user}] FTP response: Client \"{ip}\", \"{r}\"")?;
                }
            }
            Ok(())
        };
        let r = match e.operation {
            Operation::List if e.cursor.is_none() => {
                cmd(&format!("LIST {path}"), &["150 Here comes the directory listing.", "226 Directory send OK."])
            }
            Operation::Read => cmd(
                &format!("RETR {path}"),
                &["150 Opening BINARY mode data connection.", "!OK DOWNLOAD", "226 Transfer complete."],
            ),
            Operation::Write => {
                cmd(&format!("STOR {path}"), &["150 Ok to send data.", "!OK UPLOAD", "226 Transfer complete."])
            }
            Operation::Stat => cmd(&format!("SIZE {path}"), &["213 2048"]),
            Operation::Delete => cmd(&format!("DELE {path}"), &["250 Delete operation successful."]),
            Operation::Mkdir => cmd(&format!("MKD {path}"), &[&format!("257 \"{path}\" created")]),
            Operation::Move => cmd(&format!("RNFR {path}"), &["350 Ready for RNTO."]).and_then(|_| {
                cmd(&format!("RNTO {}", e.destination.as_deref().unwrap_or("/renamed")), &["250 Rename successful."])
            }),
            // Later pages, copies, logins (the session has one) and others have no FTP command.
            _ => Ok(()),
        };
        r.map_err(w)?;
    }
    Ok(())
}

/// An OpenSSH sftp-server log through syslog at VERBOSE, with rsyslog's
/// high-precision times: one session per source.
pub fn write_sftp<W: Write>(events: &[CallEvent], mut out: W) -> Result<(), AuditError> {
    let mut pids: HashMap<String, u64> = HashMap::new();
    for e in events {
        let user = login_name(e);
        let time = e.time.to_rfc3339_opts(SecondsFormat::Micros, false);
        let next = pids.len() as u64 + 4_000;
        let (pid, new) = match pids.get(&user) {
            Some(p) => (*p, false),
            None => {
                pids.insert(user.clone(), next);
                (next, true)
            }
        };
        let head = format!("{time} files1 internal-sftp[{pid}]:");
        if new {
            let ip = e.client_ip.as_deref().unwrap_or("0.0.0.0");
            writeln!(out, "{head} session opened for local user {user} from [{ip}]").map_err(w)?;
        }
        let path = e.path.as_deref().unwrap_or("/");
        let r = match e.operation {
            Operation::List if e.cursor.is_none() => {
                writeln!(out, "{head} opendir \"{path}\"").and_then(|_| writeln!(out, "{head} closedir \"{path}\""))
            }
            Operation::Read => writeln!(out, "{head} open \"{path}\" flags READ mode 0666")
                .and_then(|_| writeln!(out, "{head} close \"{path}\" bytes read 2048 written 0")),
            Operation::Write | Operation::Copy => {
                let target =
                    if e.operation == Operation::Copy { e.destination.as_deref().unwrap_or(path) } else { path };
                writeln!(out, "{head} open \"{target}\" flags WRITE,CREATE,TRUNCATE mode 0644")
                    .and_then(|_| writeln!(out, "{head} close \"{target}\" bytes read 0 written 4096"))
            }
            Operation::Stat => writeln!(out, "{head} stat name \"{path}\""),
            Operation::Delete => writeln!(out, "{head} remove name \"{path}\""),
            Operation::Mkdir => writeln!(out, "{head} mkdir name \"{path}\""),
            Operation::Move => {
                writeln!(out, "{head} rename old \"{path}\" new \"{}\"", e.destination.as_deref().unwrap_or("/renamed"))
            }
            _ => Ok(()),
        };
        r.map_err(w)?;
    }
    Ok(())
}
