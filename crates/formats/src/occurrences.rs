//! How many times a line was seen before in its source, counted over a
//! window of recent lines so that memory stays bounded (DESIGN §5: two
//! identical lines are two calls).
//!
//! Identical lines carry the same timestamp, and servers write their logs
//! nearly in time order, so a repeat of a line comes soon after it. The
//! counts are kept in two generations of at most [`GENERATION`] lines each:
//! new lines go into the current one; when it is full, the one before is
//! dropped and the current one becomes the one before. A line is therefore
//! remembered for at least [`GENERATION`] lines after it was last seen (and at
//! most twice that), and both maps together take about 9 MB at most.
//!
//! The counts are a function of the lines before, in order, and of nothing
//! else: reading a source whole, after it grew, from a rotated or compressed
//! copy, or replaying it up to a resume point gives every line the same count.
//!
//! What the window cannot tell apart: a line repeated more than
//! [`GENERATION`] lines after it was last seen is counted as if it were new,
//! so its id is that of the earlier one and it is taken for a duplicate (an
//! undercount, never a double count). That takes two byte-identical lines,
//! with the same time to the second, written a quarter of a million lines
//! apart: at 1,000 lines a second, four minutes.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};

/// Lines per generation: 7/8 of 2^18, so that a full map has exactly 2^18
/// slots (its load limit) and never grows past them: 2^18 × 17 bytes ≈ 4.5 MB.
pub const GENERATION: usize = 229_376;

/// The counts of recent lines, by a 64-bit hash of their content.
///
/// Two different lines whose hashes collide share a count: the second is
/// numbered after the first. That changes which occurrence number it gets,
/// the same way on every read, and never merges two calls, since the id
/// hashes the line's bytes as well as its number.
#[derive(Debug)]
pub(crate) struct Occurrences {
    current: HashMap<u64, u64, BuildHasherDefault<PreHashed>>,
    previous: HashMap<u64, u64, BuildHasherDefault<PreHashed>>,
    generation: usize,
}

impl Occurrences {
    /// Counts with generations of `generation` lines (tests use small ones).
    pub fn with_generation(generation: usize) -> Occurrences {
        Occurrences { current: HashMap::default(), previous: HashMap::default(), generation: generation.max(1) }
    }

    /// The number of times a line with this hash was seen before (0 the first
    /// time), and counts this sighting.
    pub fn count(&mut self, hash: u64) -> u64 {
        if let Some(n) = self.current.get_mut(&hash) {
            let before = *n;
            *n += 1;
            return before;
        }
        let before = self.previous.remove(&hash).unwrap_or(0);
        self.current.insert(hash, before + 1);
        if self.current.len() >= self.generation {
            // The oldest generation goes; its map is reused, capacity and all.
            self.previous.clear();
            std::mem::swap(&mut self.current, &mut self.previous);
        }
        before
    }
}

impl Default for Occurrences {
    fn default() -> Self {
        Occurrences::with_generation(GENERATION)
    }
}

/// The keys are already uniform hashes: hashing them again is wasted work.
#[derive(Default)]
struct PreHashed(u64);

impl Hasher for PreHashed {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        // Only u64 keys are hashed here; fold anything else in all the same.
        for b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(*b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn repeats_are_numbered_in_order() {
        let mut o = Occurrences::default();
        assert_eq!([o.count(7), o.count(8), o.count(7), o.count(7), o.count(8)], [0, 0, 1, 2, 1]);
    }

    #[test]
    fn a_repeat_is_known_within_a_generation_and_forgotten_after_two() {
        let mut o = Occurrences::with_generation(4);
        assert_eq!(o.count(100), 0);
        // First of its generation: 6 other lines later (two generations less two) it is still known.
        for h in 1..=6 {
            assert_eq!(o.count(h), 0);
        }
        assert_eq!(o.count(100), 1);
        // That sighting was the last of its generation: 3 lines later it is known…
        let mut known = Occurrences::with_generation(4);
        let mut forgotten = Occurrences::with_generation(4);
        for o in [&mut known, &mut forgotten] {
            for h in [100, 1, 2, 3, 4, 5, 6, 100] {
                o.count(h);
            }
        }
        for h in 11..=13 {
            known.count(h);
            forgotten.count(h);
        }
        assert_eq!(known.count(100), 2);
        // …and after a fourth, a whole generation, it counts as new.
        forgotten.count(14);
        assert_eq!(forgotten.count(100), 0);
    }

    #[test]
    fn a_resumed_count_goes_on_as_the_whole_one() {
        let lines: Vec<u64> = (0..5000u64).map(|i| (i * 7) % 11 + (i / 1000) * 100).collect();
        let mut whole = Occurrences::with_generation(16);
        let counts: Vec<u64> = lines.iter().map(|h| whole.count(*h)).collect();
        assert!(counts.iter().any(|c| *c > 10) && counts.contains(&0), "the lines repeat");
        for cut in [0, 1, 17, 2500, 4999] {
            // A resumed reader replays the lines before its position, then goes on.
            let mut resumed = Occurrences::with_generation(16);
            for h in &lines[..cut] {
                resumed.count(*h);
            }
            let rest: Vec<u64> = lines[cut..].iter().map(|h| resumed.count(*h)).collect();
            assert_eq!(rest, counts[cut..], "cut at {cut}");
        }
    }

    #[test]
    fn the_maps_never_grow_past_one_generation() {
        let mut o = Occurrences::default();
        for h in 0..3 * GENERATION as u64 + 5 {
            o.count(h.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        assert!(o.current.len() < GENERATION && o.previous.len() == GENERATION);
        assert!(o.current.capacity() <= GENERATION && o.previous.capacity() <= GENERATION);
    }
}
