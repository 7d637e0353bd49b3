//! Where a subscription's outbox rows are: most in `outbox`, and two kinds
//! elsewhere (docs/adr/0002-delivery-path-cost.md), each written once:
//!
//! - a fresh row not yet done with is in its processor batch's entry and in
//!   memory (`outbox_fresh.rs`);
//! - a fresh row delivered at its first attempt is held by that attempt's
//!   value in `attempts` (`outbox_rows::attempt_value_with_row`), and
//!   nowhere else until a resend writes it to `outbox`.
//!
//! A row in `outbox` is the newest of its states, then one an attempt
//! holds, then the memory's: a listing or a resend that meets a row in two
//! places takes it from the first of them.

use super::outbox::{read_row, row_key, rows_prefix};
use super::{outbox_rows, Engine, Shared};
use crate::webhook_records::Delivery;
use crate::StoreError;
use std::collections::BTreeMap;

/// Where a row was found.
pub(crate) enum Stored {
    /// In `outbox`, or held by its delivered attempt.
    Written(Delivery),
    /// In memory: fresh, written only in its batch's entry.
    Fresh(Delivery),
}

/// Rows attempts hold, with their outbox keys, and the last attempt key read.
pub(crate) type DeliveredRows = (Vec<(Vec<u8>, Delivery)>, Option<Vec<u8>>);

/// The rows that attempts of subscription `number` hold (`only` that
/// delivery's, if given), from after the attempt key `after` on, with their
/// outbox keys; and the last attempt key read (`after` when none was): a
/// scan before the outbox lock, then one under it from there, reads every
/// such row with the lock held only for those written in between.
pub(crate) fn delivered_rows(
    engine: &Engine,
    number: u32,
    after: Option<&[u8]>,
    only: Option<u64>,
) -> Result<DeliveredRows, StoreError> {
    let start = match after {
        Some(key) => [key, &[0]].concat(),
        None => rows_prefix(number).to_vec(),
    };
    let mut rows = Vec::new();
    let mut last = after.map(<[u8]>::to_vec);
    for item in engine.attempts.range(start..=row_key(number, u64::MAX)) {
        let (k, v) = item.into_inner()?;
        if let Some(row) = outbox_rows::or_step_over(outbox_rows::row_of_attempt(&v), &k)?.flatten() {
            if only.is_none_or(|id| id == row.id) {
                rows.push((row_key(number, row.id), row));
            }
        }
        last = Some(k.to_vec());
    }
    Ok((rows, last))
}

/// Every row of subscription `number`, oldest first, with its key: those in
/// `outbox`, then of `delivered` (rows attempts hold) and `fresh` (rows in
/// memory, copied before the scan of `outbox`) those not found before: a
/// row done with since the copy is in the scan.
pub(crate) fn rows_with_keys(
    engine: &Engine,
    number: u32,
    delivered: Vec<(Vec<u8>, Delivery)>,
    fresh: impl IntoIterator<Item = Delivery>,
) -> Result<Vec<(Vec<u8>, Stored)>, StoreError> {
    let mut out = BTreeMap::new();
    for item in engine.outbox.prefix(rows_prefix(number)) {
        let (k, v) = item.into_inner()?;
        if let Some(d) = outbox_rows::or_step_over(outbox_rows::decode(&v), &k)? {
            out.insert(k.to_vec(), Stored::Written(d));
        }
    }
    for (key, d) in delivered {
        out.entry(key).or_insert(Stored::Written(d));
    }
    for d in fresh {
        out.entry(row_key(number, d.id)).or_insert(Stored::Fresh(d));
    }
    Ok(out.into_iter().collect())
}

/// The row `id` of subscription `number`, from `outbox`, else `delivered`
/// (the rows attempts hold), else memory.
pub(crate) fn row_with_key(
    engine: &Engine,
    shared_fresh: Option<&Delivery>,
    number: u32,
    id: u64,
    delivered: Vec<(Vec<u8>, Delivery)>,
) -> Result<Option<(Vec<u8>, Stored)>, StoreError> {
    let key = row_key(number, id);
    let row = match read_row(engine, &key)? {
        Some(d) => Some(Stored::Written(d)),
        None => match delivered.into_iter().find(|(_, d)| d.id == id) {
            Some((_, d)) => Some(Stored::Written(d)),
            None => shared_fresh.cloned().map(Stored::Fresh),
        },
    };
    Ok(row.map(|d| (key, d)))
}

/// Every row of a subscription, oldest first. The outbox lock is held only
/// to copy the fresh rows: not for the scans, which claims and the
/// processor would wait for.
pub(crate) fn rows(engine: &Engine, shared: &Shared, number: u32) -> Result<Vec<Delivery>, StoreError> {
    let fresh: Vec<Delivery> = shared.outbox.locked.lock().fresh.rows_of(number).cloned().collect();
    let (delivered, _) = delivered_rows(engine, number, None, None)?;
    let rows = rows_with_keys(engine, number, delivered, fresh)?;
    Ok(rows.into_iter().map(|(_, Stored::Written(d) | Stored::Fresh(d))| d).collect())
}
