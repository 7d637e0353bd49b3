//! The crate's one error type.

use callmeter_store::StoreError;

/// Everything that stops an import or a tail. Bad lines and refused events
/// are not errors: they are counted in the [`crate::Summary`].
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// A file could not be opened or read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The system's reason.
        source: std::io::Error,
    },
    /// No format fits the first lines, and none was given.
    #[error("{path}: cannot tell the format from its first lines; give --format (one of: {names})", names = callmeter_formats::Format::NAMES)]
    UnknownFormat {
        /// The file.
        path: String,
    },
    /// A bad setting: account rule, user map, route table.
    #[error(transparent)]
    Setting(#[from] callmeter_formats::Error),
    /// `--strict` and a line that is not a call of its format.
    #[error("{path}: stopped at the first bad line (--strict): {error}")]
    Strict {
        /// The file.
        path: String,
        /// The line's error.
        error: String,
    },
    /// The server answered a batch with an error that retrying will not cure.
    #[error("the server refused a batch: {status}: {message}")]
    Refused {
        /// The HTTP status.
        status: u16,
        /// The server's message.
        message: String,
    },
    /// The server could not be reached, or kept failing, for longer than allowed.
    #[error("gave up on the server at {url} after {seconds} s: {why}")]
    Unreachable {
        /// The server's events URL.
        url: String,
        /// How long it was tried.
        seconds: u64,
        /// The last failure.
        why: String,
    },
    /// The embedded store failed (`--data`).
    #[error("store: {0}")]
    Store(#[from] StoreError),
    /// The tail checkpoint could not be read or written.
    #[error("checkpoint {path}: {why}")]
    Checkpoint {
        /// The checkpoint file.
        path: String,
        /// What is wrong.
        why: String,
    },
}

impl ImportError {
    /// What the error says about its file, without naming it: for the list
    /// of files refused whole ([`crate::Summary::refuse_file`]).
    pub fn about_the_file(&self) -> String {
        match self {
            ImportError::UnknownFormat { .. } => format!(
                "cannot tell the format from its first lines; give --format (one of: {})",
                callmeter_formats::Format::NAMES
            ),
            ImportError::Io { source, .. } => format!("cannot read it: {source}"),
            other => other.to_string(),
        }
    }

    pub(crate) fn io(path: impl std::fmt::Display, source: std::io::Error) -> ImportError {
        ImportError::Io { path: path.to_string(), source }
    }
}

/// The crate's result type.
pub type Result<T, E = ImportError> = std::result::Result<T, E>;
