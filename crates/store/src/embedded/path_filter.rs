//! Which paths the path index (`paths.rs`) may hold: a Bloom filter in
//! memory, so that a write of a path new to the store (an upload's first
//! write, the usual change) is told a `create` with no look-up of the index.
//! Such a look-up misses, and a miss walks the whole search of the index's
//! memtable, whose keys (account and path) are too long to sit in its nodes:
//! a third of the change processor's CPU a delivery, measured
//! (docs/adr/0002-delivery-path-cost.md).
//!
//! The filter says "no" only of a key never added: every key the processor
//! writes into the index is added first (`PathEdits::write`, before its
//! commit: a commit that fails leaves extra keys, which only cost a look-up),
//! and the processor builds the filter from the index when it starts. Keys
//! removed from the index stay in the filter: they cost a look-up too. The
//! filter has a fixed size, [`BITS`]: as the index grows past tens of millions
//! of paths it says "maybe" more often, and more writes look the index up,
//! as every write did without it; it never grows.

use super::Engine;

/// The filter's bits: 8 MiB, of which only the pages with a bit set are
/// ever in memory. With [`HASHES`] bits a key it says "maybe" of a key
/// never added about once in 200 at 5 million paths, once in 4 at 20 million.
pub(crate) const BITS: usize = 1 << 26;

/// Bits set per key.
const HASHES: u64 = 4;

pub(crate) struct PathFilter {
    /// `None`: the index could not be read when it was built: everything is "maybe".
    words: Option<Box<[u64]>>,
}

impl PathFilter {
    /// A filter of every key in the index (one that says "maybe" of all
    /// when the index cannot be read; said in the log).
    pub fn build(engine: &Engine) -> PathFilter {
        let mut filter = PathFilter::empty();
        let started = std::time::Instant::now();
        let mut added = 0u64;
        for item in engine.paths.iter() {
            match item.key() {
                Ok(key) => {
                    filter.add(&key);
                    added += 1;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "cannot read the path index: each write's path is looked up");
                    return PathFilter { words: None };
                }
            }
        }
        tracing::debug!(paths = added, elapsed_ms = started.elapsed().as_millis() as u64, "path filter built");
        filter
    }

    /// A filter with no key.
    pub fn empty() -> PathFilter {
        PathFilter { words: Some(vec![0u64; BITS / 64].into_boxed_slice()) }
    }

    /// Adds a key.
    pub fn add(&mut self, key: &[u8]) {
        if let Some(words) = &mut self.words {
            for bit in bits(key) {
                words[bit / 64] |= 1 << (bit % 64);
            }
        }
    }

    /// False only when `key` was never added.
    pub fn may_contain(&self, key: &[u8]) -> bool {
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

    #[test]
    fn a_key_added_is_always_maybe_and_few_others_are() {
        let mut f = PathFilter::empty();
        let key = |i: u32| format!("\x04acme/in/file-{i}.csv").into_bytes();
        for i in 0..100_000 {
            f.add(&key(i));
        }
        assert!((0..100_000).all(|i| f.may_contain(&key(i))), "no false no");
        let maybe = (100_000..200_000).filter(|i| f.may_contain(&key(*i))).count();
        assert!(maybe < 10, "{maybe} of 100,000 keys never added said maybe");
        assert!(!PathFilter::empty().may_contain(&key(1)));
        assert!(PathFilter { words: None }.may_contain(&key(1)), "unknown: maybe");
    }
}
