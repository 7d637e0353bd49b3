//! The request log: one account's calls in time order.
//!
//! Blocks are keyed by their earliest call, and the calls inside a block are
//! sorted, but blocks from different commits can overlap in time. So the
//! scan starts `max_block_span` before the wanted time (no block reaching
//! into the range starts earlier) and merges the open blocks: a heap holds
//! each open block's next call position, and a call is emitted once no
//! block still to come can hold an earlier one. Memory is bounded by how
//! many blocks overlap, not by the range; a call moves once, not at every
//! heap step. Blocks of commits not yet durable are left out.

use crate::codec::{self, StoredCall};
use crate::keys;
use crate::records::{CallFilter, CallPage, Position};
use crate::StoreError;
use fjall::Keyspace;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

/// A decoded block whose calls are still being merged.
struct OpenBlock {
    seq: u64,
    /// The calls not yet taken, in order.
    rest: std::iter::Peekable<std::vec::IntoIter<StoredCall>>,
    /// The index in the block of the next call in `rest`.
    next_idx: u32,
}

/// The open blocks, merged by their next call's position.
#[derive(Default)]
struct Merge {
    heap: BinaryHeap<Reverse<(Position, usize)>>,
    slots: Vec<Option<OpenBlock>>,
    free: Vec<usize>,
}

impl Merge {
    fn open(&mut self, seq: u64, calls: Vec<StoredCall>) {
        let Some(first) = calls.first() else { return };
        let pos = Position { time_ns: codec::time_ns(first.event.time), seq, idx: 0 };
        let block = OpenBlock { seq, rest: calls.into_iter().peekable(), next_idx: 0 };
        let slot = match self.free.pop() {
            Some(slot) => {
                self.slots[slot] = Some(block);
                slot
            }
            None => {
                self.slots.push(Some(block));
                self.slots.len() - 1
            }
        };
        self.heap.push(Reverse((pos, slot)));
    }

    /// The earliest call held, when it is before `below`.
    fn pop_before(&mut self, below: Position) -> Option<(Position, StoredCall)> {
        let &Reverse((pos, slot)) = self.heap.peek()?;
        if pos >= below {
            return None;
        }
        self.heap.pop();
        let block = self.slots[slot].as_mut().expect("an open slot");
        let call = block.rest.next().expect("a call behind each heap entry");
        match block.rest.peek() {
            Some(next) => {
                block.next_idx += 1;
                let next = Position { time_ns: codec::time_ns(next.event.time), seq: block.seq, idx: block.next_idx };
                self.heap.push(Reverse((next, slot)));
            }
            None => {
                self.slots[slot] = None;
                self.free.push(slot);
            }
        }
        Some((pos, call))
    }
}

pub(crate) fn calls(
    blocks: &Keyspace,
    account: &str,
    max_block_span_ns: i64,
    visible_below_seq: u64,
    filter: &CallFilter,
    after: Option<Position>,
    limit: usize,
) -> Result<CallPage, StoreError> {
    let from_ns = filter.from.map_or(i64::MIN, codec::time_ns);
    let to_ns = filter.to.map_or(i64::MAX, codec::time_ns);
    let start_ns = after.map_or(from_ns, |p| p.time_ns.max(from_ns));
    let scan_from = keys::block_scan_start(account, start_ns.saturating_sub(max_block_span_ns));
    let scan_to = keys::block_scan_start(account, to_ns);
    let prefix_len = keys::account_prefix(account).len();

    let mut merge = Merge::default();
    let mut out = Vec::with_capacity(limit.min(10_000));
    let emit = |merge: &mut Merge, below: Position, out: &mut Vec<(Position, StoredCall)>| -> bool {
        // Emits every held call before `below`; true once the page is full (and one more is known).
        while let Some((pos, call)) = merge.pop_before(below) {
            if pos.time_ns < from_ns
                || pos.time_ns >= to_ns
                || after.is_some_and(|a| pos <= a)
                || !filter.matches(&call)
            {
                continue;
            }
            if out.len() == limit {
                return true;
            }
            out.push((pos, call));
        }
        false
    };

    for item in blocks.range(scan_from..scan_to) {
        let (k, v) = item.into_inner()?;
        let rest = &k[prefix_len..];
        let min_ns = keys::read_i64(rest).ok_or_else(|| StoreError::Corrupt("block key".into()))?;
        let seq = keys::read_u64(&rest[8..]).ok_or_else(|| StoreError::Corrupt("block key".into()))?;
        if seq >= visible_below_seq {
            continue; // its commit is not durable yet (or its sync failed)
        }
        // Blocks come in (earliest time, seq) order, and a block's calls sit at
        // (their time ≥ min_ns, its seq, index): none still to come can hold a
        // call before (min_ns, seq, 0). Comparing whole positions, not times,
        // keeps calls that share one instant from piling up.
        if emit(&mut merge, Position { time_ns: min_ns, seq, idx: 0 }, &mut out) {
            let next = out.last().map(|(p, _)| *p);
            return Ok(CallPage { calls: out, next });
        }
        let header = codec::block_header(&v)?;
        if header.max_time_ns < from_ns
            || after.is_some_and(|a| Position { time_ns: header.max_time_ns, seq, idx: u32::MAX } <= a)
        {
            continue; // every call in it is before the range or already paged
        }
        merge.open(seq, codec::decode_block(account, &v)?);
    }
    let end = Position { time_ns: i64::MAX, seq: u64::MAX, idx: u32::MAX };
    let full = emit(&mut merge, end, &mut out);
    let next = if full { out.last().map(|(p, _)| *p) } else { None };
    Ok(CallPage { calls: out, next })
}

#[cfg(test)]
mod tests {
    use super::super::test_event as event;
    use crate::{CallFilter, EmbeddedStore, Store, StoreOptions};
    use callmeter_model::CallEvent;
    use chrono::Utc;

    /// Many commits whose calls share one instant (a log with second
    /// resolution does this): paging returns each call once, in order, and
    /// a page does not re-read the blocks already paged.
    #[test]
    fn calls_at_one_instant_page_through_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let now = Utc::now() - chrono::Duration::minutes(5);
        let later = now + chrono::Duration::seconds(1);
        for commit in 0..12 {
            let mut events: Vec<CallEvent> = (0..250).map(|i| event(format!("c{commit}-{i}"), now)).collect();
            events.push(event(format!("late{commit}"), later));
            let outcomes = store.ingest(events).wait_blocking().unwrap();
            assert_eq!(outcomes.len(), 251);
        }
        let mut after = None;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let page = store.calls("acme", &CallFilter::default(), after, 100).unwrap();
            pages += 1;
            assert!(page.calls.len() <= 100);
            seen.extend(page.calls.iter().map(|(p, c)| (*p, c.event.id.clone())));
            match page.next {
                Some(p) => after = Some(p),
                None => break,
            }
        }
        assert_eq!(seen.len(), 12 * 251, "every call once");
        assert!(seen.windows(2).all(|w| w[0].0 < w[1].0), "strictly in position order");
        let ids: std::collections::HashSet<_> = seen.iter().map(|(_, id)| id.as_str()).collect();
        assert_eq!(ids.len(), seen.len(), "no call twice");
        assert!(seen[..12 * 250].iter().all(|(_, id)| id.starts_with('c')), "the earlier instant first");
        assert_eq!(pages, 31);
        store.shutdown();
    }

    /// Commits whose calls interleave in time: the merge returns them in
    /// time order across blocks, from any page boundary, and the time range
    /// cuts where it says.
    #[test]
    fn overlapping_blocks_merge_in_time_order() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let base = Utc::now() - chrono::Duration::minutes(5);
        let at = |n: i64| base + chrono::Duration::milliseconds(n);
        for commit in 0..7i64 {
            let events: Vec<CallEvent> =
                (0..100).map(|i| event(format!("{}", i * 7 + commit), at(i * 7 + commit))).collect();
            store.ingest(events).wait_blocking().unwrap();
        }
        let mut after = None;
        let mut ids = Vec::new();
        loop {
            let page = store.calls("acme", &CallFilter::default(), after, 33).unwrap();
            ids.extend(page.calls.iter().map(|(_, c)| c.event.id.parse::<i64>().unwrap()));
            match page.next {
                Some(p) => after = Some(p),
                None => break,
            }
        }
        assert_eq!(ids, (0..700).collect::<Vec<_>>());
        let range = CallFilter { from: Some(at(100)), to: Some(at(200)), ..CallFilter::default() };
        let page = store.calls("acme", &range, None, 1000).unwrap();
        let ids: Vec<i64> = page.calls.iter().map(|(_, c)| c.event.id.parse().unwrap()).collect();
        assert_eq!(ids, (100..200).collect::<Vec<_>>());
        assert!(page.next.is_none());
        store.shutdown();
    }
}
