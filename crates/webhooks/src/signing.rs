//! Standard Webhooks signatures: secrets, the `webhook-signature` header,
//! and its check (the receiver's side, for tests and the README).
//!
//! A secret is `whsec_` followed by the base64 of its key bytes (callmeter
//! makes 32 random bytes). The signature of a delivery is `v1,` and the
//! base64 HMAC-SHA256, keyed with the decoded bytes, of
//! `{webhook-id}.{webhook-timestamp}.{body}`. While a rotated secret still
//! signs (24 hours), the header carries one signature per secret, separated
//! by spaces; a receiver accepts the delivery when any one matches.

use base64::engine::general_purpose::STANDARD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use rand::RngCore;
use sha2::Sha256;

/// The prefix of every secret.
pub const SECRET_PREFIX: &str = "whsec_";

/// Key bytes of a new secret.
const SECRET_BYTES: usize = 32;

/// A new random secret, `whsec_` + base64 of 32 random bytes.
pub fn new_secret() -> String {
    let mut raw = [0u8; SECRET_BYTES];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("{SECRET_PREFIX}{}", STANDARD.encode(raw))
}

/// The key bytes of a secret; `None` when it is not `whsec_` + base64.
pub fn secret_key(secret: &str) -> Option<Vec<u8>> {
    STANDARD.decode(secret.strip_prefix(SECRET_PREFIX)?).ok().filter(|k| !k.is_empty())
}

/// A secret's key made ready to sign: HMAC keyed once, which costs about
/// as much as signing a delivery's body (and decoding the secret more).
#[derive(Clone)]
pub struct SigningKey(Hmac<Sha256>);

impl SigningKey {
    /// The key of `secret`; `None` when it is not `whsec_` + base64.
    pub fn of(secret: &str) -> Option<SigningKey> {
        secret_key(secret).map(|key| SigningKey::new(&key))
    }

    fn new(key: &[u8]) -> SigningKey {
        SigningKey(Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes keys of any length"))
    }

    /// Appends `v1,` + the base64 HMAC-SHA256 of `id.timestamp.body` to
    /// `out` (`timestamp`: the header's decimal text), with no allocation
    /// of its own: an attempt signs once per secret.
    fn sign_into(&self, out: &mut String, id: &str, timestamp: &str, body: &[u8]) {
        let mut mac = self.0.clone();
        mac.update(id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.update(b".");
        mac.update(body);
        out.push_str("v1,");
        STANDARD.encode_string(mac.finalize().into_bytes(), out);
    }
}

/// Characters of one signature: `v1,` and the base64 of 32 bytes.
const SIGNATURE_CHARS: usize = 3 + 44;

/// `v1,` + the base64 HMAC-SHA256 of `id.timestamp.body` under `key`.
pub fn sign(key: &[u8], id: &str, timestamp: i64, body: &[u8]) -> String {
    signatures([SigningKey::new(key)], id, &timestamp.to_string(), body)
}

/// The `webhook-signature` header: one signature per key, space-separated
/// (`timestamp`: the `webhook-timestamp` header's text).
pub fn signatures<K: std::borrow::Borrow<SigningKey>>(
    keys: impl IntoIterator<Item = K>,
    id: &str,
    timestamp: &str,
    body: &[u8],
) -> String {
    let mut out = String::with_capacity(2 * SIGNATURE_CHARS + 1);
    for key in keys {
        if !out.is_empty() {
            out.push(' ');
        }
        key.borrow().sign_into(&mut out, id, timestamp, body);
    }
    out
}

/// The `webhook-signature` header: one signature per secret, space-separated.
/// Secrets that cannot be read are left out (none is stored: the server makes them).
pub fn signature_header<'s>(
    secrets: impl IntoIterator<Item = &'s str>,
    id: &str,
    timestamp: i64,
    body: &[u8],
) -> String {
    signatures(secrets.into_iter().filter_map(SigningKey::of), id, &timestamp.to_string(), body)
}

/// Whether a `webhook-signature` header holds a signature of this delivery under `secret`.
pub fn verify(secret: &str, id: &str, timestamp: i64, body: &[u8], header: &str) -> bool {
    let Some(key) = secret_key(secret) else { return false };
    let mut mac = Hmac::<Sha256>::new_from_slice(&key).expect("HMAC takes keys of any length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    header.split(' ').filter_map(|s| s.strip_prefix("v1,")).filter_map(|b64| STANDARD.decode(b64).ok()).any(|sig| {
        // Constant time, as a receiver should compare.
        mac.clone().verify_slice(&sig).is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The Standard Webhooks specification's own example.
    #[test]
    fn the_specifications_example_signs_as_published() {
        let key = secret_key("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        let body = br#"{"test": 2432232314}"#;
        let sig = sign(&key, "msg_p5jXN8AQM9LWM0D4loKWxJek", 1614265330, body);
        assert_eq!(sig, "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=");
        let header = format!("v1,bm90IGl0 {sig}");
        assert!(verify(
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            1614265330,
            body,
            &header
        ));
        assert!(!verify("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw", "msg_other", 1614265330, body, &header));
    }

    #[test]
    fn new_secrets_are_distinct_and_readable_and_rotation_signs_twice() {
        let (a, b) = (new_secret(), new_secret());
        assert_ne!(a, b);
        assert!(a.starts_with("whsec_"));
        assert_eq!(secret_key(&a).unwrap().len(), 32);
        assert_eq!(secret_key("whsec_"), None);
        assert_eq!(secret_key("nope"), None);
        let header = signature_header([a.as_str(), b.as_str()], "msg_1", 5, b"{}");
        assert_eq!(header.split(' ').count(), 2);
        assert!(verify(&a, "msg_1", 5, b"{}", &header) && verify(&b, "msg_1", 5, b"{}", &header));
        assert!(!verify(&new_secret(), "msg_1", 5, b"{}", &header));
    }
}
