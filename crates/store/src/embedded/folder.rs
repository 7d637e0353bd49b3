//! The data folder, checked before the engine opens it.
//!
//! The engine takes every folder under `keyspaces/` for one of its own and
//! fails, or panics, on one it did not make (say, a backup written into the
//! data folder). So the open looks first, and refuses with the names of the
//! strangers rather than let the engine trip on them. The folder and what the
//! store creates in it are readable by its owner only: they hold every call.

use crate::StoreError;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

/// What the data folder may hold besides the engine's files: callmeter's own.
const OURS: [&str; 2] = ["admin-token", super::undo::UNDO_FILE];

/// Creates the data folder (mode 0700) if need be, and refuses one that holds
/// folders or files the engine would misread.
pub(crate) fn prepare(path: &Path) -> Result<(), StoreError> {
    if !path.exists() {
        std::fs::create_dir_all(path)?;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))?;
    }
    let mut strangers = Vec::new();
    for entry in std::fs::read_dir(path)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        let is_dir = entry.file_type()?.is_dir();
        let engine_file = matches!(name.as_str(), "lock" | "version") || name.ends_with(".jnl");
        let ours = OURS.iter().any(|o| name.starts_with(o));
        match (is_dir, name.as_str()) {
            (true, "keyspaces") => check_keyspaces(&entry.path(), &mut strangers)?,
            // A data folder that is a mount point has one.
            (true, "lost+found") => {}
            (true, _) => strangers.push(name),
            (false, _) if engine_file || ours => {}
            (false, _) => tracing::warn!(file = %name, "a file callmeter did not write is in the data folder"),
        }
    }
    if strangers.is_empty() {
        return Ok(());
    }
    Err(StoreError::Corrupt(format!(
        "the data folder {} holds folders the store did not write: {}; move them out of it (a backup goes to a folder outside the data folder)",
        path.display(),
        strangers.join(", ")
    )))
}

/// The engine's keyspace folders are named by number.
fn check_keyspaces(dir: &Path, strangers: &mut Vec<String>) -> Result<(), StoreError> {
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if entry.file_type()?.is_dir() && name.parse::<u64>().is_err() {
            strangers.push(format!("keyspaces/{name}"));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use crate::{EmbeddedStore, StoreOptions};

    #[test]
    fn a_folder_inside_the_store_is_refused_by_name_and_the_store_opens_once_it_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        EmbeddedStore::open(&data, StoreOptions::default()).unwrap().shutdown();
        let mode = std::fs::metadata(&data).unwrap().permissions();
        assert_eq!(std::os::unix::fs::PermissionsExt::mode(&mode) & 0o777, 0o700);
        let stranger = data.join("keyspaces").join("backup-1");
        std::fs::create_dir_all(&stranger).unwrap();
        std::fs::write(stranger.join("x"), b"x").unwrap();
        let err = EmbeddedStore::open(&data, StoreOptions::default()).err().expect("refused");
        assert!(err.to_string().contains("keyspaces/backup-1"), "{err}");
        std::fs::create_dir(data.join("old-backup")).unwrap();
        let err = EmbeddedStore::open(&data, StoreOptions::default()).err().expect("refused");
        assert!(err.to_string().contains("old-backup"), "{err}");
        std::fs::remove_dir_all(&stranger).unwrap();
        std::fs::remove_dir_all(data.join("old-backup")).unwrap();
        std::fs::write(data.join("notes.txt"), b"mine").unwrap();
        EmbeddedStore::open(&data, StoreOptions::default()).unwrap().shutdown();
    }
}
