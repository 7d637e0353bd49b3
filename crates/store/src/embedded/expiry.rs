//! Calls expire after the retention (DESIGN §3): a background thread removes,
//! every hour, the call blocks whose calls are all older than the retention.
//! The 15-minute aggregates stay, so period totals outlive the calls. Dedup
//! keys stay too (they are 16 bytes a call, the blocks about a hundred): a
//! repeat of an expired call is then still a duplicate, never counted again.
//!
//! Only keys are read: a block keyed (account, earliest time, seq) starting
//! more than the account's widest block span before the cutoff ends before
//! it, so no block value (a blob) is fetched to decide.

use super::{Engine, Shared};
use crate::keys;
use crate::StoreError;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::Duration;

/// How often the sweep runs.
const SWEEP_INTERVAL: Duration = Duration::from_secs(3_600);

/// Removals per engine batch, so that one sweep never holds a huge batch.
const REMOVALS_PER_BATCH: usize = 10_000;

/// The sweeping thread; stopped by [`Sweeps::stop`] or when dropped.
pub(crate) struct Sweeps {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Sweeps {
    /// Starts the sweeps: one at once, then every [`SWEEP_INTERVAL`].
    pub fn start(engine: Engine, shared: Arc<Shared>, retention: chrono::Duration) -> std::io::Result<Sweeps> {
        let (stop, stopped) = mpsc::channel::<()>();
        let thread = std::thread::Builder::new().name("callmeter-expiry".into()).spawn(move || loop {
            let cutoff = chrono::Utc::now() - retention;
            match expire_blocks(&engine, &shared, crate::codec::time_ns(cutoff)) {
                Ok(0) => {}
                Ok(blocks) => tracing::info!(blocks, %cutoff, "expired call blocks older than the retention"),
                Err(e) => tracing::warn!(error = %e, "expiring old call blocks failed; trying again next hour"),
            }
            if !matches!(stopped.recv_timeout(SWEEP_INTERVAL), Err(mpsc::RecvTimeoutError::Timeout)) {
                return;
            }
        })?;
        Ok(Sweeps { stop: Some(stop), thread: Some(thread) })
    }

    /// Stops the sweeps, waiting for one under way.
    pub fn stop(&mut self) {
        self.stop.take();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Sweeps {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Removes every block whose calls are all before `cutoff_ns`; the number removed.
pub(crate) fn expire_blocks(engine: &Engine, shared: &Shared, cutoff_ns: i64) -> Result<u64, StoreError> {
    let accounts: Vec<(String, i64)> =
        shared.accounts.read().values().map(|a| (a.name.clone(), a.max_block_span_ns)).collect();
    let mut removed = 0;
    for (account, span) in accounts {
        let start = keys::account_prefix(&account);
        let end = keys::block_scan_start(&account, cutoff_ns.saturating_sub(span));
        let mut batch = engine.db.batch();
        for item in engine.blocks.range(start..end) {
            batch.remove(&engine.blocks, item.key()?);
            removed += 1;
            if batch.len() >= REMOVALS_PER_BATCH {
                std::mem::replace(&mut batch, engine.db.batch()).commit()?;
            }
        }
        if !batch.is_empty() {
            batch.commit()?;
        }
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::super::test_event;
    use crate::{CallFilter, EmbeddedStore, Store, StoreOptions};
    use chrono::Utc;

    /// Blocks older than the retention go; younger ones and the totals stay.
    #[test]
    fn old_blocks_go_and_totals_stay() {
        let dir = tempfile::tempdir().unwrap();
        let options = StoreOptions { retention: chrono::Duration::hours(1), ..StoreOptions::default() };
        let store = EmbeddedStore::open(dir.path(), options).unwrap();
        let old = Utc::now() - chrono::Duration::minutes(50);
        let young = Utc::now() - chrono::Duration::minutes(5);
        store.ingest((0..30).map(|i| test_event(format!("old{i}"), old)).collect()).wait_blocking().unwrap();
        store.ingest((0..20).map(|i| test_event(format!("young{i}"), young)).collect()).wait_blocking().unwrap();
        let all = CallFilter::default();
        assert_eq!(store.calls("acme", &all, None, 1000).unwrap().calls.len(), 50);

        // As if an hour had passed for the old calls but not the young ones.
        let cutoff = crate::codec::time_ns(Utc::now() - chrono::Duration::minutes(20));
        let removed = super::expire_blocks(&store.engine, &store.shared, cutoff).unwrap();
        assert_eq!(removed, 1, "the old commit's one block");
        let left = store.calls("acme", &all, None, 1000).unwrap().calls;
        assert_eq!(left.len(), 20);
        assert!(left.iter().all(|(_, c)| c.event.id.starts_with("young")));
        let bucket = callmeter_model::bucket_of;
        let rows = store.totals("acme", bucket(old), bucket(young) + 1).unwrap();
        let counted: u64 = rows.iter().map(|r| r.calls).sum();
        assert_eq!(counted, 50, "totals outlive the calls");
        let again = store.ingest(vec![test_event("old3".into(), old)]).wait_blocking().unwrap();
        assert!(matches!(again[0], crate::Outcome::Duplicate), "an expired call's repeat is still a duplicate");
        store.shutdown();
    }
}
