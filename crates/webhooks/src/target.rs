//! Which targets a webhook may be sent to (DESIGN §8).
//!
//! A webhook makes the server send requests to an address a customer chose:
//! without a check, a subscription to `http://169.254.169.254/…` or
//! `http://10.0.0.5:6379/` would reach the cloud's metadata service or an
//! internal one from inside the network. So `http` and `https` targets only,
//! and no address on loopback, private, link-local, CGNAT, metadata,
//! multicast, unspecified, documentation or otherwise reserved ranges, for
//! IPv4, IPv6, and IPv4 inside IPv6 (mapped, compatible, NAT64, 6to4).
//!
//! The check runs twice: when a subscription is made (a literal address, or
//! every address its name resolves to) and at every connection, by the
//! resolver the sender connects through ([`GuardedResolver`]): it resolves
//! the name, drops refused addresses, and hands the client only the ones it
//! checked, so a name that resolves elsewhere the second time (DNS
//! rebinding) gains nothing. Redirects are never followed (`sender.rs`).
//! An operator may allow private targets (`[webhooks] allow_private_targets`):
//! the tests deliver to loopback.

use crate::WebhookError;
use hyper_util::client::legacy::connect::dns::Name;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use url::Url;

/// Why an address is refused, or `None` when a webhook may be sent there.
pub fn refused_ip(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => refused_v4(v4),
        IpAddr::V6(v6) => refused_v6(v6),
    }
}

fn refused_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    Some(match (a, b, c) {
        (0, ..) => "unspecified (0.0.0.0/8)",
        (127, ..) => "loopback",
        (10, ..) | (172, 16..=31, _) | (192, 168, _) => "private",
        (169, 254, _) => "link-local (and cloud metadata, 169.254.169.254)",
        (100, 64..=127, _) => "shared address space (CGNAT, 100.64.0.0/10)",
        (192, 0, 0) => "reserved (192.0.0.0/24)",
        (192, 0, 2) | (198, 51, 100) | (203, 0, 113) => "documentation",
        (198, 18..=19, _) => "reserved for benchmarks (198.18.0.0/15)",
        (224..=239, ..) => "multicast",
        (240..=255, ..) => "reserved (240.0.0.0/4, broadcast)",
        _ => return None,
    })
}

fn refused_v6(ip: Ipv6Addr) -> Option<&'static str> {
    let s = ip.segments();
    if let Some(v4) = ip.to_ipv4_mapped() {
        return refused_v4(v4).map(|_| "an IPv4-mapped address in a refused range");
    }
    Some(match s {
        [0, 0, 0, 0, 0, 0, 0, 0] => "unspecified",
        [0, 0, 0, 0, 0, 0, 0, 1] => "loopback",
        // IPv4-compatible (deprecated) and the rest of ::/96.
        [0, 0, 0, 0, 0, 0, ..] => "IPv4-compatible (::/96)",
        [0x64, 0xff9b, 0, 0, 0, 0, hi, lo] => {
            return refused_v4(v4_of(hi, lo)).map(|_| "a NAT64 address of a refused IPv4 range");
        }
        // SIIT's IPv4-translated addresses (::ffff:0:0/96) reach the IPv4 address they hold.
        [0, 0, 0, 0, 0xffff, 0, hi, lo] => {
            return refused_v4(v4_of(hi, lo)).map(|_| "an IPv4-translated address of a refused IPv4 range");
        }
        [0x2002, hi, lo, ..] => {
            return refused_v4(v4_of(hi, lo)).map(|_| "a 6to4 address of a refused IPv4 range");
        }
        [0x64, 0xff9b, 1, ..] => "NAT64 for local use (64:ff9b:1::/48)",
        // Teredo tunnels to the IPv4 addresses it holds (the client's
        // obfuscated): no webhook receiver is reached that way.
        [0x2001, 0, ..] => "Teredo (2001::/32)",
        [0x2001, 0x0002, 0, ..] => "reserved for benchmarks (2001:2::/48)",
        [0x2001, 0x0010..=0x002f, ..] => "ORCHID (2001:10::/28, 2001:20::/28)",
        [0x3fff, 0..=0x0fff, ..] => "documentation (3fff::/20)",
        [0x0100, 0, 0, 0, ..] => "discard-only (100::/64)",
        [0x2001, 0x0db8, ..] => "documentation",
        [0xfd00, 0x0ec2, ..] | [0xfc00..=0xfdff, ..] => "unique local (and cloud metadata, fd00:ec2::254)",
        [0xfe80..=0xfebf, ..] => "link-local",
        [0xfec0..=0xfeff, ..] => "site-local (deprecated)",
        [0xff00..=0xffff, ..] => "multicast",
        _ => return None,
    })
}

fn v4_of(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// A target URL's form: `http` or `https` with a host; an error saying why not.
pub fn parse_target(url: &str) -> Result<Url, WebhookError> {
    // The URL parser drops tabs and line breaks: the URL stored would not be the one given.
    if url.chars().any(char::is_control) {
        return Err(WebhookError::Target(format!("{url:?} has a control character (a line break, a tab)")));
    }
    let parsed = Url::parse(url).map_err(|e| WebhookError::Target(format!("{url:?} is not a URL: {e}")))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err(WebhookError::Target(format!("{url:?}: only http and https targets")));
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err(WebhookError::Target(format!("{url:?} has no host")));
    }
    if parsed.port() == Some(0) {
        return Err(WebhookError::Target(format!("{url:?}: port 0 is no port to send to")));
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err(WebhookError::Target(format!("{url:?}: no credentials in the URL (use a custom header)")));
    }
    // A fragment is never sent: stored, the URL would say more than is posted to.
    if parsed.fragment().is_some() {
        return Err(WebhookError::Target(format!("{url:?} has a fragment (#…), which is never sent: leave it out")));
    }
    Ok(parsed)
}

/// A URL's target, what per-target limits count and a subscription's
/// header values stay with: scheme, host and port (`http://h:80`).
pub fn target_of(url: &str) -> String {
    match Url::parse(url) {
        Ok(u) => format!("{}://{}:{}", u.scheme(), u.host_str().unwrap_or(""), u.port_or_known_default().unwrap_or(0)),
        Err(_) => url.to_owned(),
    }
}

/// The literal address of a URL's host, if it is one.
pub fn literal_ip(url: &Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(IpAddr::V4(v4)),
        url::Host::Ipv6(v6) => Some(IpAddr::V6(v6)),
        url::Host::Domain(_) => None,
    }
}

/// Name lookups running at most in this process. A lookup runs on a
/// blocking thread until the system resolver answers, which may be long
/// after the attempt that asked gave up (a resolver that never answers:
/// its timeouts times its attempts). Unbounded, such lookups filled the
/// blocking threads the engine's store calls need, and every webhook
/// stalled (found by a hostile trial: 525 threads). Past the bound a lookup
/// waits, within its attempt's deadline.
const MAX_LOOKUPS: usize = 32;

/// The slots of [`MAX_LOOKUPS`].
static LOOKUPS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(MAX_LOOKUPS);

/// The addresses `host` resolves to (with `port`), through the system
/// resolver on a blocking thread that holds one of [`LOOKUPS`] until the
/// resolver answers, also when the caller stopped waiting.
pub(crate) async fn lookup(host: &str, port: u16) -> std::io::Result<Vec<SocketAddr>> {
    lookup_with(&LOOKUPS, host, port, |host, port| {
        std::net::ToSocketAddrs::to_socket_addrs(&(host, port)).map(Iterator::collect)
    })
    .await
}

/// [`lookup`] with its slots and its resolver given (tests).
async fn lookup_with(
    slots: &'static tokio::sync::Semaphore,
    host: &str,
    port: u16,
    resolve: fn(&str, u16) -> std::io::Result<Vec<SocketAddr>>,
) -> std::io::Result<Vec<SocketAddr>> {
    let slot = slots.acquire().await.map_err(std::io::Error::other)?;
    let host = host.to_owned();
    tokio::task::spawn_blocking(move || {
        let _slot = slot;
        resolve(&host, port)
    })
    .await
    .map_err(std::io::Error::other)?
}

/// Checks a target when a subscription is made: its form, and its literal
/// address or every address its name resolves to, unless private targets are allowed.
pub async fn check_target(url: &str, allow_private: bool) -> Result<Url, WebhookError> {
    let parsed = parse_target(url)?;
    if allow_private {
        return Ok(parsed);
    }
    if let Some(ip) = literal_ip(&parsed) {
        return refuse_if(ip).map(|()| parsed);
    }
    let host = parsed.host_str().expect("parse_target checked the host").to_owned();
    let port = parsed.port_or_known_default().unwrap_or(443);
    let addrs: Vec<SocketAddr> =
        lookup(&host, port).await.map_err(|e| WebhookError::Target(format!("{host}: cannot resolve: {e}")))?;
    if addrs.is_empty() {
        return Err(WebhookError::Target(format!("{host}: resolves to no address")));
    }
    for a in addrs {
        refuse_if(a.ip()).map_err(|e| WebhookError::Target(format!("{host} resolves to {}: {e}", a.ip())))?;
    }
    Ok(parsed)
}

fn refuse_if(ip: IpAddr) -> Result<(), WebhookError> {
    match refused_ip(ip) {
        Some(why) => Err(WebhookError::Target(format!(
            "{ip} is {why}: webhook targets must be public addresses (an operator may allow private ones)"
        ))),
        None => Ok(()),
    }
}

/// Checks a literal address at send time (the resolver is not asked for one).
pub fn check_literal(url: &Url, allow_private: bool) -> Result<(), WebhookError> {
    match literal_ip(url) {
        Some(ip) if !allow_private => refuse_if(ip),
        _ => Ok(()),
    }
}

/// The resolver deliveries connect through: the system's, minus refused
/// addresses (unless the operator allows them).
#[derive(Debug, Clone, Copy)]
pub struct GuardedResolver {
    /// Hand over every address, refused ones too (`allow_private_targets`).
    pub allow_private: bool,
}

type Resolved = Result<std::vec::IntoIter<SocketAddr>, Box<dyn std::error::Error + Send + Sync>>;

impl tower::Service<Name> for GuardedResolver {
    type Response = std::vec::IntoIter<SocketAddr>;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    type Future = std::pin::Pin<Box<dyn std::future::Future<Output = Resolved> + Send>>;

    fn poll_ready(&mut self, _: &mut std::task::Context<'_>) -> std::task::Poll<Result<(), Self::Error>> {
        std::task::Poll::Ready(Ok(()))
    }

    fn call(&mut self, name: Name) -> Self::Future {
        let (host, allow_private) = (name.as_str().to_owned(), self.allow_private);
        Box::pin(async move {
            let all: Vec<SocketAddr> = lookup(&host, 0).await?;
            if allow_private {
                return Ok(all.into_iter());
            }
            let allowed: Vec<SocketAddr> = all.iter().copied().filter(|a| refused_ip(a.ip()).is_none()).collect();
            if allowed.is_empty() {
                let shown: Vec<String> = all.iter().map(|a| a.ip().to_string()).collect();
                let e =
                    WebhookError::Target(format!("{host} resolves to refused addresses only ({})", shown.join(", ")));
                return Err(Box::new(e) as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(allowed.into_iter())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refused_and_allowed_addresses() {
        for refused in [
            "127.0.0.1",
            "127.9.9.9",
            "::1",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "100.127.255.255",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "240.0.0.1",
            "192.0.2.1",
            "::ffff:127.0.0.1",
            "::ffff:10.1.2.3",
            "::127.0.0.1",
            "fd00:ec2::254",
            "fc00::1",
            "fe80::1",
            "ff02::1",
            "2001:db8::1",
            "64:ff9b::a00:1",
            "2002:a00:1::",
            "::ffff:0:127.0.0.1",
            "::ffff:0:a9fe:a9fe",
            "64:ff9b:1::808:808",
            "2001:0:4136:e378:8000:63bf:3fff:fdd2",
            "2001:2::1",
            "2001:10::1",
            "2001:20::1",
            "3fff::1",
        ] {
            let ip: IpAddr = refused.parse().unwrap();
            assert!(refused_ip(ip).is_some(), "{refused} is refused");
        }
        for allowed in [
            "93.184.216.34",
            "8.8.8.8",
            "172.32.0.1",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
            "::ffff:0:808:808",
            "2001:4860:4860::8888",
            "2a00:1450:4001::1",
        ] {
            let ip: IpAddr = allowed.parse().unwrap();
            assert_eq!(refused_ip(ip), None, "{allowed} is allowed");
        }
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_and_no_credentials() {
        assert!(parse_target("https://hooks.example.com/x").is_ok());
        assert!(parse_target("http://[::1]:8080/").is_ok());
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "not a url",
            "https://user:pw@example.com/",
            "unix:/run/x",
            "https://8.8.8.8:0/",
            "http://8.8.8.8/\r\nX-Injected: 1",
            "http://exam\tple.com/",
            "https://hooks.example.com/x#frag",
            "https://hooks.example.com/x#",
        ] {
            assert!(parse_target(bad).is_err(), "{bad}");
        }
        let url = parse_target("http://[::ffff:127.0.0.1]/").unwrap();
        assert!(check_literal(&url, false).is_err());
        assert!(check_literal(&url, true).is_ok());
    }

    #[tokio::test]
    async fn names_that_resolve_to_refused_addresses_are_refused() {
        let e = check_target("http://localhost:9/", false).await.unwrap_err();
        assert!(e.to_string().contains("localhost resolves to"), "{e}");
        assert!(check_target("http://127.0.0.1:9/", false).await.is_err());
        assert!(check_target("http://localhost:9/", true).await.is_ok(), "allowed by the operator");
        use tower::Service;
        let localhost: Name = "localhost".parse().unwrap();
        let refused = GuardedResolver { allow_private: false }.call(localhost.clone()).await;
        assert!(refused.is_err(), "the connection's resolver refuses it too");
        let allowed = GuardedResolver { allow_private: true }.call(localhost).await.unwrap();
        assert!(allowed.into_iter().all(|a| a.ip().is_loopback()), "allowed by the operator");
    }

    /// Lookups hold their slot until the resolver answers, also once their
    /// caller gave up: at most the bound run at once, and a resolver that
    /// hangs cannot take more threads than that.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn lookups_are_bounded_also_when_given_up() {
        use std::sync::atomic::{AtomicUsize, Ordering};
        static SLOTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(2);
        static RUNNING: AtomicUsize = AtomicUsize::new(0);
        static MOST: AtomicUsize = AtomicUsize::new(0);
        fn slow(_: &str, _: u16) -> std::io::Result<Vec<std::net::SocketAddr>> {
            let now = RUNNING.fetch_add(1, Ordering::SeqCst) + 1;
            MOST.fetch_max(now, Ordering::SeqCst);
            std::thread::sleep(std::time::Duration::from_millis(300));
            RUNNING.fetch_sub(1, Ordering::SeqCst);
            Ok(vec![])
        }
        for _ in 0..6 {
            let given_up = tokio::time::timeout(
                std::time::Duration::from_millis(20),
                super::lookup_with(&SLOTS, "slow.example", 80, slow),
            )
            .await;
            assert!(given_up.is_err(), "the caller gave up");
        }
        assert_eq!(SLOTS.available_permits(), 0, "the given-up lookups still hold their slots");
        let answered = super::lookup_with(&SLOTS, "slow.example", 80, slow).await.unwrap();
        assert!(answered.is_empty());
        assert_eq!(MOST.load(Ordering::SeqCst), 2, "two at once at most");
    }
}
