//! Claimed rows waiting for their target, one queue ("lane") per target,
//! and the count of workers sending each lane's rows.
//!
//! A target gets at most `per_target` workers: each takes the lane's next
//! row, sends it, and takes the next, until the lane is empty; then it
//! ends, and the last to end lets the lane go, so the map holds only the
//! targets being sent to. One worker per attempt slot, rather than a task
//! per row waiting on its target's semaphore: a row costs a queue push and
//! a pop, not a task, a semaphore wait and a wake-up.
//!
//! A worker whose lane is empty waits a little (`linger` in `engine.rs`)
//! before it asks for the next row and ends: under a steady load the next
//! claim's rows come within a gather's length, and a worker that waits for
//! them costs a wake-up, where a new one costs a task. A push to a lane
//! with a worker waiting wakes it rather than start another
//! ([`wait`](Lanes::wait)).
//!
//! Invariant: a lane with rows has a worker; a worker that ends leaves its
//! lane with no rows or with another worker. Pushing and ending are
//! decided under one lock, so no row is left with no worker to send it (a
//! worker that waits is counted, and asks again within its wait).

use std::collections::VecDeque;

/// Per-target queues of rows and their worker counts.
pub(crate) struct Lanes<T> {
    per_target: usize,
    lanes: parking_lot::Mutex<hashbrown::HashMap<String, Lane<T>, foldhash::fast::RandomState>>,
}

struct Lane<T> {
    rows: VecDeque<T>,
    workers: usize,
    /// Of the workers, those waiting for a row and not yet woken for one,
    /// each told by its own signal.
    waiting: VecDeque<std::sync::Arc<tokio::sync::Notify>>,
}

/// A worker's wait for its lane's next row ([`Lanes::wait`]): counted as
/// waiting until a push wakes it, or until it is dropped.
pub(crate) struct Waiting<'l, T> {
    lanes: &'l Lanes<T>,
    target: &'l str,
    pushed: std::sync::Arc<tokio::sync::Notify>,
}

impl<T> Waiting<'_, T> {
    /// Waits until a row is pushed for this worker.
    pub(crate) async fn pushed(&self) {
        self.pushed.notified().await;
    }
}

impl<T> Drop for Waiting<'_, T> {
    fn drop(&mut self) {
        let mut lanes = self.lanes.lanes.lock();
        let lane = lanes.get_mut(self.target).expect("a worker's lane lasts as long as the worker");
        // Still counted when no push woke it (it ended by its time, or a stop).
        lane.waiting.retain(|w| !std::sync::Arc::ptr_eq(w, &self.pushed));
    }
}

impl<T> Lanes<T> {
    /// Lanes whose targets get at most `per_target` workers (at least one).
    pub(crate) fn new(per_target: usize) -> Lanes<T> {
        Lanes { per_target: per_target.max(1), lanes: Default::default() }
    }

    /// Queues `row` for `target`; whether a new worker is to start for it
    /// (counted already: it must start, and call [`next`](Self::next) until it gets none).
    #[must_use]
    pub(crate) fn push(&self, target: &str, row: T) -> bool {
        let mut lanes = self.lanes.lock();
        let lane = lanes.entry_ref(target).or_insert_with(|| Lane {
            rows: VecDeque::new(),
            workers: 0,
            waiting: VecDeque::new(),
        });
        lane.rows.push_back(row);
        if let Some(waiting) = lane.waiting.pop_front() {
            // (A permit if it is not yet in its wait: the wait then ends at once.)
            waiting.notify_one();
            return false;
        }
        let start = lane.workers < self.per_target;
        if start {
            lane.workers += 1;
        }
        start
    }

    /// A worker's wait for a row, when `target`'s lane has none (it is
    /// counted as waiting, and a push wakes it; it still asks [`next`](Self::next)).
    pub(crate) fn wait<'l>(&'l self, target: &'l str) -> Option<Waiting<'l, T>> {
        let mut lanes = self.lanes.lock();
        let lane = lanes.get_mut(target).expect("a worker's lane lasts as long as the worker");
        if !lane.rows.is_empty() {
            return None;
        }
        let pushed = std::sync::Arc::new(tokio::sync::Notify::new());
        lane.waiting.push_back(pushed.clone());
        assert!(lane.waiting.len() <= lane.workers, "only workers wait, each once");
        Some(Waiting { lanes: self, target, pushed })
    }

    /// The next row for a worker of `target`; none when its lane is empty,
    /// and then the worker is counted out (it must end), and the lane let
    /// go with its last worker.
    pub(crate) fn next(&self, target: &str) -> Option<T> {
        let mut lanes = self.lanes.lock();
        let lane = lanes.get_mut(target).expect("a worker's lane lasts as long as the worker");
        assert!(lane.workers > 0, "a worker of a lane counted with none");
        if let Some(row) = lane.rows.pop_front() {
            return Some(row);
        }
        lane.workers -= 1;
        if lane.workers == 0 {
            lanes.remove(target);
        }
        None
    }

    /// Counts out a worker of `target` that ended without being told to
    /// (a panic); whether its lane then has rows and no worker: one must
    /// start (counted already).
    #[must_use]
    pub(crate) fn lost(&self, target: &str) -> bool {
        let mut lanes = self.lanes.lock();
        let Some(lane) = lanes.get_mut(target) else { return false };
        if lane.workers == 1 && !lane.rows.is_empty() {
            // It hands its place to a new worker.
            return true;
        }
        lane.workers -= 1;
        if lane.workers == 0 {
            lanes.remove(target);
        }
        false
    }

    /// The targets with rows or workers now.
    pub(crate) fn len(&self) -> usize {
        self.lanes.lock().len()
    }
}

#[cfg(test)]
mod tests {
    use super::Lanes;

    /// A target gets a worker per row pushed, up to `per_target`; its
    /// workers take the rows in order; each ends when it gets none, and
    /// the lane goes with the last.
    #[test]
    fn workers_start_up_to_the_limit_and_the_last_lets_the_lane_go() {
        let lanes = Lanes::new(2);
        assert!(lanes.push("a", 1));
        assert!(lanes.push("a", 2));
        assert!(!lanes.push("a", 3), "two workers at most");
        assert!(lanes.push("b", 10), "another target has its own");
        assert_eq!(lanes.len(), 2);
        assert_eq!(lanes.next("a"), Some(1));
        assert_eq!(lanes.next("a"), Some(2));
        assert_eq!(lanes.next("a"), Some(3));
        assert_eq!(lanes.next("a"), None, "the first worker ends");
        assert_eq!(lanes.len(), 2, "one worker of a still counted");
        assert!(lanes.push("a", 4), "room for a second worker again");
        assert_eq!(lanes.next("a"), Some(4));
        assert_eq!(lanes.next("a"), None);
        assert_eq!(lanes.len(), 2, "a kept while a worker is counted");
        assert_eq!(lanes.next("a"), None);
        assert_eq!(lanes.len(), 1, "a let go with its last worker");
        assert!(lanes.push("a", 5), "a target sent to again gets a worker again");
    }

    /// A push to a lane with a worker waiting wakes it and starts no other,
    /// though there is room for one; once its wait ends unwoken, a push
    /// starts a worker again; a lane with rows has nothing to wait for.
    #[tokio::test]
    async fn a_push_wakes_a_waiting_worker_rather_than_start_one() {
        let lanes = std::sync::Arc::new(Lanes::new(4));
        assert!(lanes.push("a", 1));
        assert!(lanes.wait("a").is_none(), "rows to take: no waiting");
        assert_eq!(lanes.next("a"), Some(1));
        let waiter = lanes.clone();
        let woken = tokio::spawn(async move {
            let wait = waiter.wait("a").expect("empty");
            wait.pushed().await;
        });
        while lanes.lanes.lock()["a"].waiting.is_empty() {
            tokio::task::yield_now().await;
        }
        assert!(!lanes.push("a", 2), "the waiting worker takes it: no new one");
        tokio::time::timeout(std::time::Duration::from_secs(5), woken).await.expect("woken").unwrap();
        assert_eq!(lanes.next("a"), Some(2));
        drop(lanes.wait("a").expect("empty again"));
        assert!(lanes.lanes.lock()["a"].waiting.is_empty(), "a wait that ends unwoken is counted out");
        assert!(lanes.push("a", 3), "no one waits: a worker starts");
    }

    /// A worker lost with rows left and no other worker hands its place
    /// on; one lost otherwise is counted out.
    #[test]
    fn a_lost_worker_is_replaced_while_its_lane_has_rows() {
        let lanes = Lanes::new(2);
        assert!(lanes.push("a", 1));
        assert!(lanes.push("a", 2));
        assert!(!lanes.push("a", 3));
        assert!(!lanes.lost("a"), "another worker still sends the rows");
        assert!(lanes.lost("a"), "the last worker's place is handed on");
        assert_eq!(lanes.next("a"), Some(1));
        assert_eq!(lanes.next("a"), Some(2));
        assert_eq!(lanes.next("a"), Some(3));
        assert_eq!(lanes.next("a"), None);
        assert_eq!(lanes.len(), 0);
        assert!(lanes.push("b", 1));
        assert_eq!(lanes.next("b"), Some(1));
        assert!(!lanes.lost("b"), "an empty lane needs no new worker");
        assert_eq!(lanes.len(), 0);
    }
}
