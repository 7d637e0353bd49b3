//! What the change processor remembers of the path index (`paths.rs`), so
//! that most writes are told a `create` or an `update` without a look-up of
//! the index: a look-up walks the search of the index's memtable, whose keys
//! (account and path) are too long to sit in its nodes, and cost a third of
//! the processor's CPU a delivery, measured
//! (docs/adr/0002-delivery-path-cost.md).
//!
//! - **Known paths**: the keys the index was last seen to hold (found by a
//!   look-up, or written), at most [`KNOWN_LIMIT`] of them and
//!   [`KNOWN_BYTES`] of key bytes (paths may be 4 KiB), forgotten all at
//!   once past either: a file written again and again (an update each time)
//!   is answered from memory.
//! - **A Bloom filter** of every key the index may hold: a path new to the
//!   store (an upload's first write) is answered from memory too. It says
//!   "no" only of a key never added; the processor builds it from the index
//!   when it starts and adds each key it writes. Keys removed from the index
//!   stay in it (a look-up each). It has a fixed size, [`BITS`]: past tens
//!   of millions of paths it says "maybe" more often, and more writes look
//!   the index up, as every write did without it; it never grows.
//!
//! Only the processor writes the index, and it tells this memory each edit
//! once its batch is committed (`PathEdits::committed`): a batch that fails
//! leaves it as the index is.

use super::Engine;
use rustc_hash::FxHashSet;

/// The filter's bits: 8 MiB, resident once a few thousand paths are in it
/// (each key's bits fall on pages all over it). With [`HASHES`] bits a key
/// it says "maybe" of a key never added about once in 200 at 5 million
/// paths, once in 4 at 20 million.
pub(crate) const BITS: usize = 1 << 26;

/// Bits set per key.
const HASHES: u64 = 4;

/// Known paths kept at most.
pub(crate) const KNOWN_LIMIT: usize = 16_384;

/// Bytes of known paths' keys kept at most.
pub(crate) const KNOWN_BYTES: usize = 2 << 20;

pub(crate) struct PathMemory {
    /// The Bloom filter's bits; `None`: the index could not be read when it
    /// was built: every key is "maybe".
    words: Option<Box<[u64]>>,
    known: FxHashSet<Vec<u8>>,
    /// The bytes of the keys in `known`.
    known_bytes: usize,
}

impl PathMemory {
    /// A filter of every key in the index (one that says "maybe" of all
    /// when the index cannot be read, said in the log, or when `stopping`
    /// says so before the scan ends), no key known.
    pub fn build(engine: &Engine, stopping: &dyn Fn() -> bool) -> PathMemory {
        let mut filter = PathMemory::empty();
        let started = std::time::Instant::now();
        let mut added = 0u64;
        for item in engine.paths.iter() {
            if added.is_multiple_of(4_096) && stopping() {
                return PathMemory::unread();
            }
            match item.key() {
                Ok(key) => {
                    filter.add(&key);
                    added += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the path index: each write's path is looked up");
                    return PathMemory::unread();
                }
            }
        }
        tracing::debug!(paths = added, elapsed_ms = started.elapsed().as_millis() as u64, "path filter built");
        filter
    }

    /// A memory with no key.
    pub fn empty() -> PathMemory {
        let words = Some(vec![0u64; BITS / 64].into_boxed_slice());
        PathMemory { words, known: FxHashSet::default(), known_bytes: 0 }
    }

    /// A memory of an index not read: every key is "maybe".
    fn unread() -> PathMemory {
        PathMemory { words: None, known: FxHashSet::default(), known_bytes: 0 }
    }

    /// Whether the index holds `key`, when memory can tell (`None`: look it up).
    pub fn recall(&self, key: &[u8]) -> Option<bool> {
        match self.known.contains(key) {
            true => Some(true),
            false => (!self.may_contain(key)).then_some(false),
        }
    }

    /// A look-up found `key` in the index.
    pub fn found(&mut self, key: &[u8]) {
        self.remember(key.to_vec());
    }

    /// A committed batch made `key` known to the index, or forgot it.
    pub fn committed(&mut self, key: Vec<u8>, known: bool) {
        match known {
            true => {
                self.add(&key);
                self.remember(key);
            }
            false => {
                if self.known.remove(&key) {
                    self.known_bytes -= key.len();
                }
            }
        }
    }

    fn remember(&mut self, key: Vec<u8>) {
        if self.known.len() >= KNOWN_LIMIT || self.known_bytes + key.len() > KNOWN_BYTES {
            self.known.clear();
            self.known_bytes = 0;
        }
        let len = key.len();
        if self.known.insert(key) {
            self.known_bytes += len;
        }
    }

    /// Adds a key to the filter.
    fn add(&mut self, key: &[u8]) {
        if let Some(words) = &mut self.words {
            for bit in bits(key) {
                words[bit / 64] |= 1 << (bit % 64);
            }
        }
    }

    /// False only when `key` was never added to the filter.
    fn may_contain(&self, key: &[u8]) -> bool {
        match &self.words {
            Some(words) => bits(key).all(|bit| words[bit / 64] & (1 << (bit % 64)) != 0),
            None => true,
        }
    }
}

/// The bits of a key: double hashing of one 128-bit hash.
fn bits(key: &[u8]) -> impl Iterator<Item = usize> {
    let h = xxhash_rust::xxh3::xxh3_128(key);
    let (a, b) = (h as u64, (h >> 64) as u64 | 1);
    (0..HASHES).map(move |i| (a.wrapping_add(i.wrapping_mul(b)) % BITS as u64) as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u32) -> Vec<u8> {
        format!("\x04acme/in/file-{i}.csv").into_bytes()
    }

    #[test]
    fn a_key_added_is_always_maybe_and_few_others_are() {
        let mut f = PathMemory::empty();
        for i in 0..100_000 {
            f.add(&key(i));
        }
        assert!((0..100_000).all(|i| f.may_contain(&key(i))), "no false no");
        let maybe = (100_000..200_000).filter(|i| f.may_contain(&key(*i))).count();
        assert!(maybe < 10, "{maybe} of 100,000 keys never added said maybe");
        assert!(!PathMemory::empty().may_contain(&key(1)));
        assert_eq!(PathMemory::unread().recall(&key(1)), None, "an index not read: look it up");
    }

    #[test]
    fn what_is_recalled_follows_the_committed_edits() {
        let mut m = PathMemory::empty();
        assert_eq!(m.recall(&key(1)), Some(false), "never written");
        m.committed(key(1), true);
        assert_eq!(m.recall(&key(1)), Some(true));
        m.committed(key(1), false);
        assert_eq!(m.recall(&key(1)), None, "forgotten: the filter still says maybe");
        m.found(&key(1));
        assert_eq!(m.recall(&key(1)), Some(true));
        // Bounded: past the limit the known keys are forgotten, not the filter's.
        for i in 2..(KNOWN_LIMIT as u32 + 2) {
            m.committed(key(i), true);
        }
        assert!(m.known.len() <= KNOWN_LIMIT);
        assert_eq!(m.recall(&key(1)), None);
        // And by bytes: paths of 4 KiB fill it sooner.
        let long = |i: u32| [key(i), vec![b'x'; 4_096]].concat();
        for i in 0..1_000 {
            m.committed(long(i), true);
            assert!(m.known_bytes <= KNOWN_BYTES);
        }
        assert_eq!(m.known_bytes, m.known.iter().map(Vec::len).sum::<usize>());
        m.committed(long(999), false);
        assert_eq!(m.known_bytes, m.known.iter().map(Vec::len).sum::<usize>());
    }
}
