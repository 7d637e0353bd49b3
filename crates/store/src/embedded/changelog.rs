//! The change log: every change of the change stream (DESIGN §7), written by
//! the writer in the same engine batch as its call's block.
//!
//! | keyspace  | key                        | value                 |
//! |-----------|----------------------------|-----------------------|
//! | `changes` | change sequence, u64 BE    | a compact [`Change`]  |
//!
//! Written with the block, each change has the block's fate: a crash keeps
//! both or neither, and a failed sync undoes both (`undo.rs`). Readers (the
//! change processor, `processor.rs`) read only below
//! `Shared::changes_durable_below`, which the syncer moves once the commit is
//! durable. The next sequence is not stored: at open it is one past the last
//! change, or the processor's cursor when that is further (expiry removes
//! processed changes). A sequence a failed commit took is never read: the
//! processor steps over gaps.
//!
//! Value: `version u8 | time_ns i64 LE | arrival_ns i64 LE | operation u8 |
//! interface u8 | present u8 | account | call id | path | [destination] |
//! [user] | [api key]`, strings as `u16 LE length | bytes` (fields are at
//! most 4 KiB).

use super::syncer::Accepted;
use super::undo::UndoEntry;
use crate::codec::time_ns;
use crate::webhook_records::Change;
use crate::StoreError;
use callmeter_model::{CallEvent, Interface, Operation};
use chrono::{DateTime, Utc};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

const VERSION: u8 = 1;

/// Durable changes held for the processor in memory at most (~100 bytes
/// each): past it, it reads them from the log.
pub(crate) const HANDED_LIMIT: usize = 16_384;

/// A change as the log stores it: its sequence and value.
pub(crate) type Encoded = (u64, Box<[u8]>);

/// How far the change log is durable, and the signal that it moved: the
/// syncer publishes, the change processor waits (a condition variable, so
/// that a change reaches the outbox milliseconds after its call is answered).
#[derive(Default)]
pub(crate) struct ChangeSignal {
    /// Every change below this sequence is durable (its commit was synced).
    pub durable_below: AtomicU64,
    /// Every change below this sequence is processed (the processor's
    /// cursor, as of its last batch): what lies between is the backlog.
    pub processed_below: AtomicU64,
    /// Raised when the store stops.
    pub stopping: AtomicBool,
    /// Batches the processor has committed.
    pub batches: AtomicU64,
    /// Durable changes handed over by the syncer, in order, each as the log
    /// stores it: the processor takes them from here rather than read them
    /// back from the log (a skiplist walk a change). Only durable ones
    /// (handed over after their sync), at most [`HANDED_LIMIT`]; what is
    /// not here (past the bound, before a restart) the log has.
    handed: parking_lot::Mutex<std::collections::VecDeque<Encoded>>,
    lock: parking_lot::Mutex<()>,
    moved: parking_lot::Condvar,
}

impl ChangeSignal {
    /// Changes below `below` are durable.
    pub fn publish(&self, below: u64) {
        if self.durable_below.fetch_max(below, Ordering::AcqRel) < below {
            let _guard = self.lock.lock();
            self.moved.notify_all();
        }
    }

    /// Hands over a durable commit's changes, unless that passes the bound.
    pub fn hand_over(&self, changes: Vec<Encoded>) {
        if changes.is_empty() {
            return;
        }
        let mut handed = self.handed.lock();
        debug_assert!(
            handed.back().zip(changes.first()).is_none_or(|(last, first)| last.0 < first.0),
            "changes are handed over in order"
        );
        if handed.len() + changes.len() <= HANDED_LIMIT {
            handed.extend(changes);
        }
    }

    /// Takes the handed-over changes below `durable`, at most `limit`,
    /// leaving out those below `cursor` (processed already).
    pub fn take_handed(&self, cursor: u64, durable: u64, limit: usize) -> Vec<Encoded> {
        let mut handed = self.handed.lock();
        while handed.front().is_some_and(|(seq, _)| *seq < cursor) {
            handed.pop_front();
        }
        let n = handed.iter().take(limit).take_while(|(seq, _)| *seq < durable).count();
        handed.drain(..n).collect()
    }

    /// Durable changes not yet processed.
    pub fn unprocessed(&self) -> u64 {
        let processed = self.processed_below.load(Ordering::Acquire);
        self.durable_below.load(Ordering::Acquire).saturating_sub(processed)
    }

    /// Asks the waiting processor to stop.
    pub fn stop(&self) {
        self.stopping.store(true, Ordering::Release);
        let _guard = self.lock.lock();
        self.moved.notify_all();
    }

    /// Waits until the durable point passes `seen`, a stop, or `timeout`.
    pub fn wait(&self, seen: u64, timeout: std::time::Duration) {
        let mut guard = self.lock.lock();
        if self.durable_below.load(Ordering::Acquire) > seen || self.stopping.load(Ordering::Acquire) {
            return;
        }
        self.moved.wait_for(&mut guard, timeout);
    }
}
const HAS_DESTINATION: u8 = 1;
const HAS_USER: u8 = 2;
const HAS_API_KEY: u8 = 4;

/// The writer's end of the change log: the next sequence, a buffer
/// reused from change to change, and the changes of the commit being made
/// (for the syncer to hand over once it is durable).
pub(crate) struct ChangeAppender {
    /// The sequence the next change takes.
    pub next_seq: u64,
    buf: Vec<u8>,
    /// The changes appended since [`begin`](Self::begin).
    pub appended: Vec<Encoded>,
}

impl ChangeAppender {
    pub fn new(next_seq: u64) -> ChangeAppender {
        ChangeAppender { next_seq, buf: Vec::new(), appended: Vec::new() }
    }

    /// A commit begins: the changes of one that failed are no one's.
    pub fn begin(&mut self) {
        self.appended.clear();
    }

    /// Appends the changes among a commit's accepted calls of one account to
    /// the batch, each with its undo. A call that is no change costs one
    /// check; `reads_watched` says whether the account's reads are changes
    /// (a subscription asks for them).
    pub fn append(
        &mut self,
        engine: &super::Engine,
        (batch, undo): (&mut fjall::OwnedWriteBatch, &mut Vec<UndoEntry>),
        (calls, requests): (&[Accepted], &[Vec<CallEvent>]),
        arrival: DateTime<Utc>,
        reads_watched: bool,
    ) {
        for call in calls {
            let e = &requests[call.request as usize][call.index as usize];
            if !callmeter_model::is_change(e, call.late, reads_watched) {
                continue;
            }
            encode(e, arrival, &mut self.buf);
            batch.insert(&engine.changes, key(self.next_seq), self.buf.as_slice());
            undo.push(UndoEntry::created("changes", key(self.next_seq)));
            self.appended.push((self.next_seq, self.buf.as_slice().into()));
            self.next_seq += 1;
        }
    }
}

/// The sequence the next change takes: one past the last stored, or the
/// processor's cursor when that is further (processed changes expire).
pub(crate) fn next_seq(engine: &super::Engine, cursor: u64) -> Result<u64, StoreError> {
    let last = match engine.changes.last_key_value() {
        Some(item) => {
            let k = item.key()?;
            crate::keys::read_u64(&k).ok_or_else(|| StoreError::Corrupt("change key".into()))? + 1
        }
        None => 0,
    };
    Ok(last.max(cursor))
}

/// The key of a change.
pub(crate) fn key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// Encodes the change that an accepted call is, into `out` (cleared first).
pub(crate) fn encode(e: &CallEvent, arrival: DateTime<Utc>, out: &mut Vec<u8>) {
    out.clear();
    out.push(VERSION);
    out.extend_from_slice(&time_ns(e.time).to_le_bytes());
    out.extend_from_slice(&time_ns(arrival).to_le_bytes());
    out.push(e.operation.code());
    out.push(e.interface.code());
    let present = if e.destination.is_some() { HAS_DESTINATION } else { 0 }
        | if e.user.is_some() { HAS_USER } else { 0 }
        | if e.api_key.is_some() { HAS_API_KEY } else { 0 };
    out.push(present);
    put(out, &e.account);
    put(out, &e.id);
    put(out, &callmeter_model::normalize_path(e.path.as_deref().unwrap_or_default()));
    let destination = e.destination.as_deref().map(callmeter_model::normalize_path);
    for s in [destination.as_deref(), e.user.as_deref(), e.api_key.as_deref()].into_iter().flatten() {
        put(out, s);
    }
}

fn put(out: &mut Vec<u8>, s: &str) {
    let len = s.len().min(u16::MAX as usize);
    out.extend_from_slice(&(len as u16).to_le_bytes());
    out.extend_from_slice(&s.as_bytes()[..len]);
}

/// Decodes the change stored under `seq`.
pub(crate) fn decode(seq: u64, v: &[u8]) -> Result<Change, StoreError> {
    decode_inner(seq, v).ok_or_else(|| StoreError::Corrupt(format!("change {seq}")))
}

fn decode_inner(seq: u64, v: &[u8]) -> Option<Change> {
    if *v.first()? != VERSION {
        return None;
    }
    let i64_at = |at: usize| Some(i64::from_le_bytes(v.get(at..at + 8)?.try_into().ok()?));
    let time = DateTime::from_timestamp_nanos(i64_at(1)?);
    let arrival = DateTime::from_timestamp_nanos(i64_at(9)?);
    let operation = Operation::from_code(*v.get(17)?)?;
    let interface = Interface::from_code(*v.get(18)?)?;
    let present = *v.get(19)?;
    let mut rest = v.get(20..)?;
    let mut take = || -> Option<String> {
        let len = u16::from_le_bytes(rest.get(..2)?.try_into().ok()?) as usize;
        let s = std::str::from_utf8(rest.get(2..2 + len)?).ok()?.to_owned();
        rest = &rest[2 + len..];
        Some(s)
    };
    let account = take()?;
    let call_id = take()?;
    let path = take()?;
    let destination = if present & HAS_DESTINATION != 0 { Some(take()?) } else { None };
    let user = if present & HAS_USER != 0 { Some(take()?) } else { None };
    let api_key = if present & HAS_API_KEY != 0 { Some(take()?) } else { None };
    Some(Change { seq, account, call_id, time, arrival, operation, interface, path, destination, user, api_key })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn changes_round_trip_and_damage_is_an_error() {
        let time = DateTime::from_timestamp_nanos(1_790_000_000_123_456_789);
        let arrival = time + chrono::Duration::seconds(2);
        let mut e = CallEvent::new("id-1".into(), "acme".into(), time, Interface::Sftp, Operation::Move);
        e.path = Some("/in/a b.csv".into());
        e.destination = Some("/done/".into());
        e.user = Some("alice".into());
        let mut v = Vec::new();
        encode(&e, arrival, &mut v);
        let c = decode(7, &v).unwrap();
        assert_eq!(
            c,
            Change {
                seq: 7,
                account: "acme".into(),
                call_id: "id-1".into(),
                time,
                arrival,
                operation: Operation::Move,
                interface: Interface::Sftp,
                path: "/in/a b.csv".into(),
                destination: Some("/done".into()),
                user: Some("alice".into()),
                api_key: None,
            }
        );
        for cut in 0..v.len() {
            assert!(decode(7, &v[..cut]).is_err(), "cut at {cut}");
        }
    }
}
