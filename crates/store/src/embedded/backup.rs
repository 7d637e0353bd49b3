//! A consistent copy of a running store.
//!
//! The copy reads one engine snapshot, so it sees every keyspace at the same
//! commit, while the writer goes on. It writes a new store of the same format
//! into an empty folder: `serve --data` on that folder starts from it.

use super::Engine;
use crate::store::BackupReport;
use crate::StoreError;
use fjall::{Database, KeyspaceCreateOptions, PersistMode, Readable};
use std::path::Path;

const ROWS_PER_BATCH: usize = 10_000;

pub(crate) fn copy(engine: &Engine, dir: &Path) -> Result<BackupReport, StoreError> {
    if dir.exists() && std::fs::read_dir(dir)?.next().is_some() {
        return Err(StoreError::Io(std::io::Error::new(
            std::io::ErrorKind::AlreadyExists,
            format!("backup folder {} is not empty", dir.display()),
        )));
    }
    std::fs::create_dir_all(dir)?;
    let snapshot = engine.db.snapshot();
    let target = Database::builder(dir).open()?;
    let mut report = BackupReport { rows: 0, bytes: 0 };
    for (name, source) in engine.all() {
        let dest = target.keyspace(name, KeyspaceCreateOptions::default)?;
        let mut batch = target.batch();
        for item in snapshot.iter(source) {
            let (k, v) = item.into_inner()?;
            report.rows += 1;
            report.bytes += (k.len() + v.len()) as u64;
            batch.insert(&dest, k, v);
            if batch.len() >= ROWS_PER_BATCH {
                std::mem::replace(&mut batch, target.batch()).commit()?;
            }
        }
        batch.commit()?;
    }
    target.persist(PersistMode::SyncAll)?;
    Ok(report)
}
