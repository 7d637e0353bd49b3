//! What the delivery engine has done and holds, for `/metrics`: counters
//! the engine adds to as it goes, and gauges it keeps current. Shared with
//! whoever renders them (the server), which makes them before the engine.

use std::sync::atomic::{AtomicU64, Ordering};

/// The engine's counters and gauges.
#[derive(Debug, Default)]
pub struct DeliveryStats {
    /// Attempts answered with a 2xx.
    pub attempts_delivered: AtomicU64,
    /// Attempts that failed (any other answer, no answer, a refused address).
    pub attempts_failed: AtomicU64,
    /// Deliveries given up after their tenth attempt, once recorded (a
    /// redelivery asked during that attempt still counts it).
    pub deliveries_given_up: AtomicU64,
    /// Subscriptions the engine disabled (a 410, five days of failures):
    /// once each time, however many attempts decided it at once.
    pub subscriptions_disabled: AtomicU64,
    /// Claims made (store reads of due deliveries).
    pub claims: AtomicU64,
    /// Completion writes (each records many attempts).
    pub completion_writes: AtomicU64,
    /// Gauge: deliveries claimed and not yet completed (in flight or waiting for their target).
    pub rows_claimed: AtomicU64,
    /// Gauge: attempts in flight.
    pub attempts_in_flight: AtomicU64,
    /// Lane workers started (a worker sends its target's rows one after
    /// another, and waits a little for more before it ends).
    pub workers_started: AtomicU64,
}

impl DeliveryStats {
    /// Adds one to a counter.
    pub(crate) fn count(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    /// A counter's or gauge's value now.
    pub fn get(value: &AtomicU64) -> u64 {
        value.load(Ordering::Relaxed)
    }
}

/// Counts an attempt in flight for as long as it lives, however its attempt ends.
pub(crate) struct InFlight<'s>(&'s AtomicU64);

impl<'s> InFlight<'s> {
    pub(crate) fn new(gauge: &'s AtomicU64) -> InFlight<'s> {
        gauge.fetch_add(1, Ordering::Relaxed);
        InFlight(gauge)
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_attempt_in_flight_is_counted_until_it_ends_even_by_a_panic() {
        let stats = DeliveryStats::default();
        {
            let _one = InFlight::new(&stats.attempts_in_flight);
            let _two = InFlight::new(&stats.attempts_in_flight);
            assert_eq!(DeliveryStats::get(&stats.attempts_in_flight), 2);
        }
        assert_eq!(DeliveryStats::get(&stats.attempts_in_flight), 0);
        let panicked = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _three = InFlight::new(&stats.attempts_in_flight);
            panic!("an attempt that panics");
        }));
        assert!(panicked.is_err());
        assert_eq!(DeliveryStats::get(&stats.attempts_in_flight), 0, "a panic does not leave it counted");
    }
}
