//! The one error type of the store crate.

use thiserror::Error;

/// What can go wrong in a store.
#[derive(Debug, Error)]
pub enum StoreError {
    /// Too little free space to commit safely; nothing of the request was written.
    #[error("disk full: {0}")]
    DiskFull(String),
    /// A write or sync failed; the request was not acknowledged and the store must be reopened.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The storage engine reported an error.
    #[error("storage engine: {0}")]
    Engine(String),
    /// Data on disk could not be decoded.
    #[error("corrupt data: {0}")]
    Corrupt(String),
    /// The data folder was written by a newer callmeter.
    #[error("store format version {found} is newer than this build reads ({supported})")]
    Version {
        /// The version found on disk.
        found: u32,
        /// The newest version this build reads.
        supported: u32,
    },
    /// No such account.
    #[error("unknown account {0:?}")]
    UnknownAccount(String),
    /// No such webhook subscription.
    #[error("unknown webhook {0:?}")]
    UnknownSubscription(String),
    /// No such plan in the configuration.
    #[error("unknown plan {0:?}")]
    UnknownPlan(String),
    /// The write conflicts with what is stored (a webhook id that is taken).
    #[error("conflict: {0}")]
    Conflict(String),
    /// A request-log cursor that this store did not hand out.
    #[error("invalid cursor")]
    InvalidCursor,
    /// A backup may not go to that folder (the message names the rule and the path).
    #[error("backup folder: {0}")]
    BackupTarget(String),
    /// Too much is waiting to be written: try again shortly (nothing of the request was taken).
    #[error("busy: {0}")]
    Busy(String),
    /// The writer has stopped (the server is shutting down).
    #[error("store is shutting down")]
    ShuttingDown,
    /// A file-system error outside the engine.
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl From<fjall::Error> for StoreError {
    fn from(e: fjall::Error) -> Self {
        match e {
            fjall::Error::Io(io) if is_disk_full(&io) => StoreError::DiskFull(io.to_string()),
            fjall::Error::Poisoned => StoreError::Unavailable("storage engine is poisoned after a failed write".into()),
            other => StoreError::Engine(other.to_string()),
        }
    }
}

/// Whether an I/O error means the file system is out of space or quota.
pub fn is_disk_full(e: &std::io::Error) -> bool {
    matches!(e.raw_os_error(), Some(libc::ENOSPC) | Some(libc::EDQUOT))
}
