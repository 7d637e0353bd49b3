//! A consistent copy of a running store.
//!
//! The copy reads one engine snapshot, so it sees every keyspace at the same
//! commit, while the writer goes on. It writes a new store of the same format
//! into an empty folder: `serve --data` on that folder starts from it.
//!
//! Where a copy may go (DESIGN §9): an absolute path of an empty or absent
//! folder, outside the store's folder and not containing it. A copy among the
//! engine's files is taken for part of the store at the next start and breaks
//! its recovery. The paths are compared canonical: the longest existing
//! ancestor of the target is resolved (symlinks, `..`), so that neither can
//! get around the rule. Each refusal names its rule and the path.

use super::Engine;
use crate::store::BackupReport;
use crate::StoreError;
use fjall::{Database, PersistMode, Readable};
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

const ROWS_PER_BATCH: usize = 10_000;

pub(crate) fn copy(engine: &Engine, store: &Path, dir: &Path) -> Result<BackupReport, StoreError> {
    let dir = &target(store, dir)?;
    std::fs::create_dir_all(dir)?;
    let snapshot = engine.db.snapshot();
    let target = Database::builder(dir).open()?;
    let mut report = BackupReport { rows: 0, bytes: 0 };
    for (name, source) in engine.all() {
        let dest = target.keyspace(name, || super::keyspace_options(name))?;
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

/// The target folder, resolved, when a backup of the store in `store` may go
/// there; else why not, naming the rule and the path.
pub(crate) fn target(store: &Path, dir: &Path) -> Result<PathBuf, StoreError> {
    let refuse = |why: String| Err(StoreError::BackupTarget(why));
    if dir.as_os_str().is_empty() {
        return refuse("give the folder to write the backup into, as an absolute path".into());
    }
    if !dir.is_absolute() {
        return refuse(format!(
            "{} is not an absolute path: give the full path of a folder on the server's machine",
            dir.display()
        ));
    }
    let target = match resolve(dir) {
        Ok(t) => t,
        Err(e) => return refuse(format!("cannot resolve {}: {e}", dir.display())),
    };
    let store = store.canonicalize()?;
    let resolved = if target == dir { String::new() } else { format!(" (resolved: {})", target.display()) };
    if target.starts_with(&store) {
        return refuse(format!(
            "{}{resolved} is inside the data folder {}: a backup goes to a folder outside it",
            dir.display(),
            store.display()
        ));
    }
    if store.starts_with(&target) {
        return refuse(format!(
            "{}{resolved} contains the data folder {}: a backup goes to a folder outside it",
            dir.display(),
            store.display()
        ));
    }
    match std::fs::read_dir(&target).map(|mut entries| entries.next().is_none()) {
        Ok(true) => Ok(target),
        Ok(false) => {
            refuse(format!("{}{resolved} is not empty: a backup goes to an empty or absent folder", dir.display()))
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(target),
        Err(e) if e.kind() == ErrorKind::NotADirectory => refuse(format!("{} is a file, not a folder", dir.display())),
        Err(e) => refuse(format!("cannot read {}: {e}", dir.display())),
    }
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
    use super::*;
    use crate::{EmbeddedStore, Store, StoreOptions};

    fn refusal(dir: &Path, data: &Path) -> String {
        match target(data, dir) {
            Err(StoreError::BackupTarget(m)) => m,
            other => panic!("{} was not refused: {other:?}", dir.display()),
        }
    }

    #[test]
    fn each_rule_names_itself_and_the_path() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let data = root.join("data");
        std::fs::create_dir_all(data.join("keyspaces")).unwrap();
        assert!(refusal(Path::new(""), &data).contains("give the folder"));
        assert!(refusal(Path::new("backups/today"), &data).contains("backups/today is not an absolute path"));
        let e = refusal(&data.join("keyspaces/x"), &data);
        assert!(e.contains("keyspaces/x is inside the data folder"), "{e}");
        assert!(refusal(&data, &data).contains("inside the data folder"));
        assert!(refusal(&root, &data).contains("contains the data folder"));
        std::fs::create_dir(root.join("full")).unwrap();
        std::fs::write(root.join("full/f"), "x").unwrap();
        assert!(refusal(&root.join("full"), &data).contains("full is not empty"));
        std::fs::write(root.join("file"), "x").unwrap();
        assert!(refusal(&root.join("file"), &data).contains("is a file"));
        assert_eq!(target(&data, &root.join("new/deeper")).unwrap(), root.join("new/deeper"));
        std::fs::create_dir(root.join("empty")).unwrap();
        assert_eq!(target(&data, &root.join("empty")).unwrap(), root.join("empty"));
    }

    #[test]
    fn symlinks_and_dot_dot_are_seen_through() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().canonicalize().unwrap();
        let data = root.join("data");
        std::fs::create_dir_all(root.join("elsewhere")).unwrap();
        std::fs::create_dir(&data).unwrap();
        std::os::unix::fs::symlink(&data, root.join("link")).unwrap();
        let e = refusal(&root.join("link/new"), &data);
        assert!(e.contains("link/new (resolved: ") && e.contains("inside the data folder"), "{e}");
        assert!(refusal(&root.join("elsewhere/../data/new"), &data).contains("inside the data folder"));
        assert!(refusal(&root.join("nothing/../data/new"), &data).contains("\"..\" after a folder"));
        // A symlink out of the way is followed to where the copy will land.
        std::os::unix::fs::symlink(root.join("elsewhere"), root.join("out")).unwrap();
        assert_eq!(target(&data, &root.join("out/copy")).unwrap(), root.join("elsewhere/copy"));
    }

    /// Whoever calls `Store::backup`: nothing lands in the store's folder, and a good copy opens.
    #[test]
    fn a_backup_inside_the_store_is_refused_and_one_beside_it_opens() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let store = EmbeddedStore::open(&data, StoreOptions::default()).unwrap();
        assert!(matches!(store.backup(&data.join("keyspaces/x")), Err(StoreError::BackupTarget(_))));
        assert!(!data.join("keyspaces/x").exists());
        let copy = dir.path().join("copy");
        store.backup(&copy).unwrap();
        store.shutdown();
        EmbeddedStore::open(&copy, StoreOptions::default()).unwrap().shutdown();
    }
}
