//! Counters served at `/metrics` in the Prometheus text format.

use callmeter_webhooks::DeliveryStats;
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
    /// Of those, the calls the open could not checkpoint: they wait for the next checkpoint.
    pub store_open_replayed_calls_waiting: AtomicU64,
    /// How long opening the store took, milliseconds.
    pub store_open_ms: AtomicU64,
    /// Requests answered 401 from their headers alone (their body never read).
    pub refused_unauthorized: AtomicU64,
    /// Requests answered 503 because their body did not fit the bytes of bodies in flight.
    pub refused_bodies_in_flight: AtomicU64,
    /// Ingest requests answered 503 because too many events waited for the store's writer.
    pub refused_store_busy: AtomicU64,
    /// Live audits answered 503 because the audit thread stayed busy too long.
    pub refused_live_audits: AtomicU64,
    /// Usage reports by api key or user answered 503: too many ran at once for too long.
    pub refused_reports: AtomicU64,
    /// Connections answered 503 and closed at once, past `max_connections`.
    pub refused_connections: AtomicU64,
    /// Connections closed because no request began, its headers did not end, or its answer took nothing, in time.
    pub connection_timeouts: AtomicU64,
    /// Requests refused because their body did not arrive whole in time.
    pub body_timeouts: AtomicU64,
}

/// How loaded the server is now: the gauges beside the counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Load {
    /// Connections open.
    pub open_connections: usize,
    /// Bytes of request bodies reserved (being read, or worked on).
    pub body_bytes_in_flight: usize,
}

impl Metrics {
    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// Renders every counter, plus the store's size and account count, and the load.
    pub fn render(&self, disk_bytes: u64, accounts: usize, writable: bool, load: Load) -> String {
        let mut s = String::new();
        let mut counter = |name: &str, help: &str, v: u64| write_metric(&mut s, name, help, "counter", v);
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
        let refusals = [
            ("unauthorized", "answered 401 from their headers, their body never read", &self.refused_unauthorized),
            (
                "bodies_in_flight",
                "answered 503: their body did not fit the bodies in flight",
                &self.refused_bodies_in_flight,
            ),
            ("store_busy", "answered 503: too many events waited for the store", &self.refused_store_busy),
            ("live_audits", "answered 503: the live audit thread stayed busy", &self.refused_live_audits),
            ("reports", "answered 503: usage reports by api key or user stayed busy", &self.refused_reports),
            ("connections", "answered 503 and closed at once: past max_connections", &self.refused_connections),
        ];
        for (why, help, count) in refusals {
            let name = format!("callmeter_refused_{why}_total");
            counter(&name, &format!("Requests or connections {help}."), get(count));
        }
        counter(
            "callmeter_connection_timeouts_total",
            "Connections closed: no request began, its headers did not end, or its answer was not read, in time.",
            get(&self.connection_timeouts),
        );
        counter(
            "callmeter_body_timeouts_total",
            "Requests whose body did not arrive in time.",
            get(&self.body_timeouts),
        );
        let mut gauge = |name: &str, help: &str, v: u64| write_metric(&mut s, name, help, "gauge", v);
        gauge("callmeter_store_bytes", "Bytes the store takes on disk.", disk_bytes);
        gauge("callmeter_accounts", "Accounts known.", accounts as u64);
        gauge("callmeter_store_writable", "Whether the store takes writes.", writable as u64);
        gauge(
            "callmeter_store_open_replayed_calls",
            "Calls replayed when the store opened: those since the last checkpoint before a crash.",
            get(&self.store_open_replayed_calls),
        );
        gauge(
            "callmeter_store_open_replayed_calls_waiting",
            "Of the calls replayed when the store opened, those it could not checkpoint then (compaction behind, a full disk): a crash before the next checkpoint replays them again.",
            get(&self.store_open_replayed_calls_waiting),
        );
        gauge("callmeter_store_open_milliseconds", "How long opening the store took.", get(&self.store_open_ms));
        gauge("callmeter_open_connections", "Connections open.", load.open_connections as u64);
        gauge(
            "callmeter_body_bytes_in_flight",
            "Bytes of request bodies being read or worked on.",
            load.body_bytes_in_flight as u64,
        );
        s
    }
}

/// Appends the webhook delivery engine's counters and gauges, and the
/// change processor's backlog (stored changes not yet made deliveries).
pub fn render_deliveries(s: &mut String, stats: &DeliveryStats, changes_unprocessed: u64) {
    let get = DeliveryStats::get;
    let counters = [
        ("attempts_delivered", "Webhook attempts answered with a 2xx.", get(&stats.attempts_delivered)),
        (
            "attempts_failed",
            "Webhook attempts that failed: another answer, none, or a refused address.",
            get(&stats.attempts_failed),
        ),
        (
            "deliveries_given_up",
            "Webhook deliveries given up after their tenth attempt.",
            get(&stats.deliveries_given_up),
        ),
        (
            "subscriptions_disabled",
            "Webhooks disabled by their deliveries: a 410, or five days of failures.",
            get(&stats.subscriptions_disabled),
        ),
        ("claims", "Reads of due webhook deliveries from the outbox.", get(&stats.claims)),
        ("completion_writes", "Writes recording webhook attempts, each many.", get(&stats.completion_writes)),
        ("workers_started", "Webhook lane workers started (each sends many attempts).", get(&stats.workers_started)),
    ];
    for (name, help, v) in counters {
        write_metric(s, &format!("callmeter_webhook_{name}_total"), help, "counter", v);
    }
    let gauges = [
        (
            "rows_claimed",
            "Webhook deliveries claimed and not yet recorded: in flight, or waiting for their target.",
            get(&stats.rows_claimed),
        ),
        ("attempts_in_flight", "Webhook attempts on the wire.", get(&stats.attempts_in_flight)),
        (
            "changes_unprocessed",
            "Stored changes not yet turned into webhook deliveries (stays near 0).",
            changes_unprocessed,
        ),
    ];
    for (name, help, v) in gauges {
        write_metric(s, &format!("callmeter_webhook_{name}"), help, "gauge", v);
    }
}

/// One metric in the Prometheus text format: its help, its type, its value.
fn write_metric(s: &mut String, name: &str, help: &str, kind: &str, v: u64) {
    let _ = writeln!(s, "# HELP {name} {help}\n# TYPE {name} {kind}\n{name} {v}");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delivery_engines_counters_and_gauges_are_rendered() {
        let stats = DeliveryStats::default();
        stats.attempts_delivered.store(7, Ordering::Relaxed);
        stats.attempts_failed.store(2, Ordering::Relaxed);
        stats.rows_claimed.store(3, Ordering::Relaxed);
        let mut s = String::new();
        render_deliveries(&mut s, &stats, 5);
        for line in [
            "callmeter_webhook_attempts_delivered_total 7",
            "callmeter_webhook_attempts_failed_total 2",
            "callmeter_webhook_deliveries_given_up_total 0",
            "callmeter_webhook_rows_claimed 3",
            "callmeter_webhook_changes_unprocessed 5",
            "# TYPE callmeter_webhook_attempts_in_flight gauge",
        ] {
            assert!(s.lines().any(|l| l == line), "{line} in {s}");
        }
    }

    #[test]
    fn refusals_and_load_are_rendered() {
        let m = Metrics::default();
        Metrics::add(&m.refused_unauthorized, 3);
        Metrics::add(&m.refused_connections, 2);
        let text = m.render(0, 0, true, Load { open_connections: 7, body_bytes_in_flight: 1024 });
        assert!(text.contains("\ncallmeter_refused_unauthorized_total 3\n"), "{text}");
        assert!(text.contains("\ncallmeter_refused_connections_total 2\n"), "{text}");
        assert!(text.contains("\ncallmeter_refused_store_busy_total 0\n"), "{text}");
        assert!(text.contains("\ncallmeter_open_connections 7\n"), "{text}");
        assert!(text.contains("\ncallmeter_body_bytes_in_flight 1024\n"), "{text}");
    }
}
