//! The ids of calls read from log lines (DESIGN §5): content-addressed, so
//! that a line has the same id however its file is read.
//!
//! A line's key is 128 bits of BLAKE3, keyed by a key derived (with a context
//! string of its own, so that it never hashes like anything else in
//! callmeter) from the `--source-id` name when one is given, over
//!
//! - the line's bytes without its line ending (`\n`, and a `\r` before it),
//! - and its occurrence number among identical lines of the source: the first
//!   `GET /x` line is 0 and an identical second one 1, so that two identical
//!   lines are two calls.
//!
//! The first occurrence, by far the most common, costs one hash of the line:
//! its key is that hash. A repeat's key hashes the line's hash and its number
//! under a second derived key, so no repeat can take the key of another line.
//! Occurrences are counted over a window of recent lines (`occurrences.rs`).
//!
//! So a file, its rotated, gzipped or grown copy, and the same lines read by
//! `tail` all give the same ids, however small the file was when first read.
//! The id of a call is `log-` and the key in 32 lowercase hex digits; a call
//! made of several lines (an FTP `RNFR`+`RNTO`, `USER`+`PASS`, an SFTP `open`
//! and its `close`) takes the key of the line that starts it, so its id does
//! not depend on where reading started.
//!
//! A UTF-8 byte order mark at the start of a source is no part of its first
//! line ([`strip_bom`]): the same lines saved with and without one (an editor
//! on Windows, a copy through PowerShell) give the same ids, and readers see
//! a `#Fields` directive or a JSON object where it is.

use crate::line_hash::ManyLines;
use crate::occurrences::Occurrences;
use crate::text::{push_hex, trim_eol};
use std::fmt;

/// Key derivation contexts: line keys never hash like anything else.
const LINE_CONTEXT: &str = "callmeter 2026 log line id: the bytes of a line";
const NAMED_LINE_CONTEXT: &str = "callmeter 2026 log line id: the bytes of a line of a source named by --source-id";
const REPEAT_CONTEXT: &str = "callmeter 2026 log line id: a repeat of a line";

/// The UTF-8 byte order mark.
const UTF8_BOM: &[u8] = b"\xEF\xBB\xBF";

/// The first line of a source without the UTF-8 byte order mark it may start
/// with (one, once: a second mark would be the line's own bytes). Whoever
/// feeds a source's lines to [`LineKeys`] and a reader applies it to the
/// first line before both, and [`crate::detect`] to the first line it looks at.
pub fn strip_bom(first_line: &[u8]) -> &[u8] {
    first_line.strip_prefix(UTF8_BOM).unwrap_or(first_line)
}

/// What starts the id of a call read from a log line.
pub const LINE_ID_PREFIX: &str = "log-";

/// 128 bits naming one line of a source by its content and occurrence number.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LineKey([u8; 16]);

impl LineKey {
    /// The key with these 16 bytes.
    pub fn from_bytes(bytes: [u8; 16]) -> LineKey {
        LineKey(bytes)
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The id of the call read from this line: `log-` and 32 lowercase hex digits.
    pub fn id(&self) -> String {
        let mut s = String::with_capacity(LINE_ID_PREFIX.len() + 32);
        s.push_str(LINE_ID_PREFIX);
        push_hex(&mut s, &self.0);
        s
    }
}

impl fmt::Display for LineKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.id())
    }
}

/// One line of a source as the readers see it: its number, for messages,
/// and its key, for ids. Readers keep it with the calls that wait for a
/// later line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SourceLine {
    /// The line's number in its source, from 1, blank lines included.
    pub number: u64,
    /// What the id of a call that starts on this line is made from.
    pub key: LineKey,
}

/// The first half of a line's key: the hash of its bytes, which needs
/// nothing of the lines before it, so that blocks of lines can be hashed on
/// several threads. [`LineKeys::key`] makes the key of it, in order.
#[derive(Debug, Clone)]
pub struct LineHasher {
    many: ManyLines,
}

/// A line's content hash ([`LineHasher::hash`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineHash([u8; 32]);

impl LineHash {
    /// What identical lines are counted by: the hash's first 64 bits.
    fn counted(&self) -> u64 {
        let mut first = [0u8; 8];
        first.copy_from_slice(&self.0[..8]);
        u64::from_le_bytes(first)
    }
}

impl LineHasher {
    /// The hash of a line's bytes. A trailing `\n` or `\r\n` may be left on it.
    pub fn hash(&self, line: &[u8]) -> LineHash {
        LineHash(self.many.hash_one(trim_eol(line)))
    }

    /// The hashes of many lines, in order, into `out` (cleared first): what
    /// [`LineHasher::hash`] gives each, several lines side by side
    /// (`line_hash.rs`).
    pub fn hash_all(&self, lines: &[&[u8]], out: &mut Vec<LineHash>) {
        let lines: Vec<&[u8]> = lines.iter().map(|l| trim_eol(l)).collect();
        let mut hashes = Vec::with_capacity(lines.len());
        self.many.hash(&lines, &mut hashes);
        out.clear();
        out.extend(hashes.into_iter().map(LineHash));
    }
}

/// Numbers and keys the lines of one source, in order: one per source read
/// (`import`, `tail`, `audit`), fed every line from the first.
#[derive(Debug)]
pub struct LineKeys {
    hasher: LineHasher,
    repeat_key: [u8; 32],
    number: u64,
    seen: Occurrences,
}

impl LineKeys {
    /// The keys of a source, mixing in the `--source-id` name when one is given.
    pub fn new(source_name: Option<&str>) -> LineKeys {
        let line_key = match source_name {
            None => blake3::derive_key(LINE_CONTEXT, b""),
            Some(name) => blake3::derive_key(NAMED_LINE_CONTEXT, name.as_bytes()),
        };
        let repeat_key = blake3::derive_key(REPEAT_CONTEXT, &line_key);
        LineKeys {
            hasher: LineHasher { many: ManyLines::new(line_key) },
            repeat_key,
            number: 0,
            seen: Occurrences::default(),
        }
    }

    /// The next line: its number and its key. A trailing `\n` or `\r\n` may be left on it.
    pub fn next(&mut self, line: &[u8]) -> SourceLine {
        let hash = self.hasher.hash(line);
        self.key(&hash)
    }

    /// The hasher of this source's lines, for [`LineKeys::key`].
    pub fn hasher(&self) -> LineHasher {
        self.hasher.clone()
    }

    /// The next line, from its hash ([`LineKeys::next`] in two halves: the
    /// hash, on any thread, then this, in line order).
    pub fn key(&mut self, hash: &LineHash) -> SourceLine {
        self.number += 1;
        let content = &hash.0;
        let key = match self.seen.count(hash.counted()) {
            0 => first_16(content),
            n => {
                let mut h = blake3::Hasher::new_keyed(&self.repeat_key);
                h.update(content);
                h.update(&n.to_le_bytes());
                first_16(h.finalize().as_bytes())
            }
        };
        SourceLine { number: self.number, key: LineKey(key) }
    }

    /// Numbers a line that is not read (one too long to hold): it is no call, and has no key.
    pub fn skip(&mut self) -> u64 {
        self.number += 1;
        self.number
    }

    /// The number of the last line.
    pub fn lines(&self) -> u64 {
        self.number
    }
}

fn first_16(hash: &[u8; 32]) -> [u8; 16] {
    let mut key = [0u8; 16];
    key.copy_from_slice(&hash[..16]);
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn keys_of(source_name: Option<&str>, lines: &[&str]) -> Vec<LineKey> {
        let mut keys = LineKeys::new(source_name);
        lines.iter().map(|l| keys.next(l.as_bytes()).key).collect()
    }

    #[test]
    fn identical_lines_are_told_apart_by_their_occurrence() {
        let k = keys_of(None, &["GET /x", "GET /y", "GET /x", "GET /x"]);
        assert_eq!(k.iter().collect::<HashSet<_>>().len(), 4);
        // The first `GET /x` has the key it would have alone; later ones never change earlier keys.
        assert_eq!(k[0], keys_of(None, &["GET /x"])[0]);
        assert_eq!(k[..3], keys_of(None, &["GET /x", "GET /y", "GET /x"])[..]);
    }

    #[test]
    fn line_endings_are_not_content() {
        let k = keys_of(None, &["GET /x\r\n", "GET /x\n", "GET /x"]);
        assert_eq!(k, keys_of(None, &["GET /x", "GET /x", "GET /x"]));
        assert_ne!(keys_of(None, &["GET /x "]), keys_of(None, &["GET /x"]));
    }

    #[test]
    fn a_source_name_changes_every_key() {
        let lines = ["a", "a", "b"];
        let plain = keys_of(None, &lines);
        let named = keys_of(Some("server-1"), &lines);
        let other = keys_of(Some("server-2"), &lines);
        assert!(plain.iter().chain(&named).chain(&other).collect::<HashSet<_>>().len() == 9);
        assert_eq!(named, keys_of(Some("server-1"), &lines));
        // An empty name is a name: it is not the same as none.
        assert_ne!(keys_of(Some(""), &lines), plain);
    }

    #[test]
    fn ids_are_readable_and_fixed() {
        let mut keys = LineKeys::new(None);
        let first = keys.next(b"hello");
        assert_eq!(first.number, 1);
        let id = first.key.id();
        assert!(id.starts_with("log-") && id.len() == 36, "{id}");
        assert!(id[4..].bytes().all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(&c)), "{id}");
        assert_eq!(first.key.to_string(), id);
        // The scheme is a contract with the ids already stored: it must not drift.
        assert_eq!(id, "log-c8e46fc31f0c154286e4f7ec090db9ad");
        assert_eq!(keys.skip(), 2);
        assert_eq!((keys.next(b"hello").number, keys.lines()), (3, 3));
    }

    #[test]
    fn hashing_apart_keys_alike() {
        let lines = ["a", "b", "a\r\n", "a", "c"];
        for source in [None, Some("s")] {
            let mut halves = LineKeys::new(source);
            let hasher = halves.hasher();
            let hashes: Vec<LineHash> = lines.iter().map(|l| hasher.hash(l.as_bytes())).collect();
            let mut all = Vec::new();
            hasher.hash_all(&lines.iter().map(|l| l.as_bytes()).collect::<Vec<_>>(), &mut all);
            assert_eq!(all, hashes);
            let keys: Vec<LineKey> = hashes.iter().map(|h| halves.key(h).key).collect();
            assert_eq!(keys, keys_of(source, &lines));
        }
    }
}
