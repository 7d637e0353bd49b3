//! The embedded store: fjall keyspaces in one data folder (`engine.rs`
//! opens them, each with its options).
//!
//! | keyspace     | key                                   | value                         |
//! |--------------|---------------------------------------|-------------------------------|
//! | `meta`       | name (`outbox_fresh/`, first id)      | format version, sequences; a batch's fresh rows |
//! | `dedup_keys` | 128-bit hash of (account, id)         | empty                         |
//! | `blocks`     | account, earliest call time, sequence | LZ4 block of calls (`codec`)  |
//! | `totals`     | account, 15-minute bucket             | counts by interface/op/flags  |
//! | `breakdown`  | account, bucket, dims, api key, user  | calls, errors, bytes          |
//! | `block_log`  | sequence of a block                   | its `blocks` key              |
//! | `accounts`   | name                                  | JSON `AccountRecord`          |
//! | `adjustments`| account, period start, sequence       | JSON `Adjustment`             |
//! | `tokens`     | id                                    | JSON `TokenRecord`            |
//! | `audits`     | day, account                          | JSON audit report             |
//! | `webhooks`   | account, subscription id              | JSON `Subscription`, its number |
//! | `changes`    | change sequence                       | a change (`changelog.rs`)     |
//! | `paths`      | account, path                         | empty: a path the store knows |
//! | `outbox`     | subscription number, delivery id      | `Delivery` (`outbox_rows.rs`) |
//! | `outbox_due` | next attempt time, outbox key         | pending rows by due: the row  |
//! | `attempts`   | subscription number, attempt id       | `Attempt` (`outbox_rows.rs`); a fresh row's first, delivered: with its row |
//! | `alerts`     | account, alert id / fired key         | JSON `Alert` / its id         |
//!
//! All writes but the kept audits go through one writer thread
//! (`writer.rs`, entered through `requests.rs`), which batches concurrent requests into one engine commit;
//! the syncer thread (`syncer.rs`) shares one sync among them and only then
//! lets them count and answers. Reads go straight to the engine. Kept audits
//! (`audits.rs`) are written directly, one synced write each.
//!
//! Call blocks older than the retention are removed every hour, with their
//! dedup keys (`expiry.rs`); the aggregates stay.
//!
//! Dedup keys and breakdown rows of recent calls are kept in memory and
//! written by a checkpoint every few seconds; `block_log` lists the blocks
//! committed since, and is replayed and checkpointed after a crash
//! (`derived.rs`). The writes of requests whose sync failed are undone at
//! the next open (`undo.rs`). `folder.rs` checks the data folder holds only
//! what callmeter writes before the engine opens it.
//!
//! Webhooks (DESIGN §7, `docs/webhooks.md`): the writer appends each change
//! (a successful, on-time, accepted write call) to the change log in the
//! batch of its call's block (`changelog.rs`); subscriptions are written
//! through the writer too (`subscriptions.rs`). The change processor
//! (`processor.rs`) turns durable changes into outbox rows, classifying them
//! with the path index (`paths.rs`) and handing the new ones to the engine in
//! memory (`outbox_fresh.rs`), written in one entry per batch
//! (`outbox_batch_entry.rs`); the delivery engine (crate
//! `callmeter-webhooks`) claims them (`outbox.rs`) and completes them
//! (`outbox_complete.rs`); listings and resends find a row wherever it is
//! (`outbox_lookup.rs`).
//!
//! Usage alerts: the syncer marks the accounts whose usage changed
//! (`usage_signal.rs`) for the server's alert evaluator, which fires the
//! alerts it finds due through `alerts.rs`: each once, with its outbox rows,
//! in one synced batch.

mod alerts;
mod audits;
mod backup;
mod changelog;
mod derived;
mod engine;
mod expiry;
mod folder;
mod outbox;
mod outbox_batch_entry;
mod outbox_complete;
mod outbox_fresh;
mod outbox_lookup;
mod outbox_rows;
mod path_memory;
mod paths;
mod processor;
mod requests;
mod scan;
mod subscription_index;
mod subscriptions;
mod syncer;
mod undo;
mod upgrade;
mod usage_signal;
mod webhook_store;
mod writer;

use crate::aggregate::{self, BreakdownRow, Counters, TotalRow, TotalsDims};
use crate::alert_records::{Alert, AlertPage};
use crate::keys;
use crate::options::StoreOptions;
use crate::records::{AccountRecord, Adjustment, CallFilter, CallPage, Position, TokenRecord};
use crate::store::{AccountChange, BackupReport, IngestTicket, OpenReport, Store};
use crate::webhook_records::{AttemptPage, ClaimedDelivery, Completion, Delivery, Subscription, SubscriptionUpdate};
use crate::StoreError;
use callmeter_model::CallEvent;
use chrono::{DateTime, Utc};
use parking_lot::RwLock;
use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

/// The store format this build writes; older ones are upgraded on open (`upgrade.rs`).
pub const FORMAT_VERSION: u32 = 7;

pub(crate) const FORMAT_KEY: &str = "format_version";

pub(crate) use engine::{keyspace_options, Engine, KEYSPACE_NAMES};

/// State the writer keeps and the readers look at.
pub(crate) struct Shared {
    pub accounts: RwLock<HashMap<String, AccountRecord>>,
    pub writable: AtomicBool,
    /// Aggregates committed but not yet checkpointed into the engine.
    /// Readers add them to what the engine holds; a checkpoint holds the
    /// write lock while it moves them over.
    pub pending_aggregates: RwLock<derived::PendingAggregates>,
    /// Checkpoints finished since the store opened.
    pub checkpoints_done: AtomicU64,
    /// Blocks with this sequence or later belong to commits not (yet)
    /// durable: the request log leaves them out.
    pub visible_below_seq: AtomicU64,
    /// Every block below this sequence has its keys and counts in the engine
    /// (checkpointed): the retention sweep removes no other, since a block
    /// still in the block log is what a restart would count from.
    pub checkpointed_below_seq: AtomicU64,
    /// The dedup keys of calls from this instant on are all held: the
    /// retention sweep removed older ones (`expiry.rs`), so an older call is
    /// refused whatever the retention is now. Kept in `meta`.
    pub keys_complete_from_ns: std::sync::atomic::AtomicI64,
    /// Held while that floor is raised: two sweeps at once must not write
    /// a lower floor over a higher one (`expiry.rs`).
    pub keys_floor_raise: parking_lot::Mutex<()>,
    /// What the open replayed after a crash.
    pub replay: ReplayCounts,
    /// Webhook subscriptions of published commits, by key and number (`subscription_index.rs`).
    pub subscriptions: RwLock<subscription_index::Published>,
    /// How far the change log is durable, and its signal to the change processor.
    pub changes: changelog::ChangeSignal,
    /// The outbox's lock, claims and wake-up (`outbox.rs`).
    pub outbox: outbox::OutboxState,
    /// Accounts whose usage changed, for the alert evaluator (`usage_signal.rs`).
    pub usage: usage_signal::UsageSignal,
}

/// Held by each thread that writes go through (writer, syncer,
/// checkpointer): when one panics (an assertion of the exactly-once path
/// broken), the store takes no more writes and says so (`is_writable`, so
/// `/readyz` answers 503), rather than answer every write "shutting down"
/// while it looks ready. A restart recovers as from a crash.
pub(crate) struct WritesStopOnPanic(pub Arc<Shared>);

impl Drop for WritesStopOnPanic {
    fn drop(&mut self) {
        if std::thread::panicking() {
            self.0.writable.store(false, Ordering::Release);
            let thread = std::thread::current();
            tracing::error!(
                thread = thread.name().unwrap_or("?"),
                "a store thread panicked: the store takes no more writes until a restart"
            );
        }
    }
}

/// The block log replayed when the store opened (0 after a clean stop).
#[derive(Default)]
pub(crate) struct ReplayCounts {
    pub blocks: AtomicU64,
    pub calls: AtomicU64,
    /// Of `calls`, those the start could not checkpoint (compaction behind, a full disk).
    pub waiting: AtomicU64,
}

/// The embedded store. Cheap to share behind an `Arc`; dropping the last one
/// stops the writer after it has finished what it was given.
pub struct EmbeddedStore {
    engine: Engine,
    shared: Arc<Shared>,
    writer: requests::WriterHandle,
    expiry: expiry::Sweeps,
    path: PathBuf,
    /// The free-space reserve, for the writes that bypass the writer (kept audits).
    min_free_bytes: u64,
    opened: OpenReport,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `path`, upgrading an older format.
    pub fn open(path: &Path, options: StoreOptions) -> Result<EmbeddedStore, StoreError> {
        let started = std::time::Instant::now();
        let (engine, format) = Engine::open(path, &options)?;
        undo::apply_left_over(&engine, path)?;
        // Before the subscriptions and the outbox are read: their keys change (`upgrade.rs`).
        upgrade::number_webhooks(&engine, format)?;
        upgrade::record_version_early(&engine, format)?;
        let mut accounts = HashMap::new();
        for item in engine.accounts.iter() {
            let (_, v) = item.into_inner()?;
            let rec: AccountRecord =
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(format!("account record: {e}")))?;
            accounts.insert(rec.name.clone(), rec);
        }
        let shared = Arc::new(Shared {
            accounts: RwLock::new(accounts),
            writable: AtomicBool::new(true),
            pending_aggregates: RwLock::new(derived::PendingAggregates::default()),
            checkpoints_done: AtomicU64::new(0),
            visible_below_seq: AtomicU64::new(0),
            checkpointed_below_seq: AtomicU64::new(0),
            keys_complete_from_ns: std::sync::atomic::AtomicI64::new(expiry::keys_complete_from(&engine)?),
            keys_floor_raise: parking_lot::Mutex::new(()),
            replay: ReplayCounts::default(),
            subscriptions: RwLock::new(subscription_index::load(&engine)?),
            changes: changelog::ChangeSignal::default(),
            outbox: outbox::OutboxState::open(&engine)?,
            usage: usage_signal::UsageSignal::default(),
        });
        // The alert evaluator's first look covers every account (`usage_signal.rs`).
        shared.usage.mark(shared.accounts.read().keys().map(String::as_str));
        let min_free_bytes = options.min_free_bytes;
        let retention = (options.retention, options.webhook_retention);
        let min_free = options.min_free_bytes;
        let writer = writer::start(engine.clone(), shared.clone(), options, path.to_path_buf(), format)?;
        let processor = processor::start(engine.clone(), shared.clone(), path.to_path_buf(), min_free)?;
        writer.threads.lock().push(processor);
        let expiry = expiry::Sweeps::start(engine.clone(), shared.clone(), retention)?;
        let opened = OpenReport {
            replayed_blocks: shared.replay.blocks.load(Ordering::Relaxed),
            replayed_calls: shared.replay.calls.load(Ordering::Relaxed),
            replayed_calls_waiting: shared.replay.waiting.load(Ordering::Relaxed),
            elapsed: started.elapsed(),
        };
        tracing::info!(path = %path.display(), accounts = shared.accounts.read().len(), replayed_calls = opened.replayed_calls, elapsed_ms = opened.elapsed.as_millis() as u64, "store opened");
        Ok(EmbeddedStore { engine, shared, writer, expiry, path: path.to_path_buf(), min_free_bytes, opened })
    }

    /// The data folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the writer after it has committed and synced everything it was given.
    pub fn shutdown(mut self) {
        self.expiry.stop();
        self.writer.stop();
    }
}

impl Store for EmbeddedStore {
    fn ingest(&self, events: Vec<CallEvent>) -> IngestTicket {
        // The dedup lookups run here, on the caller's thread, in parallel with the writer.
        match requests::DiskCheck::run(&self.engine, &self.shared, &events) {
            Ok(checked) => self.writer.ingest(events, checked),
            Err(e) => IngestTicket::failed(e),
        }
    }

    fn account(&self, name: &str) -> Option<AccountRecord> {
        self.shared.accounts.read().get(name).cloned()
    }

    fn accounts(&self) -> Vec<AccountRecord> {
        let mut all: Vec<AccountRecord> = self.shared.accounts.read().values().cloned().collect();
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    fn upsert_account(&self, name: &str, change: AccountChange) -> Result<AccountRecord, StoreError> {
        self.writer.upsert_account(name.to_owned(), change)
    }

    fn totals(&self, account: &str, from_bucket: i64, to_bucket: i64) -> Result<Vec<TotalRow>, StoreError> {
        let start = keys::bucket_key(account, from_bucket);
        let end = keys::bucket_key(account, to_bucket);
        let skip = start.len() - 8;
        let bucket_of_key =
            |k: &[u8]| keys::read_i64(&k[skip..]).ok_or_else(|| StoreError::Corrupt("totals key".into()));
        // Held across the engine scan, so that a checkpoint cannot move counts
        // from memory into the engine between the two halves of this read.
        let pending = self.shared.pending_aggregates.read();
        let mut merged: BTreeMap<i64, Vec<(TotalsDims, u64)>> = BTreeMap::new();
        for item in self.engine.totals.range(start.clone()..end.clone()) {
            let (k, v) = item.into_inner()?;
            merged.insert(bucket_of_key(&k)?, aggregate::decode_totals(&v)?);
        }
        for (k, counts) in pending.range(&start, &end) {
            let entries = merged.entry(bucket_of_key(k)?).or_default();
            for (dims, n) in &counts.totals {
                derived::add_entry(entries, *dims, *n);
            }
        }
        drop(pending);
        let mut rows = Vec::new();
        for (bucket, entries) in merged {
            for (dims, calls) in entries {
                rows.push(aggregate::totals_row(bucket, dims, calls)?);
            }
        }
        Ok(rows)
    }

    fn breakdown(&self, account: &str, from_bucket: i64, to_bucket: i64) -> Result<Vec<BreakdownRow>, StoreError> {
        let start = keys::bucket_key(account, from_bucket);
        let end = keys::bucket_key(account, to_bucket);
        let skip = start.len() - 8;
        // Held across the engine scan, as in `totals`.
        let pending = self.shared.pending_aggregates.read();
        let mut merged: BTreeMap<Vec<u8>, Counters> = BTreeMap::new();
        for item in self.engine.breakdown.range(start.clone()..end.clone()) {
            let (k, v) = item.into_inner()?;
            merged.insert(k.to_vec(), Counters::decode(&v)?);
        }
        for (bucket_key, counts) in pending.range(&start, &end) {
            for (suffix, c) in &counts.breakdown {
                let mut key = bucket_key.clone();
                key.extend_from_slice(suffix);
                merged.entry(key).or_default().add(c);
            }
        }
        drop(pending);
        merged.iter().map(|(k, c)| aggregate::decode_breakdown(&k[skip..], &c.encode())).collect()
    }

    fn calls(
        &self,
        account: &str,
        filter: &CallFilter,
        after: Option<Position>,
        limit: usize,
    ) -> Result<CallPage, StoreError> {
        let span = self.account(account).map_or(0, |a| a.max_block_span_ns);
        let visible_below = self.shared.visible_below_seq.load(Ordering::Acquire);
        scan::calls(&self.engine.blocks, account, span, visible_below, filter, after, limit)
    }

    fn add_adjustment(&self, adjustment: Adjustment) -> Result<(), StoreError> {
        self.writer.add_adjustment(adjustment)
    }

    fn adjustments(
        &self,
        account: &str,
        period_start: chrono::DateTime<chrono::Utc>,
    ) -> Result<Vec<Adjustment>, StoreError> {
        let mut prefix = keys::account_prefix(account);
        keys::push_i64(&mut prefix, crate::codec::time_ns(period_start));
        let mut out = Vec::new();
        for item in self.engine.adjustments.prefix(prefix) {
            let (_, v) = item.into_inner()?;
            out.push(serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(format!("adjustment: {e}")))?);
        }
        Ok(out)
    }

    fn put_token(&self, token: TokenRecord) -> Result<(), StoreError> {
        self.writer.put_token(token)
    }

    fn delete_token(&self, id: &str) -> Result<bool, StoreError> {
        self.writer.delete_token(id.to_owned())
    }

    fn tokens(&self) -> Result<Vec<TokenRecord>, StoreError> {
        let mut out = Vec::new();
        for item in self.engine.tokens.iter() {
            let (_, v) = item.into_inner()?;
            out.push(serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(format!("token: {e}")))?);
        }
        Ok(out)
    }

    fn put_audit(&self, account: &str, day: chrono::NaiveDate, report_json: &[u8]) -> Result<(), StoreError> {
        audits::put(&self.engine, &self.shared, &self.path, self.min_free_bytes, account, day, report_json)
    }

    fn audit(&self, account: &str, day: chrono::NaiveDate) -> Result<Option<Vec<u8>>, StoreError> {
        audits::get(&self.engine, account, day)
    }

    fn audits(&self, day: chrono::NaiveDate) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        audits::list(&self.engine, day)
    }

    fn backup(&self, dir: &Path) -> Result<BackupReport, StoreError> {
        backup::copy(&self.engine, &self.path, dir)
    }

    fn is_writable(&self) -> bool {
        self.shared.writable.load(Ordering::Relaxed)
    }

    fn disk_bytes(&self) -> u64 {
        self.engine.db.disk_space().unwrap_or(0)
    }

    fn open_report(&self) -> OpenReport {
        self.opened
    }

    fn create_subscription(&self, sub: Subscription) -> Result<Subscription, StoreError> {
        // Ids are the server's own (`wh_` and hex): a longer one is a bug, caught here, not in the writer.
        assert!(sub.id.len() <= keys::MAX_SUBSCRIPTION_ID_LEN, "a subscription id of {} bytes", sub.id.len());
        self.writer.create_subscription(sub)
    }

    fn update_subscription(
        &self,
        account: &str,
        id: &str,
        update: SubscriptionUpdate,
    ) -> Result<Option<Subscription>, StoreError> {
        // An id from a URL: too long to be stored, so there is none (and the writer never sees it).
        if id.len() > keys::MAX_SUBSCRIPTION_ID_LEN {
            return Ok(None);
        }
        self.writer.update_subscription(account.to_owned(), id.to_owned(), update)
    }

    fn delete_subscription(&self, account: &str, id: &str) -> Result<bool, StoreError> {
        if id.len() > keys::MAX_SUBSCRIPTION_ID_LEN {
            return Ok(false);
        }
        self.writer.delete_subscription(account.to_owned(), id.to_owned())
    }

    fn subscription(&self, account: &str, id: &str) -> Option<Arc<Subscription>> {
        self.find_subscription(account, id)
    }

    fn subscriptions(&self, account: &str) -> Vec<Subscription> {
        self.list_subscriptions(account)
    }

    fn claim_deliveries(
        &self,
        now: DateTime<Utc>,
        limit: usize,
        admit: &mut dyn FnMut(&Subscription) -> bool,
    ) -> Result<Vec<ClaimedDelivery>, StoreError> {
        self.claim(now, limit, admit)
    }

    fn complete_deliveries(&self, done: &[Completion]) -> Result<(), StoreError> {
        self.complete(done)
    }

    fn next_delivery_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.next_due()
    }

    fn deliveries_notify(&self) -> Arc<tokio::sync::Notify> {
        self.shared.outbox.notify.clone()
    }

    fn changes_unprocessed(&self) -> u64 {
        self.shared.changes.unprocessed()
    }

    fn delivery_attempts(
        &self,
        account: &str,
        id: &str,
        before: Option<u64>,
        limit: usize,
    ) -> Result<AttemptPage, StoreError> {
        self.attempts_of(account, id, before, limit)
    }

    fn deliveries(&self, account: &str, id: &str) -> Result<Vec<Delivery>, StoreError> {
        self.rows_of(account, id)
    }

    fn redeliver(&self, account: &str, id: &str, delivery: u64, now: DateTime<Utc>) -> Result<bool, StoreError> {
        self.redeliver_one(account, id, delivery, now)
    }

    fn replay(&self, account: &str, id: &str, since: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.replay_since(account, id, since, now)
    }

    fn accounts_with_new_usage(&self, wait: std::time::Duration) -> Vec<String> {
        self.shared.usage.take(wait)
    }

    fn fire_alerts(&self, alerts: Vec<Alert>) -> Result<Vec<Alert>, StoreError> {
        alerts::fire(&self.engine, &self.shared, &self.path, self.min_free_bytes, alerts)
    }

    fn alerts(&self, account: &str, before: Option<u64>, limit: usize) -> Result<AlertPage, StoreError> {
        alerts::page(&self.engine, account, before, limit)
    }
}

/// Logs a step that held requests back for half a second or more: a disk
/// that stalls its syncs, lookups waiting on the disk, or a checkpoint
/// holding the engine's journal (every write waits meanwhile). `requests`
/// is how many requests waited on it directly (0: the checkpointer's own).
pub(crate) fn warn_if_slow(step: &'static str, started: std::time::Instant, requests: usize) {
    let elapsed = started.elapsed();
    if elapsed >= std::time::Duration::from_millis(500) {
        tracing::warn!(step, elapsed_ms = elapsed.as_millis() as u64, requests, "slow store step");
    }
}

/// A GET of `/f` by account `acme`, for the tests of this module's files.
#[cfg(test)]
pub(crate) fn test_event(id: String, time: chrono::DateTime<chrono::Utc>) -> CallEvent {
    use callmeter_model::{Interface, Operation};
    CallEvent {
        method: Some("GET".into()),
        path: Some("/f".into()),
        ..CallEvent::new(id, "acme".into(), time, Interface::Rest, Operation::Read)
    }
}
