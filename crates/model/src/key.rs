//! The dedup key of a call: (account, id) hashed to 128 bits (DESIGN §3).

use serde::{Deserialize, Serialize};
use std::fmt;

/// 128 bits of BLAKE3 over the account and the id.
///
/// 128 bits because a 64-bit hash makes collisions likely at a few billion
/// ids (the birthday bound is about 2^32), and a collision silently drops a
/// call as a "duplicate"; at 128 bits that never happens in practice. The
/// key is stored on disk: its derivation must never change.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct DedupKey(pub [u8; 16]);

/// BLAKE3 key-derivation context: keeps these hashes apart from any other use of BLAKE3.
const CONTEXT: &str = "callmeter 2026 dedup key: account and call id";

impl DedupKey {
    /// The key of call `id` of `account`. The account is length-prefixed, so
    /// no two (account, id) pairs hash the same input.
    pub fn of(account: &str, id: &str) -> DedupKey {
        let mut h = blake3::Hasher::new_derive_key(CONTEXT);
        h.update(&(account.len() as u64).to_le_bytes());
        h.update(account.as_bytes());
        h.update(id.as_bytes());
        let mut key = [0u8; 16];
        key.copy_from_slice(&h.finalize().as_bytes()[..16]);
        DedupKey(key)
    }

    /// The 16 bytes.
    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }
}

impl fmt::Display for DedupKey {
    /// Lowercase hex, for logs.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn the_separator_is_unambiguous() {
        assert_ne!(DedupKey::of("ab", "c"), DedupKey::of("a", "bc"));
        assert_ne!(DedupKey::of("acme", ""), DedupKey::of("", "acme"));
        assert_ne!(DedupKey::of("acme", "1"), DedupKey::of("acme2", "1"));
        assert_eq!(DedupKey::of("acme", "1"), DedupKey::of("acme", "1"));
    }

    #[test]
    fn keys_are_pinned() {
        // Stored on disk: this value must never change.
        let k = DedupKey::of("acme", "sample-00001");
        assert_eq!(k.to_string().len(), 32);
        assert_eq!(k.to_string(), PINNED);
    }

    const PINNED: &str = "c806a8371141d379097e96f2bb947d39";

    #[test]
    fn no_collisions_in_a_small_crowd() {
        let keys: HashSet<_> = (0..100_000).map(|i| DedupKey::of("acme", &i.to_string())).collect();
        assert_eq!(keys.len(), 100_000);
    }
}
