//! The embedded store: fjall keyspaces in one data folder.
//!
//! | keyspace     | key                                   | value                         |
//! |--------------|---------------------------------------|-------------------------------|
//! | `meta`       | name                                  | format version, sequences     |
//! | `dedup`      | 128-bit hash of (account, id)         | empty                         |
//! | `blocks`     | account, earliest call time, sequence | LZ4 block of calls (`codec`)  |
//! | `totals`     | account, 15-minute bucket             | counts by interface/op/flags  |
//! | `breakdown`  | account, bucket, dims, api key, user  | calls, errors, bytes          |
//! | `accounts`   | name                                  | JSON `AccountRecord`          |
//! | `adjustments`| account, period start, sequence       | JSON `Adjustment`             |
//! | `tokens`     | id                                    | JSON `TokenRecord`            |
//!
//! All writes go through one writer thread (`writer.rs`), which batches
//! concurrent requests into one engine commit and shares one sync among
//! them; reads go straight to the engine.

mod backup;
mod scan;
mod writer;

use crate::aggregate::{self, BreakdownRow, TotalRow};
use crate::keys;
use crate::options::StoreOptions;
use crate::records::{AccountRecord, Adjustment, CallFilter, CallPage, Position, TokenRecord};
use crate::store::{AccountChange, BackupReport, IngestTicket, Store};
use crate::StoreError;
use callmeter_model::CallEvent;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use parking_lot::RwLock;
use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The store format this build writes; older ones are upgraded on open.
pub const FORMAT_VERSION: u32 = 1;

const FORMAT_KEY: &str = "format_version";

/// The engine handles shared by the writer and the readers.
#[derive(Clone)]
pub(crate) struct Engine {
    pub db: Database,
    pub meta: Keyspace,
    pub dedup: Keyspace,
    pub blocks: Keyspace,
    pub totals: Keyspace,
    pub breakdown: Keyspace,
    pub accounts: Keyspace,
    pub adjustments: Keyspace,
    pub tokens: Keyspace,
}

impl Engine {
    fn open(path: &Path, options: &StoreOptions) -> Result<Engine, StoreError> {
        std::fs::create_dir_all(path)?;
        let db = Database::builder(path).cache_size(options.cache_bytes).open()?;
        let ks = |name: &str| db.keyspace(name, KeyspaceCreateOptions::default);
        Ok(Engine {
            meta: ks("meta")?,
            dedup: ks("dedup")?,
            blocks: ks("blocks")?,
            totals: ks("totals")?,
            breakdown: ks("breakdown")?,
            accounts: ks("accounts")?,
            adjustments: ks("adjustments")?,
            tokens: ks("tokens")?,
            db,
        })
    }

    pub(crate) fn all(&self) -> [(&'static str, &Keyspace); 8] {
        [
            ("meta", &self.meta),
            ("dedup", &self.dedup),
            ("blocks", &self.blocks),
            ("totals", &self.totals),
            ("breakdown", &self.breakdown),
            ("accounts", &self.accounts),
            ("adjustments", &self.adjustments),
            ("tokens", &self.tokens),
        ]
    }
}

/// State the writer keeps and the readers look at.
pub(crate) struct Shared {
    pub accounts: RwLock<HashMap<String, AccountRecord>>,
    pub writable: AtomicBool,
}

/// The embedded store. Cheap to share behind an `Arc`; dropping the last one
/// stops the writer after it has finished what it was given.
pub struct EmbeddedStore {
    engine: Engine,
    shared: Arc<Shared>,
    writer: writer::WriterHandle,
    path: PathBuf,
}

impl EmbeddedStore {
    /// Opens (or creates) the store in `path`, upgrading an older format.
    pub fn open(path: &Path, options: StoreOptions) -> Result<EmbeddedStore, StoreError> {
        let engine = Engine::open(path, &options)?;
        check_format(&engine)?;
        let mut accounts = HashMap::new();
        for item in engine.accounts.iter() {
            let (_, v) = item.into_inner()?;
            let rec: AccountRecord =
                serde_json::from_slice(&v).map_err(|e| StoreError::Corrupt(format!("account record: {e}")))?;
            accounts.insert(rec.name.clone(), rec);
        }
        let shared = Arc::new(Shared { accounts: RwLock::new(accounts), writable: AtomicBool::new(true) });
        let writer = writer::start(engine.clone(), shared.clone(), options, path.to_path_buf())?;
        tracing::info!(path = %path.display(), accounts = shared.accounts.read().len(), "store opened");
        Ok(EmbeddedStore { engine, shared, writer, path: path.to_path_buf() })
    }

    /// The data folder.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Stops the writer after it has committed and synced everything it was given.
    pub fn shutdown(self) {
        self.writer.stop();
    }
}

fn check_format(engine: &Engine) -> Result<(), StoreError> {
    match engine.meta.get(FORMAT_KEY)? {
        None => {
            engine.meta.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes())?;
            engine.db.persist(fjall::PersistMode::SyncAll)?;
            Ok(())
        }
        Some(v) => {
            let found =
                u32::from_le_bytes(v.as_ref().try_into().map_err(|_| StoreError::Corrupt("format version".into()))?);
            if found > FORMAT_VERSION {
                return Err(StoreError::Version { found, supported: FORMAT_VERSION });
            }
            // Version 1 is the first format: there is nothing older to upgrade yet.
            Ok(())
        }
    }
}

impl Store for EmbeddedStore {
    fn ingest(&self, events: Vec<CallEvent>) -> IngestTicket {
        self.writer.ingest(events)
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
        let mut rows = Vec::new();
        for item in self.engine.totals.range(start..end) {
            let (k, v) = item.into_inner()?;
            let bucket = keys::read_i64(&k[skip..]).ok_or_else(|| StoreError::Corrupt("totals key".into()))?;
            for (dims, calls) in aggregate::decode_totals(&v)? {
                rows.push(aggregate::totals_row(bucket, dims, calls)?);
            }
        }
        Ok(rows)
    }

    fn breakdown(&self, account: &str, from_bucket: i64, to_bucket: i64) -> Result<Vec<BreakdownRow>, StoreError> {
        let start = keys::bucket_key(account, from_bucket);
        let end = keys::bucket_key(account, to_bucket);
        let skip = start.len() - 8;
        let mut rows = Vec::new();
        for item in self.engine.breakdown.range(start..end) {
            let (k, v) = item.into_inner()?;
            rows.push(aggregate::decode_breakdown(&k[skip..], &v)?);
        }
        Ok(rows)
    }

    fn calls(
        &self,
        account: &str,
        filter: &CallFilter,
        after: Option<Position>,
        limit: usize,
    ) -> Result<CallPage, StoreError> {
        let span = self.account(account).map_or(0, |a| a.max_block_span_ns);
        scan::calls(&self.engine.blocks, account, span, filter, after, limit)
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

    fn backup(&self, dir: &Path) -> Result<BackupReport, StoreError> {
        backup::copy(&self.engine, dir)
    }

    fn is_writable(&self) -> bool {
        self.shared.writable.load(Ordering::Relaxed)
    }

    fn disk_bytes(&self) -> u64 {
        self.engine.db.disk_space().unwrap_or(0)
    }
}
