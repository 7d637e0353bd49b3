//! How an outbox row is stored: a compact binary value, written once when
//! the change processor makes the row and again at each completion, and
//! read by every claim. JSON, which stores of earlier builds hold, is still
//! read (a JSON value starts with `{`, a binary one with its version).
//!
//! Value: `version u8 | id u64 LE | state u8 | attempts u32 LE |
//! next_attempt_at ns i64 LE | created_at ns i64 LE | event kind u8 |
//! change seq or alert id u64 LE | action u8 (0 for an alert) |
//! account | subscription`, strings as `keys.rs` writes them (`u16 BE
//! length | bytes`; account and subscription ids are short: it bounds them).
//!
//! An attempt (format 5; earlier builds wrote JSON, still read): `version u8
//! (2) | id u64 LE | delivery u64 LE | at ns i64 LE | status u8 | has u8
//! (bit 0 a response code, bit 1 a retry time, bit 2 an error) | response
//! code u16 LE | latency_ms u64 LE | next_attempt_at ns i64 LE |
//! webhook_id (u16 BE length | bytes) | error (u32 LE length | bytes)`,
//! absent fields zero. JSON cost about a microsecond a delivery to write
//! (its timestamps as text) and three times the bytes.

use crate::codec::time_ns;
use crate::keys;
use crate::webhook_records::{Attempt, AttemptStatus, Delivery, DeliveryState, OutboxEvent};
use crate::StoreError;
use callmeter_model::Action;
use chrono::DateTime;

const VERSION: u8 = 1;
const CHANGE: u8 = 0;
const ALERT: u8 = 1;

fn state_code(s: DeliveryState) -> u8 {
    match s {
        DeliveryState::Pending => 0,
        DeliveryState::Delivered => 1,
        DeliveryState::Failed => 2,
        DeliveryState::Held => 3,
    }
}

fn state_of(code: u8) -> Option<DeliveryState> {
    Some(match code {
        0 => DeliveryState::Pending,
        1 => DeliveryState::Delivered,
        2 => DeliveryState::Failed,
        3 => DeliveryState::Held,
        _ => return None,
    })
}

/// A row's value.
pub(crate) fn to_value(d: &Delivery) -> Vec<u8> {
    let mut out = Vec::with_capacity(value_len(d));
    push_value(&mut out, d);
    out
}

/// The length of a row's value.
pub(crate) fn value_len(d: &Delivery) -> usize {
    44 + d.account.len() + d.subscription.len()
}

/// Appends a row's value to `out`.
pub(crate) fn push_value(out: &mut Vec<u8>, d: &Delivery) {
    let start = out.len();
    out.push(VERSION);
    out.extend_from_slice(&d.id.to_le_bytes());
    out.push(state_code(d.state));
    out.extend_from_slice(&d.attempts.to_le_bytes());
    out.extend_from_slice(&time_ns(d.next_attempt_at).to_le_bytes());
    out.extend_from_slice(&time_ns(d.created_at).to_le_bytes());
    let (kind, n, action) = match d.event {
        OutboxEvent::Change { seq, action } => (CHANGE, seq, action.code()),
        OutboxEvent::Alert { id } => (ALERT, id, 0),
    };
    out.push(kind);
    out.extend_from_slice(&n.to_le_bytes());
    out.push(action);
    for s in [d.account.as_str(), d.subscription.as_str()] {
        assert!(s.len() <= u16::MAX as usize, "account and subscription ids are bounded");
        keys::push_str16(out, s);
    }
    debug_assert_eq!(out.len() - start, value_len(d));
}

const ATTEMPT_VERSION: u8 = 2;

/// The little-endian u64 of a value at `at`, if the value is that long.
fn u64_at(v: &[u8], at: usize) -> Option<u64> {
    Some(u64::from_le_bytes(v.get(at..at + 8)?.try_into().ok()?))
}

/// The time (ns since the epoch, little-endian) of a value at `at`.
fn time_at(v: &[u8], at: usize) -> Option<DateTime<chrono::Utc>> {
    u64_at(v, at).map(|ns| DateTime::from_timestamp_nanos(ns as i64))
}

/// An attempt that holds its delivered row (format 7): the row is in no
/// other keyspace (`outbox_complete.rs`).
const ATTEMPT_WITH_ROW_VERSION: u8 = 3;

/// An attempt's value.
pub(crate) fn attempt_value(a: &Attempt) -> Vec<u8> {
    attempt_value_with(a, None)
}

/// The value of an attempt that delivered the fresh row `row`, which it
/// holds: `attempt_value`'s bytes (version 3), then the row's value's
/// length (u16 BE) and its value.
pub(crate) fn attempt_value_with_row(a: &Attempt, row: &Delivery) -> Vec<u8> {
    attempt_value_with(a, Some(row))
}

fn attempt_value_with(a: &Attempt, row: Option<&Delivery>) -> Vec<u8> {
    let error = a.error.as_deref().unwrap_or("");
    let row_len = row.map_or(0, |r| 2 + value_len(r));
    let mut out = Vec::with_capacity(56 + a.webhook_id.len() + error.len() + row_len);
    out.push(if row.is_some() { ATTEMPT_WITH_ROW_VERSION } else { ATTEMPT_VERSION });
    out.extend_from_slice(&a.id.to_le_bytes());
    out.extend_from_slice(&a.delivery.to_le_bytes());
    out.extend_from_slice(&time_ns(a.at).to_le_bytes());
    out.push(matches!(a.status, AttemptStatus::Delivered) as u8);
    let has =
        a.response_code.is_some() as u8 | (a.next_attempt_at.is_some() as u8) << 1 | (a.error.is_some() as u8) << 2;
    out.push(has);
    out.extend_from_slice(&a.response_code.unwrap_or(0).to_le_bytes());
    out.extend_from_slice(&a.latency_ms.to_le_bytes());
    out.extend_from_slice(&a.next_attempt_at.map(time_ns).unwrap_or(0).to_le_bytes());
    assert!(a.webhook_id.len() <= u16::MAX as usize, "webhook ids are short");
    keys::push_str16(&mut out, &a.webhook_id);
    let len = u32::try_from(error.len()).expect("an attempt's error is bounded");
    out.extend_from_slice(&len.to_le_bytes());
    out.extend_from_slice(error.as_bytes());
    if let Some(row) = row {
        let len = u16::try_from(value_len(row)).expect("a row's value is short (bounded ids)");
        out.extend_from_slice(&len.to_be_bytes());
        push_value(&mut out, row);
    }
    out
}

/// Decodes an attempt's value, binary or (from an earlier build) JSON.
pub(crate) fn decode_attempt(v: &[u8]) -> Result<Attempt, StoreError> {
    if v.first() == Some(&b'{') {
        return serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("attempt: {e}")));
    }
    decode_attempt_binary(v).ok_or_else(|| StoreError::Corrupt("attempt: not an attempt this build writes".into()))
}

/// The row an attempt's value holds (version 3), if it holds one: none
/// for an attempt of another version, an error for a damaged one.
pub(crate) fn row_of_attempt(v: &[u8]) -> Result<Option<Delivery>, StoreError> {
    if v.first() != Some(&ATTEMPT_WITH_ROW_VERSION) {
        return Ok(None);
    }
    let row = attempt_parts(v).and_then(|(_, row)| decode_binary(row?));
    row.map(Some).ok_or_else(|| StoreError::Corrupt("attempt: a row it holds cannot be read".into()))
}

fn decode_attempt_binary(v: &[u8]) -> Option<Attempt> {
    attempt_parts(v).map(|(attempt, _)| attempt)
}

/// An attempt's value read: the attempt, and the row's value it holds (version 3).
fn attempt_parts(v: &[u8]) -> Option<(Attempt, Option<&[u8]>)> {
    let with_row = match *v.first()? {
        ATTEMPT_VERSION => false,
        ATTEMPT_WITH_ROW_VERSION => true,
        _ => return None,
    };
    let status = match *v.get(25)? {
        1 => AttemptStatus::Delivered,
        0 => AttemptStatus::Failed,
        _ => return None,
    };
    let has = *v.get(26)?;
    if has > 7 {
        return None;
    }
    let code = u16::from_le_bytes(v.get(27..29)?.try_into().ok()?);
    let (webhook_id, rest) = keys::read_str16(v.get(45..)?)?;
    let len = u32::from_le_bytes(rest.get(..4)?.try_into().ok()?) as usize;
    let (error, rest) = rest.get(4..)?.split_at_checked(len)?;
    let error = std::str::from_utf8(error).ok()?;
    let row = match with_row {
        false if rest.is_empty() => None,
        false => return None,
        true => {
            let (len, row) = rest.split_first_chunk::<2>()?;
            (row.len() == u16::from_be_bytes(*len) as usize).then_some(row)?.into()
        }
    };
    let attempt = Attempt {
        id: u64_at(v, 1)?,
        delivery: u64_at(v, 9)?,
        webhook_id: webhook_id.to_owned(),
        at: time_at(v, 17)?,
        status,
        response_code: (has & 1 != 0).then_some(code),
        latency_ms: u64_at(v, 29)?,
        error: (has & 4 != 0).then(|| error.to_owned()),
        next_attempt_at: if has & 2 != 0 { Some(time_at(v, 37)?) } else { None },
    };
    Some((attempt, row))
}

/// A decoded record, or none for a damaged one, said: listings, replays and
/// expiry step over it and leave it as it is, rather than fail for every
/// record of the subscription (or, for expiry, of the store) behind it.
/// Only damage is stepped over: an error of the engine's is the caller's.
pub(crate) fn or_step_over<T>(decoded: Result<T, StoreError>, key: &[u8]) -> Result<Option<T>, StoreError> {
    match decoded {
        Ok(record) => Ok(Some(record)),
        Err(StoreError::Corrupt(why)) => {
            tracing::error!(%why, key = ?String::from_utf8_lossy(key), "a webhook record cannot be read: stepped over, left as it is");
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

/// Decodes a row's value, binary or (from an earlier build) JSON.
pub(crate) fn decode(v: &[u8]) -> Result<Delivery, StoreError> {
    if v.first() == Some(&b'{') {
        return serde_json::from_slice(v).map_err(|e| StoreError::Corrupt(format!("outbox row: {e}")));
    }
    decode_binary(v).ok_or_else(|| StoreError::Corrupt("outbox row: not a row this build writes".into()))
}

fn decode_binary(v: &[u8]) -> Option<Delivery> {
    if *v.first()? != VERSION {
        return None;
    }
    let id = u64_at(v, 1)?;
    let state = state_of(*v.get(9)?)?;
    let attempts = u32::from_le_bytes(v.get(10..14)?.try_into().ok()?);
    let next_attempt_at = time_at(v, 14)?;
    let created_at = time_at(v, 22)?;
    let n = u64_at(v, 31)?;
    let event = match *v.get(30)? {
        CHANGE => OutboxEvent::Change { seq: n, action: Action::from_code(*v.get(39)?)? },
        ALERT => OutboxEvent::Alert { id: n },
        _ => return None,
    };
    let (account, rest) = keys::read_str16(v.get(40..)?)?;
    let (subscription, rest) = keys::read_str16(rest)?;
    if !rest.is_empty() {
        return None;
    }
    let (account, subscription) = (account.to_owned(), subscription.to_owned());
    Some(Delivery { id, account, subscription, event, state, attempts, next_attempt_at, created_at })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(event: OutboxEvent, state: DeliveryState) -> Delivery {
        Delivery {
            id: 0x0102_0304_0506_0708,
            account: "acme".into(),
            subscription: "wh_0123456789abcdef".into(),
            event,
            state,
            attempts: 7,
            next_attempt_at: DateTime::from_timestamp_nanos(1_790_000_000_123_456_789),
            created_at: DateTime::from_timestamp_nanos(1_789_999_000_000_000_001),
        }
    }

    #[test]
    fn rows_round_trip_and_earlier_json_rows_are_read() {
        let states = [DeliveryState::Pending, DeliveryState::Delivered, DeliveryState::Failed, DeliveryState::Held];
        for (i, state) in states.into_iter().enumerate() {
            for action in Action::ALL {
                let d = row(OutboxEvent::Change { seq: 99 + i as u64, action }, state);
                assert_eq!(decode(&to_value(&d)).unwrap(), d);
                assert_eq!(decode(&serde_json::to_vec(&d).unwrap()).unwrap(), d, "a JSON row of an earlier build");
            }
            let d = row(OutboxEvent::Alert { id: u64::MAX }, state);
            assert_eq!(decode(&to_value(&d)).unwrap(), d);
        }
    }

    fn attempt(error: Option<&str>, code: Option<u16>, next: bool) -> Attempt {
        Attempt {
            id: 0x0102_0304_0506_0708,
            delivery: 42,
            webhook_id: "msg_000000000000002a".into(),
            at: DateTime::from_timestamp_nanos(1_790_000_000_123_456_789),
            status: if code == Some(204) { AttemptStatus::Delivered } else { AttemptStatus::Failed },
            response_code: code,
            latency_ms: 12,
            error: error.map(str::to_owned),
            next_attempt_at: next.then(|| DateTime::from_timestamp_nanos(1_790_000_060_000_000_001)),
        }
    }

    #[test]
    fn attempts_round_trip_and_earlier_json_attempts_are_read() {
        for a in [
            attempt(None, Some(204), false),
            attempt(Some("HTTP 500: busy — é"), Some(500), true),
            attempt(Some(""), None, true),
            attempt(Some("timed out"), None, false),
        ] {
            assert_eq!(decode_attempt(&attempt_value(&a)).unwrap(), a);
            assert_eq!(
                decode_attempt(&serde_json::to_vec(&a).unwrap()).unwrap(),
                a,
                "a JSON attempt of an earlier build"
            );
        }
    }

    /// An attempt that holds its delivered row reads as the attempt, and its row.
    #[test]
    fn attempts_hold_their_delivered_rows() {
        let a = attempt(None, Some(204), false);
        let d = row(OutboxEvent::Change { seq: 5, action: Action::Create }, DeliveryState::Delivered);
        let v = attempt_value_with_row(&a, &d);
        assert_eq!(decode_attempt(&v).unwrap(), a);
        assert_eq!(row_of_attempt(&v).unwrap(), Some(d));
        assert_eq!(row_of_attempt(&attempt_value(&a)).unwrap(), None, "an attempt alone");
        for cut in 0..v.len() {
            assert!(decode_attempt(&v[..cut]).is_err() || row_of_attempt(&v[..cut]).is_err(), "cut at {cut}");
        }
    }

    /// Every cut or damaged attempt is an error, never a panic.
    #[test]
    fn damaged_attempts_are_errors() {
        let v = attempt_value(&attempt(Some("HTTP 500"), Some(500), true));
        for cut in 0..v.len() {
            assert!(matches!(decode_attempt(&v[..cut]), Err(StoreError::Corrupt(why)) if why.starts_with("attempt")));
        }
        let mut longer = v.clone();
        longer.push(b'x');
        assert!(decode_attempt(&longer).is_err(), "trailing bytes");
        for (at, bad) in [(0, 1), (25, 2), (26, 8)] {
            let mut damaged = v.clone();
            damaged[at] = bad;
            assert!(decode_attempt(&damaged).is_err(), "byte {at} = {bad}");
        }
    }

    /// Every cut or damaged value is an error that names the row, never a panic.
    #[test]
    fn damaged_rows_are_errors() {
        let v = to_value(&row(OutboxEvent::Change { seq: 5, action: Action::Create }, DeliveryState::Pending));
        for cut in 0..v.len() {
            assert!(matches!(decode(&v[..cut]), Err(StoreError::Corrupt(why)) if why.starts_with("outbox row")));
        }
        let mut longer = v.clone();
        longer.push(0);
        assert!(decode(&longer).is_err(), "trailing bytes");
        for (at, bad) in [(0, 9), (9, 4), (30, 2), (39, 200)] {
            let mut damaged = v.clone();
            damaged[at] = bad;
            assert!(decode(&damaged).is_err(), "byte {at} = {bad}");
        }
    }
}
