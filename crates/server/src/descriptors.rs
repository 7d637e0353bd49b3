//! The process's file-descriptor limit, against `max_connections`.
//!
//! Each connection takes a descriptor, and so do the store's files, its
//! journal, the listener and the log. At start the soft limit
//! (`RLIMIT_NOFILE`) is raised to the hard one (what the process may take
//! without privileges), and a `max_connections` that would leave fewer than
//! [`STORE_RESERVE`] descriptors beside the connections is refused: with
//! `ulimit -n 128` and 10,000 connections allowed, a flood of connections
//! took the descriptors the store needed, and ingest failed with 500 and the
//! engine's raw error (the second review, issue 12).

/// Descriptors kept beside the connections: the store's files and journal,
/// the listener, the log, the live audits' thread.
pub const STORE_RESERVE: u64 = 256;

/// The limit is too low for `max_connections`.
#[derive(Debug)]
pub struct TooFewDescriptors {
    /// The setting.
    pub max_connections: u64,
    /// The soft limit, after raising it.
    pub limit: u64,
    /// The hard limit.
    pub hard: u64,
}

impl std::fmt::Display for TooFewDescriptors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "max_connections {} needs {} file descriptors ({STORE_RESERVE} kept for the store), but this process \
             may open {} (RLIMIT_NOFILE, hard limit {}): ",
            self.max_connections,
            self.max_connections.saturating_add(STORE_RESERVE),
            self.limit,
            self.hard
        )?;
        match self.limit.checked_sub(STORE_RESERVE).filter(|room| *room > 0) {
            Some(room) => write!(f, "lower max_connections to at most {room}, or raise the limit"),
            None => write!(f, "raise the limit"),
        }?;
        write!(f, " (`ulimit -n`, systemd's LimitNOFILE)")
    }
}

impl std::error::Error for TooFewDescriptors {}

/// Raises the soft limit to the hard one if it is lower, and checks that it
/// leaves room for `max_connections` beside [`STORE_RESERVE`]. Returns the
/// limit in force.
pub fn ensure_room_for(max_connections: usize) -> Result<u64, TooFewDescriptors> {
    let (soft, hard) = raise_soft_limit();
    check(max_connections as u64, soft, hard)
}

/// Whether `limit` (soft, after raising) leaves room for `max_connections`.
fn check(max_connections: u64, limit: u64, hard: u64) -> Result<u64, TooFewDescriptors> {
    if max_connections.saturating_add(STORE_RESERVE) <= limit {
        Ok(limit)
    } else {
        Err(TooFewDescriptors { max_connections, limit, hard })
    }
}

/// The soft and hard limits, the soft one raised to the hard one when lower
/// (left as it was when the raise fails: the check then judges it).
fn raise_soft_limit() -> (u64, u64) {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit writes the struct it is given, which lives on this stack.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        // Unknown: judged as unlimited rather than refuse a start over it.
        return (u64::MAX, u64::MAX);
    }
    let (soft, hard) = (as_u64(limit.rlim_cur), as_u64(limit.rlim_max));
    if soft < hard {
        let raised = libc::rlimit { rlim_cur: limit.rlim_max, rlim_max: limit.rlim_max };
        // SAFETY: setrlimit reads the struct it is given; raising the soft limit up to the hard one needs no privilege.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            tracing::debug!(from = soft, to = hard, "raised the file-descriptor limit");
            return (hard, hard);
        }
        tracing::warn!(soft, hard, "cannot raise the file-descriptor limit");
    }
    (soft, hard)
}

// `rlim_t` is u64 on Linux, not on every platform libc serves.
#[allow(clippy::unnecessary_cast)]
fn as_u64(v: libc::rlim_t) -> u64 {
    if v == libc::RLIM_INFINITY {
        u64::MAX
    } else {
        v as u64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_connections_and_the_reserve_must_fit_the_limit() {
        assert_eq!(check(512, 1024, 4096).unwrap(), 1024);
        assert!(check(768, 1024, 1024).is_ok(), "exactly full");
        let e = check(10_000, 128, 128).unwrap_err().to_string();
        assert!(e.starts_with("max_connections 10000 needs 10256 file descriptors"), "{e}");
        assert!(e.contains("may open 128 (RLIMIT_NOFILE, hard limit 128): raise the limit (`ulimit -n`"), "{e}");
        let e = check(1_000, 1_024, 1_024).unwrap_err().to_string();
        assert!(e.contains("lower max_connections to at most 768, or raise the limit"), "{e}");
        assert!(check(u64::MAX, u64::MAX, u64::MAX).is_ok(), "unlimited");
    }

    #[test]
    fn the_soft_limit_is_raised_to_the_hard_one() {
        let (soft, hard) = raise_soft_limit();
        assert_eq!(soft, hard);
    }
}
