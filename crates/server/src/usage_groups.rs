//! The groups of a usage answer (`group_by`), bounded in what they hold and
//! in what they answer.
//!
//! An answer carries the [`MAX_GROUPS`] groups with the most calls; the rest
//! are summed in one `other_groups` entry and the answer says it is
//! truncated. Grouped by api key or user, the rows come from the breakdown,
//! which has a row per bucket and distinct key: the breakdown is read a slice
//! of buckets at a time (about [`SLICE_CALLS`] calls each, cut where the
//! totals put them), twice. The first pass counts each group under a 128-bit
//! hash of its key (about 40 bytes a group, however long its api key and
//! user), and refuses a range of more than [`MAX_DISTINCT_GROUPS`] groups
//! (400); the second reads the keys of the largest groups only.
//!
//! Read whole into memory, with every key, twelve such answers over a
//! century of 200,000 api keys and users took the server from 0.87 to 2.7 GB
//! (the second review, issue 12).

use crate::error::ApiError;
use crate::usage::{self, CallCount, Dimension, Group, OtherGroups};
use callmeter_store::{BreakdownRow, StoreError, TotalRow};
use std::collections::{BTreeMap, HashMap};

/// Groups an answer carries, the largest first.
pub const MAX_GROUPS: usize = 1_000;
/// Distinct groups one answer may count: past it, 400.
pub const MAX_DISTINCT_GROUPS: usize = 500_000;
/// About how many calls' rows one read of the breakdown returns.
const SLICE_CALLS: u64 = 20_000;

/// The groups of an answer: the largest, and the others summed.
#[derive(Debug, PartialEq)]
pub struct BoundedGroups {
    /// The largest [`MAX_GROUPS`], most calls first (then by key).
    pub groups: Vec<Group>,
    /// The groups left out, summed; `None` when none were.
    pub other: Option<OtherGroups>,
}

impl BoundedGroups {
    /// The largest of `groups` (sorted most calls first, as
    /// [`usage::groups_from_totals`] gives them), and the rest summed.
    pub fn of(mut groups: Vec<Group>) -> BoundedGroups {
        let rest = groups.split_off(groups.len().min(MAX_GROUPS));
        let other = (!rest.is_empty()).then(|| {
            let mut other = OtherGroups { groups: rest.len() as u64, count: CallCount::default() };
            for g in &rest {
                other.count.calls += g.count.calls;
                other.count.billable_calls += g.count.billable_calls;
            }
            other
        });
        BoundedGroups { groups, other }
    }
}

/// The groups by `dims` of the breakdown of buckets `[b0, b1)`, read through
/// `read` a slice at a time; `totals` (the same range's totals rows) say where
/// the calls are, to cut the slices.
pub fn from_breakdown(
    read: impl FnMut(i64, i64) -> Result<Vec<BreakdownRow>, StoreError>,
    totals: &[TotalRow],
    range: (i64, i64),
    dims: &[Dimension],
) -> Result<BoundedGroups, ApiError> {
    counted_then_named(read, totals, range, dims, MAX_DISTINCT_GROUPS)
}

/// [`from_breakdown`], refusing more than `max_distinct` groups.
fn counted_then_named(
    mut read: impl FnMut(i64, i64) -> Result<Vec<BreakdownRow>, StoreError>,
    totals: &[TotalRow],
    (b0, b1): (i64, i64),
    dims: &[Dimension],
    max_distinct: usize,
) -> Result<BoundedGroups, ApiError> {
    let slices = slices(totals, b0, b1);
    // First pass: the counts, by hash.
    let mut counts: HashMap<u128, CallCount> = HashMap::new();
    for &(from, to) in &slices {
        for row in read(from, to)? {
            usage::add(counts.entry(key_hash(&row, dims)).or_default(), row.flags, row.calls);
        }
        if counts.len() > max_distinct {
            return Err(ApiError::BadRequest(format!(
                "group_by: more than {max_distinct} groups in this range: ask for a shorter range, \
                 or group by fewer dimensions"
            )));
        }
    }
    let mut all: Vec<(u128, CallCount)> = counts.into_iter().collect();
    drop_after_largest(&mut all);
    let mut other = OtherGroups { groups: 0, count: CallCount::default() };
    // Second pass: the keys of the largest only.
    let mut largest: HashMap<u128, (CallCount, Option<Vec<String>>)> =
        all.drain(..all.len().min(MAX_GROUPS)).map(|(hash, count)| (hash, (count, None))).collect();
    for (_, count) in all {
        other.groups += 1;
        other.count.calls += count.calls;
        other.count.billable_calls += count.billable_calls;
    }
    let mut missing = largest.len();
    for &(from, to) in &slices {
        if missing == 0 {
            break;
        }
        for row in read(from, to)? {
            if let Some((_, key @ None)) = largest.get_mut(&key_hash(&row, dims)) {
                *key = Some(key_values(&row, dims));
                missing -= 1;
            }
        }
    }
    let mut groups = Vec::with_capacity(largest.len());
    for (count, key) in largest.into_values() {
        match key {
            Some(values) => groups.push(Group { key: dims.iter().map(|d| d.name()).zip(values).collect(), count }),
            // Its calls were removed between the passes (retention): counted with the others.
            None => {
                other.groups += 1;
                other.count.calls += count.calls;
                other.count.billable_calls += count.billable_calls;
            }
        }
    }
    // Most calls first, then in the order of the keys' values by `dims` (as `usage::groups_from_totals`).
    let values = |g: &Group| dims.iter().map(|d| g.key[d.name()].clone()).collect::<Vec<_>>();
    groups.sort_by(|a, b| b.count.calls.cmp(&a.count.calls).then_with(|| values(a).cmp(&values(b))));
    Ok(BoundedGroups { groups, other: (other.groups > 0).then_some(other) })
}

/// Sorts the counts most calls first (ties by hash: any order, but always
/// the same) as far as the cut at [`MAX_GROUPS`]: the largest come first.
fn drop_after_largest(all: &mut [(u128, CallCount)]) {
    let order = |a: &(u128, CallCount), b: &(u128, CallCount)| b.1.calls.cmp(&a.1.calls).then(a.0.cmp(&b.0));
    if all.len() > MAX_GROUPS {
        all.select_nth_unstable_by(MAX_GROUPS, order);
    }
}

/// Slices of `[b0, b1)`, together covering it, each with about
/// [`SLICE_CALLS`] calls by the totals (one bucket with more is one slice).
fn slices(totals: &[TotalRow], b0: i64, b1: i64) -> Vec<(i64, i64)> {
    let mut per_bucket: BTreeMap<i64, u64> = BTreeMap::new();
    for row in totals {
        *per_bucket.entry(row.bucket).or_default() += row.calls;
    }
    let mut out = Vec::new();
    let (mut start, mut calls) = (b0, 0u64);
    for (bucket, n) in per_bucket {
        if calls > 0 && calls + n > SLICE_CALLS && bucket > start {
            out.push((start, bucket));
            (start, calls) = (bucket, 0);
        }
        calls += n;
    }
    if start < b1 || out.is_empty() {
        out.push((start, b1));
    }
    out
}

/// A row's values of the dimensions, in their order.
fn key_values(row: &BreakdownRow, dims: &[Dimension]) -> Vec<String> {
    dims.iter()
        .map(|d| match d {
            Dimension::Interface => row.interface.as_str().to_owned(),
            Dimension::Operation => row.operation.as_str().to_owned(),
            Dimension::ApiKey => row.api_key.clone(),
            Dimension::User => row.user.clone(),
        })
        .collect()
}

/// A 128-bit hash of a row's key: each value with its length before it, so
/// that no two keys run together into one.
fn key_hash(row: &BreakdownRow, dims: &[Dimension]) -> u128 {
    let mut h = blake3::Hasher::new();
    for d in dims {
        let value = match d {
            Dimension::Interface => row.interface.as_str(),
            Dimension::Operation => row.operation.as_str(),
            Dimension::ApiKey => &row.api_key,
            Dimension::User => &row.user,
        };
        h.update(&(value.len() as u64).to_le_bytes());
        h.update(value.as_bytes());
    }
    let bytes: [u8; 16] = h.finalize().as_bytes()[..16].try_into().expect("16 bytes");
    u128::from_le_bytes(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::{Interface, Operation};
    use callmeter_store::CallFlags;

    fn row(bucket: i64, api_key: &str, user: &str, calls: u64) -> BreakdownRow {
        BreakdownRow {
            bucket,
            interface: Interface::Rest,
            operation: Operation::Read,
            flags: CallFlags { billable: true, late: false, carried: false },
            api_key: api_key.into(),
            user: user.into(),
            calls,
            errors: 0,
            bytes: 0,
        }
    }

    fn totals_of(rows: &[BreakdownRow]) -> Vec<TotalRow> {
        rows.iter()
            .map(|r| TotalRow {
                bucket: r.bucket,
                interface: r.interface,
                operation: r.operation,
                flags: r.flags,
                calls: r.calls,
            })
            .collect()
    }

    /// A breakdown read that serves `rows` by bucket and records each read's range and size.
    fn reader<'a>(
        rows: &'a [BreakdownRow],
        reads: &'a mut Vec<(i64, i64, usize)>,
    ) -> impl FnMut(i64, i64) -> Result<Vec<BreakdownRow>, StoreError> + 'a {
        move |from, to| {
            let got: Vec<_> = rows.iter().filter(|r| r.bucket >= from && r.bucket < to).cloned().collect();
            reads.push((from, to, got.len()));
            Ok(got)
        }
    }

    #[test]
    fn the_largest_groups_are_answered_and_the_rest_summed() {
        // 3,000 keys of one call each in bucket 0..3000, and three large ones.
        let mut rows: Vec<_> = (0..3_000).map(|i| row(i, &format!("key-{i}"), "u", 1)).collect();
        rows.push(row(5, "big", "u", 500));
        rows.push(row(6, "big", "u", 500));
        rows.push(row(7, "bigger", "u", 2_000));
        rows.push(row(8, "ties", "a", 1));
        let mut reads = Vec::new();
        let dims = [Dimension::ApiKey, Dimension::User];
        let g = from_breakdown(reader(&rows, &mut reads), &totals_of(&rows), (0, 3_000), &dims).unwrap();
        assert_eq!(g.groups.len(), MAX_GROUPS);
        assert_eq!((g.groups[0].key["api_key"].as_str(), g.groups[0].count.calls), ("bigger", 2_000));
        assert_eq!((g.groups[1].key["api_key"].as_str(), g.groups[1].count.calls), ("big", 1_000));
        assert_eq!(g.groups[1].key["user"], "u");
        let other = g.other.unwrap();
        assert_eq!(other.groups, 3_000 + 1 + 2 - MAX_GROUPS as u64);
        let answered: u64 = g.groups.iter().map(|g| g.count.calls).sum();
        assert_eq!(answered + other.count.calls, 3_000 + 1 + 3_000, "every call in a group or in the others");
        assert_eq!(other.count.billable_calls, other.count.calls);
        // Ties are in key order within the answer.
        let ones: Vec<_> = g.groups.iter().filter(|g| g.count.calls == 1).map(|g| g.key["api_key"].clone()).collect();
        let mut sorted = ones.clone();
        sorted.sort();
        assert_eq!(ones, sorted);
    }

    #[test]
    fn the_breakdown_is_read_a_slice_at_a_time() {
        // 100,000 calls in 10 buckets far apart: slices of about SLICE_CALLS calls, covering the range.
        let rows: Vec<_> = (0..10).map(|b| row(b * 1_000, &format!("k{b}"), "", 10_000)).collect();
        let mut reads = Vec::new();
        let g =
            from_breakdown(reader(&rows, &mut reads), &totals_of(&rows), (-5, 20_000), &[Dimension::ApiKey]).unwrap();
        assert_eq!(g.groups.len(), 10);
        assert!(g.other.is_none());
        let first_pass = &reads[..reads.len() / 2];
        assert!(first_pass.iter().all(|&(_, _, n)| n <= 2), "{first_pass:?}");
        assert_eq!(first_pass.first().unwrap().0, -5);
        assert_eq!(first_pass.last().unwrap().1, 20_000);
        assert!(first_pass.windows(2).all(|w| w[0].1 == w[1].0), "contiguous: {first_pass:?}");
        // An empty range is one read.
        assert_eq!(slices(&[], 3, 9), vec![(3, 9)]);
    }

    #[test]
    fn too_many_distinct_groups_are_refused() {
        let rows: Vec<_> = (0..101).map(|i| row(0, &i.to_string(), "", 1)).collect();
        let (totals, dims) = (totals_of(&rows[..1]), [Dimension::ApiKey]);
        let mut reads = Vec::new();
        let e = counted_then_named(reader(&rows, &mut reads), &totals, (0, 1), &dims, 100).unwrap_err();
        assert_eq!(e.code_and_status().1, 400);
        assert!(e.to_string().starts_with("group_by: more than 100 groups"), "{e}");
        assert!(counted_then_named(reader(&rows, &mut reads), &totals, (0, 1), &dims, 101).is_ok());
    }

    #[test]
    fn keys_do_not_run_together() {
        let dims = [Dimension::ApiKey, Dimension::User];
        assert_ne!(key_hash(&row(0, "ab", "c", 1), &dims), key_hash(&row(0, "a", "bc", 1), &dims));
        assert_eq!(key_hash(&row(0, "ab", "c", 1), &dims), key_hash(&row(9, "ab", "c", 7), &dims));
    }

    #[test]
    fn small_lists_are_not_truncated() {
        let group = |calls| Group {
            key: BTreeMap::from([("interface", "rest".to_owned())]),
            count: CallCount { calls, billable_calls: 0 },
        };
        let g = BoundedGroups::of(vec![group(3), group(1)]);
        assert_eq!((g.groups.len(), g.other), (2, None));
        let g = BoundedGroups::of((0..MAX_GROUPS as u64 + 2).rev().map(group).collect());
        assert_eq!(g.groups.len(), MAX_GROUPS);
        assert_eq!(g.other.unwrap(), OtherGroups { groups: 2, count: CallCount { calls: 1, billable_calls: 0 } });
    }
}
