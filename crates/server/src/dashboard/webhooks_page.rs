//! The webhooks page of an account: its subscriptions, each a click away
//! from its delivery log (`webhook_page.rs`), and the form that adds one.
//! With the alerts page (`alerts_page.rs`) it is the "Webhooks and alerts"
//! section; the forms' POSTs are in `webhook_forms.rs`.
//!
//! The subscriptions are the store's, as `GET /v1/accounts/{a}/webhooks`
//! lists them; like the API, the page never shows a signing secret except
//! once, right after it is made (a [`Notice`] of the session), and shows
//! only the names of custom headers, never their values.
//!
//! The fields that say what a webhook watches ([`watch_fields`]) are shared
//! by this page's form, the edit form and the audit's "create the webhook".

use super::format;
use super::layout::{self, urlencode, Frame, Section};
use super::page::{html_page, PageError};
use super::page_extract::Query;
use super::session::Notice;
use super::viewer::AccountView;
use super::Ds;
use crate::routes::webhooks::DEFAULT_ACTIONS;
use axum::extract::State;
use axum::response::Response;
use callmeter_model::Action;
use callmeter_store::{AlertKind, Subscription, Watch};
use chrono_tz::Tz;
use maud::{html, Markup};
use serde::Deserialize;

/// The page's query: a folder to fill the form with (from an audit finding that could not make it).
#[derive(Deserialize, Default)]
pub struct WebhooksQuery {
    folder: Option<String>,
}

/// `GET /accounts/{account}/webhooks`.
pub async fn page(State(d): Ds, view: AccountView, Query(q): Query<WebhooksQuery>) -> Result<Response, PageError> {
    let notice = d.sessions.take_notice(&view.viewer.session_id);
    let subs = d.app.store.subscriptions(&view.account.name);
    let body = body(&view, &subs, notice.as_ref(), q.folder.as_deref());
    let frame = Frame {
        title: format!("Webhooks of {}", view.account.name),
        viewer: Some(&view.viewer),
        account: Some(&view.account.name),
        section: Section::Webhooks,
    };
    Ok(html_page(layout::page(frame, body)))
}

/// The path of an account's webhooks page.
pub fn webhooks_href(account: &str) -> String {
    format!("/accounts/{}/webhooks", urlencode(account))
}

/// The path of one webhook's page.
pub fn webhook_href(account: &str, id: &str) -> String {
    format!("/accounts/{}/webhooks/{}", urlencode(account), urlencode(id))
}

/// The two pages of the section, the current one marked.
pub fn sub_navigation(account: &str, alerts: bool) -> Markup {
    let alerts_href = format!("/accounts/{}/alerts", urlencode(account));
    html! {
        nav class="subnav" aria-label="Webhooks and alerts" {
            ul {
                li { a href=(webhooks_href(account)) aria-current=[(!alerts).then_some("page")] { "Webhooks" } }
                li { a href=(alerts_href) aria-current=[alerts.then_some("page")] { "Alerts" } }
            }
        }
    }
}

/// What a form left to say: done or refused, and a secret to show this once.
pub fn notice(n: Option<&Notice>) -> Markup {
    let Some(n) = n else { return html! {} };
    html! {
        div class={"notice " @if n.done { "done" } @else { "refused" }} id="notice" role=(if n.done { "status" } else { "alert" }) {
            p { (n.text) }
            @if let Some((id, secret)) = &n.secret {
                label for="new-secret" { "Signing secret of " (id) ", shown this once" }
                input type="text" readonly class="share-url secret" id="new-secret" value=(secret);
                button type="button" class="secondary" data-copy="new-secret" hidden { "Copy" }
                span id="new-secret-status" role="status" {}
                p class="muted" { "Keep it where your receiver checks each delivery's " code { "webhook-signature" } " (the README shows how). It cannot be shown again; rotating makes a new one." }
            }
        }
    }
}

/// What a subscription watches, in words.
pub fn watch_words(sub: &Subscription) -> Markup {
    match &sub.watch {
        Watch::Folder { folder } => html! {
            "Changes in " code { (folder) } ": "
            (sub.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", "))
        },
        Watch::Alerts { events } => html! {
            "Usage alerts: " (events.iter().map(|e| e.as_str()).collect::<Vec<_>>().join(", "))
        },
    }
}

/// Whether a subscription sends, in words, with why not.
pub fn state_words(sub: &Subscription, tz: Tz) -> Markup {
    html! {
        @if !sub.enabled {
            strong class="over" { "Disabled" }
            @if let Some(why) = &sub.disabled_reason { ": " (why) }
            " (its events are kept, to replay)"
        } @else if let Some(since) = sub.failing_since {
            strong class="over" { "Failing" } " since " (format::minute(since, tz))
        } @else {
            span class="under" { "Enabled" }
        }
    }
}

/// What the fields of a webhook form start with.
pub struct WatchValues<'a> {
    /// Alerts rather than a folder.
    pub alerts: bool,
    /// The folder.
    pub folder: &'a str,
    /// The actions ticked.
    pub actions: &'a [Action],
    /// The alerts ticked.
    pub events: &'a [AlertKind],
}

impl WatchValues<'_> {
    /// A subscription's own values.
    pub fn of(sub: &Subscription) -> WatchValues<'_> {
        match &sub.watch {
            Watch::Folder { folder } => {
                WatchValues { alerts: false, folder, actions: &sub.actions, events: &AlertKind::ALL }
            }
            Watch::Alerts { events } => WatchValues { alerts: true, folder: "/", actions: &DEFAULT_ACTIONS, events },
        }
    }
}

/// The fields that say what a webhook watches; `prefix` keeps the ids of two forms on one page apart.
pub fn watch_fields(prefix: &str, v: &WatchValues<'_>) -> Markup {
    let id = |name: &str| format!("{prefix}-{name}");
    html! {
        fieldset class="choice" {
            legend { "Tell it of" }
            label class="check" { input type="radio" name="watch" value="folder" checked[!v.alerts]; " Changes in a folder" }
            label class="check" { input type="radio" name="watch" value="alerts" checked[v.alerts]; " The account's usage alerts" }
        }
        div class="field" {
            label for=(id("folder")) { "Folder (subfolders included)" }
            input type="text" id=(id("folder")) name="folder" value=(v.folder) aria-describedby=(id("folder-help"));
            p class="muted" id=(id("folder-help")) { "For a folder webhook: " code { "/" } " is every folder." }
        }
        fieldset class="choice" {
            legend { "Actions (a folder webhook)" }
            @for a in Action::ALL {
                label class="check" { input type="checkbox" name="actions" value=(a.as_str()) checked[v.actions.contains(&a)]; " " (a.as_str()) }
            }
        }
        fieldset class="choice" {
            legend { "Alerts (an alert webhook)" }
            @for e in AlertKind::ALL {
                label class="check" { input type="checkbox" name="events" value=(e.as_str()) checked[v.events.contains(&e)]; " " (e.as_str()) }
            }
        }
    }
}

fn body(view: &AccountView, subs: &[Subscription], n: Option<&Notice>, folder: Option<&str>) -> Markup {
    let account = &view.account.name;
    let manages = view.viewer.caller.may_manage(account);
    let new_values = WatchValues {
        alerts: false,
        folder: folder.unwrap_or("/"),
        actions: &DEFAULT_ACTIONS,
        events: &AlertKind::ALL,
    };
    html! {
        h1 { "Webhooks of " (account) }
        (sub_navigation(account, false))
        (notice(n))
        p class="lede" { "A webhook posts each change in a folder to your URL within seconds, signed, so that your integration need not poll for it; an alert webhook posts the account's usage alerts." }
        @if subs.is_empty() {
            div class="empty" id="no-webhooks" {
                p { strong { "No webhooks yet: " } "a webhook tells your system of each upload, change or deletion in a folder as it happens, instead of your system listing the folder again and again (every listing is a billable call)." }
                p { "The " a href=(format!("/accounts/{}/audit", urlencode(account))) { "audit" } " names the pollers a webhook would replace, each with a button that creates it." }
            }
        } @else {
            div class="table-wrap" {
                table id="webhooks" {
                    caption { "Open a webhook for its delivery log, to change it, rotate its secret or replay its events." }
                    thead { tr { th scope="col" { "Webhook" } th scope="col" { "Target" } th scope="col" { "Tells of" } th scope="col" { "State" } th scope="col" class="hide-narrow" { "Created" } } }
                    tbody {
                        @for sub in subs {
                            tr id=(sub.id) {
                                th scope="row" { a href=(webhook_href(account, &sub.id)) { (sub.id) } }
                                td class="path" { (sub.url) }
                                td { (watch_words(sub)) }
                                td { (state_words(sub, view.tz)) }
                                td class="nowrap hide-narrow" { (format::minute(sub.created_at, view.tz)) }
                            }
                        }
                    }
                }
            }
        }
        section id="new-webhook" aria-labelledby="new-webhook-heading" {
            h2 id="new-webhook-heading" { "Add a webhook" }
            @if manages {
                form method="post" action=(webhooks_href(account)) class="webhook-form" {
                    input type="hidden" name="csrf" value=(view.viewer.csrf);
                    div class="field" {
                        label for="nw-url" { "Receiver URL" }
                        input type="url" id="nw-url" name="url" required placeholder="https://example.com/hooks/callmeter";
                    }
                    (watch_fields("nw", &new_values))
                    div class="actions" { button type="submit" { "Create webhook" } }
                }
            } @else {
                p class="muted" { "Support reads webhooks and changes nothing: the account's key or the operator adds them." }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Utc;
    use std::collections::BTreeMap;

    fn sub(watch: Watch) -> Subscription {
        Subscription {
            id: "wh_1".into(),
            account: "acme".into(),
            url: "https://x.example/hook".into(),
            watch,
            actions: vec![Action::Create, Action::Destroy],
            enabled: true,
            disabled_reason: None,
            headers: BTreeMap::new(),
            secrets: vec![],
            failing_since: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        }
    }

    #[test]
    fn a_webhook_is_described_in_words() {
        let folder = sub(Watch::Folder { folder: "/in".into() });
        assert_eq!(watch_words(&folder).into_string(), "Changes in <code>/in</code>: create, destroy");
        let alerts = sub(Watch::Alerts { events: vec![AlertKind::Spike] });
        assert_eq!(watch_words(&alerts).into_string(), "Usage alerts: usage.spike");
        let tz = chrono_tz::UTC;
        assert!(state_words(&folder, tz).into_string().contains("Enabled"));
        let off = Subscription { enabled: false, disabled_reason: Some("the target answered 410".into()), ..folder };
        assert!(state_words(&off, tz).into_string().contains("Disabled</strong>: the target answered 410"));
    }

    #[test]
    fn the_form_fields_start_from_the_webhook() {
        let alerts = sub(Watch::Alerts { events: vec![AlertKind::Spike] });
        let fields = watch_fields("e", &WatchValues::of(&alerts)).into_string();
        assert!(fields.contains(r#"value="alerts" checked"#), "{fields}");
        assert!(fields.contains(r#"value="usage.spike" checked"#));
        assert!(!fields.contains(r#"value="usage.threshold_reached" checked"#));
        assert!(fields.contains(r#"id="e-folder""#) && fields.contains(r#"for="e-folder""#), "labelled");
        let secret = Notice { done: true, text: "made".into(), secret: Some(("wh_1".into(), "whsec_abc".into())) };
        let shown = notice(Some(&secret)).into_string();
        assert!(shown.contains("whsec_abc") && shown.contains("shown this once"), "{shown}");
    }
}
