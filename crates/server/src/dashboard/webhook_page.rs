//! One webhook's page: what it is, the forms that change it (enable or
//! disable, rotate its secret, replay its events since a time, edit,
//! delete), and its delivery log: every attempt, newest first, with its
//! status, response code, latency and error, and a button that sends its
//! delivery again.
//!
//! The log is the store's page of attempts, as `GET …/webhooks/{id}/deliveries`
//! reads it, paged by attempt id (`before`). Support sees all of it and none
//! of the forms (the POSTs refuse it too: `webhook_forms.rs`).

use super::format::{self, count};
use super::layout::{self, query, Frame, Section};
use super::page::{html_page, PageError};
use super::page_extract::{Path, Query};
use super::session::Notice;
use super::viewer::AccountView;
use super::webhooks_page::{notice, state_words, sub_navigation, watch_fields, watch_words, webhook_href, WatchValues};
use super::Ds;
use crate::api::blocking;
use crate::error::ApiError;
use crate::routes::webhooks::known_webhook;
use axum::extract::State;
use axum::response::Response;
use callmeter_store::{Attempt, AttemptPage, AttemptStatus, Subscription};
use chrono::Utc;
use chrono_tz::Tz;
use maud::{html, Markup};
use serde::Deserialize;
use std::collections::HashSet;

/// Attempts on a page of the log.
const PER_PAGE: usize = 50;

/// The page's query: the log's page.
#[derive(Deserialize, Default)]
pub struct WebhookQuery {
    before: Option<u64>,
}

/// `GET /accounts/{account}/webhooks/{id}`.
pub async fn page(
    State(d): Ds,
    view: AccountView,
    Path((_, id)): Path<(String, String)>,
    Query(q): Query<WebhookQuery>,
) -> Result<Response, PageError> {
    let sub = known_webhook(&d.app, &view.account.name, &id).map_err(|e| match e {
        ApiError::NotFound(m) => PageError::NotFound(m),
        other => PageError::Api(other),
    })?;
    let store = d.app.store.clone();
    let (account, before) = (view.account.name.clone(), q.before);
    let log = blocking(move || Ok(store.delivery_attempts(&account, &id, before, PER_PAGE)?)).await?;
    let n = d.sessions.take_notice(&view.viewer.session_id);
    let body = body(&view, &sub, &log, q.before, n.as_ref());
    let frame = Frame {
        title: format!("Webhook {}", sub.id),
        viewer: Some(&view.viewer),
        account: Some(&view.account.name),
        section: Section::Webhooks,
    };
    Ok(html_page(layout::page(frame, body)))
}

fn body(view: &AccountView, sub: &Subscription, log: &AttemptPage, before: Option<u64>, n: Option<&Notice>) -> Markup {
    let account = &view.account.name;
    let href = webhook_href(account, &sub.id);
    let tz = view.tz;
    let rotated_until = sub.secrets.iter().filter_map(|s| s.expires_at).max().filter(|t| *t > Utc::now());
    html! {
        h1 { "Webhook " (sub.id) }
        (sub_navigation(account, false))
        (notice(n))
        dl class="facts" id="webhook" {
            dt { "Target" } dd { code { (sub.url) } }
            dt { "Tells of" } dd { (watch_words(sub)) }
            dt { "State" } dd { (state_words(sub, tz)) }
            dt { "Signing secret" } dd {
                "Shown once, when made or rotated."
                @if let Some(until) = rotated_until { " The previous secret also signs until " (format::minute(until, tz)) "." }
            }
            @if !sub.headers.is_empty() {
                dt { "Custom headers" } dd { (sub.headers.keys().cloned().collect::<Vec<_>>().join(", ")) " (values hidden)" }
            }
            dt { "Created" } dd { (format::minute(sub.created_at, tz)) }
            dt { "Changed" } dd { (format::minute(sub.updated_at, tz)) }
        }
        @if view.viewer.caller.may_manage(account) {
            (forms(view, sub, &href))
        } @else {
            p class="muted" { "Support reads webhooks and changes nothing." }
        }
        h2 id="deliveries-heading" { "Delivery log" }
        (delivery_log(tz, manager_csrf(view), sub, log, before, &href))
    }
}

fn forms(view: &AccountView, sub: &Subscription, href: &str) -> Markup {
    let csrf = &view.viewer.csrf;
    let day_ago = (Utc::now() - chrono::Duration::days(1)).with_timezone(&view.tz).format("%Y-%m-%dT%H:%M").to_string();
    html! {
        div class="webhook-actions" {
            form method="post" action=(format!("{href}/enabled")) {
                input type="hidden" name="csrf" value=(csrf);
                input type="hidden" name="enabled" value=(if sub.enabled { "false" } else { "true" });
                @if sub.enabled {
                    button type="submit" class="secondary" id="disable" { "Disable" }
                    p class="muted" { "Nothing is sent while it is disabled; its events are kept to replay." }
                } @else {
                    button type="submit" id="enable" { "Enable" }
                    p class="muted" { "Sending resumes with new events; replay sends those kept meanwhile." }
                }
            }
            form method="post" action=(format!("{href}/rotate-secret")) {
                input type="hidden" name="csrf" value=(csrf);
                button type="submit" class="secondary" id="rotate" { "Rotate the signing secret" }
                p class="muted" { "A new secret, shown once; the old one also signs for 24 hours." }
            }
            form method="post" action=(format!("{href}/replay")) id="replay" {
                input type="hidden" name="csrf" value=(csrf);
                label for="replay-since" { "Send again every event since (" (view.tz.name()) ")" }
                input type="datetime-local" id="replay-since" name="since" required value=(day_ago);
                button type="submit" class="secondary" { "Replay" }
            }
        }
        details class="edit-box" {
            summary { "Change this webhook" }
            form method="post" action=(href) class="webhook-form" id="edit" {
                input type="hidden" name="csrf" value=(csrf);
                div class="field" {
                    label for="ew-url" { "Receiver URL" }
                    input type="url" id="ew-url" name="url" required value=(sub.url);
                }
                (watch_fields("ew", &WatchValues::of(sub)))
                div class="actions" { button type="submit" { "Save changes" } }
            }
            form method="post" action=(format!("{href}/delete")) id="delete" {
                input type="hidden" name="csrf" value=(csrf);
                label class="check" { input type="checkbox" name="confirm" value="yes" required; " Delete it, and the events not yet delivered" }
                button type="submit" class="secondary danger" { "Delete webhook" }
            }
        }
    }
}

/// The session's CSRF token when the viewer may change the webhook: its forms carry it.
fn manager_csrf(view: &AccountView) -> Option<&str> {
    view.viewer.caller.may_manage(&view.account.name).then_some(view.viewer.csrf.as_str())
}

/// The log; with a redeliver button a delivery when `csrf` is given (the viewer may change the webhook).
fn delivery_log(
    tz: Tz,
    csrf: Option<&str>,
    sub: &Subscription,
    log: &AttemptPage,
    before: Option<u64>,
    href: &str,
) -> Markup {
    // One button a delivery: on its newest attempt on this page.
    let mut offered = HashSet::new();
    html! {
        @if log.attempts.is_empty() && before.is_none() {
            div class="empty" id="no-deliveries" {
                p { strong { "No deliveries yet: " } "each event this webhook tells of is posted to its target within seconds, and every attempt shows here with the answer it got." }
            }
        } @else {
            div class="table-wrap" {
                table id="deliveries" aria-labelledby="deliveries-heading" {
                    thead { tr {
                        th scope="col" { "When" } th scope="col" { "Delivery" } th scope="col" { "Status" }
                        th scope="col" class="num" { "Response" } th scope="col" class="num" { "Latency" } th scope="col" { "Error" }
                        @if csrf.is_some() { th scope="col" { span class="sr-only" { "Send again" } } }
                    } }
                    tbody {
                        @for a in &log.attempts {
                            tr {
                                td class="nowrap" { (format::time(a.at, tz)) }
                                td { (a.delivery) br; span class="muted path" { (a.webhook_id) } }
                                td {
                                    (status_words(a))
                                    @if let Some(next) = a.next_attempt_at {
                                        br; span class="muted nowrap" { "next try " (format::time(next, tz)) }
                                    }
                                }
                                td class="num" { (a.response_code.map(|c| c.to_string()).unwrap_or_else(|| "–".into())) }
                                td class="num" { (count(a.latency_ms)) " ms" }
                                td class="path" { (a.error.clone().unwrap_or_default()) }
                                @if let Some(csrf) = csrf {
                                    td { @if offered.insert(a.delivery) { (redeliver_form(csrf, sub, a, href)) } }
                                }
                            }
                        }
                    }
                }
            }
            div class="pager" {
                @if let Some(next) = log.next_before {
                    a href=(format!("{href}{}", query(&[("before", &next.to_string())]))) id="older-attempts" { "Older attempts" }
                }
                @if before.is_some() { a href=(href) { "Newest attempts" } }
            }
        }
    }
}

fn status_words(a: &Attempt) -> Markup {
    match a.status {
        AttemptStatus::Delivered => html! { span class="under" { "delivered" } },
        AttemptStatus::Failed => html! { span class="over" { "failed" } },
    }
}

fn redeliver_form(csrf: &str, sub: &Subscription, a: &Attempt, href: &str) -> Markup {
    html! {
        form method="post" action=(format!("{href}/deliveries/{}/redeliver", a.delivery)) {
            input type="hidden" name="csrf" value=(csrf);
            button type="submit" class="secondary" disabled[!sub.enabled] { "Redeliver" span class="sr-only" { " delivery " (a.delivery) } }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::Action;
    use callmeter_store::Watch;
    use std::collections::BTreeMap;

    fn attempt(id: u64, delivery: u64, status: AttemptStatus) -> Attempt {
        Attempt {
            id,
            delivery,
            webhook_id: format!("msg_wh_1_{delivery:x}"),
            at: Utc::now(),
            status,
            response_code: Some(if status == AttemptStatus::Delivered { 200 } else { 503 }),
            latency_ms: 12,
            error: (status == AttemptStatus::Failed).then(|| "the target answered 503".into()),
            next_attempt_at: (status == AttemptStatus::Failed).then(|| Utc::now() + chrono::Duration::minutes(5)),
        }
    }

    #[test]
    fn the_log_offers_one_redelivery_a_delivery_and_none_to_support() {
        let sub = Subscription {
            id: "wh_1".into(),
            account: "acme".into(),
            url: "https://x.example/hook".into(),
            watch: Watch::Folder { folder: "/".into() },
            actions: vec![Action::Create],
            enabled: true,
            disabled_reason: None,
            headers: BTreeMap::new(),
            secrets: vec![],
            failing_since: None,
            created_at: Utc::now(),
            updated_at: Utc::now(),
        };
        let log = AttemptPage {
            attempts: vec![
                attempt(3, 2, AttemptStatus::Delivered),
                attempt(2, 2, AttemptStatus::Failed),
                attempt(1, 1, AttemptStatus::Delivered),
            ],
            next_before: Some(1),
        };
        let href = "/accounts/acme/webhooks/wh_1";
        let html = delivery_log(chrono_tz::UTC, Some("c"), &sub, &log, None, href).into_string();
        assert_eq!(html.matches("/redeliver").count(), 2, "one a delivery: {html}");
        assert!(html.contains("the target answered 503") && html.contains("before=1"));
        assert_eq!(html.matches("next try ").count(), 1, "the failed attempt says when its retry comes: {html}");
        let html = delivery_log(chrono_tz::UTC, None, &sub, &log, None, href).into_string();
        assert!(!html.contains("<form"), "support gets no forms");
        let empty = AttemptPage { attempts: vec![], next_before: None };
        assert!(delivery_log(chrono_tz::UTC, None, &sub, &empty, None, href)
            .into_string()
            .contains("No deliveries yet"));
    }
}
