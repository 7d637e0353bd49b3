//! Who is looking at a page: the extractors that every dashboard page takes
//! first, as the API's handlers take their guards (`guard.rs`).
//!
//! [`Viewer`] is the signed-in caller, looked up again from the session's
//! token hash on every request (a revoked or rotated token ends the session
//! here). [`AccountView`] adds the `{account}` of the path, with the API's
//! own scope check ([`Caller::require_read`]): an account key sees its own
//! account and nothing else, whatever URL it types. The scope is checked
//! before the account is looked up, so a key cannot even learn which other
//! accounts exist.

use super::page::PageError;
use super::session::{cookie, same_secret, SESSION_COOKIE};
use super::Dashboard;
use crate::api::known_account;
use crate::auth::Caller;
use axum::extract::{FromRequestParts, RawPathParams};
use axum::http::request::Parts;
use callmeter_store::AccountRecord;
use chrono::Utc;
use chrono_tz::Tz;
use std::sync::Arc;

/// The signed-in caller of a page.
#[derive(Debug, Clone)]
pub struct Viewer {
    /// Who signed in, as the API would see their token now.
    pub caller: Caller,
    /// The session's id (to sign out).
    pub session_id: String,
    /// The token every form of this session carries.
    pub csrf: String,
}

impl Viewer {
    /// Whether this viewer sees every account (admin, support).
    pub fn sees_every_account(&self) -> bool {
        matches!(self.caller, Caller::Admin | Caller::Support)
    }

    /// Refuses a form that does not carry this session's CSRF token.
    pub fn check_csrf(&self, given: &str) -> Result<(), PageError> {
        if same_secret(&self.csrf, given) {
            Ok(())
        } else {
            Err(PageError::Csrf)
        }
    }

    /// Who signed in, in words.
    pub fn describe(&self) -> String {
        match &self.caller {
            Caller::Admin => "operator (admin)".into(),
            Caller::Support => "support (read-only)".into(),
            Caller::Ingest => "ingest".into(),
            Caller::Account(a) => format!("account {a}"),
        }
    }
}

impl FromRequestParts<Arc<Dashboard>> for Viewer {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<Dashboard>) -> Result<Self, PageError> {
        let id = cookie(&parts.headers, SESSION_COOKIE).ok_or(PageError::SignIn)?;
        let session = state.sessions.get(id).ok_or(PageError::SignIn)?;
        match state.app.auth.caller_of_hash(&session.token_hash) {
            // Ingest tokens never get a session; one made admin-side since is refused the same way.
            Some(Caller::Ingest) | None => {
                state.sessions.close(id);
                Err(PageError::SignIn)
            }
            Some(caller) => Ok(Viewer { caller, session_id: id.to_owned(), csrf: session.csrf }),
        }
    }
}

/// A viewer who may read the `{account}` of the path, and that account.
#[derive(Debug, Clone)]
pub struct AccountView {
    /// Who looks.
    pub viewer: Viewer,
    /// The account.
    pub account: AccountRecord,
    /// The account's time zone now: every time on its pages is shown in it.
    pub tz: Tz,
}

impl FromRequestParts<Arc<Dashboard>> for AccountView {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &Arc<Dashboard>) -> Result<Self, PageError> {
        let viewer = Viewer::from_request_parts(parts, state).await?;
        let params = RawPathParams::from_request_parts(parts, &())
            .await
            .map_err(|_| PageError::NotFound("no such page".into()))?;
        let name = params
            .iter()
            .find(|(k, _)| *k == "account")
            .map(|(_, v)| v.to_owned())
            .ok_or_else(|| PageError::NotFound("no such page".into()))?;
        if !viewer.caller.may_read(&name) {
            return Err(PageError::Forbidden(format!("The token you signed in with cannot see account {name:?}.")));
        }
        let account =
            known_account(&state.app, &name).map_err(|_| PageError::NotFound(format!("No account {name:?}.")))?;
        let tz = account_zone(&account);
        Ok(AccountView { viewer, account, tz })
    }
}

/// The account's time zone now.
pub fn account_zone(account: &AccountRecord) -> Tz {
    account.schedule.period_containing(Utc::now()).1.rule.tz
}
