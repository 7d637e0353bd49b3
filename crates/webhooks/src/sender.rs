//! One attempt of one delivery over HTTP.
//!
//! A POST of the delivery's body with the Standard Webhooks headers and the
//! subscription's own, through a client that follows no redirect (a 3xx is
//! a failure: a redirect to an internal address must not be followed), uses
//! no proxy from the environment, connects only to addresses the
//! [`GuardedResolver`](crate::target::GuardedResolver) checked (unless
//! private targets are allowed), and gives up after the timeout (15 s by
//! default). At most 64 KiB of an answer is read: enough for an error's
//! first words, and a receiver cannot make the server hold more.

use crate::schedule::parse_retry_after;
use crate::target::{check_literal, GuardedResolver};
use crate::{payload, signing, WebhookError};
use callmeter_store::ClaimedDelivery;
use chrono::{DateTime, Duration, Utc};
use reqwest::redirect::Policy;
use std::sync::Arc;

/// Bytes of an answer read at most.
pub const MAX_ANSWER_BYTES: usize = 64 << 10;

/// Bytes of an answer kept in the attempt's error.
const ERROR_EXCERPT_BYTES: usize = 200;

/// What one attempt found.
#[derive(Debug, Clone)]
pub struct Sent {
    /// The target's status, when it answered.
    pub response_code: Option<u16>,
    /// A 2xx.
    pub delivered: bool,
    /// What its `Retry-After` asked for.
    pub retry_after: Option<Duration>,
    /// Why it failed.
    pub error: Option<String>,
    /// How long it took.
    pub latency_ms: u64,
}

/// Targets whose checked URL a sender keeps at most: past it, it forgets them all.
const KNOWN_TARGETS: usize = 4_096;

/// The HTTP side of deliveries.
pub struct Sender {
    client: reqwest::Client,
    allow_private: bool,
    /// Target URLs as parsed and checked for their form and literal address
    /// (what a subscription's URL gives every attempt the same answer to),
    /// by the subscription's text: parsing costs more than the rest of an
    /// attempt's preparation. Names are still resolved and checked at connect.
    known: parking_lot::Mutex<std::collections::HashMap<String, Result<reqwest::Url, String>>>,
}

impl Sender {
    pub fn new(allow_private: bool, timeout: std::time::Duration) -> Result<Sender, WebhookError> {
        let mut builder = reqwest::Client::builder()
            .redirect(Policy::none())
            .no_proxy()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("callmeter-webhooks/", env!("CARGO_PKG_VERSION")));
        if !allow_private {
            builder = builder.dns_resolver(Arc::new(GuardedResolver));
        }
        let client = builder.build().map_err(|e| WebhookError::Client(e.to_string()))?;
        Ok(Sender { client, allow_private, known: Default::default() })
    }

    /// Sends `claimed` once, signed at `now`.
    pub async fn send(&self, claimed: &ClaimedDelivery, now: DateTime<Utc>) -> Sent {
        let started = std::time::Instant::now();
        let mut sent = self.attempt(claimed, now).await;
        sent.latency_ms = started.elapsed().as_millis() as u64;
        sent
    }

    /// A target URL parsed, with its literal address checked; why not.
    fn checked_target(&self, url: &str) -> Result<reqwest::Url, String> {
        if let Some(known) = self.known.lock().get(url) {
            return known.clone();
        }
        let checked = crate::target::parse_target(url)
            .and_then(|parsed| check_literal(&parsed, self.allow_private).map(|()| parsed))
            .map_err(|e| e.to_string());
        let mut known = self.known.lock();
        if known.len() >= KNOWN_TARGETS {
            known.clear();
        }
        known.insert(url.to_owned(), checked.clone());
        checked
    }

    async fn attempt(&self, claimed: &ClaimedDelivery, now: DateTime<Utc>) -> Sent {
        let failed = |error: String| Sent {
            response_code: None,
            delivered: false,
            retry_after: None,
            error: Some(error),
            latency_ms: 0,
        };
        let sub = &claimed.subscription;
        let url = match self.checked_target(&sub.url) {
            Ok(url) => url,
            Err(e) => return failed(e),
        };
        let body = payload::body(&claimed.event);
        let id = claimed.delivery.webhook_id();
        let timestamp = now.timestamp();
        let signature = signing::signature_header(sub.signing_secrets(now), &id, timestamp, &body);
        let mut request = self.client.post(url);
        for (name, value) in &sub.headers {
            request = request.header(name, value);
        }
        // Names made once, not parsed from text at every attempt.
        use reqwest::header::{HeaderName, HeaderValue, CONTENT_TYPE};
        const WEBHOOK_ID: HeaderName = HeaderName::from_static("webhook-id");
        const WEBHOOK_TIMESTAMP: HeaderName = HeaderName::from_static("webhook-timestamp");
        const WEBHOOK_SIGNATURE: HeaderName = HeaderName::from_static("webhook-signature");
        let request = request
            .header(CONTENT_TYPE, HeaderValue::from_static("application/json"))
            .header(WEBHOOK_ID, id)
            .header(WEBHOOK_TIMESTAMP, HeaderValue::from(timestamp))
            .header(WEBHOOK_SIGNATURE, signature)
            .body(body);
        let mut response = match request.send().await {
            Ok(r) => r,
            Err(e) => return failed(describe(&e)),
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, now));
        let mut answer = Vec::new();
        let mut read_error = None;
        while answer.len() < MAX_ANSWER_BYTES {
            match response.chunk().await {
                Ok(Some(chunk)) => answer.extend_from_slice(&chunk[..chunk.len().min(MAX_ANSWER_BYTES - answer.len())]),
                Ok(None) => break,
                Err(e) => {
                    read_error = Some(describe(&e));
                    break;
                }
            }
        }
        let delivered = status.is_success();
        let error = if delivered {
            None
        } else if status.is_redirection() {
            Some(format!("HTTP {status}: redirects are not followed"))
        } else {
            let excerpt = printable(&String::from_utf8_lossy(&answer[..answer.len().min(ERROR_EXCERPT_BYTES)]));
            Some(match (excerpt.is_empty(), read_error) {
                (_, Some(e)) => format!("HTTP {status}: {e}"),
                (true, None) => format!("HTTP {status}"),
                (false, None) => format!("HTTP {status}: {excerpt}"),
            })
        };
        Sent { response_code: Some(status.as_u16()), delivered, retry_after, error, latency_ms: 0 }
    }
}

/// A receiver's answer as text fit to show: control characters (an escape
/// sequence that would drive an operator's terminal, a NUL) become spaces,
/// runs of them one; trimmed.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_control() { ' ' } else { c };
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
    }
    out.trim().to_owned()
}

/// An error with its causes, which say what failed (a refused address, a timeout).
fn describe(e: &reqwest::Error) -> String {
    let mut out = if e.is_timeout() { "timed out".to_owned() } else { e.to_string() };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::{printable, Sender, KNOWN_TARGETS};

    /// A refused target is refused at every attempt, from the kept answer
    /// too, and the answers kept are bounded.
    #[test]
    fn checked_targets_keep_their_answer_and_are_bounded() {
        let sender = Sender::new(false, std::time::Duration::from_secs(1)).unwrap();
        for _ in 0..2 {
            let refused = sender.checked_target("http://127.0.0.1:9/hook").unwrap_err();
            assert!(refused.contains("127.0.0.1"), "{refused}");
            assert!(sender.checked_target("ftp://example.com/").is_err());
            assert_eq!(sender.checked_target("https://example.com/hook").unwrap().as_str(), "https://example.com/hook");
        }
        for i in 0..KNOWN_TARGETS + 10 {
            sender.checked_target(&format!("https://example.com/{i}")).unwrap();
            assert!(sender.known.lock().len() <= KNOWN_TARGETS);
        }
        assert!(sender.checked_target("http://[::1]/hook").is_err(), "refused after the kept answers were let go");
    }

    /// An answer kept in an attempt's error can drive no terminal it is printed to.
    #[test]
    fn an_answer_is_kept_without_control_characters() {
        assert_eq!(printable("\u{1b}[31mRED\u{0}\r\nline two\t "), "[31mRED line two");
        assert_eq!(printable("plain {\"error\": \"busy\"}"), "plain {\"error\": \"busy\"}");
        assert_eq!(printable("\u{7}\u{8}"), "");
    }
}
