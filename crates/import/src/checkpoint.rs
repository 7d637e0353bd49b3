//! Where `tail` is in each file it follows, kept between runs: written
//! atomically and synced after every delivery, keyed by the file's device
//! and inode.
//!
//! A reused inode is told from the same file by a fingerprint of the file's
//! start: a hash of its first min(offset, 4 KiB) bytes, checked over the same
//! length on resume. A file that starts with other bytes is read from its
//! start. One that starts with the same bytes is resumed: even were it
//! another file, the lines skipped are byte for byte those already sent, and
//! ids are made of the lines' bytes (DESIGN §5), so nothing is lost.

use crate::error::{ImportError, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

/// How much of a file's start its fingerprint covers, at most.
pub const FINGERPRINT_BYTES: usize = 4096;

/// The key-derivation context of fingerprints. It is the one earlier builds
/// named a source by, so their checkpoints (whose positions were all past
/// 4 KiB) still resume.
const FINGERPRINT_CONTEXT: &str = "callmeter 2026 import source: first 4 KiB of the content";

/// Positions of the files being followed, by `dev:inode`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Checkpoint {
    /// One entry per file with delivered lines.
    pub files: BTreeMap<String, FilePosition>,
}

/// Where the delivered lines of one file end.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FilePosition {
    /// The path it was last read under.
    pub path: PathBuf,
    /// The [`fingerprint`] of its first min(`offset`, 4 KiB) bytes, to tell a
    /// reused inode from the same file (`source` in earlier builds).
    #[serde(alias = "source")]
    pub fingerprint: String,
    /// Bytes through the last delivered line.
    pub offset: u64,
    /// Lines through the last delivered one.
    pub line: u64,
}

impl FilePosition {
    /// How many bytes of the file's start its fingerprint covers.
    pub fn fingerprinted(&self) -> usize {
        self.offset.min(FINGERPRINT_BYTES as u64) as usize
    }
}

/// 128 bits of BLAKE3 over the start of a file (at most [`FINGERPRINT_BYTES`] of it), in hex.
pub fn fingerprint(start: &[u8]) -> String {
    let mut h = blake3::Hasher::new_derive_key(FINGERPRINT_CONTEXT);
    h.update(&start[..start.len().min(FINGERPRINT_BYTES)]);
    h.finalize().to_hex()[..32].to_owned()
}

impl Checkpoint {
    /// Reads a checkpoint; an absent file is an empty one.
    pub fn load(path: &Path) -> Result<Checkpoint> {
        let bad = |why: String| ImportError::Checkpoint { path: path.display().to_string(), why };
        match std::fs::read(path) {
            Ok(bytes) => serde_json::from_slice(&bytes).map_err(|e| bad(format!("not a tail checkpoint: {e}"))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Checkpoint::default()),
            Err(e) => Err(bad(e.to_string())),
        }
    }

    /// Writes the checkpoint so that a crash leaves the old one or the new one, whole.
    pub fn save(&self, path: &Path) -> Result<()> {
        let bad = |e: std::io::Error| ImportError::Checkpoint { path: path.display().to_string(), why: e.to_string() };
        let tmp = path.with_extension("tmp");
        let mut f = File::create(&tmp).map_err(bad)?;
        f.write_all(&serde_json::to_vec_pretty(self).expect("checkpoint serializes")).map_err(bad)?;
        f.sync_all().map_err(bad)?;
        std::fs::rename(&tmp, path).map_err(bad)?;
        let dir = path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
        File::open(dir).and_then(|d| d.sync_all()).map_err(bad)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_and_loaded_whole() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("tail.json");
        assert_eq!(Checkpoint::load(&path).unwrap(), Checkpoint::default());
        let mut c = Checkpoint::default();
        let position =
            FilePosition { path: "/var/log/a.log".into(), fingerprint: fingerprint(b"x\n"), offset: 2, line: 1 };
        c.files.insert("1:2".into(), position);
        c.save(&path).unwrap();
        assert_eq!(Checkpoint::load(&path).unwrap(), c);
        std::fs::write(&path, b"{").unwrap();
        assert!(Checkpoint::load(&path).unwrap_err().to_string().contains("not a tail checkpoint"));
    }

    #[test]
    fn fingerprints_cover_the_first_4_kib_and_read_earlier_checkpoints() {
        let a = vec![b'x'; 10_000];
        let mut b = a.clone();
        b[5000] = b'y';
        assert_eq!(fingerprint(&a), fingerprint(&b));
        assert_ne!(fingerprint(&a[..100]), fingerprint(&a[..101]));
        assert_eq!(fingerprint(&a).len(), 32);
        // An earlier build's entry: `source` was this same hash of the first 4 KiB.
        let old = format!(
            r#"{{"files":{{"8:9":{{"path":"a.log","source":"{}","offset":5000,"line":40}}}}}}"#,
            fingerprint(&a)
        );
        let c: Checkpoint = serde_json::from_str(&old).unwrap();
        let p = &c.files["8:9"];
        assert_eq!((p.fingerprint.as_str(), p.fingerprinted()), (fingerprint(&b).as_str(), 4096));
    }
}
