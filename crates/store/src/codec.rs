//! The on-disk form of a block of calls.
//!
//! A block holds the calls of one account from one commit, sorted by time,
//! encoded field by field and compressed with LZ4 as a whole: calls of one
//! account repeat their paths, keys and agents, so a block compresses far
//! better than single calls would, and one engine write stores many calls.
//!
//! Layout: `version u8 | count u32 LE | max_time_ns i64 LE | lz4(size-prepended)`,
//! and per call inside: `time_ns i64 LE | interface u8 | operation u8 |
//! flags u8 | present u16 LE | id | present fields in declaration order`,
//! strings as `varint length | bytes`, integers as varints.

use crate::StoreError;
use callmeter_model::{CallEvent, Interface, Operation};
use chrono::{DateTime, Utc};

const BLOCK_VERSION: u8 = 1;
const HEADER_LEN: usize = 1 + 4 + 8;

const FLAG_BILLABLE: u8 = 1;
const FLAG_LATE: u8 = 2;

/// A call as stored: the event and what metering decided about it.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredCall {
    /// The call event as received.
    pub event: CallEvent,
    /// Whether the billing rule in force at the call's time made it billable.
    pub billable: bool,
    /// Whether it arrived after its usage period had closed.
    pub late: bool,
}

impl StoredCall {
    /// The call seen through a [`CallView`].
    pub fn view(&self) -> CallView<'_> {
        CallView { event: &self.event, billable: self.billable, late: self.late }
    }
}

/// A call to store, borrowed: the event where it already lies (the writer
/// keeps each request's events where they arrived, rather than moving them)
/// and what metering decided about it.
#[derive(Debug, Clone, Copy)]
pub struct CallView<'a> {
    /// The call event.
    pub event: &'a CallEvent,
    /// Whether it is billable.
    pub billable: bool,
    /// Whether it arrived after its period closed.
    pub late: bool,
}

/// The header of a block, readable without decompressing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BlockHeader {
    /// Number of calls in the block.
    pub count: u32,
    /// Time of the latest call, in nanoseconds since the epoch.
    pub max_time_ns: i64,
}

/// Nanoseconds since the epoch; times outside ±292 years are clamped (retention rejects them first).
pub fn time_ns(t: DateTime<Utc>) -> i64 {
    t.timestamp_nanos_opt().unwrap_or(if t.timestamp() < 0 { i64::MIN } else { i64::MAX })
}

thread_local! {
    /// A block's uncompressed records, one buffer per thread, reused from
    /// block to block: a fresh megabyte per block costs a page fault per
    /// 4 KiB, more than the compression or decompression itself.
    static RAW: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Encodes calls of one account, already sorted by time, into a block value
/// in `out` (replacing what it held, reusing its capacity).
pub fn encode_block<'a>(calls: impl ExactSizeIterator<Item = CallView<'a>>, out: &mut Vec<u8>) {
    let count = calls.len();
    RAW.with_borrow_mut(|raw| {
        raw.clear();
        let mut max_time = i64::MIN;
        for c in calls {
            let t = time_ns(c.event.time);
            max_time = max_time.max(t);
            encode_call(raw, t, c);
        }
        out.clear();
        out.push(BLOCK_VERSION);
        out.extend_from_slice(&(count as u32).to_le_bytes());
        out.extend_from_slice(&max_time.to_le_bytes());
        // LZ4 with the uncompressed size in front, as `uncompressed_size` reads it.
        out.extend_from_slice(&(raw.len() as u32).to_le_bytes());
        let start = out.len();
        out.resize(start + lz4_flex::block::get_maximum_output_size(raw.len()), 0);
        let n = lz4_flex::block::compress_into(raw, &mut out[start..])
            .expect("the output is sized by get_maximum_output_size");
        out.truncate(start + n);
    });
}

/// Reads a block's header.
pub fn block_header(value: &[u8]) -> Result<BlockHeader, StoreError> {
    if value.len() < HEADER_LEN || value[0] != BLOCK_VERSION {
        return Err(StoreError::Corrupt("call block header".into()));
    }
    Ok(BlockHeader {
        count: u32::from_le_bytes(value[1..5].try_into().expect("4 bytes")),
        max_time_ns: i64::from_le_bytes(value[5..13].try_into().expect("8 bytes")),
    })
}

/// Decodes a block of `account`'s calls.
pub fn decode_block(account: &str, value: &[u8]) -> Result<Vec<StoredCall>, StoreError> {
    let header = block_header(value)?;
    let (size, compressed) = lz4_flex::block::uncompressed_size(&value[HEADER_LEN..])
        .map_err(|e| StoreError::Corrupt(format!("call block: {e}")))?;
    // LZ4 expands at most 255 times: a larger size prefix is damage, and
    // must not make us allocate it.
    if size > compressed.len().saturating_mul(255) {
        return Err(StoreError::Corrupt("call block: impossible size".into()));
    }
    RAW.with_borrow_mut(|raw| {
        raw.resize(size, 0);
        let n =
            lz4_flex::decompress_into(compressed, raw).map_err(|e| StoreError::Corrupt(format!("call block: {e}")))?;
        let mut r = Reader { buf: &raw[..n], pos: 0 };
        let mut calls = Vec::with_capacity(header.count as usize);
        for _ in 0..header.count {
            calls.push(decode_call(&mut r, account).ok_or_else(|| StoreError::Corrupt("call record".into()))?);
        }
        Ok(calls)
    })
}

fn encode_call(out: &mut Vec<u8>, t: i64, c: CallView<'_>) {
    let e = c.event;
    out.extend_from_slice(&t.to_le_bytes());
    out.push(e.interface.code());
    out.push(e.operation.code());
    out.push(if c.billable { FLAG_BILLABLE } else { 0 } | if c.late { FLAG_LATE } else { 0 });
    let strings = optional_strings(e);
    let mut present: u16 = 0;
    for (i, s) in strings.iter().enumerate() {
        if s.is_some() {
            present |= 1 << i;
        }
    }
    let n = strings.len();
    present |= (e.status.is_some() as u16) << n;
    present |= (e.result_count.is_some() as u16) << (n + 1);
    present |= (e.bytes.is_some() as u16) << (n + 2);
    present |= (e.duration_ms.is_some() as u16) << (n + 3);
    out.extend_from_slice(&present.to_le_bytes());
    put_str(out, &e.id);
    for s in strings.into_iter().flatten() {
        put_str(out, s);
    }
    if let Some(s) = e.status {
        put_varint(out, ((s << 1) ^ (s >> 63)) as u64);
    }
    if let Some(v) = e.result_count {
        put_varint(out, v);
    }
    if let Some(v) = e.bytes {
        put_varint(out, v);
    }
    if let Some(v) = e.duration_ms {
        out.extend_from_slice(&v.to_le_bytes());
    }
}

fn optional_strings(e: &CallEvent) -> [Option<&str>; 9] {
    [
        e.method.as_deref(),
        e.path.as_deref(),
        e.destination.as_deref(),
        e.api_key.as_deref(),
        e.user.as_deref(),
        e.client_ip.as_deref(),
        e.user_agent.as_deref(),
        e.integration.as_deref(),
        e.cursor.as_deref(),
    ]
}

fn decode_call(r: &mut Reader, account: &str) -> Option<StoredCall> {
    let t = i64::from_le_bytes(r.take(8)?.try_into().ok()?);
    let interface = Interface::from_code(r.byte()?)?;
    let operation = Operation::from_code(r.byte()?)?;
    let flags = r.byte()?;
    let present = u16::from_le_bytes(r.take(2)?.try_into().ok()?);
    let id = r.string()?;
    let mut strings: [Option<String>; 9] = Default::default();
    for (i, slot) in strings.iter_mut().enumerate() {
        if present & (1 << i) != 0 {
            *slot = Some(r.string()?);
        }
    }
    let n = strings.len();
    let status = if present & (1 << n) != 0 {
        let z = r.varint()?;
        Some(((z >> 1) as i64) ^ -((z & 1) as i64))
    } else {
        None
    };
    let result_count = if present & (1 << (n + 1)) != 0 { Some(r.varint()?) } else { None };
    let bytes = if present & (1 << (n + 2)) != 0 { Some(r.varint()?) } else { None };
    let duration_ms =
        if present & (1 << (n + 3)) != 0 { Some(f64::from_le_bytes(r.take(8)?.try_into().ok()?)) } else { None };
    let [method, path, destination, api_key, user, client_ip, user_agent, integration, cursor] = strings;
    Some(StoredCall {
        event: CallEvent {
            id,
            account: account.to_owned(),
            time: DateTime::from_timestamp_nanos(t),
            interface,
            operation,
            method,
            path,
            destination,
            status,
            api_key,
            user,
            client_ip,
            user_agent,
            integration,
            cursor,
            result_count,
            bytes,
            duration_ms,
        },
        billable: flags & FLAG_BILLABLE != 0,
        late: flags & FLAG_LATE != 0,
    })
}

fn put_str(out: &mut Vec<u8>, s: &str) {
    put_varint(out, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn put_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

struct Reader<'a> {
    buf: &'a [u8],
    pos: usize,
}

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        let s = self.buf.get(self.pos..self.pos.checked_add(n)?)?;
        self.pos += n;
        Some(s)
    }

    fn byte(&mut self) -> Option<u8> {
        Some(self.take(1)?[0])
    }

    fn varint(&mut self) -> Option<u64> {
        let mut v = 0u64;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            v |= u64::from(b & 0x7f) << shift;
            if b & 0x80 == 0 {
                return Some(v);
            }
        }
        None
    }

    fn string(&mut self) -> Option<String> {
        let len = usize::try_from(self.varint()?).ok()?;
        String::from_utf8(self.take(len)?.to_vec()).ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn call(i: i64) -> StoredCall {
        StoredCall {
            event: CallEvent {
                id: format!("id-{i}"),
                account: "acme".into(),
                time: DateTime::from_timestamp_nanos(1_700_000_000_123_456_789 + i),
                interface: Interface::Sftp,
                operation: Operation::List,
                method: Some("opendir".into()),
                path: Some("/in box/é".into()),
                destination: None,
                status: Some(-3 + i),
                api_key: None,
                user: Some("bob".into()),
                client_ip: Some("::1".into()),
                user_agent: None,
                integration: None,
                cursor: Some("c".into()),
                result_count: Some(10_000),
                bytes: Some(u64::MAX),
                duration_ms: Some(1.5),
            },
            billable: i % 2 == 0,
            late: i % 3 == 0,
        }
    }

    #[test]
    fn block_round_trip() {
        let calls: Vec<StoredCall> = (0..50).map(call).collect();
        let mut block = Vec::new();
        encode_block(calls.iter().map(StoredCall::view), &mut block);
        let header = block_header(&block).unwrap();
        assert_eq!(header.count, 50);
        assert_eq!(header.max_time_ns, time_ns(calls[49].event.time));
        assert_eq!(decode_block("acme", &block).unwrap(), calls);
    }

    #[test]
    fn damaged_blocks_are_errors_not_panics() {
        let mut block = Vec::new();
        encode_block((0..5).map(call).collect::<Vec<_>>().iter().map(StoredCall::view), &mut block);
        for cut in 0..block.len() {
            let _ = decode_block("acme", &block[..cut]);
        }
        let mut flipped = block.clone();
        for i in HEADER_LEN..flipped.len() {
            flipped[i] ^= 0x55;
            let _ = decode_block("acme", &flipped);
            flipped[i] ^= 0x55;
        }
    }
}
