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
//! most twice that).
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
//!
//! Each generation is an open-addressed table of its own, probed linearly
//! and never more than half full, so a line's count is most often one cache
//! line away. A line counted in the current generation may still be in the one
//! before; it is looked up there only when the current one lacks it, so the
//! stale count is never read, and goes when that generation does.

/// Lines per generation: 7/8 of 2^18. Each generation's table has 2^19
/// slots of 16 bytes at most (8 MiB), grown as it fills, so both take
/// 16 MiB at most and a short source little.
pub const GENERATION: usize = 229_376;

/// Slots a table starts with.
const FIRST_SLOTS: usize = 1 << 10;

/// The counts of recent lines, by a 64-bit hash of their content.
///
/// Two different lines whose hashes collide share a count: the second is
/// numbered after the first. That changes which occurrence number it gets,
/// the same way on every read, and never merges two calls, since the id
/// hashes the line's bytes as well as its number.
#[derive(Debug)]
pub(crate) struct Occurrences {
    current: Table,
    previous: Table,
    generation: usize,
}

impl Occurrences {
    /// Counts with generations of `generation` lines (tests use small ones).
    pub fn with_generation(generation: usize) -> Occurrences {
        let generation = generation.max(1);
        // Where a hash lies is this process's secret: the hashes of lines
        // are not (the key of an unnamed source is public), and lines made
        // to share their slots would make every lookup walk them all. A
        // line's count depends on equal hashes alone, never on its slot.
        let seed = std::hash::BuildHasher::hash_one(&std::collections::hash_map::RandomState::new(), generation);
        Occurrences { current: Table::new(generation, seed), previous: Table::new(generation, seed), generation }
    }

    /// The number of times a line with this hash was seen before (0 the first
    /// time), and counts this sighting.
    pub fn count(&mut self, hash: u64) -> u64 {
        if let Some(n) = self.current.get_mut(hash) {
            let before = *n;
            *n += 1;
            return before;
        }
        let before = self.previous.get_mut(hash).map_or(0, |n| *n);
        self.current.insert_new(hash, before + 1);
        if self.current.len >= self.generation {
            // The oldest generation goes; its table is reused, slots and all.
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

/// One generation's counts: linear probing, at most half full.
#[derive(Debug)]
struct Table {
    /// A power of two in number; a slot with a count of 0 is empty.
    slots: Vec<Slot>,
    len: usize,
    /// The most slots: twice a generation, to the next power of two.
    max_slots: usize,
    seed: u64,
}

#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    hash: u64,
    count: u64,
}

impl Table {
    fn new(generation: usize, seed: u64) -> Table {
        let max_slots = (2 * generation).next_power_of_two();
        Table { slots: vec![Slot::default(); FIRST_SLOTS.min(max_slots)], len: 0, max_slots, seed }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot a hash's probe starts at: the top bits of the seeded hash
    /// times an odd constant (Fibonacci hashing: every bit of it counts).
    fn home(&self, hash: u64) -> usize {
        let bits = self.slots.len().trailing_zeros();
        ((hash ^ self.seed).wrapping_mul(0x9e37_79b9_7f4a_7c15) >> (63 - bits) >> 1) as usize
    }

    fn get_mut(&mut self, hash: u64) -> Option<&mut u64> {
        let mask = self.mask();
        let mut i = self.home(hash);
        loop {
            let slot = self.slots[i];
            if slot.count == 0 {
                return None;
            }
            if slot.hash == hash {
                return Some(&mut self.slots[i].count);
            }
            i = (i + 1) & mask;
        }
    }

    /// Adds a hash that is not in the table.
    fn insert_new(&mut self, hash: u64, count: u64) {
        debug_assert!(count > 0, "a count of 0 marks an empty slot");
        if 2 * (self.len + 1) > self.slots.len() && self.slots.len() < self.max_slots {
            self.grow();
        }
        assert!(2 * self.len < self.slots.len(), "a generation never fills more than half its table");
        self.place(Slot { hash, count });
        self.len += 1;
    }

    fn place(&mut self, slot: Slot) {
        let mask = self.mask();
        let mut i = self.home(slot.hash);
        while self.slots[i].count != 0 {
            i = (i + 1) & mask;
        }
        self.slots[i] = slot;
    }

    fn grow(&mut self) {
        let slots = vec![Slot::default(); 2 * self.slots.len()];
        let old = std::mem::replace(&mut self.slots, slots);
        for slot in old.into_iter().filter(|s| s.count != 0) {
            self.place(slot);
        }
    }

    fn clear(&mut self) {
        self.slots.fill(Slot::default());
        self.len = 0;
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

    /// The counts as first written (two hash maps, a line moved out of the
    /// older one when seen again): the tables must give the same.
    struct Reference {
        current: std::collections::HashMap<u64, u64>,
        previous: std::collections::HashMap<u64, u64>,
        generation: usize,
    }

    impl Reference {
        fn count(&mut self, hash: u64) -> u64 {
            if let Some(n) = self.current.get_mut(&hash) {
                *n += 1;
                return *n - 1;
            }
            let before = self.previous.remove(&hash).unwrap_or(0);
            self.current.insert(hash, before + 1);
            if self.current.len() >= self.generation {
                self.previous.clear();
                std::mem::swap(&mut self.current, &mut self.previous);
            }
            before
        }
    }

    #[test]
    fn the_tables_count_as_the_maps_did() {
        for generation in [1, 3, 64, 1000] {
            let mut tables = Occurrences::with_generation(generation);
            let mut maps = Reference { current: Default::default(), previous: Default::default(), generation };
            let mut state = 0x2545_f491_4f6c_dd1du64;
            for i in 0..40 * generation as u64 + 500 {
                // Mostly new lines, some repeats near and far, and hashes that share low bits.
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                let hash = match state % 10 {
                    0..=5 => state,
                    6 | 7 => (i.saturating_sub(state % 8)) << 20,
                    8 => (i.saturating_sub(state % (3 * generation as u64 + 1))) << 20,
                    _ => state & 0xffff_0000_0000_03ff,
                };
                assert_eq!(tables.count(hash), maps.count(hash), "line {i} of generation {generation}");
            }
        }
    }

    #[test]
    fn hashes_made_to_share_bits_do_not_pile_up() {
        // 100,000 hashes alike in their low 40 bits (what a crafted log could
        // give an unseeded table): each still lies near where its probe starts.
        let mut o = Occurrences::default();
        let hashes: Vec<u64> = (0..100_000u64).map(|i| (i << 40) | 0xab_cdef_0123).collect();
        for h in &hashes {
            assert_eq!(o.count(*h), 0);
        }
        let t = &o.current;
        let farthest = hashes
            .iter()
            .map(|h| {
                let home = t.home(*h);
                (0..t.slots.len()).find(|k| t.slots[(home + k) & t.mask()].hash == *h).expect("counted")
            })
            .max();
        assert!(farthest < Some(100), "a probe walked {farthest:?} slots");
        assert_eq!(o.count(hashes[77]), 1);
    }

    #[test]
    fn the_maps_never_grow_past_one_generation() {
        let mut o = Occurrences::default();
        for h in 0..3 * GENERATION as u64 + 5 {
            o.count(h.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        }
        assert!(o.current.len < GENERATION && o.previous.len == GENERATION);
        assert!(o.current.slots.len() <= 1 << 19 && o.previous.slots.len() <= 1 << 19);
    }
}
