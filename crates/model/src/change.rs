//! Which calls are changes that webhooks tell about, and what each one is
//! to a subscriber (DESIGN §7).
//!
//! DESIGN §9 asks that the metering decisions live in one place that every
//! store uses: "this call fires webhooks" is one of them. The embedded store
//! asks [`is_change`] for each accepted call in its writer; a PostgreSQL
//! store asks the same function in its ingest transaction. What a change is
//! *to a subscriber* (`create` or `update`) depends on what the store already
//! holds of the path, so [`Action::of`] takes that answer from the caller.

use crate::event::{CallEvent, Interface, Operation};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

/// Whether an accepted call is a change of the change stream.
///
/// A change is an accepted (not duplicate: the caller asks only for those),
/// on-time (not `late`), successful call that writes (write, delete, move,
/// copy, mkdir) and names a path; or such a read (`read`, a file's content),
/// when `reads_watched` says that a subscription of the account asks for
/// reads. Successful: status absent or below 400; SFTP's own failure code, 1
/// (DESIGN §3), is a failure too.
pub fn is_change(event: &CallEvent, late: bool, reads_watched: bool) -> bool {
    let operation_counts = match event.operation {
        Operation::Write | Operation::Delete | Operation::Move | Operation::Copy | Operation::Mkdir => true,
        Operation::Read => reads_watched,
        Operation::List | Operation::Stat | Operation::Login | Operation::Other => false,
    };
    operation_counts && !late && event.path.is_some() && succeeded(event.interface, event.status)
}

/// Whether a call's status says it succeeded: absent, or below 400, and not SFTP's failure code.
pub fn succeeded(interface: Interface, status: Option<i64>) -> bool {
    match status {
        None => true,
        Some(1) if interface == Interface::Sftp => false,
        Some(s) => s < 400,
    }
}

/// What a change is to a subscriber: the actions a subscription picks from.
///
/// The codes are stored (the outbox keeps each delivery's action): a code
/// never changes meaning, and new actions only go at the end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
#[repr(u8)]
pub enum Action {
    /// A file or folder that the store did not know at that path.
    Create = 0,
    /// A write to a path the store knew.
    Update = 1,
    /// A delete.
    Destroy = 2,
    /// A move, with its destination.
    Move = 3,
    /// A copy, with its destination.
    Copy = 4,
    /// A file's content read (only when a subscription asks for it).
    Read = 5,
}

impl Action {
    /// Every action, in code order.
    pub const ALL: [Action; 6] =
        [Action::Create, Action::Update, Action::Destroy, Action::Move, Action::Copy, Action::Read];

    /// What a change with this operation is, given whether its path was new
    /// to the store (a path is new until a stored write or mkdir names it).
    /// `None` for operations that are never changes.
    pub fn of(operation: Operation, path_is_new: bool) -> Option<Action> {
        Some(match operation {
            Operation::Write if path_is_new => Action::Create,
            Operation::Write => Action::Update,
            Operation::Mkdir => Action::Create,
            Operation::Delete => Action::Destroy,
            Operation::Move => Action::Move,
            Operation::Copy => Action::Copy,
            Operation::Read => Action::Read,
            Operation::List | Operation::Stat | Operation::Login | Operation::Other => return None,
        })
    }

    /// The lowercase name, as in the API and the CLI.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Create => "create",
            Action::Update => "update",
            Action::Destroy => "destroy",
            Action::Move => "move",
            Action::Copy => "copy",
            Action::Read => "read",
        }
    }

    /// The event type a delivery of this action carries (`file.create`, …).
    pub fn event_type(self) -> &'static str {
        match self {
            Action::Create => "file.create",
            Action::Update => "file.update",
            Action::Destroy => "file.destroy",
            Action::Move => "file.move",
            Action::Copy => "file.copy",
            Action::Read => "file.read",
        }
    }

    /// The stored code.
    pub fn code(self) -> u8 {
        self as u8
    }

    /// The action of a stored code.
    pub fn from_code(code: u8) -> Option<Action> {
        Action::ALL.get(usize::from(code)).copied()
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is not an action.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown action {0:?} (expected one of: create, update, destroy, move, copy, read)")]
pub struct UnknownAction(pub String);

impl FromStr for Action {
    type Err = UnknownAction;

    fn from_str(s: &str) -> Result<Action, UnknownAction> {
        Action::ALL.into_iter().find(|a| a.as_str() == s).ok_or_else(|| UnknownAction(s.to_owned()))
    }
}

/// A path as the change stream compares it: the file it names, as a
/// server resolves it. `//` is `/`, a `.` segment is nothing and `..` the
/// folder above (never above the root), so `/pre/../tr/x` is `/tr/x`, in
/// no subscription to `/pre`; a trailing `/` (a WebDAV collection, a
/// listing's path) is not part of the name, except for the root. Most paths
/// are normal already, and are returned as they are.
pub fn normalize_path(path: &str) -> Cow<'_, str> {
    let normal = path == "/"
        || (!path.ends_with('/')
            && path.split('/').enumerate().all(|(i, s)| (i == 0 || !s.is_empty()) && s != "." && s != ".."));
    if normal {
        return Cow::Borrowed(path);
    }
    let absolute = path.starts_with('/');
    let mut kept: Vec<&str> = Vec::new();
    for segment in path.split('/') {
        match segment {
            "" | "." => {}
            // Above a relative path's start: kept, there is nothing to resolve it against.
            ".." if kept.last().is_none_or(|last| *last == "..") => {
                if !absolute {
                    kept.push("..");
                }
            }
            ".." => {
                kept.pop();
            }
            name => kept.push(name),
        }
    }
    let joined = kept.join("/");
    Cow::Owned(if absolute { format!("/{joined}") } else { joined })
}

/// Whether `folder` is `path` or one of its ancestors: a subscription to
/// `/in` hears of `/in`, `/in/a.csv` and `/in/x/y`, not of `/inbox`.
pub fn folder_contains(folder: &str, path: &str) -> bool {
    let folder = normalize_path(folder);
    let path = normalize_path(path);
    if folder == "/" {
        return path.starts_with('/');
    }
    path.strip_prefix(&*folder).is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;

    fn call(operation: Operation, status: Option<i64>) -> CallEvent {
        CallEvent {
            path: Some("/in/a.csv".into()),
            status,
            ..CallEvent::new("1".into(), "acme".into(), Utc::now(), Interface::Rest, operation)
        }
    }

    #[test]
    fn successful_on_time_writes_with_a_path_are_changes() {
        for op in [Operation::Write, Operation::Delete, Operation::Move, Operation::Copy, Operation::Mkdir] {
            assert!(is_change(&call(op, None), false, false), "{op}");
            assert!(is_change(&call(op, Some(201)), false, false), "{op}");
            assert!(is_change(&call(op, Some(399)), false, false), "{op}");
            assert!(!is_change(&call(op, Some(400)), false, false), "{op}: failed");
            assert!(!is_change(&call(op, Some(500)), false, false), "{op}: failed");
            assert!(!is_change(&call(op, None), true, false), "{op}: late");
        }
        let no_path = CallEvent { path: None, ..call(Operation::Write, None) };
        assert!(!is_change(&no_path, false, false), "nothing to match a folder against");
        let sftp_failed = CallEvent { interface: Interface::Sftp, ..call(Operation::Write, Some(1)) };
        assert!(!is_change(&sftp_failed, false, false), "SFTP's 1 is a failure");
        let sftp_ok = CallEvent { interface: Interface::Sftp, ..call(Operation::Write, Some(0)) };
        assert!(is_change(&sftp_ok, false, false));
    }

    #[test]
    fn reads_are_changes_only_where_watched_and_other_reads_never() {
        assert!(!is_change(&call(Operation::Read, None), false, false));
        assert!(is_change(&call(Operation::Read, None), false, true));
        assert!(!is_change(&call(Operation::Read, Some(404)), false, true));
        for op in [Operation::List, Operation::Stat, Operation::Login, Operation::Other] {
            assert!(!is_change(&call(op, None), false, true), "{op}");
        }
    }

    #[test]
    fn actions_follow_design_section_7() {
        assert_eq!(Action::of(Operation::Write, true), Some(Action::Create));
        assert_eq!(Action::of(Operation::Write, false), Some(Action::Update));
        assert_eq!(Action::of(Operation::Mkdir, false), Some(Action::Create));
        assert_eq!(Action::of(Operation::Delete, false), Some(Action::Destroy));
        assert_eq!(Action::of(Operation::Move, true), Some(Action::Move));
        assert_eq!(Action::of(Operation::Copy, true), Some(Action::Copy));
        assert_eq!(Action::of(Operation::Read, false), Some(Action::Read));
        assert_eq!(Action::of(Operation::List, true), None);
        for a in Action::ALL {
            assert_eq!(Action::from_code(a.code()), Some(a));
            assert_eq!(a.as_str().parse::<Action>(), Ok(a));
            assert_eq!(serde_json::to_string(&a).unwrap(), format!("\"{a}\""));
            assert_eq!(a.event_type(), format!("file.{a}"));
        }
        assert_eq!((Action::Create.code(), Action::Read.code()), (0, 5), "stored codes are pinned");
        assert!("delete".parse::<Action>().is_err());
    }

    #[test]
    fn folders_contain_themselves_and_what_is_under_them() {
        assert!(folder_contains("/in", "/in"));
        assert!(folder_contains("/in", "/in/"));
        assert!(folder_contains("/in/", "/in/a.csv"));
        assert!(folder_contains("/in", "/in/x/y"));
        assert!(!folder_contains("/in", "/inbox"));
        assert!(!folder_contains("/in", "/"));
        assert!(folder_contains("/", "/anything"));
        assert_eq!(normalize_path("/dav/in/"), "/dav/in");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path("//"), "/");
    }

    /// Paths are compared as the files they name: a path that climbs out of
    /// a folder is not in it, and doubled slashes name the same file.
    #[test]
    fn paths_are_resolved_before_they_are_compared() {
        for (path, normal) in [
            ("/pre/../tr/x", "/tr/x"),
            ("/dbl//x/c", "/dbl/x/c"),
            ("//dbl//x/", "/dbl/x"),
            ("/a/./b/.", "/a/b"),
            ("/../../etc", "/etc"),
            ("/a/b/..", "/a"),
            ("/..", "/"),
            ("a/../../b", "../b"),
            ("./a", "a"),
            ("", ""),
            ("/in/a.csv", "/in/a.csv"),
            ("/in/..a/b.", "/in/..a/b."),
        ] {
            assert_eq!(normalize_path(path), normal, "{path}");
        }
        assert!(matches!(normalize_path("/in/a.csv"), Cow::Borrowed(_)), "a normal path is not copied");
        assert!(!folder_contains("/pre", "/pre/../tr/x"));
        assert!(folder_contains("/tr", "/pre/../tr/x"));
        assert!(folder_contains("/dbl/x", "/dbl//x/c"));
        assert!(folder_contains("//dbl//x", "/dbl/x/c"));
    }
}
