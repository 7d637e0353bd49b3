//! A consistent copy of a running store.
//!
//! The copy reads one engine snapshot, so it sees every keyspace at the same
//! commit, while the writer goes on. It writes a new store of the same format
//! into an empty folder: `serve --data` on that folder starts from it.
//!
//! The folder must lie outside the store's own folder, and not contain it: a
//! copy among the engine's files is taken for part of the store at the next
//! start and breaks its recovery. Symlinks and `..` are resolved first, so
//! that neither can get around that.

use super::Engine;
use crate::store::BackupReport;
use crate::StoreError;
use fjall::{Database, KeyspaceCreateOptions, PersistMode, Readable};
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

const ROWS_PER_BATCH: usize = 10_000;

pub(crate) fn copy(engine: &Engine, dir: &Path) -> Result<BackupReport, StoreError> {
    let dir = &outside_the_store(engine, dir)?;
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

/// The target, resolved, when it is outside the store's folder and does not contain it.
fn outside_the_store(engine: &Engine, dir: &Path) -> Result<PathBuf, StoreError> {
    let refused = |why: String| StoreError::Io(std::io::Error::new(ErrorKind::InvalidInput, why));
    if dir.as_os_str().is_empty() {
        return Err(refused("backup folder: no path given".into()));
    }
    let target = resolve(&std::path::absolute(dir)?)
        .map_err(|e| refused(format!("backup folder {}: cannot resolve it: {e}", dir.display())))?;
    let store = store_folder(engine)?;
    if target.starts_with(&store) || store.starts_with(&target) {
        let relation = if target.starts_with(&store) { "inside" } else { "containing" };
        return Err(refused(format!(
            "backup folder {} (resolved: {}) is {relation} the store's folder {}",
            dir.display(),
            target.display(),
            store.display()
        )));
    }
    Ok(target)
}

/// The store's own folder, canonical. The engine keeps each keyspace in
/// `FOLDER/keyspaces/ID`, an absolute path: two levels up from any of them.
fn store_folder(engine: &Engine) -> Result<PathBuf, StoreError> {
    let keyspace = engine.meta.path();
    let folder = keyspace.parent().and_then(Path::parent).ok_or_else(|| {
        StoreError::Io(std::io::Error::other(format!("keyspace folder {} has no store folder", keyspace.display())))
    })?;
    Ok(folder.canonicalize()?)
}

/// An absolute path with its longest existing ancestor made canonical
/// (symlinks and `..` resolved) and the rest, which does not exist yet,
/// appended. A `..` in that rest is refused: what it would name depends on
/// folders that are not there yet.
fn resolve(path: &Path) -> std::io::Result<PathBuf> {
    let parts: Vec<Component> = path.components().collect();
    for existing in (1..=parts.len()).rev() {
        let ancestor: PathBuf = parts[..existing].iter().collect();
        match std::fs::symlink_metadata(&ancestor) {
            Ok(_) => {
                let mut resolved = ancestor.canonicalize()?;
                for part in &parts[existing..] {
                    match part {
                        Component::Normal(name) => resolved.push(name),
                        Component::CurDir => {}
                        _ => {
                            return Err(std::io::Error::new(
                                ErrorKind::InvalidInput,
                                "\"..\" after a folder that does not exist yet",
                            ))
                        }
                    }
                }
                return Ok(resolved);
            }
            Err(e) if e.kind() == ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
    }
    Err(std::io::Error::new(ErrorKind::InvalidInput, "not an absolute path"))
}

#[cfg(test)]
mod tests {
    use crate::{EmbeddedStore, Store, StoreError, StoreOptions};
    use std::io::ErrorKind;

    fn refused(e: StoreError) -> String {
        match e {
            StoreError::Io(io) if io.kind() == ErrorKind::InvalidInput => io.to_string(),
            other => panic!("not a refusal: {other}"),
        }
    }

    #[test]
    fn a_backup_inside_the_store_or_containing_it_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = EmbeddedStore::open(&data, StoreOptions::default()).unwrap();
        let e = refused(store.backup(&data.join("keyspaces/x")).unwrap_err());
        assert!(e.contains("inside the store's folder"), "{e}");
        assert!(refused(store.backup(&data).unwrap_err()).contains("inside"));
        assert!(refused(store.backup(dir.path()).unwrap_err()).contains("containing"));
        // `..` and a symlink into the store are seen through.
        std::fs::create_dir(dir.path().join("elsewhere")).unwrap();
        let e = refused(store.backup(&dir.path().join("elsewhere/../data/new")).unwrap_err());
        assert!(e.contains("inside"), "{e}");
        std::os::unix::fs::symlink(&data, dir.path().join("link")).unwrap();
        assert!(refused(store.backup(&dir.path().join("link/new")).unwrap_err()).contains("inside"));
        assert!(refused(store.backup(&dir.path().join("nothing/yet/../../data/x")).unwrap_err()).contains(".."));
        assert!(refused(store.backup(std::path::Path::new("")).unwrap_err()).contains("no path"));
        // Nothing was written into the store's folder.
        assert!(!data.join("keyspaces/x").exists() && !data.join("new").exists());
        // Beside it is fine, and the copy opens.
        let copy = dir.path().join("copy");
        store.backup(&copy).unwrap();
        store.shutdown();
        EmbeddedStore::open(&copy, StoreOptions::default()).unwrap().shutdown();
    }
}
