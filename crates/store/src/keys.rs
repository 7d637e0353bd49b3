//! Byte layouts of the keys in every keyspace.
//!
//! Keys sort the way they are scanned: an account's rows are contiguous
//! (the account is length-prefixed, so no account is a prefix of another)
//! and times sort numerically (big-endian with the sign bit flipped).

/// `len(account) || account`: the prefix of every per-account key.
pub fn account_prefix(account: &str) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + account.len() + 24);
    push_account(&mut k, account);
    k
}

/// Appends the length-prefixed account to a key.
pub fn push_account(k: &mut Vec<u8>, account: &str) {
    // DESIGN §3 limits account names to 64 bytes, so one length byte is enough.
    debug_assert!(account.len() <= 255);
    k.push(account.len() as u8);
    k.extend_from_slice(account.as_bytes());
}

/// Reads the account at the start of a per-account key.
pub fn read_account(k: &[u8]) -> Option<&str> {
    let len = *k.first()? as usize;
    std::str::from_utf8(k.get(1..1 + len)?).ok()
}

/// Appends a signed integer so that byte order is numeric order.
pub fn push_i64(k: &mut Vec<u8>, v: i64) {
    k.extend_from_slice(&((v as u64) ^ (1 << 63)).to_be_bytes());
}

/// Reads an integer written by [`push_i64`].
pub fn read_i64(b: &[u8]) -> Option<i64> {
    let raw: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some((u64::from_be_bytes(raw) ^ (1 << 63)) as i64)
}

/// Appends a big-endian u64.
pub fn push_u64(k: &mut Vec<u8>, v: u64) {
    k.extend_from_slice(&v.to_be_bytes());
}

/// Reads a big-endian u32.
pub fn read_u32(b: &[u8]) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(..4)?.try_into().ok()?))
}

/// Reads a big-endian u64.
pub fn read_u64(b: &[u8]) -> Option<u64> {
    Some(u64::from_be_bytes(b.get(..8)?.try_into().ok()?))
}

/// Appends a string with a two-byte length, for the optional dimensions.
pub fn push_str16(k: &mut Vec<u8>, s: &str) {
    let s = truncate(s, u16::MAX as usize);
    k.extend_from_slice(&(s.len() as u16).to_be_bytes());
    k.extend_from_slice(s.as_bytes());
}

/// Reads a string written by [`push_str16`]; returns it and the bytes after it.
pub fn read_str16(b: &[u8]) -> Option<(&str, &[u8])> {
    let len = u16::from_be_bytes(b.get(..2)?.try_into().ok()?) as usize;
    let s = std::str::from_utf8(b.get(2..2 + len)?).ok()?;
    Some((s, &b[2 + len..]))
}

/// The longest prefix of `s` of at most `max` bytes that ends on a char boundary.
fn truncate(s: &str, max: usize) -> &str {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while !s.is_char_boundary(end) {
        end -= 1;
    }
    &s[..end]
}

/// The key of a call block: account, earliest call time, block sequence.
pub fn block_key(account: &str, min_time_ns: i64, seq: u64) -> Vec<u8> {
    let mut k = account_prefix(account);
    push_i64(&mut k, min_time_ns);
    push_u64(&mut k, seq);
    k
}

/// The start of an account's blocks whose earliest call is at or after `time_ns`.
pub fn block_scan_start(account: &str, time_ns: i64) -> Vec<u8> {
    let mut k = account_prefix(account);
    push_i64(&mut k, time_ns);
    k
}

/// The key of an account's 15-minute bucket (totals) or the prefix of its breakdown rows.
pub fn bucket_key(account: &str, bucket: i64) -> Vec<u8> {
    let mut k = Vec::with_capacity(1 + account.len() + 8 + 24);
    push_bucket_key(&mut k, account, bucket);
    k
}

/// Appends the key of an account's bucket (see [`bucket_key`]).
pub fn push_bucket_key(k: &mut Vec<u8>, account: &str, bucket: i64) {
    push_account(k, account);
    push_i64(k, bucket);
}

/// The key of an adjustment: account, period start, sequence.
pub fn adjustment_key(account: &str, period_start_ns: i64, seq: u64) -> Vec<u8> {
    let mut k = account_prefix(account);
    push_i64(&mut k, period_start_ns);
    push_u64(&mut k, seq);
    k
}

/// The longest subscription id a key holds (its length is one byte). The
/// store's entry points answer a longer one as no such subscription, so
/// that an id from a URL never reaches [`subscription_key`].
pub const MAX_SUBSCRIPTION_ID_LEN: usize = 255;

/// The key of a subscription (and the prefix of its outbox rows and
/// attempts): the account, then the length-prefixed id.
pub fn subscription_key(account: &str, id: &str) -> Vec<u8> {
    let mut k = account_prefix(account);
    assert!(id.len() <= MAX_SUBSCRIPTION_ID_LEN, "a subscription id of {} bytes", id.len());
    k.push(id.len() as u8);
    k.extend_from_slice(id.as_bytes());
    k
}

/// The key after every key that starts with `prefix` (for a range's end);
/// `None` when there is none (a prefix of `0xff` bytes only).
pub fn prefix_end(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return Some(end);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_sort_numerically() {
        let mut keys: Vec<Vec<u8>> =
            [-5i64, i64::MIN, 0, 3, i64::MAX, -1].iter().map(|t| block_scan_start("a", *t)).collect();
        keys.sort();
        let back: Vec<i64> = keys.iter().map(|k| read_i64(&k[2..]).unwrap()).collect();
        assert_eq!(back, vec![i64::MIN, -5, -1, 0, 3, i64::MAX]);
    }

    #[test]
    fn no_account_is_a_prefix_of_another() {
        let a = block_key("ab", 0, 0);
        let b = account_prefix("a");
        assert!(!a.starts_with(&b));
    }

    #[test]
    fn prefix_ends_are_past_every_key_of_the_prefix() {
        assert_eq!(prefix_end(b"ab").unwrap(), b"ac");
        assert_eq!(prefix_end(&[1, 0xff]).unwrap(), vec![2]);
        assert_eq!(prefix_end(&[0xff]), None);
        let sub = subscription_key("acme", "wh1");
        let mut row = sub.clone();
        row.extend_from_slice(&u64::MAX.to_be_bytes());
        assert!(row < prefix_end(&sub).unwrap());
        assert!(!subscription_key("acme", "wh12").starts_with(&sub), "ids are length-prefixed");
    }

    #[test]
    fn str16_round_trip_and_truncation() {
        let mut k = Vec::new();
        push_str16(&mut k, "héllo");
        push_str16(&mut k, "");
        let (a, rest) = read_str16(&k).unwrap();
        let (b, rest) = read_str16(rest).unwrap();
        assert_eq!((a, b, rest.len()), ("héllo", "", 0));
        assert_eq!(truncate("é", 1), "");
    }
}
