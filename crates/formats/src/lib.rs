//! callmeter's log readers: the lines that API, FTP, SFTP and WebDAV servers
//! already write, turned into call events (DESIGN §4, §5).
//!
//! A reader is fed one line at a time ([`LineParser::line`]) and pushes the
//! calls it finds; formats whose calls span lines (vsftpd sessions, SFTP
//! opens and closes) keep what they need between lines, and give what is left
//! at [`LineParser::finish`]. A line that does not follow its format is an
//! [`Error`] naming the line, the field and why; every other line is a call
//! or a non-call of a kind ([`LineIs`], [`NonCall`]): nothing read is dropped
//! silently. No input makes a reader panic.
//!
//! Each line comes with its number and content key from the source's
//! [`LineKeys`], which the ids of its calls are made of ([`line_key`]).
//!
//! ```
//! use callmeter_formats::{parser, AccountRule, Context, Format, LineIs, LineKeys};
//! let line = br#"203.0.113.9 - - [15/Jan/2024:10:00:01 +0000] "GET /api/rest/v1/folders/in HTTP/1.1" 200 512 "-" "curl/8.5.0""#;
//! let mut p = parser(Format::Combined, Context::new(AccountRule::fixed("acme").unwrap()));
//! let mut keys = LineKeys::new(None);
//! let mut calls = Vec::new();
//! assert_eq!(p.line(keys.next(line), line, &mut calls).unwrap(), LineIs::Call);
//! p.finish(&mut calls);
//! assert_eq!(calls[0].operation.as_str(), "list");
//! assert_eq!(calls[0].path.as_deref(), Some("/in"));
//! assert!(calls[0].id.starts_with("log-"));
//! ```
//!
//! # Layout
//!
//! One file per format:
//!
//! - [`clf`]: Apache/nginx Common and Combined, with optional trailing request
//!   time, `Depth` header and host; X-Forwarded-For lists in the client's place;
//!   the virtual host first (`vhost_combined`, nginx `$host …`).
//! - [`nginx_json`]: nginx `log_format … escape=json`, keys as operators name them.
//! - [`w3c`]: W3C Extended (IIS web and IIS FTP, 4–6's numbered sessions too),
//!   `#Fields` changing mid-file, values padded or quoted by other writers.
//! - [`xferlog`]: the wu-ftpd transfer log (vsftpd, ProFTPD, Pure-FTPd).
//! - [`vsftpd`]: `vsftpd.log`, with or without `log_ftp_protocol=YES` and `[pid N]`,
//!   or through syslog.
//! - [`proftpd`]: ProFTPD `ExtendedLog` in its default CLF-like format.
//! - [`sftp`]: OpenSSH `sftp-server`/`internal-sftp` lines in syslog (and `sshd-session`'s).
//! - [`syslog_programs`]: a syslog file that mixes programs, each line read by its
//!   program's reader (OpenSSH's by `sftp`, vsftpd's by `vsftpd`).
//! - [`ndjson`]: canonical call events, one JSON object per line.
//! - [`cloudevents`]: CloudEvents whose `data` is a call event.
//!
//! And what they share:
//!
//! - [`detect`]: `--format auto` from a file's first lines.
//! - [`noncall`]: what a line that is not a call is.
//! - [`classify`]: the REST route table, the user-agent table, WebDAV
//!   operations and interface overrides (config, with shipped defaults), and
//!   `json_keys`: the keys nginx JSON logs are read from ([`JsonKeys`]).
//! - [`line_key`]: content-addressed ids of lines, the same however a file is read.
//! - `occurrences`: identical lines counted over a window of recent ones.
//! - [`context`]: accounts, zones and syslog years, the tables.
//! - `ftp`: FTP verbs and sessions, for the FTP readers.
//! - `syslog`: the syslog and journal prefix (time, host, program), for the
//!   readers of lines servers send through syslog.
//! - `http`: one HTTP request into an event, for the HTTP readers.
//! - `text`: byte helpers (quotes, escapes, dates).
//! - `checked`: the text readers' calls pass the model's checks.
//! - [`error`]: the crate's error.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod checked;
pub mod classify;
pub mod clf;
pub mod cloudevents;
pub mod context;
pub mod detect;
pub mod error;
mod ftp;
mod http;
mod json_keys;
mod line_hash;
pub mod line_key;
pub mod ndjson;
pub mod nginx_json;
pub mod noncall;
mod occurrences;
pub mod proftpd;
pub mod sftp;
mod syslog;
pub mod syslog_programs;
mod text;
pub mod vsftpd;
pub mod w3c;
pub mod xferlog;

#[doc(hidden)]
pub mod fuzzing;
#[cfg(test)]
mod testutil;

pub use classify::{
    Classifier, Depth, ImportConfig, InterfaceOverride, InterfaceOverrides, IpNetwork, JsonKeys, Route, RouteTable,
    UserAgentRule, UserAgentTable, WebdavConfig,
};
pub use context::{
    live_year_reference, local_to_utc, parse_user_map, syslog_year, AccountFrom, AccountRule, Context, CLOCK_SKEW,
};
pub use detect::detect;
pub use error::{Error, Result};
pub use line_key::{strip_bom, LineHash, LineHasher, LineKey, LineKeys, SourceLine, LINE_ID_PREFIX};
pub use noncall::{LineIs, NonCall};
pub use text::MAX_FIELD_BYTES;

use callmeter_model::CallEvent;
use std::fmt;
use std::str::FromStr;

/// A log format `callmeter import --format` and `callmeter tail` read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Format {
    /// Apache/nginx Common Log Format (`common`).
    Common,
    /// Apache/nginx Combined Log Format (`combined`); the same reader as `common`.
    Combined,
    /// Common or Combined with the virtual host first (`vhost-combined`): Apache's
    /// `vhost_combined` (`%v:%p %h …`), nginx formats that start with `$host`.
    VhostCombined,
    /// nginx JSON lines, `escape=json` (`nginx-json`).
    NginxJson,
    /// W3C Extended, as IIS writes it for web and FTP sites (`w3c`).
    W3c,
    /// The xferlog transfer log (`xferlog`).
    Xferlog,
    /// vsftpd's own log (`vsftpd`).
    Vsftpd,
    /// ProFTPD ExtendedLog (`proftpd`).
    Proftpd,
    /// OpenSSH sftp-server via syslog (`sftp`).
    Sftp,
    /// A syslog file of several programs, each line read by its program's
    /// reader: OpenSSH's as `sftp`, vsftpd's as `vsftpd` (`syslog`).
    Syslog,
    /// Canonical call events, one JSON object per line (`ndjson`).
    Ndjson,
    /// CloudEvents, one per line or a batch array per line (`cloudevents`).
    CloudEvents,
}

impl Format {
    /// Every format.
    pub const ALL: [Format; 12] = [
        Format::Common,
        Format::Combined,
        Format::VhostCombined,
        Format::NginxJson,
        Format::W3c,
        Format::Xferlog,
        Format::Vsftpd,
        Format::Proftpd,
        Format::Sftp,
        Format::Syslog,
        Format::Ndjson,
        Format::CloudEvents,
    ];

    /// The names, comma-separated, for messages.
    pub const NAMES: &'static str =
        "common, combined, vhost-combined, nginx-json, w3c, xferlog, vsftpd, proftpd, sftp, syslog, ndjson, cloudevents";

    /// The name used by `--format`.
    pub fn as_str(self) -> &'static str {
        match self {
            Format::Common => "common",
            Format::Combined => "combined",
            Format::VhostCombined => "vhost-combined",
            Format::NginxJson => "nginx-json",
            Format::W3c => "w3c",
            Format::Xferlog => "xferlog",
            Format::Vsftpd => "vsftpd",
            Format::Proftpd => "proftpd",
            Format::Sftp => "sftp",
            Format::Syslog => "syslog",
            Format::Ndjson => "ndjson",
            Format::CloudEvents => "cloudevents",
        }
    }

    /// Whether each line of this format is read alone: its reader keeps
    /// nothing from one line to the next that changes what a later line
    /// gives (caches only) and holds no call over for a later line, so
    /// `finish` gives none. Blocks of such lines can be read by several
    /// readers at once (`callmeter-import`'s `parse_ahead`); the others
    /// (a W3C `#Fields` directive, FTP and SFTP sessions) need one reader
    /// fed every line in order.
    pub fn lines_stand_alone(self) -> bool {
        match self {
            Format::Common
            | Format::Combined
            | Format::VhostCombined
            | Format::NginxJson
            | Format::Xferlog
            | Format::Ndjson
            | Format::CloudEvents => true,
            Format::W3c | Format::Vsftpd | Format::Proftpd | Format::Sftp | Format::Syslog => false,
        }
    }
}

impl FromStr for Format {
    type Err = Error;

    /// A `--format` name (`auto` is not one: detect it with [`detect`]).
    fn from_str(s: &str) -> Result<Self> {
        Format::ALL.into_iter().find(|f| f.as_str() == s).ok_or_else(|| Error::UnknownFormat(s.to_owned()))
    }
}

impl fmt::Display for Format {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A reader of one format: fed one line at a time, it pushes the calls it finds.
///
/// Every line of the source comes with its [`SourceLine`] from the source's
/// [`LineKeys`], fed every line from the first (blank ones too), since ids
/// are made from them. A trailing `\n` or `\r\n` may be left on the line. To
/// resume in the middle of a source, feed the lines before the resume point
/// and drop what they push: readers with state (W3C `#Fields`, FTP and SFTP
/// sessions) then pick up where they were, and so do the line keys.
pub trait LineParser: Send {
    /// The format this reads.
    fn format(&self) -> Format;

    /// Reads one line and says what it is. Calls are pushed to `out`; a line
    /// may give none (a non-call, or a call that waits for a later line) or,
    /// when it completes calls begun on earlier lines, several. Each call is
    /// counted on the line that starts it: that line answers
    /// [`LineIs::Call`], and the lines that only complete it
    /// [`NonCall::PartOfCall`]. On `Err` the line is not a call; the calls
    /// already pushed (of earlier lines) are still good and the reader can go
    /// on.
    fn line(&mut self, at: SourceLine, line: &[u8], out: &mut Vec<CallEvent>) -> Result<LineIs>;

    /// Calls read so far beyond one per line: a CloudEvents batch line of
    /// `n` events adds `n - 1` (a batch line refused for a bad event adds the
    /// good events it gave). Other formats hold at most one call a line: 0.
    fn batched(&self) -> u64 {
        0
    }

    /// End of input: pushes the calls still waiting for a later line (an
    /// upload whose result never came, an SFTP open never closed). Their
    /// accounts were resolved on the lines that started them, so none is lost here.
    fn finish(&mut self, _out: &mut Vec<CallEvent>) {}

    /// The context, to change the year reference or zone while tailing.
    fn context_mut(&mut self) -> &mut Context;
}

/// A reader for `format`. Its calls pass the model's checks: a line with a
/// value no call may hold is an [`Error::Event`] (`checked.rs`).
pub fn parser(format: Format, ctx: Context) -> Box<dyn LineParser> {
    use checked::Checked;
    match format {
        Format::Common | Format::Combined | Format::VhostCombined => {
            Box::new(Checked::new(clf::ClfParser::new(format, ctx)))
        }
        Format::NginxJson => Box::new(Checked::new(nginx_json::NginxJsonParser::new(ctx))),
        Format::W3c => Box::new(Checked::new(w3c::W3cParser::new(ctx))),
        Format::Xferlog => Box::new(Checked::new(xferlog::XferlogParser::new(ctx))),
        Format::Vsftpd => Box::new(Checked::new(vsftpd::VsftpdParser::new(ctx))),
        Format::Proftpd => Box::new(Checked::new(proftpd::ProftpdParser::new(ctx))),
        Format::Sftp => Box::new(Checked::new(sftp::SftpParser::new(ctx))),
        Format::Syslog => Box::new(Checked::new(syslog_programs::SyslogParser::new(ctx))),
        // These read with the model's own parser, which checks every event.
        Format::Ndjson => Box::new(ndjson::NdjsonParser::new(ctx)),
        Format::CloudEvents => Box::new(cloudevents::CloudEventsParser::new(ctx)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn format_names_round_trip() {
        for f in Format::ALL {
            assert_eq!(f.as_str().parse::<Format>().unwrap(), f);
            assert!(Format::NAMES.contains(f.as_str()));
        }
        let e = "auto".parse::<Format>().unwrap_err();
        assert!(e.to_string().starts_with("unknown format \"auto\" (expected one of: common, combined"), "{e}");
    }
}
