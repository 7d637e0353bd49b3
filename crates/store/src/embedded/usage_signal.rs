//! Which accounts' usage changed: the accounts of the commits published
//! since the alert evaluator last asked, and the signal that there are some.
//!
//! The syncer marks, once a commit is durable, the accounts with accepted
//! calls in it, those with an adjustment, and those whose record it wrote (a
//! new threshold applies at once); the evaluator takes the set. At open
//! every account is marked, so the first look covers them all: an alert due
//! when the store last stopped (or crashed) is found then. One mark per
//! account and commit, not per call: ingest pays a set lookup per block.

use std::collections::HashSet;
use std::time::Duration;

#[derive(Default)]
pub(crate) struct UsageSignal {
    accounts: parking_lot::Mutex<HashSet<String>>,
    marked: parking_lot::Condvar,
}

impl UsageSignal {
    /// Marks accounts as changed.
    pub fn mark<'a>(&self, names: impl IntoIterator<Item = &'a str>) {
        let mut accounts = self.accounts.lock();
        let was_empty = accounts.is_empty();
        for name in names {
            if !accounts.contains(name) {
                accounts.insert(name.to_owned());
            }
        }
        if was_empty && !accounts.is_empty() {
            self.marked.notify_all();
        }
    }

    /// The accounts marked since the last take, waiting up to `wait` for one.
    pub fn take(&self, wait: Duration) -> Vec<String> {
        let mut accounts = self.accounts.lock();
        if accounts.is_empty() {
            self.marked.wait_for(&mut accounts, wait);
        }
        let mut out: Vec<String> = accounts.drain().collect();
        out.sort();
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_are_taken_once_each() {
        let signal = std::sync::Arc::new(UsageSignal::default());
        assert!(signal.take(Duration::from_millis(1)).is_empty());
        signal.mark(["b", "a", "b"]);
        assert_eq!(signal.take(Duration::ZERO), ["a", "b"]);
        assert!(signal.take(Duration::from_millis(1)).is_empty());
        let waiting = {
            let signal = signal.clone();
            std::thread::spawn(move || signal.take(Duration::from_secs(30)))
        };
        std::thread::sleep(Duration::from_millis(20));
        signal.mark(["c"]);
        assert_eq!(waiting.join().unwrap(), ["c"], "a mark wakes a waiting take");
    }
}
