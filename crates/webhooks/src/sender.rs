//! One attempt of one delivery over HTTP.
//!
//! A POST of the delivery's body with the Standard Webhooks headers and the
//! subscription's own, on a kept HTTP/1.1 connection or a new one
//! (`connections.rs`; rustls for https). It follows no redirect (a 3xx is a
//! failure: a redirect to an internal address must not be followed), uses
//! no proxy, connects only to addresses the
//! [`GuardedResolver`](crate::target::GuardedResolver) checked (unless
//! private targets are allowed), and gives up after the timeout (15 s by
//! default). At most 64 KiB of an answer is read: enough for an error's
//! first words, and a receiver cannot make the server hold more.

use crate::connections::{Connector, KeptConnections};
use crate::schedule::parse_retry_after;
use crate::signing::SigningKey;
use crate::target::{check_literal, GuardedResolver};
use crate::{http1, payload, signing, WebhookError};
use callmeter_store::{ClaimedDelivery, Subscription};
use chrono::{DateTime, Duration, Utc};
use hyper_util::client::legacy::connect::HttpConnector;
use std::sync::Arc;
use url::Url;

/// Bytes of an answer read at most.
pub const MAX_ANSWER_BYTES: usize = 64 << 10;

/// Bytes of an answer kept in the attempt's error.
const ERROR_EXCERPT_BYTES: usize = 200;

/// Targets whose checked URL a sender keeps at most, and secrets whose
/// signing key: past it, it forgets them all.
const KNOWN_TARGETS: usize = 4_096;

const AGENT: &str = concat!("callmeter-webhooks/", env!("CARGO_PKG_VERSION"));

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

/// The HTTP side of deliveries.
pub struct Sender {
    /// Makes connections: checked addresses, the connect timeout, TLS.
    connector: Connector,
    /// Idle connections, by origin.
    kept: KeptConnections,
    allow_private: bool,
    timeout: std::time::Duration,
    /// Target URLs as parsed and checked for their form and literal address
    /// (what a subscription's URL gives every attempt the same answer to),
    /// by the subscription's text: parsing costs more than the rest of an
    /// attempt's preparation. Names are still resolved and checked at connect.
    known: Memo<Arc<Result<Url, String>>>,
    /// Signing keys by secret (`None`: not a secret), made once.
    keys: Memo<Option<SigningKey>>,
}

/// Answers made once per text (a subscription's URL, a secret): at most
/// [`KNOWN_TARGETS`], past which all are forgotten.
struct Memo<V>(parking_lot::Mutex<hashbrown::HashMap<String, V, foldhash::fast::RandomState>>);

impl<V> Default for Memo<V> {
    fn default() -> Self {
        Memo(Default::default())
    }
}

impl<V: Clone> Memo<V> {
    /// The answer for `text`, made by `make` if it is not known.
    fn get(&self, text: &str, make: impl FnOnce() -> V) -> V {
        let mut known = self.0.lock();
        if known.len() >= KNOWN_TARGETS && !known.contains_key(text) {
            known.clear();
        }
        known.entry_ref(text).or_insert_with(make).clone()
    }
}

impl Sender {
    /// A sender that keeps at most `idle_per_target` idle connections to a
    /// target (the attempts it makes at once to one are enough to reuse).
    pub fn new(
        allow_private: bool,
        timeout: std::time::Duration,
        idle_per_target: usize,
    ) -> Result<Sender, WebhookError> {
        let mut http = HttpConnector::new_with_resolver(GuardedResolver { allow_private });
        http.enforce_http(false);
        http.set_connect_timeout(Some(timeout));
        http.set_nodelay(true);
        let mut roots = rustls::RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| WebhookError::Client(e.to_string()))?
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .wrap_connector(http);
        let kept = KeptConnections::new(idle_per_target);
        Ok(Sender {
            connector: https,
            kept,
            allow_private,
            timeout,
            known: Default::default(),
            keys: Default::default(),
        })
    }

    /// Sends `claimed` once, as `webhook_id` (its delivery's), signed at `now`.
    pub async fn send(&self, claimed: &ClaimedDelivery, webhook_id: &str, now: DateTime<Utc>) -> Sent {
        let started = std::time::Instant::now();
        let mut sent = self.attempt(claimed, webhook_id, now).await;
        sent.latency_ms = started.elapsed().as_millis() as u64;
        sent
    }

    /// A target URL parsed, with its literal address checked; why not.
    fn checked_target(&self, url: &str) -> Arc<Result<Url, String>> {
        self.known.get(url, || {
            Arc::new(
                crate::target::parse_target(url)
                    .and_then(|parsed| check_literal(&parsed, self.allow_private).map(|()| parsed))
                    .map_err(|e| e.to_string()),
            )
        })
    }

    /// The `webhook-signature` of a delivery: one signature per secret of
    /// `sub` that signs at `now`, with keys made once a secret.
    fn signature(&self, sub: &Subscription, now: DateTime<Utc>, id: &str, timestamp: &str, body: &[u8]) -> String {
        let keys = sub.signing_secrets(now).filter_map(|secret| self.keys.get(secret, || SigningKey::of(secret)));
        signing::signatures(keys, id, timestamp, body)
    }

    /// The request of one attempt (`http1::post`): the body, the Standard
    /// Webhooks headers and the subscription's own; to `url`'s path and
    /// query, its `host` from `url` (the request goes on a connection to its
    /// origin).
    fn request(&self, claimed: &ClaimedDelivery, id: &str, url: &Url, now: DateTime<Utc>) -> Result<Vec<u8>, String> {
        let sub = &claimed.subscription;
        let body = payload::body(&claimed.event);
        let timestamp = now.timestamp().to_string();
        let signature = self.signature(sub, now, id, &timestamp, &body);
        let ours = [
            ("user-agent", AGENT),
            ("content-type", "application/json"),
            ("webhook-id", id),
            ("webhook-timestamp", &timestamp),
            ("webhook-signature", &signature),
        ];
        let headers = sub.headers.iter().map(|(name, value)| (name.as_str(), value.as_str())).chain(ours);
        let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
        let host = &url[url::Position::BeforeHost..url::Position::AfterPort];
        let mut out = Vec::with_capacity(512 + body.len());
        http1::post(&mut out, path, host, headers, &body)
            .ok_or_else(|| "cannot make the request: a header name or value that cannot be sent".to_owned())?;
        Ok(out)
    }

    async fn attempt(&self, claimed: &ClaimedDelivery, webhook_id: &str, now: DateTime<Utc>) -> Sent {
        let failed = |error: String| Sent {
            response_code: None,
            delivered: false,
            retry_after: None,
            error: Some(error),
            latency_ms: 0,
        };
        let checked = self.checked_target(&claimed.subscription.url);
        let url = match &*checked {
            Ok(url) => url,
            Err(e) => return failed(e.clone()),
        };
        // One deadline for the whole attempt: connecting, the answer's head and its body.
        let deadline = tokio::time::Instant::now() + self.timeout;
        let make = || self.request(claimed, webhook_id, url, now);
        let answer = match self.kept.send(&self.connector, url, MAX_ANSWER_BYTES, deadline, make).await {
            Ok(answer) => answer,
            Err(e) => return failed(e),
        };
        let status = answer.status;
        let retry_after = answer.retry_after.as_deref().and_then(|v| parse_retry_after(v, now));
        let (answer, read_error) = (answer.body, answer.read_error);
        let delivered = status.is_success();
        let error = if delivered {
            None
        } else if status.is_redirection() {
            Some(format!("HTTP {status}: redirects are not followed"))
        } else {
            let excerpt = excerpt(&answer);
            Some(match (excerpt.is_empty(), read_error) {
                // In brackets: the receiver said nothing; this is what reading it found.
                (true, Some(e)) => format!("HTTP {status} ({e})"),
                (false, Some(e)) => format!("HTTP {status}: {excerpt} (then: {e})"),
                (true, None) => format!("HTTP {status}"),
                (false, None) => format!("HTTP {status}: {excerpt}"),
            })
        };
        Sent { response_code: Some(status.as_u16()), delivered, retry_after, error, latency_ms: 0 }
    }
}

/// The start of an answer kept in an attempt's error: at most
/// [`ERROR_EXCERPT_BYTES`], cut where a character ends, fit to show.
fn excerpt(answer: &[u8]) -> String {
    let text = String::from_utf8_lossy(&answer[..answer.len().min(ERROR_EXCERPT_BYTES + 4)]);
    let mut end = text.len().min(ERROR_EXCERPT_BYTES);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    // A character the cut of the read above split is no part of the answer.
    let kept = text[..end].trim_end_matches('\u{fffd}');
    printable(kept)
}

/// A receiver's answer as text fit to show: control characters (an escape
/// sequence that would drive an operator's terminal, a NUL) and the
/// characters that hide or reorder text (a right-to-left override would
/// make a listing read otherwise than it is) become spaces, runs of them
/// one; trimmed.
fn printable(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        let c = if c.is_control() || callmeter_model::misleads(c) { ' ' } else { c };
        if !(c == ' ' && out.ends_with(' ')) {
            out.push(c);
        }
    }
    out.trim().to_owned()
}

#[cfg(test)]
mod tests {
    use super::{excerpt, printable, Sender, Sent, KNOWN_TARGETS};
    use tokio::io::AsyncReadExt;

    /// A POST of `{}` to `url` through the sender's connections.
    async fn post(sender: &Sender, url: &str) -> Result<crate::connections::Answer, String> {
        let url = url::Url::parse(url).unwrap();
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        let make = || {
            let mut out = Vec::new();
            let path = &url[url::Position::BeforePath..url::Position::AfterQuery];
            crate::http1::post(&mut out, path, &url[url::Position::BeforeHost..url::Position::AfterPort], [], b"{}")
                .unwrap();
            Ok(out)
        };
        sender.kept.send(&sender.connector, &url, 1024, deadline, make).await
    }

    /// An https target is spoken to in TLS (its first bytes are a
    /// handshake), and a peer that is no trusted server fails the attempt.
    #[tokio::test]
    async fn https_targets_get_tls() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let peer = tokio::spawn(async move {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut first = [0u8; 3];
            socket.read_exact(&mut first).await.unwrap();
            first
        });
        let sender = Sender::new(true, std::time::Duration::from_secs(5), 4).unwrap();
        let sent = post(&sender, &format!("https://127.0.0.1:{port}/hook")).await;
        assert!(sent.is_err(), "a peer that never answers the handshake is no target");
        assert_eq!(peer.await.unwrap(), [0x16, 0x03, 0x01], "a TLS handshake record");
    }

    /// Connections left idle to one target are bounded: of 8 made at once,
    /// the pool keeps 2 and closes the rest once their answers are in.
    #[tokio::test]
    async fn idle_connections_to_a_target_are_bounded() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        use tokio::io::AsyncWriteExt;
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let open = std::sync::Arc::new(AtomicUsize::new(0));
        let all_in = std::sync::Arc::new(tokio::sync::Barrier::new(8));
        let counted = open.clone();
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = listener.accept().await.unwrap();
                let (open, all_in) = (counted.clone(), all_in.clone());
                open.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 4096];
                    let mut got = Vec::new();
                    // One request (a head and the two-byte body), answered once all 8 are in.
                    while !got.ends_with(b"{}") {
                        match socket.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(n) => got.extend_from_slice(&buf[..n]),
                        }
                    }
                    all_in.wait().await;
                    socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
                    while !matches!(socket.read(&mut buf).await, Ok(0) | Err(_)) {}
                    open.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        let sender = std::sync::Arc::new(Sender::new(true, std::time::Duration::from_secs(5), 2).unwrap());
        let sends = (0..8).map(|_| {
            let sender = sender.clone();
            tokio::spawn(async move { post(&sender, &format!("http://127.0.0.1:{port}/hook")).await })
        });
        for send in sends.collect::<Vec<_>>() {
            assert_eq!(send.await.unwrap().unwrap().status, 200);
        }
        assert_eq!(sender.kept.idle_count(), 2, "connections kept idle");
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
        while open.load(Ordering::SeqCst) > 2 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(open.load(Ordering::SeqCst), 2, "idle connections kept");
    }

    /// A name that resolves to a refused address is refused at connect,
    /// not only when the subscription is made (no DNS-rebinding window).
    #[tokio::test]
    async fn a_name_resolving_to_a_refused_address_is_refused_at_connect() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let sender = Sender::new(false, std::time::Duration::from_secs(5), 4).unwrap();
        let e = post(&sender, &format!("http://localhost:{port}/hook")).await.err().unwrap();
        assert!(e.contains("localhost resolves to refused addresses only"), "{e}");
        assert!(
            tokio::time::timeout(std::time::Duration::from_millis(200), listener.accept()).await.is_err(),
            "no connection"
        );
    }

    /// A refused target is refused at every attempt, from the kept answer
    /// too, and the answers kept are bounded.
    #[test]
    fn checked_targets_keep_their_answer_and_are_bounded() {
        let sender = Sender::new(false, std::time::Duration::from_secs(1), 4).unwrap();
        for _ in 0..2 {
            let refused = (*sender.checked_target("http://127.0.0.1:9/hook")).clone().unwrap_err();
            assert!(refused.contains("127.0.0.1"), "{refused}");
            assert!(sender.checked_target("ftp://example.com/").is_err());
            let checked = sender.checked_target("https://example.com/hook");
            assert_eq!(checked.as_ref().as_ref().unwrap().as_str(), "https://example.com/hook");
        }
        for i in 0..KNOWN_TARGETS + 10 {
            assert!(sender.checked_target(&format!("https://example.com/{i}")).is_ok());
            assert!(sender.known.0.lock().len() <= KNOWN_TARGETS);
        }
        assert!(sender.checked_target("http://[::1]/hook").is_err(), "refused after the kept answers were let go");
    }

    /// A claimed change for a subscription to `url`.
    fn claimed(url: &str) -> callmeter_store::ClaimedDelivery {
        use callmeter_model::{Action, Interface, Operation};
        use callmeter_store::{Change, DeliveredEvent, Delivery, DeliveryState, OutboxEvent, Subscription, Watch};
        let now = chrono::Utc::now();
        let folder = (Watch::Folder { folder: "/".into() }, vec![Action::Create]);
        let subscription = Subscription::new(("acme", "wh_1"), url, folder, "whsec_AAAA", now);
        let change = Change {
            seq: 1,
            account: "acme".into(),
            call_id: "c1".into(),
            time: now,
            arrival: now,
            operation: Operation::Write,
            interface: Interface::Rest,
            path: "/a".into(),
            destination: None,
            user: None,
            api_key: None,
        };
        callmeter_store::ClaimedDelivery {
            delivery: Delivery {
                id: 1,
                account: "acme".into(),
                subscription: "wh_1".into(),
                event: OutboxEvent::Change { seq: 1, action: Action::Create },
                state: DeliveryState::Pending,
                attempts: 0,
                next_attempt_at: now,
                created_at: now,
            },
            subscription: std::sync::Arc::new(subscription),
            event: DeliveredEvent::Change(change, Action::Create),
        }
    }

    /// A receiver on loopback that serves each connection with `each` (its
    /// socket and a count of requests to add to); its port and that count.
    async fn receiver<F, Fut>(each: F) -> (u16, std::sync::Arc<std::sync::atomic::AtomicUsize>)
    where
        F: Fn(tokio::net::TcpStream, std::sync::Arc<std::sync::atomic::AtomicUsize>) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + Send + 'static,
    {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let requests = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = requests.clone();
        tokio::spawn(async move {
            loop {
                let (socket, _) = listener.accept().await.unwrap();
                tokio::spawn(each(socket, counted.clone()));
            }
        });
        (port, requests)
    }

    /// Reads one request (its head and a JSON body); false if the connection closed first.
    async fn read_request(socket: &mut tokio::net::TcpStream) -> bool {
        let mut buf = vec![0u8; 8192];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") || !got.ends_with(b"}") {
            match socket.read(&mut buf).await {
                Ok(0) | Err(_) => return false,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
        }
        true
    }

    /// A receiver that answers one request a connection (HTTP/1.1, no
    /// `connection: close`) and closes it when the next comes: each reuse of
    /// a kept connection fails under the request, which goes again on a new
    /// one, not on another kept one (four are kept, each closed when used);
    /// every attempt is delivered, none sent more than twice.
    #[tokio::test]
    async fn a_kept_connection_closed_under_a_request_is_replaced() {
        use std::sync::atomic::Ordering;
        use tokio::io::AsyncWriteExt;
        let (port, requests) = receiver(|mut socket, requests| async move {
            if !read_request(&mut socket).await {
                return;
            }
            requests.fetch_add(1, Ordering::SeqCst);
            socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
            // The next request's first bytes, then the close.
            let _ = socket.read(&mut [0u8; 64]).await;
        })
        .await;
        let sender = Sender::new(true, std::time::Duration::from_secs(5), 4).unwrap();
        let c = claimed(&format!("http://127.0.0.1:{port}/hook"));
        // Four connections at once, kept.
        let first = four_at_once(&sender, &c).await;
        assert!(first.iter().all(|s| s.delivered), "{first:?}");
        for i in 0..10 {
            let sent = sender.send(&c, &c.delivery.webhook_id(), chrono::Utc::now()).await;
            assert!(sent.delivered, "attempt {i}: {:?}", sent.error);
        }
        let sent = requests.load(Ordering::SeqCst);
        assert!(sent <= 14, "{sent} requests answered");
    }

    /// A kept connection the target closes a while after it read the
    /// request (it may have done the request's work) fails the attempt: the
    /// request is not sent again, which a close at once would have it be.
    #[tokio::test]
    async fn a_kept_connection_closed_late_under_a_request_is_not_sent_again() {
        use std::sync::atomic::Ordering;
        use tokio::io::AsyncWriteExt;
        let (port, requests) = receiver(|mut socket, requests| async move {
            for answered in [true, false] {
                if !read_request(&mut socket).await {
                    return;
                }
                requests.fetch_add(1, Ordering::SeqCst);
                if answered {
                    socket.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n").await.unwrap();
                }
            }
            tokio::time::sleep(std::time::Duration::from_millis(1_500)).await;
        })
        .await;
        let sender = Sender::new(true, std::time::Duration::from_secs(5), 4).unwrap();
        let c = claimed(&format!("http://127.0.0.1:{port}/hook"));
        assert!(sender.send(&c, &c.delivery.webhook_id(), chrono::Utc::now()).await.delivered);
        let sent = sender.send(&c, &c.delivery.webhook_id(), chrono::Utc::now()).await;
        assert!(!sent.delivered);
        assert!(sent.error.as_deref().unwrap().contains("closed before the answer"), "{:?}", sent.error);
        assert_eq!(requests.load(Ordering::SeqCst), 2, "the second request was not sent again");
    }

    /// A target that sends a second answer a moment after each first: the
    /// stray answer is found on the idle connection, and no connection to
    /// it is kept from then on, so that no request reads a stray answer as
    /// its own (every send here is judged by its own 200).
    #[tokio::test]
    async fn a_target_that_answers_twice_gets_no_kept_connection() {
        use std::sync::atomic::Ordering;
        use tokio::io::AsyncWriteExt;
        // The second answer a moment later, or in the same write as the first.
        for late in [true, false] {
            let (port, connections) = receiver(move |mut socket, connections| async move {
                connections.fetch_add(1, Ordering::SeqCst);
                let (first, stray) =
                    (&b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[..], &b"HTTP/1.1 500 Stray\r\n\r\n"[..]);
                while read_request(&mut socket).await {
                    if late {
                        socket.write_all(first).await.unwrap();
                        tokio::time::sleep(std::time::Duration::from_millis(2)).await;
                        let _ = socket.write_all(stray).await;
                    } else {
                        let _ = socket.write_all(&[first, stray].concat()).await;
                    }
                }
            })
            .await;
            let sender = Sender::new(true, std::time::Duration::from_secs(5), 4).unwrap();
            let c = claimed(&format!("http://127.0.0.1:{port}/hook"));
            for i in 0..5 {
                let sent = sender.send(&c, &c.delivery.webhook_id(), chrono::Utc::now()).await;
                assert!(sent.delivered, "late {late}, send {i}: {:?}", sent.error);
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            }
            assert_eq!(sender.kept.idle_count(), 0, "late {late}: none kept");
            assert_eq!(connections.load(Ordering::SeqCst), 5, "late {late}: a connection a send");
        }
    }

    /// Four sends of `c` at once.
    async fn four_at_once(sender: &Sender, c: &callmeter_store::ClaimedDelivery) -> [Sent; 4] {
        let (now, id) = (chrono::Utc::now(), c.delivery.webhook_id());
        let (a, b, c2, d) = tokio::join!(
            sender.send(c, &id, now),
            sender.send(c, &id, now),
            sender.send(c, &id, now),
            sender.send(c, &id, now)
        );
        [a, b, c2, d]
    }

    /// An excerpt ends where a character does, never in a replacement sign
    /// of a character cut in two.
    #[test]
    fn an_excerpt_is_cut_between_characters() {
        let answer = "é".repeat(150);
        let kept = excerpt(answer.as_bytes());
        assert_eq!(kept, "é".repeat(100));
        let mut odd = vec![b'a'; 199];
        odd.extend_from_slice("€€".as_bytes());
        assert_eq!(excerpt(&odd), "a".repeat(199));
        assert_eq!(excerpt(b"short"), "short");
    }

    /// An answer kept in an attempt's error can drive no terminal it is printed to.
    #[test]
    fn an_answer_is_kept_without_control_characters() {
        assert_eq!(printable("\u{1b}[31mRED\u{0}\r\nline two\t "), "[31mRED line two");
        assert_eq!(printable("plain {\"error\": \"busy\"}"), "plain {\"error\": \"busy\"}");
        assert_eq!(printable("\u{7}\u{8}"), "");
        assert_eq!(printable("ok \u{202e}txt.exe\u{202c} done"), "ok txt.exe done", "no reordering");
        assert_eq!(printable("a\u{200b}b\u{2028}c\u{feff}"), "a b c", "nothing hidden");
    }
}
