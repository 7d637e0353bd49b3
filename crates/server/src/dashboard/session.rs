//! The dashboard's sessions: who signed in, kept in memory on the server.
//!
//! The browser holds only a random session id, in an HttpOnly, SameSite=Strict
//! cookie (Secure when the server is told that a TLS proxy serves it: it
//! speaks plain HTTP itself and cannot tell). The server keeps, per session,
//! the hash of the token that signed in (never the token) and the session's
//! CSRF token. The caller is looked up again from that hash on every page,
//! so revoking or rotating the token ends its sessions at once.
//!
//! Sessions expire [`SESSION_LIFETIME`] after sign-in, and there are at most
//! [`MAX_SESSIONS`]: past that, signing in drops the expired ones, then the
//! oldest, so that a flood of sign-ins cannot grow memory without bound. The
//! map is keyed by the hash of the session id, so that what the server holds
//! would not let anyone take a session over.
//!
//! A session also holds at most one [`Notice`]: what a form's POST has to say
//! to the page it redirects to (done, or refused and why, and a new webhook
//! secret to show once). It is taken by the first page that shows it, so a
//! reload does not show it again and a secret is never in a URL or a cookie.

use rand::RngCore;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use subtle::ConstantTimeEq;

/// How long a session lasts after sign-in.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3_600);
/// The most sessions kept at once.
pub const MAX_SESSIONS: usize = 10_000;
/// The session cookie's name.
pub const SESSION_COOKIE: &str = "cm_session";
/// The cookie of the sign-in form's CSRF token (there is no session yet to hold it).
pub const SIGN_IN_COOKIE: &str = "cm_sign_in";

/// What the server keeps of one session.
#[derive(Debug, Clone)]
pub struct Session {
    /// The hash of the token that signed in.
    pub token_hash: [u8; 32],
    /// The token every form of this session must carry back.
    pub csrf: String,
    /// When it was made.
    pub created: Instant,
    /// What the next page says, once.
    pub notice: Option<Notice>,
}

/// A message a form leaves for the page it redirects to, shown once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notice {
    /// Whether the form did what it was asked.
    pub done: bool,
    /// What happened, in words.
    pub text: String,
    /// A signing secret to show this once: the webhook's id and its secret.
    pub secret: Option<(String, String)>,
}

/// Every session, by the hash of its id.
pub struct Sessions {
    map: Mutex<HashMap<[u8; 32], Session>>,
    lifetime: Duration,
    max: usize,
}

/// A random value, hex: session ids and CSRF tokens (256 bits).
pub fn random_token() -> String {
    let mut raw = [0u8; 32];
    rand::thread_rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

fn id_hash(id: &str) -> [u8; 32] {
    *blake3::hash(id.as_bytes()).as_bytes()
}

/// Whether two secrets are equal, in time that does not depend on where they differ.
pub fn same_secret(a: &str, b: &str) -> bool {
    a.len() == b.len() && bool::from(a.as_bytes().ct_eq(b.as_bytes()))
}

impl Sessions {
    /// Sessions of [`SESSION_LIFETIME`], at most [`MAX_SESSIONS`].
    pub fn new() -> Sessions {
        Sessions::with_bounds(SESSION_LIFETIME, MAX_SESSIONS)
    }

    /// Sessions with other bounds (tests).
    pub fn with_bounds(lifetime: Duration, max: usize) -> Sessions {
        Sessions { map: Mutex::new(HashMap::new()), lifetime, max: max.max(1) }
    }

    /// Opens a session for the token with this hash; returns its id, for the cookie.
    pub fn open(&self, token_hash: [u8; 32]) -> String {
        let id = random_token();
        let session = Session { token_hash, csrf: random_token(), created: Instant::now(), notice: None };
        let mut map = self.map.lock().expect("lock");
        if map.len() >= self.max {
            let lifetime = self.lifetime;
            map.retain(|_, s| s.created.elapsed() < lifetime);
        }
        while map.len() >= self.max {
            let oldest = map.iter().min_by_key(|(_, s)| s.created).map(|(k, _)| *k).expect("a full map has one");
            map.remove(&oldest);
        }
        map.insert(id_hash(&id), session);
        id
    }

    /// The live session of this id; an expired one is dropped.
    pub fn get(&self, id: &str) -> Option<Session> {
        let key = id_hash(id);
        let mut map = self.map.lock().expect("lock");
        match map.get(&key) {
            Some(s) if s.created.elapsed() < self.lifetime => Some(s.clone()),
            Some(_) => {
                map.remove(&key);
                None
            }
            None => None,
        }
    }

    /// Leaves a notice for the session's next page (replacing one not yet shown).
    pub fn leave_notice(&self, id: &str, notice: Notice) {
        if let Some(s) = self.map.lock().expect("lock").get_mut(&id_hash(id)) {
            s.notice = Some(notice);
        }
    }

    /// The session's notice, taken: shown once.
    pub fn take_notice(&self, id: &str) -> Option<Notice> {
        self.map.lock().expect("lock").get_mut(&id_hash(id)).and_then(|s| s.notice.take())
    }

    /// Ends a session (sign-out, or its token no longer holds).
    pub fn close(&self, id: &str) {
        self.map.lock().expect("lock").remove(&id_hash(id));
    }

    /// How many sessions are kept.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.map.lock().expect("lock").len()
    }

    /// Seconds a new session's cookie should live.
    pub fn lifetime_secs(&self) -> u64 {
        self.lifetime.as_secs()
    }
}

/// The value of one cookie of a request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.trim())
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Strict, the whole site, Secure when asked.
pub fn set_cookie(name: &str, value: &str, max_age_secs: u64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age_secs}{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderMap;

    #[test]
    fn a_session_is_found_by_its_id_only_and_closes() {
        let sessions = Sessions::new();
        let id = sessions.open([7; 32]);
        let s = sessions.get(&id).expect("open");
        assert_eq!(s.token_hash, [7; 32]);
        assert_eq!(s.csrf.len(), 64);
        assert!(sessions.get("not-an-id").is_none());
        assert!(sessions.get(&id[..63]).is_none());
        sessions.close(&id);
        assert!(sessions.get(&id).is_none());
    }

    #[test]
    fn a_notice_is_shown_once_and_to_its_session_only() {
        let sessions = Sessions::new();
        let (a, b) = (sessions.open([1; 32]), sessions.open([2; 32]));
        let notice = Notice { done: true, text: "made".into(), secret: Some(("wh_1".into(), "whsec_x".into())) };
        sessions.leave_notice(&a, notice.clone());
        assert_eq!(sessions.take_notice(&b), None, "not another session's");
        assert_eq!(sessions.take_notice(&a), Some(notice));
        assert_eq!(sessions.take_notice(&a), None, "taken once");
        sessions.leave_notice("no-such-session", Notice { done: false, text: "x".into(), secret: None });
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let sessions = Sessions::with_bounds(Duration::from_millis(30), 3);
        let first = sessions.open([1; 32]);
        std::thread::sleep(Duration::from_millis(40));
        assert!(sessions.get(&first).is_none(), "expired");
        let ids: Vec<String> = (0..5).map(|i| sessions.open([i; 32])).collect();
        assert_eq!(sessions.len(), 3, "never more than the bound");
        assert!(sessions.get(&ids[4]).is_some(), "the newest is kept");
        let long = Sessions::with_bounds(Duration::from_secs(60), 2);
        let a = long.open([1; 32]);
        std::thread::sleep(Duration::from_millis(2));
        let b = long.open([2; 32]);
        let c = long.open([3; 32]);
        assert!(long.get(&a).is_none(), "the oldest makes room");
        assert!(long.get(&b).is_some() && long.get(&c).is_some());
    }

    #[test]
    fn cookies_are_read_and_written_strictly() {
        let mut h = HeaderMap::new();
        h.append("cookie", "a=1; cm_session=abc ; b=2".parse().unwrap());
        h.append("cookie", "c=3".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("abc"));
        assert_eq!(cookie(&h, "c"), Some("3"));
        assert_eq!(cookie(&h, "cm"), None);
        let plain = set_cookie(SESSION_COOKIE, "v", 60, false);
        assert_eq!(plain, "cm_session=v; Path=/; HttpOnly; SameSite=Strict; Max-Age=60");
        assert!(set_cookie(SESSION_COOKIE, "v", 60, true).ends_with("; Secure"));
    }

    #[test]
    fn secrets_compare_whole() {
        assert!(same_secret("abc", "abc"));
        assert!(!same_secret("abc", "abd"));
        assert!(!same_secret("abc", "ab"));
        assert!(!same_secret("", "a"));
    }
}
