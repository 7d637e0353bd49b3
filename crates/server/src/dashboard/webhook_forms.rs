//! The webhook forms' POSTs: create (from the webhooks page or an audit
//! finding), change, enable or disable, delete, rotate the secret, redeliver
//! one delivery, replay since a time.
//!
//! Each does what its API route does, through the same function
//! (`routes::webhooks::{create_webhook, change_webhook, remove_webhook,
//! rotate_webhook_secret}`, `routes::deliveries::{redeliver_one,
//! replay_since}`): the same checks of the target, the folder, the actions
//! and the events, the same refusals. Each first checks the session's CSRF
//! token, then that the viewer may manage the account (its key, or the
//! admin; support changes nothing), as the share links do.
//!
//! Then it redirects (POST, redirect, GET), leaving a [`Notice`] for the page
//! it lands on: what was done, or why it was refused (a bad URL, a disabled
//! webhook), and a new signing secret, shown that once.

use super::format;
use super::page::PageError;
use super::page_extract::Form;
use super::page_extract::Path;
use super::session::Notice;
use super::viewer::AccountView;
use super::webhooks_page::{webhook_href, webhooks_href};
use super::{layout, Ds};
use crate::error::ApiError;
use crate::routes::deliveries::{redeliver_one, replay_since};
use crate::routes::webhooks::{
    change_webhook, create_webhook, remove_webhook, rotate_webhook_secret, EventName, WebhookBody,
};
use axum::response::{IntoResponse, Redirect, Response};
use callmeter_model::Action;

/// A webhook form's fields; `actions` and `events` are checkboxes, so they repeat.
#[derive(Debug, Default)]
pub struct WebhookForm {
    csrf: String,
    url: Option<String>,
    /// `folder` or `alerts`.
    watch: Option<String>,
    folder: Option<String>,
    actions: Vec<String>,
    events: Vec<String>,
    enabled: Option<String>,
    since: Option<String>,
    confirm: Option<String>,
    /// `audit` when the form is a finding's.
    from: Option<String>,
}

impl WebhookForm {
    /// The fields of a posted form, in any order, repeated ones gathered.
    fn read(pairs: Vec<(String, String)>) -> WebhookForm {
        let mut f = WebhookForm::default();
        for (k, v) in pairs {
            match k.as_str() {
                "csrf" => f.csrf = v,
                "url" => f.url = Some(v.trim().to_owned()),
                "watch" => f.watch = Some(v),
                "folder" => f.folder = Some(v.trim().to_owned()),
                "actions" => f.actions.push(v),
                "events" => f.events.push(v),
                "enabled" => f.enabled = Some(v),
                "since" => f.since = Some(v),
                "confirm" => f.confirm = Some(v),
                "from" => f.from = Some(v),
                _ => {}
            }
        }
        f
    }

    /// What the form asks of the webhook, as the API's body: an alert
    /// webhook's events, or a folder webhook's folder and actions (what is
    /// unticked is left out, and the API's checks say so).
    fn body(&self) -> Result<WebhookBody, ApiError> {
        let url = self.url.clone().filter(|u| !u.is_empty());
        let alerts = match self.watch.as_deref() {
            None | Some("folder") => false,
            Some("alerts") => true,
            Some(other) => return Err(ApiError::BadRequest(format!("watch: {other:?}: folder or alerts"))),
        };
        if alerts {
            let events = self
                .events
                .iter()
                .map(|e| EventName::parse(e).map_err(|why| ApiError::BadRequest(format!("events: {why}"))))
                .collect::<Result<Vec<_>, _>>()?;
            return Ok(WebhookBody { url, events: Some(events), ..Default::default() });
        }
        let actions = self
            .actions
            .iter()
            .map(|a| {
                Action::ALL
                    .into_iter()
                    .find(|x| x.as_str() == a)
                    .ok_or_else(|| ApiError::BadRequest(format!("actions: {a:?} is not an action")))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let folder = self.folder.clone().filter(|f| !f.is_empty()).unwrap_or_else(|| "/".into());
        Ok(WebhookBody { url, folder: Some(folder), actions: Some(actions), ..Default::default() })
    }
}

/// Checks the token, then the right to change the account's webhooks.
fn may_change(view: &AccountView, f: &WebhookForm) -> Result<(), PageError> {
    view.viewer.check_csrf(&f.csrf)?;
    if !view.viewer.caller.may_manage(&view.account.name) {
        return Err(PageError::Forbidden("Support reads webhooks and changes nothing.".into()));
    }
    Ok(())
}

/// Leaves what happened for the page at `to`, and goes there. A refusal the
/// viewer can act on (a bad field, a disabled webhook, a missing one) is a
/// notice on that page; anything else is the error page.
fn settle(d: &Ds, view: &AccountView, outcome: Result<Notice, ApiError>, to: &str) -> Result<Response, PageError> {
    let notice = match outcome {
        Ok(n) => n,
        Err(ApiError::BadRequest(m) | ApiError::Conflict(m) | ApiError::NotFound(m)) => {
            Notice { done: false, text: format!("Refused: {m}."), secret: None }
        }
        Err(other) => return Err(PageError::Api(other)),
    };
    d.sessions.leave_notice(&view.viewer.session_id, notice);
    Ok(Redirect::to(to).into_response())
}

fn done(text: String) -> Notice {
    Notice { done: true, text, secret: None }
}

/// `POST /accounts/{account}/webhooks`: lands on the webhooks page, the new secret shown once.
pub async fn create(d: Ds, view: AccountView, Form(pairs): Form<Vec<(String, String)>>) -> Result<Response, PageError> {
    let f = WebhookForm::read(pairs);
    may_change(&view, &f)?;
    let account = view.account.name.clone();
    let outcome = match f.body() {
        Ok(body) => create_webhook(&d.app, account.clone(), body).await,
        Err(e) => Err(e),
    };
    let list = webhooks_href(&account);
    match outcome {
        Ok((sub, secret)) => {
            let origin = if f.from.as_deref() == Some("audit") { ", from the audit's finding" } else { "" };
            let text = format!("Webhook {} created{origin}: it posts to {}.", sub.id, sub.url);
            let to = format!("{list}#{}", sub.id);
            settle(&d, &view, Ok(Notice { done: true, text, secret: Some((sub.id, secret)) }), &to)
        }
        Err(e) => {
            // Back to the form, its folder kept.
            let to = format!("{list}{}#new-webhook", layout::query(&[("folder", f.folder.as_deref().unwrap_or(""))]));
            settle(&d, &view, Err(e), &to)
        }
    }
}

/// `POST /accounts/{account}/webhooks/{id}`: the edit form.
pub async fn change(
    d: Ds,
    view: AccountView,
    Path((_, id)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = WebhookForm::read(pairs);
    may_change(&view, &f)?;
    let account = view.account.name.clone();
    let to = webhook_href(&account, &id);
    let outcome = match f.body() {
        Ok(body) => change_webhook(&d.app, account, id, body).await.map(|s| done(format!("Webhook {} changed.", s.id))),
        Err(e) => Err(e),
    };
    settle(&d, &view, outcome, &to)
}

/// `POST /accounts/{account}/webhooks/{id}/enabled`: disable or enable.
pub async fn set_enabled(
    d: Ds,
    view: AccountView,
    Path((_, id)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = WebhookForm::read(pairs);
    may_change(&view, &f)?;
    let account = view.account.name.clone();
    let to = webhook_href(&account, &id);
    let enabled = match f.enabled.as_deref() {
        Some("true") => true,
        Some("false") => false,
        _ => return settle(&d, &view, Err(ApiError::BadRequest("enabled: true or false".into())), &to),
    };
    let body = WebhookBody { enabled: Some(enabled), ..Default::default() };
    let outcome = change_webhook(&d.app, account, id, body).await.map(|s| {
        done(if enabled {
            format!("Webhook {} enabled: new events are sent. Replay sends those kept while it was disabled.", s.id)
        } else {
            format!("Webhook {} disabled: nothing is sent; its events are kept to replay.", s.id)
        })
    });
    settle(&d, &view, outcome, &to)
}

/// `POST /accounts/{account}/webhooks/{id}/delete`: lands on the webhooks page.
pub async fn delete(
    d: Ds,
    view: AccountView,
    Path((_, id)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = WebhookForm::read(pairs);
    may_change(&view, &f)?;
    let account = view.account.name.clone();
    if f.confirm.as_deref() != Some("yes") {
        let refused = Err(ApiError::BadRequest("tick the box to confirm the deletion".into()));
        return settle(&d, &view, refused, &webhook_href(&account, &id));
    }
    let outcome =
        remove_webhook(&d.app, account.clone(), id.clone()).await.map(|()| done(format!("Webhook {id} deleted.")));
    settle(&d, &view, outcome, &webhooks_href(&account))
}

/// `POST /accounts/{account}/webhooks/{id}/rotate-secret`: the new secret shown once.
pub async fn rotate(
    d: Ds,
    view: AccountView,
    Path((_, id)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = WebhookForm::read(pairs);
    may_change(&view, &f)?;
    let account = view.account.name.clone();
    let to = webhook_href(&account, &id);
    let outcome = rotate_webhook_secret(&d.app, account, id).await.map(|(sub, secret)| Notice {
        done: true,
        text: format!("Webhook {} has a new signing secret; the previous one also signs for 24 hours.", sub.id),
        secret: Some((sub.id, secret)),
    });
    settle(&d, &view, outcome, &to)
}

/// `POST /accounts/{account}/webhooks/{id}/deliveries/{delivery}/redeliver`.
pub async fn redeliver(
    d: Ds,
    view: AccountView,
    Path((_, id, delivery)): Path<(String, String, u64)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = WebhookForm::read(pairs);
    may_change(&view, &f)?;
    let account = view.account.name.clone();
    let to = format!("{}#deliveries-heading", webhook_href(&account, &id));
    let outcome = redeliver_one(&d.app, account, id, delivery)
        .await
        .map(|()| done(format!("Delivery {delivery} is being sent again, with its webhook-id.")));
    settle(&d, &view, outcome, &to)
}

/// `POST /accounts/{account}/webhooks/{id}/replay`: `since` is in the account's zone.
pub async fn replay(
    d: Ds,
    view: AccountView,
    Path((_, id)): Path<(String, String)>,
    Form(pairs): Form<Vec<(String, String)>>,
) -> Result<Response, PageError> {
    let f = WebhookForm::read(pairs);
    may_change(&view, &f)?;
    let account = view.account.name.clone();
    let to = format!("{}#deliveries-heading", webhook_href(&account, &id));
    let given = f.since.as_deref().unwrap_or("").trim().to_owned();
    let Some(since) = format::parse_datetime_local(&given, view.tz) else {
        let refused = Err(ApiError::BadRequest(format!("since: {given:?} is not a date and time")));
        return settle(&d, &view, refused, &to);
    };
    let outcome = replay_since(&d.app, account, id, since).await.map(|n| {
        let events = if n == 1 { "1 event".to_owned() } else { format!("{n} events") };
        done(format!("Sending again {events} that arrived since {}.", format::minute(since, view.tz)))
    });
    settle(&d, &view, outcome, &to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(pairs: &[(&str, &str)]) -> WebhookForm {
        WebhookForm::read(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect())
    }

    #[test]
    fn a_form_becomes_the_apis_body() {
        let f = form(&[
            ("csrf", "t"),
            ("url", " https://x.example/h "),
            ("watch", "folder"),
            ("folder", "/in"),
            ("actions", "create"),
            ("actions", "destroy"),
            ("events", "usage.spike"),
        ]);
        assert_eq!(f.csrf, "t");
        let b = f.body().unwrap();
        assert_eq!(b.url.as_deref(), Some("https://x.example/h"));
        assert_eq!((b.folder.as_deref(), b.actions), (Some("/in"), Some(vec![Action::Create, Action::Destroy])));
        assert!(b.events.is_none(), "a folder webhook's form ignores its alert boxes");
        let b = form(&[("watch", "alerts"), ("events", "usage.spike"), ("folder", "/in")]).body().unwrap();
        assert_eq!((b.events, b.folder), (Some(vec![EventName::Kind(callmeter_store::AlertKind::Spike)]), None));
        let none_ticked = form(&[("url", "https://x.example/h"), ("folder", "")]).body().unwrap();
        assert_eq!((none_ticked.folder.as_deref(), none_ticked.actions), (Some("/"), Some(vec![])));
        assert!(form(&[("actions", "explode")]).body().is_err());
        assert!(form(&[("watch", "alerts"), ("events", "usage.other")]).body().is_err());
        let unknown = form(&[("watch", "bogus"), ("folder", "/in")]).body().err().unwrap();
        assert!(unknown.to_string().contains("folder or alerts"), "{unknown}");
        assert!(form(&[("url", "")]).body().unwrap().url.is_none(), "an empty url is a missing one");
    }
}
