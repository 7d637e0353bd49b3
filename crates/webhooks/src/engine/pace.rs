//! Pacing of the engine's store calls (see `engine.rs`, `GATHER`).

use super::GATHER;

/// Paces a kind of store call (claims, completion writes) to one per
/// [`GATHER`] at most.
#[derive(Default)]
pub(super) struct Pace {
    /// When the last call began.
    last: Option<tokio::time::Instant>,
}

impl Pace {
    /// Waits until [`GATHER`] after the last call began (not when the call
    /// is to come `at_once`), and counts a call as begun now.
    pub(super) async fn begin(&mut self, at_once: bool) {
        if let Some(last) = self.last.filter(|_| !at_once) {
            tokio::time::sleep_until(last + GATHER).await;
        }
        self.last = Some(tokio::time::Instant::now());
    }
}

#[cfg(test)]
mod tests {
    use super::{Pace, GATHER};
    use tokio::time::Instant;

    /// A paced call waits until GATHER after the one before it began; the
    /// first, and one asked for at once, do not wait (and count as begun).
    #[tokio::test(start_paused = true)]
    async fn paced_calls_are_one_per_gather_unless_at_once() {
        let mut pace = Pace::default();
        let start = Instant::now();
        pace.begin(false).await;
        assert_eq!(start.elapsed(), std::time::Duration::ZERO, "the first call comes at once");
        pace.begin(false).await;
        assert_eq!(start.elapsed(), GATHER, "the next one GATHER after it");
        pace.begin(true).await;
        assert_eq!(start.elapsed(), GATHER, "one at once does not wait");
        // (Whole milliseconds: the timer rounds a deadline up to one.)
        tokio::time::advance(GATHER / 5).await;
        pace.begin(false).await;
        assert_eq!(start.elapsed(), GATHER * 2, "and the one after waits from it");
    }
}
