//! Which admin token is in force when the server starts (DESIGN §8): a
//! rotation holds across restarts, and a token from the config or the
//! environment seeds the first start only, or the server says at start that
//! it overrides a rotation.
//!
//! The data folder keeps two files, both mode 0600 and written atomically:
//!
//! - `admin-token`: the secret of an admin token the server made (at a first
//!   start without a configured token, or by a rotation). It is what the CLI
//!   reads when given no token. It is absent while a configured token is in
//!   force: a configured secret is never copied to disk.
//! - `admin-token.seed`: which configured token last took effect, as a salted
//!   hash (never the secret; salted because a configured token may be a
//!   guessable word).
//!
//! With a configured token T at start:
//!
//! | `admin-token.seed` | `admin-token` | in force | says |
//! |--------------------|---------------|----------|------|
//! | none, or another token | none      | T        | – |
//! | none, or another token | a secret  | T; the file is removed | WARN: T overrides the rotated token |
//! | T                  | none          | T        | – |
//! | T                  | a secret      | the secret (a rotation since T) | WARN: T is ignored, and how to make it count |
//!
//! Without a configured token: the secret in `admin-token`, else a new one
//! written there and printed once.

use rand::RngCore;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The admin token files of one data folder.
#[derive(Debug, Clone)]
pub struct AdminTokenFiles {
    secret: PathBuf,
    seed: PathBuf,
}

/// What [`AdminTokenFiles::settle`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No token configured: the one kept in `admin-token`.
    Kept,
    /// No token configured and none kept: a new one.
    Generated,
    /// The configured token: its first start, or the same token with no rotation since.
    Configured,
    /// The configured token seeded the folder and was rotated since: the rotated one stays.
    RotationKept,
    /// A configured token other than the seed replaced the token kept in `admin-token`.
    ConfiguredOverKept,
}

/// The admin token in force, and how it came to be.
#[derive(Debug)]
pub struct Settled {
    /// The secret in force; the caller keeps only its hash.
    pub secret: String,
    /// How it was chosen.
    pub decision: Decision,
}

impl AdminTokenFiles {
    /// The files in `data`.
    pub fn in_folder(data: &Path) -> AdminTokenFiles {
        AdminTokenFiles { secret: data.join("admin-token"), seed: data.join("admin-token.seed") }
    }

    /// Settles the admin token at start, given the configured one if any
    /// (see the module's table), and says so in the log where it overrides
    /// or ignores something.
    pub fn settle(&self, configured: Option<&str>) -> std::io::Result<Settled> {
        let kept = read_kept(&self.secret)?;
        let Some(configured) = configured else {
            return match kept {
                Some(secret) => Ok(Settled { secret, decision: Decision::Kept }),
                None => {
                    let secret = crate::auth::new_secret("admin");
                    self.keep(&secret)?;
                    Ok(Settled { secret, decision: Decision::Generated })
                }
            };
        };
        let seeded_by_it = read_seed(&self.seed)?.is_some_and(|seed| seed.matches(configured));
        match kept {
            Some(rotated) if seeded_by_it => {
                tracing::warn!(
                    file = %self.secret.display(),
                    "configured admin token ignored: it seeded this data folder and the admin token was rotated \
                     since, so the rotated token (kept in the file) stays in force; to make a configured token \
                     take effect, configure a different one, or delete the file and restart"
                );
                Ok(Settled { secret: rotated, decision: Decision::RotationKept })
            }
            None if seeded_by_it => Ok(Settled { secret: configured.to_owned(), decision: Decision::Configured }),
            kept => {
                // The kept token goes before the seed is written: a crash in
                // between leaves no seed for this token, and the next start
                // decides the same way again.
                if kept.is_some() {
                    remove(&self.secret)?;
                }
                write_private(&self.seed, &Seed::of(configured).to_line())?;
                if kept.is_some() {
                    tracing::warn!(
                        file = %self.secret.display(),
                        "configured admin token overrides the admin token kept in the file (rotated or made \
                         before): that one no longer works, and the file is removed"
                    );
                    Ok(Settled { secret: configured.to_owned(), decision: Decision::ConfiguredOverKept })
                } else {
                    Ok(Settled { secret: configured.to_owned(), decision: Decision::Configured })
                }
            }
        }
    }

    /// Keeps the secret of a token the server made (at start, or by a rotation) in `admin-token`.
    pub fn keep(&self, secret: &str) -> std::io::Result<()> {
        write_private(&self.secret, &format!("{secret}\n"))
    }
}

/// A salted hash of a configured token.
struct Seed {
    salt: [u8; 32],
    hash: [u8; 32],
}

impl Seed {
    fn of(token: &str) -> Seed {
        let mut salt = [0u8; 32];
        rand::thread_rng().fill_bytes(&mut salt);
        Seed { salt, hash: Self::hash(&salt, token) }
    }

    fn hash(salt: &[u8; 32], token: &str) -> [u8; 32] {
        *blake3::keyed_hash(salt, token.as_bytes()).as_bytes()
    }

    fn matches(&self, token: &str) -> bool {
        Self::hash(&self.salt, token).ct_eq(&self.hash).into()
    }

    fn to_line(&self) -> String {
        format!("blake3-keyed {} {}\n", hex::encode(self.salt), hex::encode(self.hash))
    }

    fn parse(line: &str) -> Option<Seed> {
        let mut parts = line.split_whitespace();
        let (kind, salt, hash) = (parts.next()?, parts.next()?, parts.next()?);
        let bytes = |h: &str| hex::decode(h).ok()?.try_into().ok();
        (kind == "blake3-keyed").then_some(())?;
        Some(Seed { salt: bytes(salt)?, hash: bytes(hash)? })
    }
}

fn read_kept(path: &Path) -> std::io::Result<Option<String>> {
    match std::fs::read_to_string(path) {
        Ok(t) => Ok(Some(t.trim().to_owned()).filter(|t| !t.is_empty())),
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// The seed, if any. One that cannot be read back is treated as absent: the
/// configured token then takes effect and writes a new one, which is the
/// safe side (the operator's configuration wins).
fn read_seed(path: &Path) -> std::io::Result<Option<Seed>> {
    match std::fs::read_to_string(path) {
        Ok(t) => {
            let seed = Seed::parse(&t);
            if seed.is_none() {
                tracing::warn!(file = %path.display(), "admin token seed file unreadable: written anew");
            }
            Ok(seed)
        }
        Err(e) if e.kind() == ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => sync_parent(path),
    }
}

/// Writes a file only its owner may read, atomically: a temporary file
/// beside it (its name starts like the target's), synced, renamed over it,
/// and the folder synced, so that a crash leaves the old file or the new one.
fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut f = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&tmp)?;
    f.write_all(contents.as_bytes())?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)?;
    sync_parent(path)
}

fn sync_parent(path: &Path) -> std::io::Result<()> {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => std::fs::File::open(dir)?.sync_all(),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    #[test]
    fn a_rotation_outlives_the_token_that_seeded_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let files = AdminTokenFiles::in_folder(dir.path());
        let first = files.settle(Some("from-env")).unwrap();
        assert_eq!((first.secret.as_str(), first.decision), ("from-env", Decision::Configured));
        assert!(!files.secret.exists(), "a configured secret is never written");
        let seed = std::fs::read_to_string(&files.seed).unwrap();
        assert!(!seed.contains("from-env") && !seed.contains(&hex::encode(crate::auth::hash_secret("from-env"))));
        assert_eq!(mode(&files.seed), 0o600);
        // The same token again, no rotation: still it.
        assert_eq!(files.settle(Some("from-env")).unwrap().decision, Decision::Configured);

        files.keep("rotated").unwrap();
        let again = files.settle(Some("from-env")).unwrap();
        assert_eq!((again.secret.as_str(), again.decision), ("rotated", Decision::RotationKept));
        assert_eq!(std::fs::read_to_string(&files.seed).unwrap(), seed, "the seed is not rewritten");

        let new = files.settle(Some("set-on-purpose")).unwrap();
        assert_eq!((new.secret.as_str(), new.decision), ("set-on-purpose", Decision::ConfiguredOverKept));
        assert!(!files.secret.exists(), "the rotated token is gone");
        assert_eq!(files.settle(Some("set-on-purpose")).unwrap().decision, Decision::Configured);
        // And the old configured token, set again, is a new choice too.
        assert_eq!(files.settle(Some("from-env")).unwrap().decision, Decision::Configured);
    }

    #[test]
    fn without_a_configured_token_the_kept_one_or_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let files = AdminTokenFiles::in_folder(&dir.path().join("data"));
        let made = files.settle(None).unwrap();
        assert_eq!(made.decision, Decision::Generated);
        assert!(made.secret.starts_with("cm_admin_"));
        assert_eq!(std::fs::read_to_string(&files.secret).unwrap().trim(), made.secret);
        assert_eq!(mode(&files.secret), 0o600);
        let kept = files.settle(None).unwrap();
        assert_eq!((kept.secret, kept.decision), (made.secret.clone(), Decision::Kept));
        // A configured token on a folder that made its own: the configured one wins, once told.
        let over = files.settle(Some("from-config")).unwrap();
        assert_eq!((over.secret.as_str(), over.decision), ("from-config", Decision::ConfiguredOverKept));
        let names: Vec<String> = std::fs::read_dir(dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| n.starts_with("admin-token")), "{names:?}");
    }

    #[test]
    fn a_damaged_seed_lets_the_configured_token_win() {
        let dir = tempfile::tempdir().unwrap();
        let files = AdminTokenFiles::in_folder(dir.path());
        files.settle(Some("t")).unwrap();
        files.keep("rotated").unwrap();
        std::fs::write(&files.seed, "garbage").unwrap();
        assert_eq!(files.settle(Some("t")).unwrap().decision, Decision::ConfiguredOverKept);
        assert!(Seed::parse(&std::fs::read_to_string(&files.seed).unwrap()).unwrap().matches("t"));
    }
}
