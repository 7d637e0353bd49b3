//! A processor batch's entry in `meta` (`outbox_fresh/` and the batch's
//! first delivery id): the fresh rows it made, which are written nowhere
//! else until they are done with (`outbox_fresh.rs`). Format 7 holds the
//! rows; format 6 listed the keys of rows it wrote to `outbox`, and is still
//! read.

use super::outbox;
use super::outbox_rows;
use crate::keys;
use crate::webhook_records::Delivery;
use crate::StoreError;

/// The `meta` keys of batch entries start with this.
pub(crate) const KEY_PREFIX: &[u8] = b"outbox_fresh/";

/// The `meta` key of the batch entry whose first delivery id is `first_id`.
pub(crate) fn batch_key(first_id: u64) -> Vec<u8> {
    let mut k = KEY_PREFIX.to_vec();
    keys::push_u64(&mut k, first_id);
    k
}

/// The first byte of a batch entry that holds its rows and the attempt id
/// they start from (format 7). One of format 6 listed keys only, `u16 BE
/// length | key` each, and began with 0 (keys are short): its rows were
/// written to `outbox` by the processor. One that began with
/// [`ROWS_ONLY_VERSION`] (builds of this format before their delivered
/// rows were held by attempts) holds its rows alone, still read.
const ROWS_VERSION: u8 = 2;

/// An entry that holds its rows, with no attempt id: none of them can be
/// held by an attempt, which the build that wrote it did not write.
const ROWS_ONLY_VERSION: u8 = 1;

/// A batch entry's value: `ROWS_VERSION`, the next attempt id when it was
/// written (u64 BE: every attempt of its rows has this id or a later one),
/// then each fresh row's outbox key (`outbox::ROW_KEY_LEN` bytes), its
/// value's length (u16 BE) and its value (`outbox_rows.rs`).
pub(crate) fn batch_value<'a>(attempts_from: u64, rows: impl IntoIterator<Item = (&'a [u8], &'a Delivery)>) -> Vec<u8> {
    let mut out = vec![ROWS_VERSION];
    out.extend_from_slice(&attempts_from.to_be_bytes());
    for (key, row) in rows {
        assert_eq!(key.len(), outbox::ROW_KEY_LEN, "an outbox key is a number and an id");
        let len = u16::try_from(outbox_rows::value_len(row)).expect("a row's value is short (bounded ids)");
        out.extend_from_slice(key);
        out.extend_from_slice(&len.to_be_bytes());
        outbox_rows::push_value(&mut out, row);
    }
    out
}

/// A batch entry of format 6: its rows' keys.
#[cfg(test)]
pub(crate) fn format_6_value<'a>(row_keys: impl IntoIterator<Item = &'a [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for key in row_keys {
        out.extend_from_slice(&(key.len() as u16).to_be_bytes());
        out.extend_from_slice(key);
    }
    out
}

/// A row a batch entry lists: its key, and its value when the entry holds
/// it (format 7; format 6 wrote it to `outbox`).
pub(crate) type Listed<'a> = (&'a [u8], Option<&'a [u8]>);

/// A batch entry read: from which attempt id its rows' attempts are (none:
/// no attempt holds any of its rows), and its rows.
pub(crate) struct Entry<'a> {
    pub attempts_from: Option<u64>,
    pub rows: Vec<Listed<'a>>,
}

/// A batch entry's rows.
#[cfg(test)]
pub(crate) fn listed(value: &[u8]) -> Result<Vec<Listed<'_>>, StoreError> {
    entry(value).map(|e| e.rows)
}

/// A batch entry.
pub(crate) fn entry(value: &[u8]) -> Result<Entry<'_>, StoreError> {
    let corrupt = || StoreError::Corrupt("a fresh outbox batch entry".into());
    fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, tail) = rest.split_at_checked(n)?;
        *rest = tail;
        Some(head)
    }
    let len = |rest: &mut &[u8]| take(rest, 2).map(|b| u16::from_be_bytes([b[0], b[1]]) as usize);
    let mut out = Vec::new();
    let mut attempts_from = None;
    match value.split_first() {
        Some((&version @ (ROWS_VERSION | ROWS_ONLY_VERSION), mut rest)) => {
            if version == ROWS_VERSION {
                let from = take(&mut rest, 8).ok_or_else(corrupt)?;
                attempts_from = Some(u64::from_be_bytes(from.try_into().expect("8 bytes")));
            }
            while !rest.is_empty() {
                let key = take(&mut rest, outbox::ROW_KEY_LEN).ok_or_else(corrupt)?;
                let n = len(&mut rest).ok_or_else(corrupt)?;
                out.push((key, Some(take(&mut rest, n).ok_or_else(corrupt)?)));
            }
        }
        _ => {
            let mut rest = value;
            while !rest.is_empty() {
                let n = len(&mut rest).ok_or_else(corrupt)?;
                out.push((take(&mut rest, n).ok_or_else(corrupt)?, None));
            }
        }
    }
    Ok(Entry { attempts_from, rows: out })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::{batch_value, format_6_value, listed};
    use crate::embedded::{outbox, outbox_rows};
    use crate::webhook_records::{Delivery, DeliveryState, OutboxEvent};
    use callmeter_model::Action;

    /// A pending row of `acme`'s `wh_1` (the fresh rows' tests share it).
    pub(crate) fn row(id: u64) -> Delivery {
        let at = chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap();
        Delivery {
            id,
            account: "acme".into(),
            subscription: "wh_1".into(),
            event: OutboxEvent::Change { seq: 7, action: Action::Create },
            state: DeliveryState::Pending,
            attempts: 0,
            next_attempt_at: at,
            created_at: at,
        }
    }

    #[test]
    fn batch_values_hold_their_rows() {
        let rows = [row(1), row(2)];
        let keys = rows.each_ref().map(|r| outbox::row_key(3, r.id));
        let value = batch_value(7, keys.iter().map(Vec::as_slice).zip(&rows));
        assert_eq!(super::entry(&value).unwrap().attempts_from, Some(7));
        let read = listed(&value).unwrap();
        assert_eq!(read.len(), 2);
        for ((key, held), (k, r)) in read.into_iter().zip(keys.iter().zip(&rows)) {
            assert_eq!(key, k.as_slice());
            assert_eq!(outbox_rows::decode(held.unwrap()).unwrap(), *r);
        }
        assert!(listed(&value[..value.len() - 1]).is_err(), "a value cut short");
        assert!(listed(&value[..13]).is_err(), "a key cut short");
        assert!(listed(&value[..5]).is_err(), "the attempt id cut short");
        assert!(listed(&[2, 0, 0, 0, 0, 0, 0, 0, 0]).unwrap().is_empty());
        // As the first builds of format 7 wrote it: the rows, no attempt id.
        let rows_only = [&[1u8][..], &value[9..]].concat();
        let earlier = super::entry(&rows_only).unwrap();
        assert_eq!(earlier.attempts_from, None);
        assert_eq!(earlier.rows, listed(&value).unwrap());
    }

    #[test]
    fn batch_values_of_format_6_list_their_keys() {
        let keys: [&[u8]; 3] = [b"\0\0\0\x01\0\0\0\0\0\0\0\x01", b"", b"b"];
        let value = format_6_value(keys);
        assert_eq!(listed(&value).unwrap(), keys.map(|k| (k, None)).to_vec());
        assert!(listed(&[0, 5, 1]).is_err(), "a key longer than what is left");
        assert!(listed(&[0]).is_err(), "half a length");
        assert!(listed(&[]).unwrap().is_empty());
    }
}
