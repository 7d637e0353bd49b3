//! Read-only share links to an account's usage page, that expire and can be
//! revoked: for a customer to show their usage to someone without a token.
//!
//! A link is `/share/{id}-{expires}-{mac}`: a random id, its expiry (Unix
//! seconds), and a keyed BLAKE3 MAC of id, account and expiry under a key
//! only the server has. The links made are kept, with that key, in
//! `DATA/dashboard-shares.json` (owner-only, written atomically), so that
//! they hold across restarts and a revoked one is simply no longer listed.
//! A link opens only when its id is listed, its expiry is the listed one and
//! still ahead, and its MAC is right: a link cannot be forged, extended, or
//! moved to another account. Expired links are dropped when a link is made.
//!
//! Making and revoking links takes the right to manage the account (its key
//! or the admin); support changes nothing, so it sees no panel.

use super::format;
use super::page::{html_page, PageError};
use super::page_extract::Form;
use super::page_extract::{Path, Query};
use super::session::same_secret;
use super::usage_page::{self, into_api, Mode, UsageQuery};
use super::viewer::{account_zone, AccountView};
use super::{layout, Dashboard, Ds};
use crate::admin_token::write_private;
use crate::api::{blocking, known_account};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Redirect, Response};
use chrono::{DateTime, Utc};
use maud::{html, Markup};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;
use std::sync::Mutex;

/// The most links an account may have at once.
pub const MAX_LINKS_PER_ACCOUNT: usize = 20;
/// The lifetimes offered, in days.
const LIFETIMES_DAYS: [i64; 4] = [1, 7, 30, 90];

/// One link made.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ShareLink {
    /// Its random id.
    pub id: String,
    /// The account whose usage it shows.
    pub account: String,
    /// When it was made.
    pub created: DateTime<Utc>,
    /// When it stops working.
    pub expires: DateTime<Utc>,
}

#[derive(Serialize, Deserialize)]
struct SharesFile {
    key: String,
    links: Vec<ShareLink>,
}

/// The links made, and the key that signs them.
pub struct ShareLinks {
    key: [u8; 32],
    file: Option<PathBuf>,
    links: Mutex<Vec<ShareLink>>,
}

/// Why a link could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ShareError {
    /// The account has as many live links as it may.
    #[error("this account has {MAX_LINKS_PER_ACCOUNT} live share links: revoke one first")]
    TooMany,
    /// The file could not be written.
    #[error("cannot keep the share links: {0}")]
    Io(#[from] std::io::Error),
}

impl ShareLinks {
    /// The links kept in `DATA/dashboard-shares.json`, or none and a new key.
    /// An unreadable file is set aside rather than trusted or lost silently.
    pub fn open(data: &std::path::Path) -> ShareLinks {
        let file = data.join("dashboard-shares.json");
        let kept = std::fs::read_to_string(&file).ok().and_then(|text| {
            let parsed: Option<SharesFile> = serde_json::from_str(&text).ok();
            if parsed.is_none() {
                tracing::warn!(file = %file.display(), "unreadable share links file: starting without its links");
            }
            parsed
        });
        let key = kept.as_ref().and_then(|k| hex::decode(&k.key).ok()).and_then(|k| <[u8; 32]>::try_from(k).ok());
        match (key, kept) {
            (Some(key), Some(k)) => ShareLinks { key, file: Some(file), links: Mutex::new(k.links) },
            _ => ShareLinks { key: new_key(), file: Some(file), links: Mutex::new(Vec::new()) },
        }
    }

    /// Links kept in memory only (tests).
    #[cfg(test)]
    pub fn in_memory() -> ShareLinks {
        ShareLinks { key: new_key(), file: None, links: Mutex::new(Vec::new()) }
    }

    fn mac(&self, id: &str, account: &str, expires: i64) -> String {
        let mut h = blake3::Hasher::new_keyed(&self.key);
        for part in [id.as_bytes(), b"\0", account.as_bytes(), b"\0", expires.to_string().as_bytes()] {
            h.update(part);
        }
        hex::encode(&h.finalize().as_bytes()[..16])
    }

    /// The link's token, as its URL carries it.
    pub fn token(&self, link: &ShareLink) -> String {
        let expires = link.expires.timestamp();
        format!("{}-{expires}-{}", link.id, self.mac(&link.id, &link.account, expires))
    }

    /// The live link a token names, if it is one.
    pub fn open_token(&self, token: &str, now: DateTime<Utc>) -> Option<ShareLink> {
        let mut parts = token.splitn(3, '-');
        let (id, expires, mac) = (parts.next()?, parts.next()?.parse::<i64>().ok()?, parts.next()?);
        let link = self.links.lock().expect("lock").iter().find(|l| l.id == id).cloned()?;
        let valid = link.expires.timestamp() == expires
            && same_secret(&self.mac(id, &link.account, expires), mac)
            && now < link.expires;
        valid.then_some(link)
    }

    /// Makes a link to `account`'s usage for `days`.
    pub fn create(&self, account: &str, days: i64, now: DateTime<Utc>) -> Result<ShareLink, ShareError> {
        let mut links = self.links.lock().expect("lock");
        links.retain(|l| l.expires > now);
        if links.iter().filter(|l| l.account == account).count() >= MAX_LINKS_PER_ACCOUNT {
            return Err(ShareError::TooMany);
        }
        let expires = DateTime::from_timestamp(now.timestamp() + days * 86_400, 0).unwrap_or(now);
        let link = ShareLink {
            id: super::session::random_token()[..24].to_owned(),
            account: account.to_owned(),
            created: now,
            expires,
        };
        links.push(link.clone());
        self.save(&links)?;
        Ok(link)
    }

    /// Revokes an account's link; false when it has none of that id.
    pub fn revoke(&self, account: &str, id: &str) -> Result<bool, ShareError> {
        let mut links = self.links.lock().expect("lock");
        let before = links.len();
        links.retain(|l| !(l.id == id && l.account == account));
        if links.len() == before {
            return Ok(false);
        }
        self.save(&links)?;
        Ok(true)
    }

    /// An account's live links, newest first.
    pub fn of_account(&self, account: &str, now: DateTime<Utc>) -> Vec<ShareLink> {
        let mut mine: Vec<ShareLink> = self
            .links
            .lock()
            .expect("lock")
            .iter()
            .filter(|l| l.account == account && l.expires > now)
            .cloned()
            .collect();
        mine.sort_by_key(|l| std::cmp::Reverse(l.created));
        mine
    }

    fn save(&self, links: &[ShareLink]) -> std::io::Result<()> {
        let Some(file) = &self.file else { return Ok(()) };
        let body = SharesFile { key: hex::encode(self.key), links: links.to_vec() };
        write_private(file, &serde_json::to_string_pretty(&body).map_err(std::io::Error::other)?)
    }
}

fn new_key() -> [u8; 32] {
    let mut key = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::thread_rng(), &mut key);
    key
}

/// The panel on the usage page of a viewer who may make links.
pub fn panel(d: &Dashboard, view: &AccountView, headers: &HeaderMap) -> Markup {
    let now = Utc::now();
    let links = d.shares.of_account(&view.account.name, now);
    let scheme = if d.app.settings.secure_cookies { "https" } else { "http" };
    let host = headers.get(axum::http::header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("127.0.0.1:8080");
    let action = format!("/accounts/{}/share", layout::urlencode(&view.account.name));
    html! {
        section id="share" aria-labelledby="share-heading" {
            h2 id="share-heading" { "Share this page" }
            p { "A share link shows this usage page, read-only, to anyone who has it, until it expires or you revoke it." }
            form method="post" action=(action) class="actions" {
                input type="hidden" name="csrf" value=(view.viewer.csrf);
                label for="share-days" { "Expires after" }
                select id="share-days" name="days" {
                    @for days in LIFETIMES_DAYS {
                        option value=(days) selected[days == 7] { (days) @if days == 1 { " day" } @else { " days" } }
                    }
                }
                button type="submit" { "Create a share link" }
            }
            @if !links.is_empty() {
                div class="table-wrap" {
                    table id="share-links" {
                        thead { tr { th scope="col" { "Link" } th scope="col" { "Expires" } th scope="col" { span class="sr-only" { "Revoke" } } } }
                        tbody {
                            @for (i, link) in links.iter().enumerate() {
                                @let field = format!("share-url-{i}");
                                tr {
                                    td {
                                        label for=(field) class="sr-only" { "Share link " (i + 1) }
                                        input type="text" readonly class="share-url" id=(field) value=(format!("{scheme}://{host}/share/{}", d.shares.token(link)));
                                        button type="button" class="secondary" data-copy=(field) hidden { "Copy" }
                                        span id=(format!("{field}-status")) role="status" {}
                                    }
                                    td class="nowrap" { (format::minute(link.expires, view.tz)) }
                                    td {
                                        form method="post" action=(format!("{action}/{}/revoke", link.id)) {
                                            input type="hidden" name="csrf" value=(view.viewer.csrf);
                                            button type="submit" class="secondary" { "Revoke" }
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// The form that makes a link.
#[derive(Deserialize)]
pub struct CreateForm {
    #[serde(default)]
    csrf: String,
    days: i64,
}

/// `POST /accounts/{account}/share`.
pub async fn create(State(d): Ds, view: AccountView, Form(f): Form<CreateForm>) -> Result<Response, PageError> {
    view.viewer.check_csrf(&f.csrf)?;
    if !view.viewer.caller.may_manage(&view.account.name) {
        return Err(PageError::Forbidden(
            "Support sees every account and changes nothing: it makes no share links.".into(),
        ));
    }
    if !LIFETIMES_DAYS.contains(&f.days) {
        return Err(PageError::Api(crate::error::ApiError::BadRequest(format!(
            "days: {} is not one of {LIFETIMES_DAYS:?}",
            f.days
        ))));
    }
    let account = view.account.name.clone();
    blocking(move || {
        d.shares.create(&account, f.days, Utc::now()).map_err(|e| crate::error::ApiError::BadRequest(e.to_string()))
    })
    .await?;
    Ok(Redirect::to(&format!("/accounts/{}/usage#share", layout::urlencode(&view.account.name))).into_response())
}

/// The form that revokes a link.
#[derive(Deserialize)]
pub struct RevokeForm {
    #[serde(default)]
    csrf: String,
}

/// `POST /accounts/{account}/share/{id}/revoke`.
pub async fn revoke(
    State(d): Ds,
    view: AccountView,
    Path((_, id)): Path<(String, String)>,
    Form(f): Form<RevokeForm>,
) -> Result<Response, PageError> {
    view.viewer.check_csrf(&f.csrf)?;
    if !view.viewer.caller.may_manage(&view.account.name) {
        return Err(PageError::Forbidden("Support changes nothing: it revokes no share links.".into()));
    }
    let account = view.account.name.clone();
    let found =
        blocking(move || d.shares.revoke(&account, &id).map_err(|e| crate::error::ApiError::Internal(e.to_string())))
            .await?;
    if !found {
        return Err(PageError::NotFound("No such share link.".into()));
    }
    Ok(Redirect::to(&format!("/accounts/{}/usage#share", layout::urlencode(&view.account.name))).into_response())
}

/// `GET /share/{token}`: the usage page, read-only, for whoever has the link.
pub async fn page(State(d): Ds, Path(token): Path<String>, Query(q): Query<UsageQuery>) -> Result<Response, PageError> {
    let gone =
        || PageError::NotFound("This share link has expired or was revoked. Ask its owner for a new one.".into());
    let link = d.shares.open_token(&token, Utc::now()).ok_or_else(gone)?;
    let account = known_account(&d.app, &link.account).map_err(|_| gone())?;
    let tz = account_zone(&account);
    let (dd, acc, q2) = (d.clone(), account.clone(), q.clone());
    let data = blocking(move || usage_page::read(&dd, &acc, tz, &q2).map_err(into_api)).await?;
    let body = usage_page::body(&account.name, tz, &q, &data, Mode::Shared { token, expires: link.expires });
    let frame = layout::Frame {
        title: format!("Usage of {} (shared)", account.name),
        viewer: None,
        account: None,
        section: layout::Section::None,
    };
    Ok(html_page(layout::page(frame, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn a_link_opens_until_it_expires_or_is_revoked() {
        let shares = ShareLinks::in_memory();
        let now = t("2026-11-27T10:00:00Z");
        let link = shares.create("acme", 7, now).unwrap();
        let token = shares.token(&link);
        assert_eq!(shares.open_token(&token, now).map(|l| l.account), Some("acme".into()));
        assert!(shares.open_token(&token, now + chrono::Duration::days(7)).is_none(), "expired");
        assert!(shares.revoke("acme", &link.id).unwrap());
        assert!(shares.open_token(&token, now).is_none(), "revoked");
        assert!(!shares.revoke("acme", &link.id).unwrap());
    }

    #[test]
    fn a_link_cannot_be_forged_extended_or_moved() {
        let shares = ShareLinks::in_memory();
        let now = t("2026-11-27T10:00:00Z");
        let link = shares.create("acme", 1, now).unwrap();
        let token = shares.token(&link);
        let (id, rest) = token.split_once('-').unwrap();
        let (expires, mac) = rest.split_once('-').unwrap();
        let later: i64 = expires.parse::<i64>().unwrap() + 86_400;
        assert!(shares.open_token(&format!("{id}-{later}-{mac}"), now).is_none(), "a longer expiry");
        assert!(shares.open_token(&format!("{id}-{expires}-{}", "0".repeat(32)), now).is_none(), "another MAC");
        assert!(shares.open_token("nothing", now).is_none());
        let other = ShareLinks::in_memory();
        assert!(other.open_token(&token, now).is_none(), "another server's key");
        assert!(!shares.revoke("globex", &link.id).unwrap(), "another account cannot revoke it");
    }

    #[test]
    fn links_are_bounded_per_account_and_kept_in_the_data_folder() {
        let dir = tempfile::tempdir().unwrap();
        let now = Utc::now();
        let shares = ShareLinks::open(dir.path());
        let link = shares.create("acme", 30, now).unwrap();
        for _ in 1..MAX_LINKS_PER_ACCOUNT {
            shares.create("acme", 1, now).unwrap();
        }
        assert!(matches!(shares.create("acme", 1, now), Err(ShareError::TooMany)));
        assert!(shares.create("globex", 1, now).is_ok(), "the bound is per account");
        let reopened = ShareLinks::open(dir.path());
        assert_eq!(reopened.open_token(&shares.token(&link), now).map(|l| l.id), Some(link.id));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(dir.path().join("dashboard-shares.json")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
