//! Tokens and who may do what (DESIGN §8).
//!
//! Secrets are never stored: only their BLAKE3 hash. A presented token is
//! hashed and looked up by hash, and the admin token is compared in
//! constant time. The admin token lives in memory behind a lock so that it
//! can be rotated without a restart; which one is in force at start is
//! `admin_token.rs`'s to settle.

use crate::admin_token::AdminTokenFiles;
use crate::error::ApiError;
use axum::http::HeaderMap;
use callmeter_store::{Scope, Store, TokenRecord};
use rand::RngCore;
use std::collections::HashMap;
use std::path::Path;
use std::sync::{Mutex, RwLock};
use subtle::ConstantTimeEq;

/// Who made a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    /// The admin token or an admin-scoped token.
    Admin,
    /// An ingest token.
    Ingest,
    /// A support token.
    Support,
    /// An account key.
    Account(String),
}

impl Caller {
    /// Whether the caller may read this account's usage, calls and settings.
    pub fn may_read(&self, account: &str) -> bool {
        match self {
            Caller::Admin | Caller::Support => true,
            Caller::Account(a) => a == account,
            Caller::Ingest => false,
        }
    }

    /// Whether the caller may change this account's plan and keys.
    pub fn may_manage(&self, account: &str) -> bool {
        match self {
            Caller::Admin => true,
            Caller::Account(a) => a == account,
            Caller::Support | Caller::Ingest => false,
        }
    }

    /// Forbidden unless the caller may read this account.
    pub fn require_read(&self, account: &str) -> Result<(), ApiError> {
        if self.may_read(account) {
            Ok(())
        } else {
            Err(ApiError::Forbidden("read this account"))
        }
    }

    /// Requires the admin scope.
    pub fn require_admin(&self, action: &'static str) -> Result<(), ApiError> {
        if *self == Caller::Admin {
            Ok(())
        } else {
            Err(ApiError::Forbidden(action))
        }
    }
}

/// The tokens the server knows, kept in memory and mirrored in the store.
pub struct Auth {
    admin_hash: RwLock<[u8; 32]>,
    tokens: RwLock<HashMap<[u8; 32], TokenRecord>>,
    admin_files: AdminTokenFiles,
    /// One rotation at a time, so that the file and the token in force agree.
    rotation: Mutex<()>,
}

/// The hash under which a secret is known.
pub fn hash_secret(secret: &str) -> [u8; 32] {
    *blake3::hash(secret.as_bytes()).as_bytes()
}

/// A new random secret with a readable prefix naming its kind.
pub fn new_secret(kind: &str) -> String {
    let mut raw = [0u8; 24];
    rand::thread_rng().fill_bytes(&mut raw);
    format!("cm_{kind}_{}", hex::encode(raw))
}

/// A new random public id for a token.
pub fn new_token_id() -> String {
    let mut raw = [0u8; 6];
    rand::thread_rng().fill_bytes(&mut raw);
    hex::encode(raw)
}

impl Auth {
    /// Loads the tokens from the store and settles the admin token (`admin_token.rs`: the
    /// configured one, or a rotation that outlived it, or the kept one, or a new one).
    /// Returns the auth state and, when a new admin token was made, its secret to print once.
    pub fn load(store: &dyn Store, data: &Path, configured: Option<&str>) -> std::io::Result<(Auth, Option<String>)> {
        let admin_files = AdminTokenFiles::in_folder(data);
        let settled = admin_files.settle(configured)?;
        tracing::info!(decision = ?settled.decision, "admin token settled");
        let tokens = store
            .tokens()
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .into_iter()
            .filter_map(|t| {
                let raw: [u8; 32] = hex::decode(&t.hash).ok()?.try_into().ok()?;
                Some((raw, t))
            })
            .collect();
        let auth = Auth {
            admin_hash: RwLock::new(settled.hash),
            tokens: RwLock::new(tokens),
            admin_files,
            rotation: Mutex::new(()),
        };
        Ok((auth, settled.generated))
    }

    /// Who presents this bearer token, if anyone.
    pub fn caller(&self, headers: &HeaderMap) -> Result<Caller, ApiError> {
        let secret = bearer(headers).ok_or(ApiError::Unauthorized)?;
        self.caller_of_hash(&hash_secret(secret)).ok_or(ApiError::Unauthorized)
    }

    /// Who holds the token with this hash, if it is still in force: the
    /// dashboard's sessions keep the hash, not the token, and ask again on
    /// every page, so that a revoked or rotated token ends its sessions.
    pub fn caller_of_hash(&self, h: &[u8; 32]) -> Option<Caller> {
        let admin = *self.admin_hash.read().expect("lock");
        if bool::from(admin.ct_eq(h)) {
            return Some(Caller::Admin);
        }
        match self.tokens.read().expect("lock").get(h).map(|t| t.scope.clone())? {
            Scope::Admin => Some(Caller::Admin),
            Scope::Ingest => Some(Caller::Ingest),
            Scope::Support => Some(Caller::Support),
            Scope::Account(a) => Some(Caller::Account(a)),
        }
    }

    /// Makes and stores a token; returns its record and its secret, shown this once.
    pub fn create(&self, store: &dyn Store, scope: Scope, label: String) -> Result<(TokenRecord, String), ApiError> {
        let kind = match &scope {
            Scope::Admin => "admin",
            Scope::Ingest => "ingest",
            Scope::Support => "support",
            Scope::Account(_) => "key",
        };
        let secret = new_secret(kind);
        let h = hash_secret(&secret);
        let rec =
            TokenRecord { id: new_token_id(), hash: hex::encode(h), scope, label, created_at: chrono::Utc::now() };
        store.put_token(rec.clone())?;
        self.tokens.write().expect("lock").insert(h, rec.clone());
        Ok((rec, secret))
    }

    /// Revokes a token by id; the filter says which tokens this caller may revoke.
    pub fn revoke(
        &self,
        store: &dyn Store,
        id: &str,
        allowed: impl Fn(&TokenRecord) -> bool,
    ) -> Result<bool, ApiError> {
        let found = self.tokens.read().expect("lock").values().find(|t| t.id == id).cloned();
        match found {
            Some(t) if allowed(&t) => {
                store.delete_token(id)?;
                self.tokens.write().expect("lock").retain(|_, r| r.id != id);
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    /// Every token record.
    pub fn list(&self) -> Vec<TokenRecord> {
        let mut all: Vec<TokenRecord> = self.tokens.read().expect("lock").values().cloned().collect();
        all.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        all
    }

    /// Replaces the admin token with a new one, kept in `DATA/admin-token`; returns it.
    /// The old one stops working at once, and the new one holds across restarts.
    pub fn rotate_admin(&self) -> Result<String, ApiError> {
        let t = new_secret("admin");
        let _one_at_a_time = self.rotation.lock().expect("lock");
        self.admin_files.rotated(&t).map_err(|e| ApiError::Internal(format!("cannot write admin token: {e}")))?;
        *self.admin_hash.write().expect("lock") = hash_secret(&t);
        Ok(t)
    }
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    let v = headers.get(axum::http::header::AUTHORIZATION)?.to_str().ok()?;
    let (kind, token) = v.split_once(' ')?;
    kind.eq_ignore_ascii_case("bearer").then(|| token.trim()).filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        assert!(Caller::Support.may_read("a") && !Caller::Support.may_manage("a"));
        assert!(Caller::Account("a".into()).may_manage("a"));
        assert!(!Caller::Account("a".into()).may_read("b"));
        assert!(!Caller::Ingest.may_read("a"));
        assert!(Caller::Ingest.require_admin("x").is_err());
    }

    #[test]
    fn bearer_header() {
        let mut h = HeaderMap::new();
        assert_eq!(bearer(&h), None);
        h.insert("authorization", "Bearer  abc ".parse().unwrap());
        assert_eq!(bearer(&h), Some("abc"));
        h.insert("authorization", "Basic abc".parse().unwrap());
        assert_eq!(bearer(&h), None);
    }

    #[test]
    fn secrets_are_distinct_and_prefixed() {
        let (a, b) = (new_secret("key"), new_secret("key"));
        assert_ne!(a, b);
        assert!(a.starts_with("cm_key_"));
    }
}
