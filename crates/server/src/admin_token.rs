//! Which admin token is in force when the server starts (DESIGN §8): a
//! rotation holds across restarts, and a token from the config or the
//! environment seeds the first start only, or the server says at start that
//! it overrides a rotation.
//!
//! The data folder keeps two files, both mode 0600 and written atomically:
//!
//! - `admin-token`: the secret of an admin token the server made (at a first
//!   start without a configured token, or by a rotation). It is what the CLI
//!   reads when given no token. A configured secret is never copied to disk.
//! - `admin-token.state`: which admin token is in force (`current file`: the
//!   one in `admin-token`; or `current HASH`: a configured one, by the hash
//!   every token is kept under), and every configured token that ever took
//!   effect, oldest first (`seed SALT HASH`: salted, since a configured token
//!   may be a guessable word).
//!
//! With a configured token T at start:
//!
//! | T is | in force | says |
//! |------|----------|------|
//! | the latest seed, and in force | T | – |
//! | the latest seed, but rotated since | the rotated token | WARN: T is ignored, and how to make it count |
//! | an earlier seed (replaced by a later configured token) | what was in force | WARN: T was replaced and is ignored |
//! | no seed (a new token, set on purpose) | T; `admin-token` is removed | WARN when it overrides a token in force |
//!
//! Without a configured token: the token in force stays (a configured one
//! keeps working when the variable is unset); with none, a new one is made,
//! written to `admin-token` and printed once. To start over, delete both files.

use rand::RngCore;
use std::io::{ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use subtle::ConstantTimeEq;

/// The admin token files of one data folder.
#[derive(Debug, Clone)]
pub struct AdminTokenFiles {
    secret: PathBuf,
    state: PathBuf,
}

/// What [`AdminTokenFiles::settle`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// No token configured: the one in force before.
    Kept,
    /// No token configured and none in force: a new one.
    Generated,
    /// The configured token: its first start, or the same token with no rotation since.
    Configured,
    /// The configured token seeded the folder and was rotated since: the rotated one stays.
    RotationKept,
    /// The configured token was replaced by a later configured token: ignored.
    Replaced,
    /// A new configured token replaced the one in force.
    ConfiguredOverKept,
}

/// The admin token in force, and how it came to be.
#[derive(Debug)]
pub struct Settled {
    /// The hash the token in force is known by ([`crate::auth::hash_secret`]).
    pub hash: [u8; 32],
    /// How it was chosen.
    pub decision: Decision,
    /// The secret of a token made at this start, to print once.
    pub generated: Option<String>,
}

/// Which admin token is in force.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Current {
    /// The one whose secret is in `admin-token`.
    File,
    /// A configured one, by its hash.
    Hash([u8; 32]),
}

/// The contents of `admin-token.state`.
#[derive(Default)]
struct State {
    current: Option<Current>,
    seeds: Vec<Seed>,
}

impl AdminTokenFiles {
    /// The files in `data`.
    pub fn in_folder(data: &Path) -> AdminTokenFiles {
        AdminTokenFiles { secret: data.join("admin-token"), state: data.join("admin-token.state") }
    }

    /// Settles the admin token at start, given the configured one if any
    /// (see the module's table), and says so in the log where it overrides
    /// or ignores something.
    pub fn settle(&self, configured: Option<&str>) -> std::io::Result<Settled> {
        let kept = read_kept(&self.secret)?;
        let mut state = self.read_state()?;
        if state.current.is_none() && kept.is_some() {
            state.current = Some(Current::File); // a folder from before the state file
        }
        let in_force = |current: Option<Current>| match current {
            Some(Current::File) => kept.as_deref().map(crate::auth::hash_secret),
            Some(Current::Hash(h)) => Some(h),
            None => None,
        };
        let Some(configured) = configured else {
            if let Some(hash) = in_force(state.current) {
                if matches!(state.current, Some(Current::Hash(_))) {
                    tracing::info!("no admin token configured: the one configured before stays in force");
                }
                return Ok(Settled { hash, decision: Decision::Kept, generated: None });
            }
            let secret = crate::auth::new_secret("admin");
            self.keep(&secret)?;
            state.current = Some(Current::File);
            self.write_state(&state)?;
            let hash = crate::auth::hash_secret(&secret);
            return Ok(Settled { hash, decision: Decision::Generated, generated: Some(secret) });
        };
        let hash = crate::auth::hash_secret(configured);
        let latest = state.seeds.len().checked_sub(1);
        match state.seeds.iter().position(|seed| seed.matches(configured)) {
            Some(i) if Some(i) == latest && state.current == Some(Current::Hash(hash)) => {
                Ok(Settled { hash, decision: Decision::Configured, generated: None })
            }
            Some(i) if Some(i) == latest => match in_force(state.current) {
                Some(rotated) => {
                    tracing::warn!(
                        file = %self.secret.display(),
                        "configured admin token ignored: it seeded this data folder and the admin token was rotated \
                         since, so the rotated token stays in force; to make a configured token take effect, \
                         configure a different one"
                    );
                    Ok(Settled { hash: rotated, decision: Decision::RotationKept, generated: None })
                }
                None => self.take(state, configured, hash, None),
            },
            Some(_) => match in_force(state.current) {
                Some(current) => {
                    tracing::warn!(
                        "configured admin token ignored: a later configured token replaced it, and a replaced token \
                         never comes back; configure the current one or a new one"
                    );
                    Ok(Settled { hash: current, decision: Decision::Replaced, generated: None })
                }
                None => self.take(state, configured, hash, None),
            },
            None => {
                let before = in_force(state.current).filter(|h| *h != hash);
                self.take(state, configured, hash, before)
            }
        }
    }

    /// Puts a configured token in force, as a new seed; `before` is the hash it replaces, if any.
    fn take(
        &self,
        mut state: State,
        configured: &str,
        hash: [u8; 32],
        before: Option<[u8; 32]>,
    ) -> std::io::Result<Settled> {
        // The state first: a crash before the file goes leaves the file
        // unused, never the configured token unknown.
        state.seeds.push(Seed::of(configured));
        state.current = Some(Current::Hash(hash));
        self.write_state(&state)?;
        remove(&self.secret)?;
        if before.is_some() {
            tracing::warn!(
                file = %self.secret.display(),
                "configured admin token overrides the admin token in force (rotated or made before): that one no \
                 longer works"
            );
            return Ok(Settled { hash, decision: Decision::ConfiguredOverKept, generated: None });
        }
        Ok(Settled { hash, decision: Decision::Configured, generated: None })
    }

    /// Keeps the secret of a token the server made by a rotation in
    /// `admin-token`, and puts it in force. The file first: a crash before
    /// the state says so leaves the token in force as it was (the rotation
    /// was not answered).
    pub fn rotated(&self, secret: &str) -> std::io::Result<()> {
        self.keep(secret)?;
        let mut state = self.read_state()?;
        if state.current != Some(Current::File) {
            state.current = Some(Current::File);
            self.write_state(&state)?;
        }
        Ok(())
    }

    fn keep(&self, secret: &str) -> std::io::Result<()> {
        write_private(&self.secret, &format!("{secret}\n"))
    }

    /// The state, if any. One that cannot be read back is treated as absent:
    /// the configured token then takes effect, which is the safe side (the
    /// operator's configuration wins).
    fn read_state(&self) -> std::io::Result<State> {
        let text = match std::fs::read_to_string(&self.state) {
            Ok(t) => t,
            Err(e) if e.kind() == ErrorKind::NotFound => return Ok(State::default()),
            Err(e) => return Err(e),
        };
        let mut state = State::default();
        for line in text.lines() {
            let parsed = match line.split_once(' ') {
                Some(("current", "file")) => state.current.replace(Current::File).is_none().then_some(()),
                Some(("current", h)) => {
                    let h: Option<[u8; 32]> = hex::decode(h).ok().and_then(|b| b.try_into().ok());
                    h.and_then(|h| state.current.replace(Current::Hash(h)).is_none().then_some(()))
                }
                Some(("seed", seed)) => Seed::parse(seed).map(|seed| state.seeds.push(seed)),
                _ => None,
            };
            if parsed.is_none() {
                tracing::warn!(file = %self.state.display(), "admin token state unreadable: written anew");
                return Ok(State::default());
            }
        }
        Ok(state)
    }

    fn write_state(&self, state: &State) -> std::io::Result<()> {
        let mut text = match state.current {
            Some(Current::File) => "current file\n".to_owned(),
            Some(Current::Hash(h)) => format!("current {}\n", hex::encode(h)),
            None => String::new(),
        };
        for seed in &state.seeds {
            text.push_str("seed ");
            text.push_str(&seed.to_line());
        }
        write_private(&self.state, &text)
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

fn remove(path: &Path) -> std::io::Result<()> {
    match std::fs::remove_file(path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(e),
        _ => sync_parent(path),
    }
}

/// Writes a file only its owner may read, atomically: a temporary file
/// beside it (its name starts like the target's), synced, renamed over it,
/// and the folder synced, so that a crash leaves the old file or the new one.
pub(crate) fn write_private(path: &Path, contents: &str) -> std::io::Result<()> {
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
    use crate::auth::hash_secret;
    use std::os::unix::fs::PermissionsExt;

    fn mode(path: &Path) -> u32 {
        std::fs::metadata(path).unwrap().permissions().mode() & 0o777
    }

    fn settled(files: &AdminTokenFiles, configured: Option<&str>) -> ([u8; 32], Decision) {
        let s = files.settle(configured).unwrap();
        (s.hash, s.decision)
    }

    #[test]
    fn a_rotation_outlives_the_token_that_seeded_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let files = AdminTokenFiles::in_folder(dir.path());
        assert_eq!(settled(&files, Some("from-env")), (hash_secret("from-env"), Decision::Configured));
        assert!(!files.secret.exists(), "a configured secret is never written");
        let state = std::fs::read_to_string(&files.state).unwrap();
        assert!(!state.contains("from-env"));
        assert_eq!(mode(&files.state), 0o600);
        assert_eq!(settled(&files, Some("from-env")).1, Decision::Configured, "the same token, no rotation");

        files.rotated("rotated").unwrap();
        assert_eq!(settled(&files, Some("from-env")), (hash_secret("rotated"), Decision::RotationKept));
        assert_eq!(settled(&files, None), (hash_secret("rotated"), Decision::Kept));

        let new = settled(&files, Some("set-on-purpose"));
        assert_eq!(new, (hash_secret("set-on-purpose"), Decision::ConfiguredOverKept));
        assert!(!files.secret.exists(), "the rotated token is gone");
        assert_eq!(settled(&files, Some("set-on-purpose")).1, Decision::Configured);
        // A replaced token never comes back, whatever the configuration says.
        assert_eq!(settled(&files, Some("from-env")), (hash_secret("set-on-purpose"), Decision::Replaced));
        assert_eq!(settled(&files, Some("set-on-purpose")).1, Decision::Configured);
    }

    /// An ingest host's token does not stop working because the variable was unset for one start.
    #[test]
    fn a_configured_token_stays_in_force_when_the_configuration_is_unset() {
        let dir = tempfile::tempdir().unwrap();
        let files = AdminTokenFiles::in_folder(dir.path());
        settled(&files, Some("from-env"));
        let unset = files.settle(None).unwrap();
        assert_eq!((unset.hash, unset.decision, unset.generated), (hash_secret("from-env"), Decision::Kept, None));
        assert!(!files.secret.exists(), "no new token made");
        assert_eq!(settled(&files, Some("from-env")), (hash_secret("from-env"), Decision::Configured));
    }

    #[test]
    fn without_a_configured_token_the_kept_one_or_a_new_one() {
        let dir = tempfile::tempdir().unwrap();
        let files = AdminTokenFiles::in_folder(&dir.path().join("data"));
        let made = files.settle(None).unwrap();
        assert_eq!(made.decision, Decision::Generated);
        let secret = made.generated.unwrap();
        assert!(secret.starts_with("cm_admin_"));
        assert_eq!(std::fs::read_to_string(&files.secret).unwrap().trim(), secret);
        assert_eq!(mode(&files.secret), 0o600);
        assert_eq!(settled(&files, None), (hash_secret(&secret), Decision::Kept));
        // A configured token on a folder that made its own: the configured one wins, once told.
        assert_eq!(settled(&files, Some("from-config")), (hash_secret("from-config"), Decision::ConfiguredOverKept));
        let names: Vec<String> = std::fs::read_dir(dir.path().join("data"))
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert!(names.iter().all(|n| n.starts_with("admin-token")), "{names:?}");
    }

    /// A folder of an earlier build has only `admin-token`: its token stays in force.
    #[test]
    fn a_folder_without_state_keeps_its_file_token() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("admin-token"), "cm_admin_old\n").unwrap();
        let files = AdminTokenFiles::in_folder(dir.path());
        assert_eq!(settled(&files, None), (hash_secret("cm_admin_old"), Decision::Kept));
    }

    #[test]
    fn a_damaged_state_lets_the_configured_token_win() {
        let dir = tempfile::tempdir().unwrap();
        let files = AdminTokenFiles::in_folder(dir.path());
        settled(&files, Some("t"));
        files.rotated("rotated").unwrap();
        std::fs::write(&files.state, "garbage").unwrap();
        // The kept file still counts as in force, so the configured token overrides it, with a warning.
        assert_eq!(settled(&files, Some("t")), (hash_secret("t"), Decision::ConfiguredOverKept));
        assert_eq!(settled(&files, Some("t")).1, Decision::Configured);
    }
}
