//! The tables that turn a request into an interface and an operation
//! (DESIGN §5): the REST route table, the user-agent table, the WebDAV
//! rules and the interface overrides. Each is read from the config file, and
//! each `Default` is the shipped table.

use crate::error::{Error, Result};
pub use crate::json_keys::JsonKeys;
use crate::text::{self, owned_cow, percent_decode};
use callmeter_model::{CallEvent, Interface, Operation};
use memchr::memmem;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::fmt;
use std::hash::{BuildHasherDefault, Hasher};
use std::net::IpAddr;
use std::str::FromStr;

/// All of the import tables, as they appear in the config file.
///
/// Every part is optional there; a part that is given replaces the shipped
/// default for that part as a whole.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ImportConfig {
    /// The REST route table.
    pub routes: RouteTable,
    /// The user-agent table.
    pub user_agents: UserAgentTable,
    /// Interface overrides by API key, user or client network.
    pub overrides: InterfaceOverrides,
    /// Where WebDAV is served.
    pub webdav: WebdavConfig,
    /// The keys nginx JSON logs are read from (`[import.nginx_json]`); each field given replaces its list.
    /// Boxed: its lists would make every holder of the tables large.
    pub nginx_json: Box<JsonKeys>,
}

/// One REST route: a method and a path pattern name an operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Route {
    /// The HTTP method, any case.
    pub method: String,
    /// The URL path, ending in `{path}` when the rest of the URL path is the
    /// event's `path` (given a leading `/`); without it, the URL path must be
    /// exactly this (a trailing `/` aside).
    pub pattern: String,
    /// What a request on this route does.
    pub operation: Operation,
    /// The query parameter whose value is the event's `cursor` (list routes).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cursor_param: Option<String>,
}

/// The REST route table: the first route that matches wins.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RouteTable(pub Vec<Route>);

impl Default for RouteTable {
    /// The platform's REST layout (DESIGN §5).
    fn default() -> Self {
        let r = |method: &str, pattern: &str, operation: Operation| Route {
            method: method.into(),
            pattern: pattern.into(),
            operation,
            cursor_param: None,
        };
        let base = "/api/rest/v1";
        RouteTable(vec![
            Route {
                cursor_param: Some("cursor".into()),
                ..r("GET", &format!("{base}/folders/{{path}}"), Operation::List)
            },
            r("POST", &format!("{base}/folders/{{path}}"), Operation::Mkdir),
            r("GET", &format!("{base}/files/{{path}}"), Operation::Read),
            r("POST", &format!("{base}/files/{{path}}"), Operation::Write),
            r("DELETE", &format!("{base}/files/{{path}}"), Operation::Delete),
            r("POST", &format!("{base}/file_actions/begin_upload/{{path}}"), Operation::Write),
            r("POST", &format!("{base}/file_actions/move/{{path}}"), Operation::Move),
            r("POST", &format!("{base}/file_actions/copy/{{path}}"), Operation::Copy),
            r("GET", &format!("{base}/file_actions/metadata/{{path}}"), Operation::Stat),
            r("POST", &format!("{base}/sessions"), Operation::Login),
        ])
    }
}

/// One user-agent rule: agents containing `contains` (any case) came in by `interface`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct UserAgentRule {
    /// A part of the user agent, matched without regard to case.
    pub contains: String,
    /// The interface of requests with such an agent.
    pub interface: Interface,
}

/// The user-agent table: the first rule that matches wins; no match is `rest`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct UserAgentTable(pub Vec<UserAgentRule>);

impl Default for UserAgentTable {
    /// WebDAV mini-redirectors first, then the platform's apps and SDKs,
    /// common HTTP libraries, and browsers last (apps built on browsers say `Mozilla` too).
    fn default() -> Self {
        use Interface::*;
        let rules: &[(&str, Interface)] = &[
            ("Microsoft-WebDAV-MiniRedir", Webdav),
            ("DavClnt", Webdav),
            ("Microsoft Office", Webdav),
            ("WebDAVFS", Webdav),
            ("WebDAVLib", Webdav),
            ("gvfs/", Webdav),
            ("davfs2", Webdav),
            ("DAVx5", Webdav),
            ("Files.com Desktop", Desktop),
            ("FilesDesktop", Desktop),
            ("Files.com Drive", Desktop),
            ("Files.com Mobile", Mobile),
            ("Files.com iOS", Mobile),
            ("Files.com Android", Mobile),
            ("FilesMobile", Mobile),
            ("Files.com ", Sdk),
            ("Files.com/", Sdk),
            ("files-sdk", Sdk),
            ("files-cli", Sdk),
            ("curl/", Sdk),
            ("Wget/", Sdk),
            ("python-requests", Sdk),
            ("python-urllib", Sdk),
            ("python-httpx", Sdk),
            ("aiohttp", Sdk),
            ("Go-http-client", Sdk),
            ("okhttp", Sdk),
            ("Apache-HttpClient", Sdk),
            ("Java/", Sdk),
            ("axios", Sdk),
            ("node-fetch", Sdk),
            ("undici", Sdk),
            ("Faraday", Sdk),
            ("rest-client", Sdk),
            ("Ruby", Sdk),
            ("GuzzleHttp", Sdk),
            ("libwww-perl", Sdk),
            ("PowerShell", Sdk),
            ("PostmanRuntime", Sdk),
            ("insomnia", Sdk),
            ("reqwest", Sdk),
            ("RestSharp", Sdk),
            ("Dart/", Sdk),
            ("HTTPie", Sdk),
            ("Mozilla/", Web),
            ("Opera/", Web),
        ];
        UserAgentTable(rules.iter().map(|(c, i)| UserAgentRule { contains: (*c).into(), interface: *i }).collect())
    }
}

/// Marks the calls of one API key, user or client network as a mount, an
/// iPaaS integration or share traffic, so that the effective-dated billing
/// rules apply to imported calls too. Every matcher given must match; at
/// least one must be given.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InterfaceOverride {
    /// The call's `api_key`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// The call's `user`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// A network the call's `client_ip` is in, as `10.1.0.0/16` or `2001:db8::/32` (or one address).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<IpNetwork>,
    /// `mount`, `ipaas` or `share`.
    pub interface: Interface,
    /// The name of the integration or mount, put in the event's `integration`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
}

/// The interface overrides, first match wins. None are shipped.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct InterfaceOverrides(pub Vec<InterfaceOverride>);

/// Where WebDAV is served.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebdavConfig {
    /// URL path prefixes under which every request is WebDAV. The prefix is
    /// taken off the event's path (keeping a leading `/`), so that it names
    /// the same file as the other interfaces do.
    pub roots: Vec<String>,
}

impl Default for WebdavConfig {
    fn default() -> Self {
        WebdavConfig { roots: vec!["/dav/".into(), "/webdav/".into()] }
    }
}

/// An IP network: an address and a prefix length.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct IpNetwork {
    addr: IpAddr,
    prefix: u8,
}

impl IpNetwork {
    /// Whether `ip` is in this network (IPv4-mapped IPv6 addresses count as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u32::MAX << (32 - u32::from(self.prefix)) };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 { 0 } else { u128::MAX << (128 - u32::from(self.prefix)) };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

impl FromStr for IpNetwork {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| Error::Config(format!("network {s:?}: {why}"));
        let (addr, prefix) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = addr.trim().parse().map_err(|_| bad("not an ip address"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p.trim().parse::<u8>().ok().filter(|p| *p <= max).ok_or_else(|| bad("bad prefix length"))?,
        };
        Ok(IpNetwork { addr, prefix })
    }
}

impl fmt::Display for IpNetwork {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

impl Serialize for IpNetwork {
    fn serialize<S: serde::Serializer>(&self, s: S) -> std::result::Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for IpNetwork {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// A WebDAV `Depth` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Depth {
    /// `0`: the resource itself.
    Zero,
    /// `1`: the resource and its children.
    One,
    /// `infinity`.
    Infinity,
}

impl Depth {
    /// `0`, `1` or `infinity` (any case); anything else is no depth.
    pub fn parse(b: &[u8]) -> Option<Depth> {
        match b {
            b"0" => Some(Depth::Zero),
            b"1" => Some(Depth::One),
            _ if b.eq_ignore_ascii_case(b"infinity") => Some(Depth::Infinity),
            _ => None,
        }
    }
}

/// One HTTP request as a log line gives it.
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpRequest<'a> {
    /// The method, as sent (`None` when the request line could not be read).
    pub method: Option<&'a [u8]>,
    /// The request target: a path with an optional query, or an absolute URL.
    pub target: &'a [u8],
    /// The `Depth` header, if logged.
    pub depth: Option<Depth>,
    /// The user agent, if logged.
    pub user_agent: Option<&'a [u8]>,
}

/// What a request was: interface, operation, and the event's path and cursor.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpClass {
    /// The interface, before overrides.
    pub interface: Interface,
    /// The operation.
    pub operation: Operation,
    /// The event's path.
    pub path: Option<String>,
    /// The pagination cursor, on list routes.
    pub cursor: Option<String>,
    /// The user agent as the event's text (from the per-reader cache).
    pub user_agent: Option<String>,
}

#[derive(Debug, Clone)]
struct CompiledRoute {
    method: Vec<u8>,
    /// The pattern up to `{path}`, or all of it.
    prefix: Vec<u8>,
    has_path: bool,
    operation: Operation,
    cursor_param: Option<Vec<u8>>,
}

/// The compiled tables: built once from an [`ImportConfig`], shared by readers.
#[derive(Debug, Clone)]
pub struct Classifier {
    config: ImportConfig,
    routes: Vec<CompiledRoute>,
    agents: Vec<(memmem::Finder<'static>, Interface)>,
    roots: Vec<Vec<u8>>,
}

impl Default for Classifier {
    fn default() -> Self {
        Classifier::new(&ImportConfig::default()).expect("the shipped tables are valid")
    }
}

/// The WebDAV methods that HTTP APIs do not use: a request with one is WebDAV wherever it goes.
const WEBDAV_METHODS: &[&[u8]] =
    &[b"PROPFIND", b"PROPPATCH", b"MKCOL", b"COPY", b"MOVE", b"LOCK", b"UNLOCK", b"SEARCH", b"REPORT"];

/// User agents remembered per reader, so that the table is searched once per agent.
const UA_CACHE_MAX: usize = 4096;

/// Per-reader memory of user agents already looked up in the table.
#[derive(Debug, Default)]
pub struct UaCache(HashMap<Box<[u8]>, AgentEntry, BuildHasherDefault<FastHash>>);

/// What the cache remembers of an agent: the table's interface and the agent as text.
type AgentEntry = (Option<Interface>, String);

/// A quick multiplicative hash (FxHash's): the cache holds our own lookups,
/// so it needs no protection from chosen collisions, and SipHash over every
/// user agent is a tenth of the time a line takes.
#[derive(Debug, Default, Clone, Copy)]
pub struct FastHash(u64);

impl Hasher for FastHash {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        const K: u64 = 0x51_7c_c1_b7_27_22_0a_95;
        let mut chunks = bytes.chunks_exact(8);
        for c in &mut chunks {
            let mut w = [0u8; 8];
            w.copy_from_slice(c);
            self.0 = (self.0.rotate_left(5) ^ u64::from_le_bytes(w)).wrapping_mul(K);
        }
        for &b in chunks.remainder() {
            self.0 = (self.0.rotate_left(5) ^ u64::from(b)).wrapping_mul(K);
        }
    }
}

impl Classifier {
    /// Checks and compiles the tables.
    pub fn new(config: &ImportConfig) -> Result<Classifier> {
        let mut routes = Vec::with_capacity(config.routes.0.len());
        for r in &config.routes.0 {
            let bad = |why: &str| Error::Config(format!("route {} {:?}: {why}", r.method, r.pattern));
            if r.method.is_empty() || !r.method.bytes().all(|c| c.is_ascii_alphabetic() || c == b'-') {
                return Err(bad("method must be letters"));
            }
            if !r.pattern.starts_with('/') {
                return Err(bad("pattern must start with /"));
            }
            let (prefix, has_path) = match r.pattern.find("{path}") {
                Some(i) if i + "{path}".len() == r.pattern.len() => (&r.pattern[..i], true),
                Some(_) => return Err(bad("{path} may only end the pattern")),
                None => (r.pattern.as_str(), false),
            };
            if r.pattern.contains('?') {
                return Err(bad("patterns match the path only, not the query"));
            }
            routes.push(CompiledRoute {
                method: r.method.to_ascii_uppercase().into_bytes(),
                prefix: prefix.as_bytes().to_vec(),
                has_path,
                operation: r.operation,
                cursor_param: r.cursor_param.as_ref().map(|c| c.as_bytes().to_vec()),
            });
        }
        let mut agents = Vec::with_capacity(config.user_agents.0.len());
        for a in &config.user_agents.0 {
            if a.contains.is_empty() {
                return Err(Error::Config("user agent rule with an empty `contains`".into()));
            }
            agents.push((memmem::Finder::new(a.contains.to_ascii_lowercase().as_bytes()).into_owned(), a.interface));
        }
        for o in &config.overrides.0 {
            if o.api_key.is_none() && o.user.is_none() && o.network.is_none() {
                return Err(Error::Config(format!("override to {} names no api_key, user or network", o.interface)));
            }
            if !matches!(o.interface, Interface::Mount | Interface::Ipaas | Interface::Share) {
                return Err(Error::Config(format!(
                    "override interface must be mount, ipaas or share, not {}",
                    o.interface
                )));
            }
        }
        let mut roots = Vec::new();
        for r in &config.webdav.roots {
            if !r.starts_with('/') {
                return Err(Error::Config(format!("webdav root {r:?} must start with /")));
            }
            let mut r = r.as_bytes().to_vec();
            if r.last() != Some(&b'/') {
                r.push(b'/');
            }
            roots.push(r);
        }
        Ok(Classifier { config: config.clone(), routes, agents, roots })
    }

    /// The tables this was built from.
    pub fn config(&self) -> &ImportConfig {
        &self.config
    }

    /// The interface the user-agent table gives, if any rule matches.
    pub fn user_agent_interface(&self, ua: &[u8]) -> Option<Interface> {
        // Lower-case into a stack buffer (the table's patterns are lower-cased too).
        let mut buf = [0u8; 512];
        let n = ua.len().min(buf.len());
        let lower = &mut buf[..n];
        lower.copy_from_slice(&ua[..n]);
        lower.make_ascii_lowercase();
        self.agents.iter().find(|(f, _)| f.find(lower).is_some()).map(|(_, i)| *i)
    }

    /// The table's interface for an agent, and the agent as text: both
    /// remembered, since a log repeats a few agents over and over.
    fn cached_agent(&self, ua: Option<&[u8]>, cache: &mut UaCache) -> (Option<Interface>, Option<String>) {
        let Some(ua) = ua.filter(|u| !u.is_empty() && *u != b"-") else { return (None, None) };
        if let Some((i, text)) = cache.0.get(ua) {
            return (*i, Some(text.clone()));
        }
        let i = self.user_agent_interface(ua);
        let text = text::owned(ua);
        if cache.0.len() >= UA_CACHE_MAX {
            cache.0.clear();
        }
        cache.0.insert(ua.into(), (i, text.clone()));
        (i, Some(text))
    }

    /// Classifies one HTTP request (DESIGN §5).
    pub fn classify_http(&self, req: &HttpRequest<'_>, cache: &mut UaCache) -> HttpClass {
        let (raw_path, query) = split_target(req.target);
        let method = req.method.unwrap_or(b"");
        let (agent, user_agent) = self.cached_agent(req.user_agent, cache);
        // GET, POST, PUT, DELETE and HEAD are most lines: no WebDAV method is 3 or 4 letters but LOCK, MOVE and COPY.
        let dav_method = method.len() >= 4 && WEBDAV_METHODS.iter().any(|m| m.eq_ignore_ascii_case(method));
        let root = self
            .roots
            .iter()
            .find(|r| raw_path.starts_with(r) || (raw_path.len() + 1 == r.len() && r.starts_with(raw_path)));
        if dav_method || root.is_some() || agent == Some(Interface::Webdav) {
            let rel = match root {
                Some(r) if raw_path.len() >= r.len() => &raw_path[r.len() - 1..],
                Some(_) => b"/",
                None => raw_path,
            };
            let path = (!rel.is_empty()).then(|| owned_cow(percent_decode(rel, false)));
            return HttpClass {
                interface: Interface::Webdav,
                operation: webdav_operation(method, req.depth, rel),
                path,
                cursor: None,
                user_agent,
            };
        }
        let interface = agent.unwrap_or(Interface::Rest);
        for r in &self.routes {
            if r.method.len() != method.len() || !r.method.eq_ignore_ascii_case(method) {
                continue;
            }
            let rest = if r.has_path {
                if let Some(rest) = raw_path.strip_prefix(r.prefix.as_slice()) {
                    rest
                } else if r.prefix.strip_suffix(b"/") == Some(raw_path) {
                    b""
                } else {
                    continue;
                }
            } else if raw_path == r.prefix.as_slice() || raw_path.strip_suffix(b"/") == Some(r.prefix.as_slice()) {
                b""
            } else {
                continue;
            };
            let path = r.has_path.then(|| {
                let rest = rest.strip_suffix(b"/").unwrap_or(rest);
                let decoded = percent_decode(rest, false);
                let mut p = String::with_capacity(decoded.len() + 1);
                if decoded.first() != Some(&b'/') {
                    p.push('/');
                }
                p.push_str(&text::lossy(&decoded));
                text::clip(p)
            });
            let cursor = r.cursor_param.as_deref().and_then(|name| query_param(query, name));
            return HttpClass { interface, operation: r.operation, path, cursor, user_agent };
        }
        let path = (!raw_path.is_empty()).then(|| owned_cow(percent_decode(raw_path, false)));
        HttpClass { interface, operation: Operation::Other, path, cursor: None, user_agent }
    }

    /// Applies the first matching override to an event.
    pub fn apply_overrides(&self, e: &mut CallEvent) {
        if self.config.overrides.0.is_empty() {
            return;
        }
        let ip: Option<IpAddr> = e.client_ip.as_deref().and_then(|s| s.trim_matches(['[', ']']).parse().ok());
        for o in &self.config.overrides.0 {
            let key_ok = o.api_key.as_ref().is_none_or(|k| e.api_key.as_ref() == Some(k));
            let user_ok = o.user.as_ref().is_none_or(|u| e.user.as_ref() == Some(u));
            let net_ok = o.network.as_ref().is_none_or(|n| ip.is_some_and(|ip| n.contains(ip)));
            if key_ok && user_ok && net_ok {
                e.interface = o.interface;
                if o.integration.is_some() {
                    e.integration.clone_from(&o.integration);
                }
                return;
            }
        }
    }
}

/// The operation of a WebDAV request (DESIGN §5).
pub fn webdav_operation(method: &[u8], depth: Option<Depth>, raw_path: &[u8]) -> Operation {
    let m = |name: &[u8]| method.eq_ignore_ascii_case(name);
    if m(b"GET") {
        Operation::Read
    } else if m(b"HEAD") {
        Operation::Stat
    } else if m(b"PUT") {
        Operation::Write
    } else if m(b"DELETE") {
        Operation::Delete
    } else if m(b"PROPFIND") {
        match depth {
            Some(Depth::Zero) => Operation::Stat,
            Some(Depth::One | Depth::Infinity) => Operation::List,
            None if raw_path.ends_with(b"/") => Operation::List,
            None => Operation::Stat,
        }
    } else if m(b"MKCOL") {
        Operation::Mkdir
    } else if m(b"MOVE") {
        Operation::Move
    } else if m(b"COPY") {
        Operation::Copy
    } else {
        Operation::Other
    }
}

/// The path and the query of a request target; an absolute URL loses its scheme and host.
pub fn split_target(target: &[u8]) -> (&[u8], &[u8]) {
    let mut t = target;
    if t.first() == Some(&b'/') {
        // The usual origin form: no scheme to take off.
    } else if let Some(i) = memmem::find(t, b"://") {
        if t[..i].iter().all(u8::is_ascii_alphabetic) {
            let after = &t[i + 3..];
            t = match memchr::memchr(b'/', after) {
                Some(j) => &after[j..],
                None => b"/",
            };
        }
    }
    // The path ends at `?` or `#`; the query at `#`.
    match memchr::memchr2(b'?', b'#', t) {
        Some(i) if t[i] == b'?' => {
            let q = &t[i + 1..];
            (&t[..i], memchr::memchr(b'#', q).map_or(q, |j| &q[..j]))
        }
        Some(i) => (&t[..i], &[]),
        None => (t, &[]),
    }
}

/// The decoded value of a query parameter (the first, non-empty).
pub fn query_param(query: &[u8], name: &[u8]) -> Option<String> {
    query.split(|c| *c == b'&').find_map(|kv| {
        let (k, v) = match memchr::memchr(b'=', kv) {
            Some(i) => (&kv[..i], &kv[i + 1..]),
            None => (kv, &b""[..]),
        };
        (k == name && !v.is_empty()).then(|| owned_cow(percent_decode(v, true)))
    })
}

/// The path of a URL (a `Destination` header): decoded, the DAV root taken off as for request paths.
pub fn destination_path(classifier: &Classifier, url: &[u8]) -> Option<String> {
    let (raw, _) = split_target(url);
    if raw.is_empty() {
        return None;
    }
    let rel = match classifier.roots.iter().find(|r| raw.starts_with(r)) {
        Some(r) => &raw[r.len() - 1..],
        None => raw,
    };
    Some(owned_cow(percent_decode(rel, false)))
}

#[cfg(test)]
mod tests;
