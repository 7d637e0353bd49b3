//! Kept audits: each account's audit report (DESIGN §6) of one day, as the
//! server's daily schedule made it, so that lists across accounts read them
//! instead of waiting for audits.
//!
//! | keyspace | key                                   | value                  |
//! |----------|---------------------------------------|------------------------|
//! | `audits` | day as `YYYY-MM-DD`, a zero byte, account | the report's JSON, as given |
//!
//! The day comes first so that one day's audits of every account are one
//! prefix scan. These rows are written straight into their keyspace, not
//! through the writer thread: they are rare (one per account a day), touch
//! nothing the writer keeps (dedup keys, aggregates, `block_log`), and each
//! write is synced before it returns, so the writer's group commit has
//! nothing to offer them.

use super::{Engine, Shared};
use crate::disk;
use crate::StoreError;
use chrono::NaiveDate;
use fjall::PersistMode;
use std::path::Path;
use std::sync::atomic::Ordering;

/// The key prefix of one day's audits.
fn day_prefix(day: NaiveDate) -> Vec<u8> {
    let mut k = day.format("%Y-%m-%d").to_string().into_bytes();
    // A zero byte never occurs in a date or an account name: the prefix of one
    // day can never be the prefix of another day's keys.
    k.push(0);
    k
}

fn key(account: &str, day: NaiveDate) -> Vec<u8> {
    let mut k = day_prefix(day);
    k.extend_from_slice(account.as_bytes());
    k
}

/// Keeps `report_json` as the audit of `account` for `day`, replacing an
/// earlier one, and syncs it to disk before returning.
pub(crate) fn put(
    engine: &Engine,
    shared: &Shared,
    data: &Path,
    min_free_bytes: u64,
    account: &str,
    day: NaiveDate,
    report_json: &[u8],
) -> Result<(), StoreError> {
    if !shared.writable.load(Ordering::Relaxed) {
        return Err(StoreError::Unavailable("the store takes no writes after a failed sync".into()));
    }
    // The writer checks the same reserve before each commit: a write that runs
    // out of space would leave the engine poisoned, and ingest with it.
    disk::require_free(data, min_free_bytes)?;
    engine.audits.insert(key(account, day), report_json)?;
    engine.db.persist(PersistMode::SyncAll)?;
    Ok(())
}

/// The audit of `account` for `day`, when one is kept.
pub(crate) fn get(engine: &Engine, account: &str, day: NaiveDate) -> Result<Option<Vec<u8>>, StoreError> {
    Ok(engine.audits.get(key(account, day))?.map(|v| v.to_vec()))
}

/// Every account's kept audit for `day`, by account name.
pub(crate) fn list(engine: &Engine, day: NaiveDate) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
    let prefix = day_prefix(day);
    let mut out = Vec::new();
    for item in engine.audits.prefix(&prefix) {
        let (k, v) = item.into_inner()?;
        let account = std::str::from_utf8(&k[prefix.len()..])
            .map_err(|_| StoreError::Corrupt("audit key: account is not UTF-8".into()))?;
        out.push((account.to_owned(), v.to_vec()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use crate::{EmbeddedStore, Store, StoreOptions};
    use chrono::NaiveDate;

    fn day(d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 11, d).unwrap()
    }

    #[test]
    fn kept_by_account_and_day_and_still_there_after_a_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        store.put_audit("acme", day(27), br#"{"calls":1}"#).unwrap();
        store.put_audit("acme", day(28), br#"{"calls":2}"#).unwrap();
        store.put_audit("globex", day(28), br#"{"calls":3}"#).unwrap();
        store.put_audit("acme", day(28), br#"{"calls":4}"#).unwrap(); // replaces
        assert_eq!(store.audit("acme", day(27)).unwrap().unwrap(), br#"{"calls":1}"#);
        assert_eq!(store.audit("acme", day(26)).unwrap(), None);
        assert_eq!(store.audit("acm", day(28)).unwrap(), None, "no prefix match");
        store.shutdown();

        let store = EmbeddedStore::open(dir.path(), StoreOptions::default()).unwrap();
        let listed = store.audits(day(28)).unwrap();
        assert_eq!(
            listed,
            vec![("acme".to_owned(), br#"{"calls":4}"#.to_vec()), ("globex".to_owned(), br#"{"calls":3}"#.to_vec())]
        );
        assert!(store.audits(day(29)).unwrap().is_empty());
        store.shutdown();
    }

    #[test]
    fn refused_below_the_free_space_reserve() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions { min_free_bytes: u64::MAX, ..StoreOptions::default() };
        let store = EmbeddedStore::open(dir.path(), options).unwrap();
        let e = store.put_audit("acme", day(28), b"{}").unwrap_err();
        assert!(matches!(e, crate::StoreError::DiskFull(_)), "{e}");
        assert_eq!(store.audit("acme", day(28)).unwrap(), None);
        store.shutdown();
    }
}
