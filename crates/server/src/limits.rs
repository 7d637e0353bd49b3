//! What clients may hold of the server at once: connections, time, and the
//! memory of request bodies.
//!
//! Each bound answers a way a review sank the server without it (issue 12):
//! thousands of idle or one-byte-a-second connections held for minutes,
//! hundreds of 16 MiB bodies read into memory at once, answers never read,
//! and audits left running by clients that went away. Past a bound the
//! server refuses at once (503 with `Retry-After`, or a closed connection)
//! rather than queue: a queue of work it cannot do only grows.

use std::time::Duration;

/// The settled bounds (from `ServerOptions`: flags, environment, config file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerLimits {
    /// Connections open at once. A connection past it is answered 503 and
    /// closed at once (counted in `/metrics`), so that it holds no descriptor.
    pub max_connections: usize,
    /// From a request's first byte to the end of its headers.
    pub header_timeout: Duration,
    /// From the start of reading a body to its end, whole: a body trickled
    /// slower than that is refused, whatever its size.
    pub body_timeout: Duration,
    /// A connection with no request in progress (new, or kept alive after an
    /// answer) is closed after this.
    pub idle_timeout: Duration,
    /// A connection whose writes take nothing for this long is closed: an
    /// answer may be of any size, and slow, but it must progress.
    pub write_timeout: Duration,
    /// The longest an audit made for a request (`live_audits.rs`) may run on
    /// the audits' thread; past it, the request is refused (400: ask for a
    /// shorter range) and the thread is free for the next.
    pub live_audit_timeout: Duration,
    /// Bytes of request bodies being read or worked on at once, over all
    /// requests. A body that does not fit is refused with 503 and
    /// `Retry-After`, before it is read.
    pub bodies_in_flight: usize,
}

impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits {
            max_connections: 512,
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(60),
            idle_timeout: Duration::from_secs(60),
            write_timeout: Duration::from_secs(30),
            live_audit_timeout: Duration::from_secs(30),
            bodies_in_flight: 256 << 20,
        }
    }
}
