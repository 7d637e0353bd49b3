//! Where `POST /v1/admin/backup` may write (DESIGN §9): an absolute path of
//! an empty or absent folder, outside the data folder and not containing it.
//!
//! A copy inside the data folder lands among the engine's own files, and the
//! next start takes it for part of the store and fails in its recovery. The
//! paths are compared canonical: the longest existing ancestor of the target
//! is resolved (symlinks, `..`), so that neither can get around the rule. The
//! store checks its own side again (`Store::backup`); this check is the one
//! that answers the operator with the rule and the path.

use crate::error::ApiError;
use std::io::ErrorKind;
use std::path::{Component, Path, PathBuf};

/// The target folder, resolved, when a backup may go there; else a 400 that
/// names the rule and the path.
pub fn check(dir: &Path, data: &Path) -> Result<PathBuf, ApiError> {
    let refuse = |why: String| Err(ApiError::BadRequest(format!("dir: {why}")));
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
    let data = data
        .canonicalize()
        .map_err(|e| ApiError::Internal(format!("cannot resolve the data folder {}: {e}", data.display())))?;
    let resolved = if target == dir { String::new() } else { format!(" (resolved: {})", target.display()) };
    if target.starts_with(&data) {
        return refuse(format!(
            "{}{resolved} is inside the data folder {}: a backup goes to a folder outside it",
            dir.display(),
            data.display()
        ));
    }
    if data.starts_with(&target) {
        return refuse(format!(
            "{}{resolved} contains the data folder {}: a backup goes to a folder outside it",
            dir.display(),
            data.display()
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

/// An absolute path with its longest existing ancestor made canonical and
/// the rest, which does not exist yet, appended. A `..` in that rest is
/// refused: what it would name depends on folders that are not there yet.
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

    fn refusal(dir: &Path, data: &Path) -> String {
        match check(dir, data) {
            Err(ApiError::BadRequest(m)) => m,
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
        assert_eq!(check(&root.join("new/deeper"), &data).unwrap(), root.join("new/deeper"));
        std::fs::create_dir(root.join("empty")).unwrap();
        assert_eq!(check(&root.join("empty"), &data).unwrap(), root.join("empty"));
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
        assert_eq!(check(&root.join("out/copy"), &data).unwrap(), root.join("elsewhere/copy"));
    }
}
