//! Counters served at `/metrics` in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The server's counters.
#[derive(Default)]
pub struct Metrics {
    /// Ingest requests answered.
    pub ingest_requests: AtomicU64,
    /// Events accepted.
    pub events_accepted: AtomicU64,
    /// Events found to be duplicates.
    pub events_duplicate: AtomicU64,
    /// Events rejected.
    pub events_rejected: AtomicU64,
    /// Ingest requests that failed as a whole (disk full, store unavailable).
    pub ingest_failures: AtomicU64,
    /// Sum of ingest acknowledgement latency, microseconds.
    pub ingest_latency_us: AtomicU64,
    /// Calls the store replayed when it opened (since the last checkpoint before a crash).
    pub store_open_replayed_calls: AtomicU64,
    /// How long opening the store took, milliseconds.
    pub store_open_ms: AtomicU64,
}

impl Metrics {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Renders every counter, plus the store's size and account count.
    pub fn render(&self, disk_bytes: u64, accounts: usize, writable: bool) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}");
        };
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        counter("callmeter_ingest_requests_total", "Ingest requests answered.", get(&self.ingest_requests));
        counter("callmeter_events_accepted_total", "Call events stored and counted.", get(&self.events_accepted));
        counter("callmeter_events_duplicate_total", "Call events that were duplicates.", get(&self.events_duplicate));
        counter("callmeter_events_rejected_total", "Call events rejected.", get(&self.events_rejected));
        counter("callmeter_ingest_failures_total", "Ingest requests that failed whole.", get(&self.ingest_failures));
        counter(
            "callmeter_ingest_latency_microseconds_total",
            "Sum of ingest acknowledgement latencies.",
            get(&self.ingest_latency_us),
        );
        let _ = writeln!(s, "# HELP callmeter_store_bytes Bytes the store takes on disk.\n# TYPE callmeter_store_bytes gauge\ncallmeter_store_bytes {disk_bytes}");
        let _ = writeln!(
            s,
            "# HELP callmeter_accounts Accounts known.\n# TYPE callmeter_accounts gauge\ncallmeter_accounts {accounts}"
        );
        let _ = writeln!(s, "# HELP callmeter_store_writable Whether the store takes writes.\n# TYPE callmeter_store_writable gauge\ncallmeter_store_writable {}", writable as u8);
        let mut gauge = |name: &str, help: &str, v: u64| {
            let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} gauge\n{name} {v}");
        };
        gauge(
            "callmeter_store_open_replayed_calls",
            "Calls replayed when the store opened: those since the last checkpoint before a crash.",
            get(&self.store_open_replayed_calls),
        );
        gauge("callmeter_store_open_milliseconds", "How long opening the store took.", get(&self.store_open_ms));
        s
    }
}
