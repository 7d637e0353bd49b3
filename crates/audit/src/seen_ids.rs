//! The ids of the calls read lately, so that a call read twice counts once
//! (DESIGN §3), as `import` would count it: a log given together with its
//! rotated or gzipped copy, overlapping rotations, an NDJSON file with a
//! repeated id.
//!
//! Imported lines have content-addressed ids (`docs/import-ids.md`): the same
//! line gives the same id in every copy of its file. The set is bounded by
//! time, not by the number of calls: an id is kept until the stream has moved
//! [`SEEN_IDS_WINDOW_SECS`] past its call's time. Merged by time
//! ([`crate::merge`]), two copies of one call come out next to each other,
//! far closer than that, whatever the files' sizes; so memory is the calls
//! of the last five minutes (about 40 bytes each), never the whole input.
//!
//! What it cannot see: two copies of a call that come out of the merge more
//! than five minutes of call time apart. That takes one copy logging the call
//! five minutes later than the other does (an SFTP open that one copy closes
//! after a long transfer while the other, cut short, ends with it open).

use callmeter_model::{CallEvent, DedupKey};
use std::collections::{HashSet, VecDeque};

/// How long, in call time, an id is remembered behind the newest call read.
pub const SEEN_IDS_WINDOW_SECS: i64 = 300;

/// The (account, id) keys of the calls of the last [`SEEN_IDS_WINDOW_SECS`].
#[derive(Debug)]
pub struct SeenIds {
    window_us: i64,
    newest: i64,
    keys: HashSet<DedupKey, foldhash::fast::RandomState>,
    /// The keys in the order read, with their calls' times: the oldest leave first.
    queue: VecDeque<(i64, DedupKey)>,
}

impl Default for SeenIds {
    fn default() -> Self {
        SeenIds::new(SEEN_IDS_WINDOW_SECS)
    }
}

impl SeenIds {
    /// A set that remembers ids for `window_secs` of call time.
    pub fn new(window_secs: i64) -> SeenIds {
        SeenIds {
            window_us: window_secs * 1_000_000,
            newest: i64::MIN,
            keys: HashSet::default(),
            queue: VecDeque::new(),
        }
    }

    /// Whether this is the first time the call's (account, id) is read; remembers it.
    pub fn first_time(&mut self, e: &CallEvent) -> bool {
        let time = e.time.timestamp_micros();
        self.newest = self.newest.max(time);
        let cutoff = self.newest.saturating_sub(self.window_us);
        while self.queue.front().is_some_and(|(t, _)| *t < cutoff) {
            if let Some((_, key)) = self.queue.pop_front() {
                self.keys.remove(&key);
            }
        }
        let key = DedupKey::of(&e.account, &e.id);
        let first = self.keys.insert(key);
        if first {
            self.queue.push_back((time, key));
        }
        first
    }

    /// Ids remembered now.
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::{Interface, Operation};
    use chrono::{TimeZone, Utc};

    fn call(account: &str, id: &str, secs: i64) -> CallEvent {
        let time = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap() + chrono::Duration::seconds(secs);
        CallEvent::new(id.into(), account.into(), time, Interface::Rest, Operation::Read)
    }

    #[test]
    fn a_call_read_twice_counts_once_per_account() {
        let mut seen = SeenIds::default();
        assert!(seen.first_time(&call("acme", "log-1", 0)));
        assert!(seen.first_time(&call("globex", "log-1", 0)), "ids are unique per account");
        assert!(!seen.first_time(&call("acme", "log-1", 0)));
        assert!(seen.first_time(&call("acme", "log-2", 1)));
    }

    #[test]
    fn memory_is_the_last_few_minutes_of_calls() {
        let mut seen = SeenIds::new(60);
        for s in 0..10_000 {
            assert!(seen.first_time(&call("acme", &format!("c{s}"), s)));
            // A copy of the call read a second ago is still known.
            if s > 0 {
                assert!(!seen.first_time(&call("acme", &format!("c{}", s - 1), s - 1)));
            }
        }
        assert!(seen.len() <= 62, "{}", seen.len());
        // Long gone: read again, it counts again (the bound, stated in the module doc).
        assert!(seen.first_time(&call("acme", "c5", 5)));
    }
}
