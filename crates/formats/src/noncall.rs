//! What a line that is read but is not a call is.
//!
//! DESIGN §5: "Nothing read is dropped silently." Every line a reader is
//! fed is one of three things: a call (or the start of one that later lines
//! complete), a non-call of one of the kinds below, or a bad line (an
//! [`crate::Error`]). The import counts each apart, so that for every input
//! `lines = calls + non-calls + rejected lines` (see `callmeter-import`'s
//! summary), and an operator can see why a line billed nothing.

use serde::Serialize;
use std::fmt;

/// A kind of line that is read and understood, but is not a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NonCall {
    /// An empty line (or one of white space only), or an empty CloudEvents batch.
    Blank,
    /// A W3C directive (`#Fields`, `#Software`, `#Date`…): it describes the lines after it.
    Directive,
    /// An FTP or SFTP session command or event that is not a file operation
    /// (DESIGN §5): `PASV`, `TYPE`, `CWD`, `PWD`, `SYST`, `NOOP`, `QUIT` and
    /// unknown commands; connections, IIS FTP channel events, SFTP session
    /// ends and status messages, vsftpd notices and results of other
    /// commands (`OK CHMOD`), sshd's own messages.
    Housekeeping,
    /// A further line of a call made of several: `USER` before its `PASS`,
    /// `RNTO` after its `RNFR`, an SFTP `close` or `closedir` after its open,
    /// a second `set` line of one setstat. The call is counted on the line
    /// it takes its id from.
    PartOfCall,
    /// A server's reply or result logged on a line of its own, about a
    /// command logged on another line: vsftpd's `FTP response` lines, and its
    /// `OK`/`FAIL` lines when the protocol is logged.
    Reply,
    /// A line that records no request: an HTTP line whose request never was
    /// (`"-"` with 408, an empty request line, TLS or other bytes that are
    /// not `METHOD TARGET`), and the lines of a W3C log that is no API's (a
    /// Windows Firewall log).
    NoRequest,
    /// A syslog line of another program than the server read (`sudo`, `cron`,
    /// PAM lines of other services…).
    OtherProgram,
}

impl NonCall {
    /// Every kind, in the order the summary shows them.
    pub const ALL: [NonCall; 7] = [
        NonCall::Housekeeping,
        NonCall::PartOfCall,
        NonCall::Reply,
        NonCall::NoRequest,
        NonCall::OtherProgram,
        NonCall::Directive,
        NonCall::Blank,
    ];

    /// The kind's name in summaries (`housekeeping`, `part_of_call`…).
    pub fn as_str(self) -> &'static str {
        match self {
            NonCall::Blank => "blank",
            NonCall::Directive => "directive",
            NonCall::Housekeeping => "housekeeping",
            NonCall::PartOfCall => "part_of_call",
            NonCall::Reply => "reply",
            NonCall::NoRequest => "no_request",
            NonCall::OtherProgram => "other_program",
        }
    }

    /// What the kind means, in a few words, for the text summary.
    pub fn meaning(self) -> &'static str {
        match self {
            NonCall::Blank => "empty lines",
            NonCall::Directive => "W3C directives",
            NonCall::Housekeeping => "session commands that are not file operations",
            NonCall::PartOfCall => "further lines of calls made of several",
            NonCall::Reply => "replies logged on lines of their own",
            NonCall::NoRequest => "requests that never were",
            NonCall::OtherProgram => "syslog lines of other programs",
        }
    }
}

impl fmt::Display for NonCall {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What one line read is, as its reader says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LineIs {
    /// A call: the line gives it now, or starts one that a later line or the
    /// end of input completes (its id is this line's). A CloudEvents batch
    /// line of several events is one such line (see
    /// [`crate::LineParser::batched`]).
    Call,
    /// Not a call, of this kind.
    NonCall(NonCall),
}

impl From<NonCall> for LineIs {
    fn from(k: NonCall) -> LineIs {
        LineIs::NonCall(k)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_distinct_and_every_kind_is_listed() {
        let mut names: Vec<&str> = NonCall::ALL.iter().map(|k| k.as_str()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), NonCall::ALL.len());
        assert_eq!(NonCall::PartOfCall.to_string(), "part_of_call");
        assert_eq!(LineIs::from(NonCall::Blank), LineIs::NonCall(NonCall::Blank));
        for k in NonCall::ALL {
            assert_eq!(serde_json::to_value(k).unwrap(), k.as_str(), "serde and as_str agree");
        }
    }
}
