//! Many lines' content hashes at once: the first half of their keys
//! (`line_key.rs`), byte for byte what `blake3::keyed_hash` gives each line.
//!
//! A log line of 200 bytes is four BLAKE3 blocks of one chunk, and hashed
//! alone each block waits for the one before. BLAKE3's own SIMD code
//! compresses up to 16 inputs side by side, when they are the same number of
//! whole blocks (`Platform::hash_many`). So the lines of a block are grouped
//! by the number of whole blocks before their last one; a group's leading
//! blocks are compressed side by side, then each line's last block (partial
//! or empty, or whole) alone, flagged as the end of its chunk and the root:
//! that output is the hash. Lines longer than one chunk (1 KiB) are hashed
//! the usual way.
//!
//! `Platform` is the crate's unstable interface ("for benchmarks only"), so
//! `blake3` is pinned to one version in the workspace, and the tests below
//! check every length to past a chunk, under several keys and on every SIMD
//! path the CPU running them has, against `blake3::keyed_hash`: a change of
//! that interface fails them, never the ids.

use blake3::platform::Platform;
use blake3::IncrementCounter;

const BLOCK_LEN: usize = 64;
const CHUNK_LEN: usize = 1024;
/// The most whole blocks before a chunk's last one.
const MAX_LEAD: usize = CHUNK_LEN / BLOCK_LEN - 1;

// BLAKE3's domain flags (its specification, §2.1).
const CHUNK_START: u8 = 1 << 0;
const CHUNK_END: u8 = 1 << 1;
const ROOT: u8 = 1 << 3;
const KEYED_HASH: u8 = 1 << 4;

/// Hashes lines under one key, many at a time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ManyLines {
    key: [u8; 32],
    key_words: [u32; 8],
    platform: Platform,
}

impl ManyLines {
    pub(crate) fn new(key: [u8; 32]) -> ManyLines {
        ManyLines::on(Platform::detect(), key)
    }

    /// On a given SIMD path (tests try each this CPU has).
    fn on(platform: Platform, key: [u8; 32]) -> ManyLines {
        ManyLines { key, key_words: words(&key), platform }
    }

    /// The keyed BLAKE3 hash of one line.
    pub(crate) fn hash_one(&self, line: &[u8]) -> [u8; 32] {
        *blake3::keyed_hash(&self.key, line).as_bytes()
    }

    /// The keyed BLAKE3 hash of each line, in order, into `out` (cleared first).
    pub(crate) fn hash(&self, lines: &[&[u8]], out: &mut Vec<[u8; 32]>) {
        out.clear();
        out.resize(lines.len(), [0; 32]);
        let mut groups: [Vec<usize>; MAX_LEAD + 1] = Default::default();
        for (i, line) in lines.iter().enumerate() {
            if line.len() > CHUNK_LEN {
                out[i] = self.hash_one(line);
            } else {
                groups[line.len().saturating_sub(1) / BLOCK_LEN].push(i);
            }
        }
        let mut cvs = Vec::new();
        for (lead, group) in groups.iter().enumerate().filter(|(_, g)| !g.is_empty()) {
            self.lead_blocks(lead, group, lines, &mut cvs);
            for (&i, cv) in group.iter().zip(cvs.chunks_exact(32)) {
                let mut cv = words(cv.try_into().expect("32 bytes"));
                let last = &lines[i][lead * BLOCK_LEN..];
                let mut block = [0u8; BLOCK_LEN];
                block[..last.len()].copy_from_slice(last);
                let start = if lead == 0 { CHUNK_START } else { 0 };
                let flags = KEYED_HASH | start | CHUNK_END | ROOT;
                self.platform.compress_in_place(&mut cv, &block, last.len() as u8, 0, flags);
                for (bytes, word) in out[i].chunks_exact_mut(4).zip(cv) {
                    bytes.copy_from_slice(&word.to_le_bytes());
                }
            }
        }
    }

    /// The chaining values, 32 bytes each, of the group's lines after their
    /// first `lead` blocks, compressed side by side.
    fn lead_blocks(&self, lead: usize, group: &[usize], lines: &[&[u8]], cvs: &mut Vec<u8>) {
        cvs.clear();
        cvs.resize(group.len() * 32, 0);
        if lead == 0 {
            for cv in cvs.chunks_exact_mut(32) {
                for (bytes, word) in cv.chunks_exact_mut(4).zip(self.key_words) {
                    bytes.copy_from_slice(&word.to_le_bytes());
                }
            }
            return;
        }
        macro_rules! side_by_side {
            ($($lead:literal),*) => {
                match lead {
                    $($lead => {
                        let inputs: Vec<&[u8; $lead * BLOCK_LEN]> = group
                            .iter()
                            .map(|&i| lines[i][..$lead * BLOCK_LEN].try_into().expect("the lead blocks are there"))
                            .collect();
                        self.platform.hash_many(&inputs, &self.key_words, 0, IncrementCounter::No, KEYED_HASH, CHUNK_START, 0, cvs);
                    })*
                    _ => unreachable!("a line of one chunk has at most {MAX_LEAD} blocks before its last"),
                }
            };
        }
        side_by_side!(1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15);
    }
}

fn words(bytes: &[u8; 32]) -> [u32; 8] {
    let mut words = [0u32; 8];
    for (word, b) in words.iter_mut().zip(bytes.chunks_exact(4)) {
        *word = u32::from_le_bytes(b.try_into().expect("four bytes"));
    }
    words
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_length_hashes_as_blake3_does() {
        let data: Vec<u8> = (0..2200u32).map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
        // Every SIMD path this CPU has, not only the one it would pick: another
        // CPU picks another.
        let paths =
            [Some(Platform::portable()), Platform::sse2(), Platform::sse41(), Platform::avx2(), Platform::avx512()];
        let paths: Vec<Platform> = paths.into_iter().flatten().collect();
        assert!(paths.len() >= 2, "the portable path and at least one SIMD one");
        for (platform, key) in paths
            .iter()
            .flat_map(|p| [[0u8; 32], blake3::derive_key("callmeter test", b"a"), [0xff; 32]].map(|k| (*p, k)))
        {
            let many = ManyLines::on(platform, key);
            // Every length from empty to past two chunks, at several offsets, in one call and alone.
            let lines: Vec<&[u8]> = (0..=2100).map(|n| &data[n % 97..n % 97 + n]).collect();
            let mut out = Vec::new();
            many.hash(&lines, &mut out);
            for (line, got) in lines.iter().zip(&out) {
                assert_eq!(got, blake3::keyed_hash(&key, line).as_bytes(), "{} bytes on {platform:?}", line.len());
            }
            many.hash(&lines[64..65], &mut out);
            assert_eq!(out, [*blake3::keyed_hash(&key, lines[64]).as_bytes()]);
            many.hash(&[], &mut out);
            assert!(out.is_empty());
        }
    }
}
