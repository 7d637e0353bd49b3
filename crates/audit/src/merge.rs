//! Several inputs as one stream of calls in time order (DESIGN §6): an HTTP
//! server's log and an SFTP server's log of the same day are one account's
//! traffic, and an upload seen in one must end the waste of a poller seen in
//! the other, whatever order the inputs are named in.
//!
//! A k-way merge: each input is read by its own iterator, one call ahead, and
//! a heap of those k calls gives the earliest next. Memory is k calls plus
//! what each reader holds; nothing is buffered per file.
//!
//! Logs are only nearly in time order (an SFTP open is logged at its close),
//! so neither is the merge: it keeps each input's own order and takes, at
//! each step, the input whose next call is earliest; the auditor's reorder
//! buffer does the rest, as for one log.
//!
//! Calls at the same time are taken in an order that does not depend on the
//! order the inputs were given in: changes (writes, deletes, moves, copies,
//! mkdirs) first, so that a poll logged in the same second as an upload
//! counts as having seen it, then by the inputs' own order key (their names).

use crate::changes::is_change;
use callmeter_model::CallEvent;
use std::cmp::{Ordering, Reverse};
use std::collections::BinaryHeap;

/// One input's next call, as the heap holds it.
#[derive(Debug)]
struct Head {
    time: i64,
    /// False for changes, so that they sort first among calls of the same time.
    not_change: bool,
    /// The input's place in the order of the inputs' keys.
    rank: usize,
    input: usize,
    event: CallEvent,
}

impl Head {
    fn key(&self) -> (i64, bool, usize) {
        (self.time, self.not_change, self.rank)
    }
}

impl PartialEq for Head {
    fn eq(&self, other: &Self) -> bool {
        self.key() == other.key()
    }
}

impl Eq for Head {}

impl PartialOrd for Head {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Head {
    fn cmp(&self, other: &Self) -> Ordering {
        self.key().cmp(&other.key())
    }
}

/// The calls of several inputs, merged by time; an iterator of the calls.
pub struct TimeMerge<I, E> {
    inputs: Vec<I>,
    ranks: Vec<usize>,
    heap: BinaryHeap<Reverse<Head>>,
    started: bool,
    /// An input's error, given after the call taken before it.
    error: Option<E>,
    done: bool,
}

impl<I, E> TimeMerge<I, E>
where
    I: Iterator<Item = Result<CallEvent, E>>,
{
    /// Merges `inputs`, each with a key that orders the inputs (their names):
    /// of calls at the same time, changes come first, then the input whose key
    /// is first. Inputs with equal keys keep the order they are given in.
    pub fn new<K: Ord>(inputs: Vec<(K, I)>) -> TimeMerge<I, E> {
        let mut order: Vec<usize> = (0..inputs.len()).collect();
        order.sort_by(|a, b| inputs[*a].0.cmp(&inputs[*b].0));
        let mut ranks = vec![0; inputs.len()];
        for (rank, input) in order.into_iter().enumerate() {
            ranks[input] = rank;
        }
        let inputs: Vec<I> = inputs.into_iter().map(|(_, i)| i).collect();
        TimeMerge {
            heap: BinaryHeap::with_capacity(inputs.len()),
            inputs,
            ranks,
            started: false,
            error: None,
            done: false,
        }
    }

    /// The inputs, in the order they were given (to read what each counted once the merge is over).
    pub fn into_inputs(self) -> Vec<I> {
        self.inputs
    }

    /// Reads input `i`'s next call into the heap.
    fn advance(&mut self, i: usize) -> Result<(), E> {
        if let Some(next) = self.inputs[i].next() {
            let event = next?;
            let head = Head {
                time: event.time.timestamp_micros(),
                not_change: !is_change(event.operation),
                rank: self.ranks[i],
                input: i,
                event,
            };
            self.heap.push(Reverse(head));
        }
        Ok(())
    }
}

impl<I, E> Iterator for TimeMerge<I, E>
where
    I: Iterator<Item = Result<CallEvent, E>>,
{
    type Item = Result<CallEvent, E>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if let Some(e) = self.error.take() {
            self.done = true;
            return Some(Err(e));
        }
        if !self.started {
            self.started = true;
            for i in 0..self.inputs.len() {
                if let Err(e) = self.advance(i) {
                    self.done = true;
                    return Some(Err(e));
                }
            }
        }
        let Reverse(head) = self.heap.pop()?;
        if let Err(e) = self.advance(head.input) {
            self.error = Some(e);
        }
        Some(Ok(head.event))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::{Interface, Operation};
    use chrono::{TimeZone, Utc};

    fn call(id: &str, secs: i64, op: Operation) -> CallEvent {
        let time = Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap() + chrono::Duration::seconds(secs);
        CallEvent::new(id.into(), "acme".into(), time, Interface::Rest, op)
    }

    type Input = std::vec::IntoIter<Result<CallEvent, String>>;

    fn input(calls: &[(&str, i64, Operation)]) -> Input {
        calls.iter().map(|(id, t, op)| Ok(call(id, *t, *op))).collect::<Vec<_>>().into_iter()
    }

    fn ids(m: TimeMerge<Input, String>) -> Vec<String> {
        m.map(|r| r.unwrap().id).collect()
    }

    #[test]
    fn the_same_calls_in_the_same_order_whatever_the_order_of_the_inputs() {
        let http = [("poll-1", 10, Operation::List), ("poll-2", 20, Operation::List), ("poll-3", 30, Operation::List)];
        let sftp = [("up-1", 15, Operation::Write), ("up-2", 20, Operation::Write), ("stat", 30, Operation::Stat)];
        let want = ["poll-1", "up-1", "up-2", "poll-2", "poll-3", "stat"];
        let a = TimeMerge::new(vec![("access.log", input(&http)), ("sftp.log", input(&sftp))]);
        let b = TimeMerge::new(vec![("sftp.log", input(&sftp)), ("access.log", input(&http))]);
        assert_eq!(ids(a), want, "an upload in the same second as a poll comes first");
        assert_eq!(ids(b), want, "and the names break other ties, not the order given");
    }

    #[test]
    fn each_input_keeps_its_own_order_and_an_error_ends_the_merge() {
        // A log slightly out of order (an SFTP open logged at its close) stays as it is.
        let late = [("a", 5, Operation::Read), ("b", 3, Operation::Read), ("c", 9, Operation::Read)];
        let other = [("x", 4, Operation::Read)];
        let m = TimeMerge::new(vec![(1, input(&late)), (2, input(&other))]);
        assert_eq!(ids(m), ["x", "a", "b", "c"]);

        let broken: Input = vec![Ok(call("a", 1, Operation::Read)), Err("disk".to_owned())].into_iter();
        let mut m = TimeMerge::new(vec![(1, broken), (2, input(&other))]);
        assert_eq!(m.next().unwrap().unwrap().id, "a");
        assert_eq!(m.next().unwrap().unwrap_err(), "disk");
        assert!(m.next().is_none());
        assert_eq!(m.into_inputs().len(), 2);
    }
}
