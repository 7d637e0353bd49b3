//! The one clock the retry logic reads.
//!
//! Every time the delivery engine decides by (when an attempt is due, when
//! the next one is, how long a subscription has been failing, which secrets
//! still sign) comes from a [`Clock`], so that the crate's tests drive the
//! schedule's days and hours with a [`TestClock`] instead of sleeping.

use chrono::{DateTime, Utc};
use std::sync::Arc;

/// What time it is.
pub trait Clock: Send + Sync + 'static {
    /// Now.
    fn now(&self) -> DateTime<Utc>;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that moves only when told to, for tests.
#[derive(Debug, Clone)]
pub struct TestClock(Arc<parking_lot::Mutex<DateTime<Utc>>>);

impl TestClock {
    /// A clock standing at `at`.
    pub fn at(at: DateTime<Utc>) -> TestClock {
        TestClock(Arc::new(parking_lot::Mutex::new(at)))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: chrono::Duration) {
        *self.0.lock() += by;
    }

    /// Sets the clock.
    pub fn set(&self, at: DateTime<Utc>) {
        *self.0.lock() = at;
    }
}

impl Clock for TestClock {
    fn now(&self) -> DateTime<Utc> {
        *self.0.lock()
    }
}
