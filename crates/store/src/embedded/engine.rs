//! The engine's handles: one fjall keyspace per kind of row (the table in
//! `mod.rs`), each made with its options, the same for the store and its
//! backups.

use super::{FORMAT_KEY, FORMAT_VERSION};
use crate::options::StoreOptions;
use crate::StoreError;
use fjall::{Database, Keyspace, KeyspaceCreateOptions};
use std::path::Path;
use std::sync::Arc;

/// The keyspace of the dedup keys. Format 2 kept them in `dedup`, with the
/// engine's default tables (`upgrade.rs` moves them).
pub(crate) const DEDUP_KEYSPACE: &str = "dedup_keys";

/// Memtable size of the dedup keyspace (about 50,000 keys).
const DEDUP_MEMTABLE_BYTES: u64 = 4 << 20;

/// Table size of the dedup keyspace. Dedup keys are random, so every table of
/// a level overlaps all of the next one, and a compaction of the first level
/// rewrites the whole second. With the engine's default (64 MiB tables, a
/// 256 MiB second level) one compaction took seconds once a store held
/// millions of keys: with checkpoints every 100 ms, checkpoints stalled up to
/// 5 s at 8 M keys, and in a crash loop every kill cut such a compaction
/// short, so that by round 900 of a torture run each start waited 10 s for
/// it. With 1 MiB tables each compaction is small enough to finish between
/// kills: no stall up to 15 M keys, and ingest under those checkpoints ran
/// 130,000 calls/s instead of 85,000 (measured by hand in release, two writers
/// and a checkpoint every 100 ms: commit fdae410's `key_compaction_under_load`;
/// `derived/tests.rs` checks the tables are small).
const DEDUP_TABLE_BYTES: u64 = 1 << 20;

/// The engine handles shared by the writer and the readers.
#[derive(Clone)]
pub(crate) struct Engine {
    pub db: Database,
    pub meta: Keyspace,
    pub dedup: Keyspace,
    pub blocks: Keyspace,
    pub totals: Keyspace,
    pub breakdown: Keyspace,
    pub block_log: Keyspace,
    pub accounts: Keyspace,
    pub adjustments: Keyspace,
    pub tokens: Keyspace,
    pub audits: Keyspace,
    pub webhooks: Keyspace,
    pub changes: Keyspace,
    pub paths: Keyspace,
    pub outbox: Keyspace,
    pub outbox_due: Keyspace,
    pub attempts: Keyspace,
    pub alerts: Keyspace,
}

/// Call blocks at least this big are kept in blob files (most are: a block
/// holds an account's calls of one commit).
const BLOB_THRESHOLD_BYTES: u32 = 512;

/// The keyspaces, by name (the names undo records use).
pub(crate) const KEYSPACE_NAMES: [&str; 17] = [
    "meta",
    DEDUP_KEYSPACE,
    "blocks",
    "totals",
    "breakdown",
    "block_log",
    "accounts",
    "adjustments",
    "tokens",
    "audits",
    "webhooks",
    "changes",
    "paths",
    "outbox",
    "outbox_due",
    "attempts",
    "alerts",
];

impl Engine {
    /// Opens the engine and its keyspaces; with the store's format found
    /// (a new store gets this build's). A store of a newer format is refused
    /// before any keyspace this build knows is made in it.
    pub(crate) fn open(path: &Path, options: &StoreOptions) -> Result<(Engine, u32), StoreError> {
        super::folder::prepare(path)?;
        // The engine panics on some damage it finds while recovering: say so
        // as an error instead of aborting the process.
        let opened = std::panic::catch_unwind(|| Database::builder(path).cache_size(options.cache_bytes).open())
            .map_err(|panic| {
                let why = panic
                    .downcast_ref::<String>()
                    .map(String::as_str)
                    .or_else(|| panic.downcast_ref::<&str>().copied())
                    .unwrap_or("a panic");
                StoreError::Corrupt(format!("the storage engine cannot recover {}: {why}", path.display()))
            })?;
        let db = opened?;
        let ks = |name: &str| db.keyspace(name, || keyspace_options(name));
        let meta = ks("meta")?;
        let format = check_format(&db, &meta)?;
        let engine = Engine {
            meta,
            dedup: ks(DEDUP_KEYSPACE)?,
            blocks: ks("blocks")?,
            totals: ks("totals")?,
            breakdown: ks("breakdown")?,
            block_log: ks("block_log")?,
            accounts: ks("accounts")?,
            adjustments: ks("adjustments")?,
            tokens: ks("tokens")?,
            audits: ks("audits")?,
            webhooks: ks("webhooks")?,
            changes: ks("changes")?,
            paths: ks("paths")?,
            outbox: ks("outbox")?,
            outbox_due: ks("outbox_due")?,
            attempts: ks("attempts")?,
            alerts: ks("alerts")?,
            db,
        };
        Ok((engine, format))
    }

    pub(crate) fn all(&self) -> [(&'static str, &Keyspace); 17] {
        KEYSPACE_NAMES.map(|name| (name, self.keyspace(name)))
    }

    /// The keyspace named `name`, one of [`KEYSPACE_NAMES`].
    pub(crate) fn keyspace(&self, name: &str) -> &Keyspace {
        match name {
            "meta" => &self.meta,
            DEDUP_KEYSPACE => &self.dedup,
            "blocks" => &self.blocks,
            "totals" => &self.totals,
            "breakdown" => &self.breakdown,
            "block_log" => &self.block_log,
            "accounts" => &self.accounts,
            "adjustments" => &self.adjustments,
            "tokens" => &self.tokens,
            "audits" => &self.audits,
            "webhooks" => &self.webhooks,
            "changes" => &self.changes,
            "paths" => &self.paths,
            "outbox" => &self.outbox,
            "outbox_due" => &self.outbox_due,
            "attempts" => &self.attempts,
            "alerts" => &self.alerts,
            other => unreachable!("no keyspace {other:?}"),
        }
    }
}

/// How the keyspace `name` is made: the same for the store and its backups.
pub(crate) fn keyspace_options(name: &str) -> KeyspaceCreateOptions {
    match name {
        // Every call looks its key up here, almost always in vain: a small
        // memtable keeps that search shallow, and the bloom filters of the
        // tables answer the rest.
        DEDUP_KEYSPACE => KeyspaceCreateOptions::default().max_memtable_size(DEDUP_MEMTABLE_BYTES).compaction_strategy(
            Arc::new(fjall::compaction::Leveled::default().with_table_target_size(DEDUP_TABLE_BYTES)),
        ),
        // Call blocks are LZ4 already and written once: no second
        // compression, and the values live in blob files so that
        // compactions move keys, not calls.
        "blocks" => KeyspaceCreateOptions::default()
            .data_block_compression_policy(fjall::config::CompressionPolicy::disabled())
            .with_kv_separation(Some(
                fjall::KvSeparationOptions::default()
                    .compression(fjall::CompressionType::None)
                    .separation_threshold(BLOB_THRESHOLD_BYTES),
            )),
        _ => KeyspaceCreateOptions::default(),
    }
}

/// The format of the store found (a new one gets this build's), refusing a newer one.
fn check_format(db: &Database, meta: &Keyspace) -> Result<u32, StoreError> {
    match meta.get(FORMAT_KEY)? {
        None => {
            meta.insert(FORMAT_KEY, FORMAT_VERSION.to_le_bytes())?;
            db.persist(fjall::PersistMode::SyncAll)?;
            Ok(FORMAT_VERSION)
        }
        Some(v) => {
            let found =
                u32::from_le_bytes(v.as_ref().try_into().map_err(|_| StoreError::Corrupt("format version".into()))?);
            if found > FORMAT_VERSION {
                return Err(StoreError::Version { found, supported: FORMAT_VERSION });
            }
            Ok(found)
        }
    }
}
