//! Undoing the commits of requests that failed their sync (DESIGN §3: a
//! failed sync is never acknowledged, and nothing of the request counts).
//!
//! A commit reaches the engine (its journal and memtables) before the syncer
//! makes it durable. When that sync fails, the request is answered 503, but
//! the commit may still reach the disk: the journal's buffer is flushed when
//! the process ends, and a memtable may be flushed into a table. So the
//! syncer writes, before it answers, an undo record for each failed commit
//! into `DATA/unacknowledged.undo` (appended, synced, outside the engine,
//! which may refuse writes after a failed sync): the keys the commit wrote,
//! each with the value it replaced or none. The next open applies the undo
//! records, newest first, before anything else reads the store, and then
//! removes the file. Applying them twice is harmless: no commit can follow a
//! failed sync in the same process, so nothing newer can be overwritten.
//!
//! Frame: `len u32 LE | blake3(payload)[..8] | payload`, payload a sequence of
//! `keyspace u8-len name | key u32-len bytes | 0 (none) or 1 + u32-len value`.
//! A torn frame at the end (a crash while writing it) is ignored: its
//! requests had not been answered, so a retry finds what survived.

use super::Engine;
use crate::StoreError;
use std::io::Write;
use std::path::{Path, PathBuf};

/// The file of undo records, in the data folder.
pub(crate) const UNDO_FILE: &str = "unacknowledged.undo";

/// One write of a commit and how to take it back.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct UndoEntry {
    /// The keyspace, by name (see `Engine::all`).
    pub keyspace: &'static str,
    /// The key written.
    pub key: Vec<u8>,
    /// The value it replaced; `None` when the key was new (undo removes it).
    pub previous: Option<Vec<u8>>,
}

impl UndoEntry {
    /// An insert of a key that did not exist.
    pub fn created(keyspace: &'static str, key: impl Into<Vec<u8>>) -> UndoEntry {
        UndoEntry { keyspace, key: key.into(), previous: None }
    }
}

fn path_in(data: &Path) -> PathBuf {
    data.join(UNDO_FILE)
}

/// Appends one frame of undo entries and syncs it (and, the first time, the folder).
pub(crate) fn append(data: &Path, entries: &[UndoEntry]) -> std::io::Result<()> {
    let mut payload = Vec::new();
    for e in entries {
        payload.push(e.keyspace.len() as u8);
        payload.extend_from_slice(e.keyspace.as_bytes());
        payload.extend_from_slice(&(e.key.len() as u32).to_le_bytes());
        payload.extend_from_slice(&e.key);
        match &e.previous {
            None => payload.push(0),
            Some(v) => {
                payload.push(1);
                payload.extend_from_slice(&(v.len() as u32).to_le_bytes());
                payload.extend_from_slice(v);
            }
        }
    }
    let path = path_in(data);
    let existed = path.exists();
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&path)?;
    let mut frame = Vec::with_capacity(12 + payload.len());
    frame.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    frame.extend_from_slice(&blake3::hash(&payload).as_bytes()[..8]);
    frame.extend_from_slice(&payload);
    f.write_all(&frame)?;
    f.sync_all()?;
    if !existed {
        std::fs::File::open(data)?.sync_all()?;
    }
    Ok(())
}

/// Reads every whole frame of the file, in order.
fn read(path: &Path) -> Result<Vec<UndoEntry>, StoreError> {
    let bytes = std::fs::read(path)?;
    let corrupt = || StoreError::Corrupt(format!("undo record in {}", path.display()));
    let mut entries = Vec::new();
    let mut rest = bytes.as_slice();
    while rest.len() >= 12 {
        let len = u32::from_le_bytes(rest[..4].try_into().expect("4 bytes")) as usize;
        let Some(payload) = rest.get(12..12 + len) else { break };
        if blake3::hash(payload).as_bytes()[..8] != rest[4..12] {
            break; // torn: the crash came while it was written
        }
        let mut p = payload;
        while !p.is_empty() {
            let name_len = *p.first().ok_or_else(corrupt)? as usize;
            let name = std::str::from_utf8(p.get(1..1 + name_len).ok_or_else(corrupt)?).map_err(|_| corrupt())?;
            p = &p[1 + name_len..];
            let key = take(&mut p).ok_or_else(corrupt)?;
            let flag = *p.first().ok_or_else(corrupt)?;
            p = &p[1..];
            let previous = match flag {
                0 => None,
                1 => Some(take(&mut p).ok_or_else(corrupt)?),
                _ => return Err(corrupt()),
            };
            let keyspace = keyspace_name(name).ok_or_else(corrupt)?;
            entries.push(UndoEntry { keyspace, key, previous });
        }
        rest = &rest[12 + len..];
    }
    Ok(entries)
}

fn take(p: &mut &[u8]) -> Option<Vec<u8>> {
    let len = u32::from_le_bytes(p.get(..4)?.try_into().ok()?) as usize;
    let v = p.get(4..4 + len)?.to_vec();
    *p = &p[4 + len..];
    Some(v)
}

fn keyspace_name(name: &str) -> Option<&'static str> {
    super::KEYSPACE_NAMES.iter().copied().find(|n| *n == name)
}

/// Applies the undo records left by a process whose syncs failed, newest
/// first, makes that durable, and removes the file. The number of writes undone.
pub(crate) fn apply_left_over(engine: &Engine, data: &Path) -> Result<usize, StoreError> {
    let path = path_in(data);
    if !path.exists() {
        return Ok(0);
    }
    let entries = read(&path)?;
    let mut batch = engine.db.batch();
    for e in entries.iter().rev() {
        let ks = engine.keyspace(e.keyspace);
        match &e.previous {
            Some(v) => batch.insert(ks, e.key.as_slice(), v.as_slice()),
            None => batch.remove(ks, e.key.as_slice()),
        }
    }
    batch.commit()?;
    crate::failpoint::check("undo.before_sync")?;
    engine.db.persist(fjall::PersistMode::SyncAll)?;
    std::fs::remove_file(&path)?;
    std::fs::File::open(data)?.sync_all()?;
    if !entries.is_empty() {
        tracing::warn!(
            writes = entries.len(),
            "undid the writes of requests that failed their sync before the last stop (they were answered 503)"
        );
    }
    Ok(entries.len())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_a_torn_one_is_ignored() {
        let dir = tempfile::tempdir().unwrap();
        let a = vec![
            UndoEntry::created("blocks", b"k1".to_vec()),
            UndoEntry { keyspace: "accounts", key: b"acme".to_vec(), previous: Some(b"{}".to_vec()) },
        ];
        append(dir.path(), &a).unwrap();
        append(dir.path(), &[UndoEntry::created("block_log", 7u64.to_be_bytes())]).unwrap();
        let path = path_in(dir.path());
        let mut all = a.clone();
        all.push(UndoEntry::created("block_log", 7u64.to_be_bytes()));
        assert_eq!(read(&path).unwrap(), all);
        // A third frame cut short by a crash.
        let whole = std::fs::read(&path).unwrap();
        append(dir.path(), &[UndoEntry::created("tokens", b"t".to_vec())]).unwrap();
        let longer = std::fs::read(&path).unwrap();
        std::fs::write(&path, &longer[..longer.len() - 3]).unwrap();
        assert_eq!(read(&path).unwrap(), all, "the torn frame is left out");
        std::fs::write(&path, &whole).unwrap();
        assert_eq!(read(&path).unwrap(), all);
    }
}
