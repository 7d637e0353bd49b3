//! Who made a call (DESIGN §6): the API key when the call has one, else the
//! user, else the client IP plus user agent.

use crate::Map;
use callmeter_model::{CallEvent, Interface};
use serde::{Deserialize, Serialize};
use std::fmt;

/// What identifies a source: the DESIGN §6 rule, as a value to compare and key on.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(tag = "by", rename_all = "snake_case")]
pub enum SourceKey {
    /// Calls made with this API key.
    ApiKey {
        /// The key's id or prefix, as the call carries it.
        api_key: String,
    },
    /// Calls by this user, without an API key.
    User {
        /// The user name or id.
        user: String,
    },
    /// Calls with neither: the client address and its user agent.
    Client {
        /// The client address, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client_ip: Option<String>,
        /// The user agent, when known.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_agent: Option<String>,
    },
}

impl SourceKey {
    /// The source of a call.
    pub fn of(e: &CallEvent) -> SourceKey {
        let present = |v: &Option<String>| v.as_deref().filter(|s| !s.is_empty()).map(str::to_owned);
        if let Some(api_key) = present(&e.api_key) {
            SourceKey::ApiKey { api_key }
        } else if let Some(user) = present(&e.user) {
            SourceKey::User { user }
        } else {
            SourceKey::Client { client_ip: present(&e.client_ip), user_agent: present(&e.user_agent) }
        }
    }
}

impl fmt::Display for SourceKey {
    /// In plain words, for recommendations: `API key k-1`, `user alice`, `client 203.0.113.9 (curl/8.5.0)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SourceKey::ApiKey { api_key } => write!(f, "API key {api_key}"),
            SourceKey::User { user } => write!(f, "user {user}"),
            SourceKey::Client { client_ip, user_agent } => {
                write!(f, "client {}", client_ip.as_deref().unwrap_or("with no address"))?;
                match user_agent {
                    Some(ua) => write!(f, " ({ua})"),
                    None => Ok(()),
                }
            }
        }
    }
}

/// A finding's `source`: its identity, and what else its first call said about it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Source {
    /// The identity (`by` is `api_key`, `user` or `client`, with that field or fields).
    #[serde(flatten)]
    pub key: SourceKey,
    /// The interface of its first call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interface: Option<Interface>,
    /// The user of its first call, when the identity is not the user.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_user: Option<String>,
    /// The client address of its first call, when the identity is not the address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_client_ip: Option<String>,
    /// The user agent of its first call, when the identity is not the agent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seen_user_agent: Option<String>,
    /// The iPaaS integration or mount of its first call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub integration: Option<String>,
}

impl Source {
    fn first_seen(key: SourceKey, e: &CallEvent) -> Source {
        let (user, ip, ua) = match &key {
            SourceKey::ApiKey { .. } => (e.user.clone(), e.client_ip.clone(), e.user_agent.clone()),
            SourceKey::User { .. } => (None, e.client_ip.clone(), e.user_agent.clone()),
            SourceKey::Client { .. } => (None, None, None),
        };
        Source {
            key,
            interface: Some(e.interface),
            seen_user: user,
            seen_client_ip: ip,
            seen_user_agent: ua,
            integration: e.integration.clone(),
        }
    }
}

/// A source without key or user: its client address and user agent.
type ClientKey = (Option<Box<str>>, Option<Box<str>>);

/// The id of a source in a [`SourceTable`].
pub(crate) type SourceId = u32;

/// Every source seen, by id; looked up without allocating for API keys and users.
#[derive(Debug, Default)]
pub(crate) struct SourceTable {
    by_key: Map<Box<str>, SourceId>,
    by_user: Map<Box<str>, SourceId>,
    by_client: Map<ClientKey, SourceId>,
    sources: Vec<Source>,
}

impl SourceTable {
    /// The id of the call's source, remembering the source at its first call.
    pub fn id_of(&mut self, e: &CallEvent) -> SourceId {
        let next = self.sources.len() as SourceId;
        fn nonempty(v: &Option<String>) -> Option<&str> {
            v.as_deref().filter(|s| !s.is_empty())
        }
        let found = if let Some(k) = nonempty(&e.api_key) {
            self.by_key.get(k).copied().ok_or(0)
        } else if let Some(u) = nonempty(&e.user) {
            self.by_user.get(u).copied().ok_or(1)
        } else {
            let key = (nonempty(&e.client_ip).map(Into::into), nonempty(&e.user_agent).map(Into::into));
            match self.by_client.get(&key) {
                Some(id) => Ok(*id),
                None => {
                    self.by_client.insert(key, next);
                    Err(2)
                }
            }
        };
        match found {
            Ok(id) => id,
            Err(kind) => {
                let key = SourceKey::of(e);
                match (kind, &key) {
                    (0, SourceKey::ApiKey { api_key }) => {
                        self.by_key.insert(api_key.as_str().into(), next);
                    }
                    (1, SourceKey::User { user }) => {
                        self.by_user.insert(user.as_str().into(), next);
                    }
                    _ => {}
                }
                self.sources.push(Source::first_seen(key, e));
                next
            }
        }
    }

    /// The source of an id.
    pub fn get(&self, id: SourceId) -> &Source {
        &self.sources[id as usize]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::Operation;
    use chrono::Utc;

    fn event(api_key: Option<&str>, user: Option<&str>, ip: Option<&str>, ua: Option<&str>) -> CallEvent {
        CallEvent {
            api_key: api_key.map(Into::into),
            user: user.map(Into::into),
            client_ip: ip.map(Into::into),
            user_agent: ua.map(Into::into),
            ..CallEvent::new("1".into(), "acme".into(), Utc::now(), Interface::Rest, Operation::List)
        }
    }

    #[test]
    fn the_key_then_the_user_then_the_client() {
        let e = event(Some("k1"), Some("alice"), Some("10.0.0.1"), None);
        assert_eq!(SourceKey::of(&e), SourceKey::ApiKey { api_key: "k1".into() });
        let e = event(None, Some("alice"), Some("10.0.0.1"), None);
        assert_eq!(SourceKey::of(&e).to_string(), "user alice");
        let e = event(Some(""), None, Some("10.0.0.1"), Some("curl/8"));
        assert_eq!(SourceKey::of(&e).to_string(), "client 10.0.0.1 (curl/8)");
        assert_eq!(
            serde_json::to_string(&SourceKey::of(&e)).unwrap(),
            r#"{"by":"client","client_ip":"10.0.0.1","user_agent":"curl/8"}"#
        );
    }

    #[test]
    fn the_table_gives_one_id_per_source() {
        let mut t = SourceTable::default();
        let a = t.id_of(&event(Some("k1"), Some("alice"), None, None));
        let b = t.id_of(&event(None, Some("alice"), None, None));
        let c = t.id_of(&event(None, None, Some("10.0.0.1"), Some("x")));
        let d = t.id_of(&event(None, None, Some("10.0.0.1"), Some("y")));
        assert_eq!(vec![a, b, c, d], vec![0, 1, 2, 3]);
        assert_eq!(t.id_of(&event(Some("k1"), None, None, None)), a);
        assert_eq!(t.id_of(&event(None, None, Some("10.0.0.1"), Some("y"))), d);
        assert_eq!(t.get(a).seen_user.as_deref(), Some("alice"));
        let json = serde_json::to_value(t.get(a)).unwrap();
        assert_eq!(json["by"], "api_key");
        assert_eq!(json["api_key"], "k1");
    }
}
