//! The custom headers a subscription may add to its deliveries (an
//! `Authorization` for the receiver, a routing key): bounded in count and
//! size, and never one that the delivery itself sets or that belongs to the
//! connection rather than the message.

use crate::WebhookError;
use std::collections::BTreeMap;

/// Custom headers a subscription may have at most.
pub const MAX_HEADERS: usize = 10;
/// Bytes of a header's name at most.
pub const MAX_HEADER_NAME_BYTES: usize = 64;
/// Bytes of a header's value at most.
pub const MAX_HEADER_VALUE_BYTES: usize = 1_024;

/// Names a delivery sets itself, or that are hop-by-hop (RFC 9110 §7.6.1).
pub const RESERVED_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "host",
    "content-length",
    "content-type",
    "content-encoding",
    "expect",
    "user-agent",
];

/// The headers, checked; names lower-cased.
pub fn check_headers(headers: &BTreeMap<String, String>) -> Result<BTreeMap<String, String>, WebhookError> {
    if headers.len() > MAX_HEADERS {
        return Err(WebhookError::Header(format!("headers: {} given, at most {MAX_HEADERS}", headers.len())));
    }
    let mut out = BTreeMap::new();
    for (name, value) in headers {
        let lower = name.to_ascii_lowercase();
        let bad = |why: &str| Err(WebhookError::Header(format!("header {name:?}: {why}")));
        if lower.is_empty() || lower.len() > MAX_HEADER_NAME_BYTES {
            return bad(&format!("a name of 1 to {MAX_HEADER_NAME_BYTES} bytes"));
        }
        if !lower.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)) {
            return bad("not a header name");
        }
        if RESERVED_HEADERS.contains(&lower.as_str()) || lower.starts_with("webhook-") {
            return bad("set by the delivery itself, or hop-by-hop: not a custom header");
        }
        if value.len() > MAX_HEADER_VALUE_BYTES {
            return bad(&format!("a value of at most {MAX_HEADER_VALUE_BYTES} bytes"));
        }
        if !value.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b)) {
            return bad("a value of visible ASCII");
        }
        if out.insert(lower, value.trim().to_owned()).is_some() {
            return bad("given twice");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(name: &str, value: &str) -> Result<BTreeMap<String, String>, WebhookError> {
        check_headers(&BTreeMap::from([(name.to_owned(), value.to_owned())]))
    }

    #[test]
    fn custom_headers_are_bounded_and_never_the_deliverys_own() {
        assert_eq!(one("Authorization", "Bearer x").unwrap()["authorization"], "Bearer x");
        for name in [
            "webhook-id",
            "Webhook-Signature",
            "Connection",
            "transfer-encoding",
            "Host",
            "Content-Type",
            "bad name",
            "",
        ] {
            assert!(one(name, "v").is_err(), "{name}");
        }
        assert!(one("x-a", "line\nbreak").is_err());
        assert!(one("x-a", &"v".repeat(MAX_HEADER_VALUE_BYTES + 1)).is_err());
        assert!(one(&"n".repeat(MAX_HEADER_NAME_BYTES + 1), "v").is_err());
        let many: BTreeMap<String, String> = (0..=MAX_HEADERS).map(|i| (format!("x-{i}"), "v".into())).collect();
        assert!(check_headers(&many).is_err());
        let twice = BTreeMap::from([("X-A".to_owned(), "1".to_owned()), ("x-a".to_owned(), "2".to_owned())]);
        assert!(check_headers(&twice).is_err());
    }
}
