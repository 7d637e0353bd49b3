//! The crate's one error type.

use callmeter_model::{EventError, RejectReason};

/// Everything that can go wrong reading logs: a bad line, an account that
/// cannot be resolved, or a bad setting.
///
/// Line errors name the line (1-based) and, where one is to blame, the field.
/// Messages are lowercase and quote at most a short prefix of the bad value.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum Error {
    /// A line that does not follow its format.
    #[error("line {line}: {field}: {why}")]
    Line {
        /// The line number, from 1.
        line: u64,
        /// The field that is wrong (`time`, `request`, `status`, …), or `line` for the line as a whole.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The call's account cannot be resolved (DESIGN §4: never guessed).
    #[error("line {line}: account cannot be resolved: {why}")]
    Account {
        /// The line number, from 1.
        line: u64,
        /// Why not.
        why: String,
    },
    /// A canonical NDJSON or CloudEvents line whose event is invalid.
    #[error("line {line}: {source}")]
    Event {
        /// The line number, from 1.
        line: u64,
        /// The model's reason.
        #[source]
        source: EventError,
    },
    /// A format name that is not one of [`crate::Format::ALL`].
    #[error("unknown format {0:?} (expected one of: {names})", names = crate::Format::NAMES)]
    UnknownFormat(String),
    /// An `--account` value that is not an account name.
    #[error("not an account name ([a-z0-9][a-z0-9._-]{{0,63}}): {0:?}")]
    BadAccount(String),
    /// An `--account-from` rule that is unknown, or not usable for logs.
    #[error("bad --account-from rule {rule:?}: {why}")]
    BadAccountRule {
        /// The rule as given.
        rule: String,
        /// Why it cannot be used.
        why: String,
    },
    /// A bad line in a user → account map file.
    #[error("user map line {line}: {why}")]
    UserMap {
        /// The line number, from 1.
        line: u64,
        /// What is wrong.
        why: String,
    },
    /// A bad setting in the route, user-agent, override or WebDAV tables.
    #[error("bad import setting: {0}")]
    Config(String),
    /// A file could not be read.
    #[error("cannot read {path}: {why}")]
    Io {
        /// The file.
        path: String,
        /// The system's reason.
        why: String,
    },
}

impl Error {
    /// The line number of a line error, if this is one.
    pub fn line_no(&self) -> Option<u64> {
        match self {
            Error::Line { line, .. } | Error::Account { line, .. } | Error::Event { line, .. } => Some(*line),
            _ => None,
        }
    }

    /// The reject reason the server would give for this line, for reports.
    pub fn reject_reason(&self) -> Option<RejectReason> {
        match self {
            Error::Line { .. } => Some(RejectReason::InvalidValue),
            Error::Account { .. } => Some(RejectReason::UnknownAccount),
            Error::Event { source, .. } => Some(source.reason),
            _ => None,
        }
    }

    pub(crate) fn line(line: u64, field: &'static str, why: impl Into<String>) -> Error {
        Error::Line { line, field, why: why.into() }
    }
}

/// The crate's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
