//! 15-minute aggregates, up to date with every write (recent changes are
//! held in memory until a checkpoint writes them: `embedded/derived.rs`).
//!
//! Two keyspaces hold them. `totals` has one value per account and bucket,
//! a short list of counts by (interface, operation, flags): a usage answer
//! for a 30-day period reads 2,880 small values and never a call. `breakdown`
//! adds the api key and the user to the key, for `group_by` answers. Both
//! are kept forever: period totals outlive the calls (DESIGN §2).

use crate::keys;
use crate::StoreError;
use callmeter_model::{Interface, Operation};

/// What metering decided about the calls counted in one aggregate row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default)]
pub struct CallFlags {
    /// Billable by the rule in force at the call's time.
    pub billable: bool,
    /// Arrived after the call's period had closed; counted in its own bucket, not billed there.
    pub late: bool,
    /// A late call billed in the period open when it arrived (`late_calls = "bill_in_open_period"`):
    /// such a row sits in the arrival bucket and counts only towards billing.
    pub carried: bool,
}

impl CallFlags {
    fn to_byte(self) -> u8 {
        self.billable as u8 | (self.late as u8) << 1 | (self.carried as u8) << 2
    }

    fn from_byte(b: u8) -> Self {
        CallFlags { billable: b & 1 != 0, late: b & 2 != 0, carried: b & 4 != 0 }
    }
}

/// Counts of one account, bucket and (interface, operation, flags).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TotalRow {
    /// The 15-minute bucket (see `callmeter_model::bucket_of`).
    pub bucket: i64,
    /// The calls' interface.
    pub interface: Interface,
    /// The calls' operation.
    pub operation: Operation,
    /// What metering decided about them.
    pub flags: CallFlags,
    /// How many calls.
    pub calls: u64,
}

/// Counts of one account, bucket and every dimension, api key and user included.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakdownRow {
    /// The 15-minute bucket.
    pub bucket: i64,
    /// The calls' interface.
    pub interface: Interface,
    /// The calls' operation.
    pub operation: Operation,
    /// What metering decided about them.
    pub flags: CallFlags,
    /// The api key, empty when the calls carried none.
    pub api_key: String,
    /// The user, empty when the calls carried none.
    pub user: String,
    /// How many calls.
    pub calls: u64,
    /// How many of them failed (status 400 or more).
    pub errors: u64,
    /// Body bytes they transferred.
    pub bytes: u64,
}

/// The dimensions of a totals entry inside a bucket's value.
pub(crate) type TotalsDims = (u8, u8, u8);

/// Encodes the dimension triple of a totals entry.
pub(crate) fn totals_dims(interface: Interface, operation: Operation, flags: CallFlags) -> TotalsDims {
    (interface.code(), operation.code(), flags.to_byte())
}

const TOTALS_ENTRY: usize = 3 + 8;

/// Decodes a bucket's totals value into (dims, calls) entries.
pub(crate) fn decode_totals(value: &[u8]) -> Result<Vec<(TotalsDims, u64)>, StoreError> {
    if !value.len().is_multiple_of(TOTALS_ENTRY) {
        return Err(StoreError::Corrupt("totals value".into()));
    }
    Ok(value
        .chunks_exact(TOTALS_ENTRY)
        .map(|c| ((c[0], c[1], c[2]), u64::from_le_bytes(c[3..].try_into().expect("8 bytes"))))
        .collect())
}

/// Encodes a bucket's totals entries.
pub(crate) fn encode_totals(entries: &[(TotalsDims, u64)]) -> Vec<u8> {
    let mut v = Vec::with_capacity(entries.len() * TOTALS_ENTRY);
    for ((i, o, f), calls) in entries {
        v.extend_from_slice(&[*i, *o, *f]);
        v.extend_from_slice(&calls.to_le_bytes());
    }
    v
}

/// Turns one decoded totals entry into a row.
pub(crate) fn totals_row(bucket: i64, dims: TotalsDims, calls: u64) -> Result<TotalRow, StoreError> {
    let (i, o, f) = dims;
    Ok(TotalRow {
        bucket,
        interface: Interface::from_code(i).ok_or_else(|| StoreError::Corrupt("interface code".into()))?,
        operation: Operation::from_code(o).ok_or_else(|| StoreError::Corrupt("operation code".into()))?,
        flags: CallFlags::from_byte(f),
        calls,
    })
}

/// Appends the part of a breakdown row's key after its bucket key (`keys::bucket_key`).
pub(crate) fn push_breakdown_suffix(
    k: &mut Vec<u8>,
    interface: Interface,
    operation: Operation,
    flags: CallFlags,
    api_key: &str,
    user: &str,
) {
    k.extend_from_slice(&[interface.code(), operation.code(), flags.to_byte()]);
    keys::push_str16(k, api_key);
    keys::push_str16(k, user);
}

/// Counters of a breakdown row: calls, errors, bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Counters {
    pub calls: u64,
    pub errors: u64,
    pub bytes: u64,
}

impl Counters {
    pub(crate) fn encode(&self) -> [u8; 24] {
        let mut v = [0u8; 24];
        v[..8].copy_from_slice(&self.calls.to_le_bytes());
        v[8..16].copy_from_slice(&self.errors.to_le_bytes());
        v[16..].copy_from_slice(&self.bytes.to_le_bytes());
        v
    }

    pub(crate) fn decode(v: &[u8]) -> Result<Self, StoreError> {
        if v.len() != 24 {
            return Err(StoreError::Corrupt("breakdown value".into()));
        }
        let at = |i: usize| u64::from_le_bytes(v[i..i + 8].try_into().expect("8 bytes"));
        Ok(Counters { calls: at(0), errors: at(8), bytes: at(16) })
    }

    pub(crate) fn add(&mut self, other: &Counters) {
        self.calls += other.calls;
        self.errors += other.errors;
        self.bytes = self.bytes.saturating_add(other.bytes);
    }
}

/// Decodes a breakdown row from its key (after the account prefix) and value.
pub(crate) fn decode_breakdown(key_after_account: &[u8], value: &[u8]) -> Result<BreakdownRow, StoreError> {
    let bad = || StoreError::Corrupt("breakdown key".into());
    let bucket = keys::read_i64(key_after_account).ok_or_else(bad)?;
    let rest = key_after_account.get(8..).ok_or_else(bad)?;
    let [i, o, f] = rest.get(..3).ok_or_else(bad)?.try_into().map_err(|_| bad())?;
    let (api_key, rest) = keys::read_str16(&rest[3..]).ok_or_else(bad)?;
    let (user, _) = keys::read_str16(rest).ok_or_else(bad)?;
    let c = Counters::decode(value)?;
    let t = totals_row(bucket, (i, o, f), c.calls)?;
    Ok(BreakdownRow {
        bucket,
        interface: t.interface,
        operation: t.operation,
        flags: t.flags,
        api_key: api_key.to_owned(),
        user: user.to_owned(),
        calls: c.calls,
        errors: c.errors,
        bytes: c.bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn totals_round_trip() {
        let f = CallFlags { billable: true, late: false, carried: true };
        let entries = vec![(totals_dims(Interface::Mount, Operation::List, f), 7u64), ((0, 0, 0), u64::MAX)];
        let back = decode_totals(&encode_totals(&entries)).unwrap();
        assert_eq!(back, entries);
        let row = totals_row(5, back[0].0, back[0].1).unwrap();
        assert_eq!((row.interface, row.operation, row.flags), (Interface::Mount, Operation::List, f));
    }

    #[test]
    fn breakdown_round_trip() {
        let f = CallFlags { billable: false, late: true, carried: false };
        let mut k = keys::bucket_key("acme", -3);
        push_breakdown_suffix(&mut k, Interface::Rest, Operation::Write, f, "key1", "");
        let c = Counters { calls: 3, errors: 1, bytes: 99 };
        let row = decode_breakdown(&k[5..], &c.encode()).unwrap();
        assert_eq!(row.bucket, -3);
        assert_eq!((row.api_key.as_str(), row.user.as_str(), row.calls, row.errors, row.bytes), ("key1", "", 3, 1, 99));
        assert_eq!(row.flags, f);
    }
}
