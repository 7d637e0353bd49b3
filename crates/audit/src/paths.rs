//! Paths as the audit compares them: `/in/` and `/in` are one folder, and a
//! change to `/in/a.csv` is a change under `/in` and under `/`.
//!
//! Paths are interned: the audit keeps one copy of each distinct path and its
//! parent's id, so per-stream state holds small ids and memory grows with the
//! number of distinct paths, never with the number of calls.

use std::hash::BuildHasher;

/// The id of an interned path.
pub(crate) type PathId = u32;

/// A path with one leading `/` and no trailing `/` (the root is `/`).
pub fn normalize_path(p: &str) -> String {
    let trimmed = p.trim_end_matches('/');
    if trimmed.is_empty() {
        return "/".to_owned();
    }
    if trimmed.starts_with('/') {
        trimmed.to_owned()
    } else {
        format!("/{trimmed}")
    }
}

/// The folder holding `p` (normalized), or `None` for the root.
pub fn parent_path(p: &str) -> Option<&str> {
    if p == "/" {
        return None;
    }
    match p.rfind('/') {
        Some(0) => Some("/"),
        Some(i) => Some(&p[..i]),
        None => Some("/"),
    }
}

/// The longest path both `a` and `b` are at or under, by whole segments.
pub fn common_path(a: &str, b: &str) -> String {
    let mut out = String::new();
    for (x, y) in a.split('/').skip(1).zip(b.split('/').skip(1)) {
        if x != y || x.is_empty() {
            break;
        }
        out.push('/');
        out.push_str(x);
    }
    if out.is_empty() {
        "/".to_owned()
    } else {
        out
    }
}

/// The first `depth` segments of `p` (normalized): `/a/b/c` at 2 is `/a/b`.
pub fn path_prefix(p: &str, depth: usize) -> &str {
    let mut seen = 0;
    for (i, c) in p.char_indices().skip(1) {
        if c == '/' {
            seen += 1;
            if seen == depth {
                return &p[..i];
            }
        }
    }
    if depth == 0 {
        "/"
    } else {
        p
    }
}

/// Every distinct path seen, with its parent.
///
/// Each path's text is kept once, in one buffer: a log of a million files
/// uploaded once each is a million paths, and two heap copies of each (a map
/// key and a name) would be most of the audit's memory.
#[derive(Debug, Default)]
pub(crate) struct PathTable {
    /// The ids, found by hashing the text they stand for.
    ids: hashbrown::HashTable<PathId>,
    hasher: foldhash::fast::RandomState,
    /// Every path's text, back to back, in id order.
    text: String,
    /// Where each id's text ends in `text` (it starts where the one before ends).
    ends: Vec<usize>,
    /// Each id's parent folder, [`NO_PARENT`] for the root.
    parents: Vec<PathId>,
}

/// The parent of the root.
const NO_PARENT: PathId = PathId::MAX;

/// The text of id `id`, from the table's parts (borrowed apart from the map).
fn text_of<'t>(text: &'t str, ends: &[usize], id: PathId) -> &'t str {
    let i = id as usize;
    let start = if i == 0 { 0 } else { ends[i - 1] };
    &text[start..ends[i]]
}

impl PathTable {
    /// The id of `p` as given (normalized here), interning it and its ancestors.
    pub fn intern(&mut self, p: &str) -> PathId {
        let needs_normalizing = p.len() > 1 && p.ends_with('/') || !p.starts_with('/');
        if needs_normalizing {
            let n = normalize_path(p);
            return self.intern_normalized(&n);
        }
        self.intern_normalized(p)
    }

    fn intern_normalized(&mut self, p: &str) -> PathId {
        let hash = self.hasher.hash_one(p);
        if let Some(id) = self.ids.find(hash, |id| text_of(&self.text, &self.ends, *id) == p) {
            return *id;
        }
        let parent = parent_path(p).map_or(NO_PARENT, |pp| self.intern_normalized(pp));
        let id = self.ends.len() as PathId;
        self.text.push_str(p);
        self.ends.push(self.text.len());
        self.parents.push(parent);
        let (text, ends, hasher) = (&self.text, &self.ends, &self.hasher);
        self.ids.insert_unique(hash, id, |id| hasher.hash_one(text_of(text, ends, *id)));
        id
    }

    /// The path of an id.
    pub fn name(&self, id: PathId) -> &str {
        text_of(&self.text, &self.ends, id)
    }

    /// The parent folder's id.
    pub fn parent(&self, id: PathId) -> Option<PathId> {
        Some(self.parents[id as usize]).filter(|p| *p != NO_PARENT)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normal_forms() {
        assert_eq!(normalize_path("/in/"), "/in");
        assert_eq!(normalize_path("in"), "/in");
        assert_eq!(normalize_path("/"), "/");
        assert_eq!(normalize_path(""), "/");
        assert_eq!(parent_path("/in/a.csv"), Some("/in"));
        assert_eq!(parent_path("/in"), Some("/"));
        assert_eq!(parent_path("/"), None);
    }

    #[test]
    fn common_paths_go_by_whole_segments() {
        assert_eq!(common_path("/dup/in/a", "/dup/out/b"), "/dup");
        assert_eq!(common_path("/dup/in", "/dup/in"), "/dup/in");
        assert_eq!(common_path("/dupe/x", "/dup/x"), "/");
        assert_eq!(path_prefix("/a/b/c", 2), "/a/b");
        assert_eq!(path_prefix("/a", 2), "/a");
        assert_eq!(path_prefix("/a/b", 0), "/");
    }

    #[test]
    fn interning_keeps_one_copy_and_the_parents() {
        let mut t = PathTable::default();
        let a = t.intern("/in/a.csv");
        let folder = t.intern("/in/");
        assert_eq!(t.parent(a), Some(folder));
        assert_eq!(t.name(folder), "/in");
        let root = t.parent(folder).unwrap();
        assert_eq!((t.name(root), t.parent(root)), ("/", None));
        assert_eq!(t.intern("in"), folder);
    }
}
