//! Usage reports that read the breakdown (`group_by` with `api_key` or
//! `user`) run [`AT_ONCE`] at a time; a request that would wait more than
//! [`MAX_WAIT`] for a slot is answered 503 `busy` with `Retry-After`.
//!
//! Such a report reads every breakdown row of its range, a slice at a time,
//! twice (`usage_groups.rs`): bounded in memory, but it keeps a core busy for
//! as long as the rows take to read. Twelve at once over a century of 200,000
//! api keys and users once took both cores for 90 s and 2.7 GB (the second
//! review, issue 12). The slot is held by the work, not by the request: a
//! client that goes away does not free it while its report still runs.

use crate::error::ApiError;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Reports that read the breakdown at once: one per core of a small server.
pub const AT_ONCE: usize = 2;
/// The longest a report waits for a slot before it is refused.
pub const MAX_WAIT: Duration = Duration::from_secs(3);
/// Seconds a refused report is asked to wait.
const RETRY_AFTER_SECS: u32 = 2;

/// The slots of the reports that read the breakdown.
pub struct ReportSlots {
    slots: Arc<Semaphore>,
    max_wait: Duration,
}

/// A slot, held until the report's work ends.
pub(crate) struct ReportSlot(#[allow(dead_code)] OwnedSemaphorePermit);

impl ReportSlots {
    /// `at_once` slots; a request waits at most `max_wait` for one.
    pub fn new(at_once: usize, max_wait: Duration) -> ReportSlots {
        ReportSlots { slots: Arc::new(Semaphore::new(at_once)), max_wait }
    }

    /// A slot, or 503 `busy` after the longest wait.
    pub(crate) async fn take(&self) -> Result<ReportSlot, ApiError> {
        let busy = || ApiError::Busy {
            message: "too many usage reports by api key or user are running: try again shortly".into(),
            retry_after_secs: RETRY_AFTER_SECS,
        };
        match tokio::time::timeout(self.max_wait, self.slots.clone().acquire_owned()).await {
            Ok(Ok(permit)) => Ok(ReportSlot(permit)),
            Ok(Err(_)) | Err(_) => Err(busy()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn past_the_slots_a_report_waits_then_is_refused() {
        let slots = ReportSlots::new(2, Duration::from_millis(100));
        let (a, b) = (slots.take().await.unwrap(), slots.take().await.unwrap());
        let started = std::time::Instant::now();
        let e = slots.take().await.err().unwrap();
        assert!(started.elapsed() >= Duration::from_millis(100));
        assert_eq!(e.code_and_status().0, "busy");
        // A slot given back within the wait is taken.
        let waiting = tokio::spawn(async move { slots.take().await.map(|_| ()) });
        tokio::time::sleep(Duration::from_millis(20)).await;
        drop(a);
        assert!(waiting.await.unwrap().is_ok());
        drop(b);
    }
}
