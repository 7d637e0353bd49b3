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
    let emit =
        |heap: &mut BinaryHeap<Reverse<Pending>>, below: Position, out: &mut Vec<(Position, StoredCall)>| -> bool {
            // Emits every held call before `below`; true once the page is full (and one more is known).
            while let Some(Reverse(top)) = heap.peek() {
                if top.0 >= below {
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
        // Blocks come in (earliest time, seq) order, and a block's calls sit at
        // (their time ≥ min_ns, its seq, index): none still to come can hold a
        // call before (min_ns, seq, 0). Comparing whole positions, not times,
        // keeps calls that share one instant from piling up in the heap.
        if emit(&mut heap, Position { time_ns: min_ns, seq, idx: 0 }, &mut out) {
            let next = out.last().map(|(p, _)| *p);
            return Ok(CallPage { calls: out, next });
        }
        let header = codec::block_header(&v)?;
        if header.max_time_ns < from_ns
            || after.is_some_and(|a| Position { time_ns: header.max_time_ns, seq, idx: u32::MAX } <= a)
        {
            continue; // every call in it is before the range or already paged
        }
        for (idx, call) in codec::decode_block(account, &v)?.into_iter().enumerate() {
            let pos = Position { time_ns: codec::time_ns(call.event.time), seq, idx: idx as u32 };
            heap.push(Reverse(Pending(pos, call)));
        }
    }
    let end = Position { time_ns: i64::MAX, seq: u64::MAX, idx: u32::MAX };
    let full = emit(&mut heap, end, &mut out);
    let next = if full { out.last().map(|(p, _)| *p) } else { None };
    Ok(CallPage { calls: out, next })
}

#[cfg(test)]
mod tests {
    use crate::{CallFilter, EmbeddedStore, Store, StoreOptions};
    use callmeter_model::{CallEvent, Interface, Operation};
    use chrono::{DateTime, Utc};

    fn event(id: String, time: DateTime<Utc>) -> CallEvent {
        CallEvent {
            id,
            account: "acme".into(),
            time,
            interface: Interface::Rest,
            operation: Operation::Read,
            method: Some("GET".into()),
            path: Some("/f".into()),
            destination: None,
            status: None,
            api_key: None,
            user: None,
            client_ip: None,
            user_agent: None,
            integration: None,
            cursor: None,
            result_count: None,
            bytes: None,
            duration_ms: None,
        }
    }

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
}
