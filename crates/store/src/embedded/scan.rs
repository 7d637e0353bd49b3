//! The request log: one account's calls in time order.
//!
//! Blocks are keyed by their earliest call, and the calls inside a block are
//! sorted, but blocks from different commits can overlap in time. So the
//! scan starts `max_block_span` before the wanted time (no block reaching
//! into the range starts earlier), keeps the calls of the open blocks in a
//! heap, and emits a call once no block still to come can hold an earlier
//! one. Memory is bounded by how many blocks overlap, not by the range.

use crate::codec::{self, StoredCall};
use crate::keys;
use crate::records::{CallFilter, CallPage, Position};
use crate::StoreError;
use fjall::Keyspace;
use std::cmp::Reverse;
use std::collections::BinaryHeap;

struct Pending(Position, StoredCall);

impl PartialEq for Pending {
    fn eq(&self, other: &Self) -> bool {
        self.0 == other.0
    }
}
impl Eq for Pending {}
impl PartialOrd for Pending {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Pending {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.cmp(&other.0)
    }
}

pub(crate) fn calls(
    blocks: &Keyspace,
    account: &str,
    max_block_span_ns: i64,
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

    let mut heap: BinaryHeap<Reverse<Pending>> = BinaryHeap::new();
    let mut out = Vec::with_capacity(limit.min(10_000));
    let emit = |heap: &mut BinaryHeap<Reverse<Pending>>, below: i64, out: &mut Vec<(Position, StoredCall)>| -> bool {
        // Emits every held call earlier than `below`; true once the page is full (and one more is known).
        while let Some(Reverse(top)) = heap.peek() {
            if top.0.time_ns >= below {
                break;
            }
            let Reverse(Pending(pos, call)) = heap.pop().expect("peeked");
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
        if emit(&mut heap, min_ns, &mut out) {
            let next = out.last().map(|(p, _)| *p);
            return Ok(CallPage { calls: out, next });
        }
        let header = codec::block_header(&v)?;
        if header.max_time_ns < start_ns.max(from_ns) {
            continue;
        }
        for (idx, call) in codec::decode_block(account, &v)?.into_iter().enumerate() {
            let pos = Position { time_ns: codec::time_ns(call.event.time), seq, idx: idx as u32 };
            heap.push(Reverse(Pending(pos, call)));
        }
    }
    let full = emit(&mut heap, i64::MAX, &mut out);
    let next = if full { out.last().map(|(p, _)| *p) } else { None };
    Ok(CallPage { calls: out, next })
}
