//! When each path last changed: a write, delete, move, copy or mkdir at or
//! under it, by anyone (DESIGN §6). Pollers' repeats that saw no change are
//! avoidable; a repeat with a change in between is not a duplicate.

use crate::paths::{PathId, PathTable};
use callmeter_model::Direction;
use callmeter_model::Operation;

/// The last change time (µs) of every path seen, ancestors included.
#[derive(Debug, Default)]
pub(crate) struct ChangeTracker {
    last: Vec<i64>,
}

/// Whether a call changes the tree: every write-direction operation (DESIGN §1).
pub(crate) fn is_change(op: Operation) -> bool {
    op.direction() == Direction::Write
}

impl ChangeTracker {
    /// Records a change at `path` at `time`: the path and every folder above it changed.
    pub fn record(&mut self, paths: &PathTable, path: PathId, time: i64) {
        let mut at = Some(path);
        while let Some(p) = at {
            let i = p as usize;
            if self.last.len() <= i {
                self.last.resize(i + 1, i64::MIN);
            }
            if self.last[i] >= time {
                // Its ancestors were stamped at least as late with it.
                break;
            }
            self.last[i] = time;
            at = paths.parent(p);
        }
    }

    /// Whether `path` changed after `since` (µs), up to now.
    pub fn changed_since(&self, path: PathId, since: i64) -> bool {
        self.last.get(path as usize).is_some_and(|t| *t > since)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_change_under_a_folder_is_a_change_of_the_folder() {
        let mut paths = PathTable::default();
        let mut c = ChangeTracker::default();
        let file = paths.intern("/in/sub/a.csv");
        let folder = paths.intern("/in");
        let other = paths.intern("/out");
        c.record(&paths, file, 100);
        assert!(c.changed_since(folder, 99));
        assert!(!c.changed_since(folder, 100));
        assert!(!c.changed_since(other, 0));
        c.record(&paths, other, 50);
        let root = paths.intern("/");
        assert!(c.changed_since(root, 99), "an older change elsewhere does not move the root back");
        assert!(is_change(Operation::Mkdir) && !is_change(Operation::Stat));
    }
}
