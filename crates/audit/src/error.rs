//! The crate's one error type.

/// What can go wrong auditing: a bad setting, or a log that cannot be read.
/// Bad lines in a log are not errors: they are counted (see [`crate::LogSummary`]).
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// A setting of [`crate::AuditConfig`] that makes no sense.
    #[error("bad audit setting {field}: {why}")]
    Config {
        /// The field's name, as in the config file.
        field: &'static str,
        /// What is wrong with it.
        why: String,
    },
    /// The log reader failed (not a bad line: the input itself).
    #[error("reading the log: {0}")]
    Read(#[from] std::io::Error),
    /// Writing a rendered log failed.
    #[error("writing the log: {0}")]
    Write(std::io::Error),
}
