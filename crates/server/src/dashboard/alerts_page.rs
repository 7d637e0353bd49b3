//! The alerts page of an account: the usage alerts its usage fired, newest
//! first (thresholds of the plan reached, an overage foreseen, a spike),
//! each with what it saw and the top waste finding it carried.
//!
//! The alerts are the store's, as `GET /v1/accounts/{a}/alerts` pages them
//! (by alert id, `before`): the same records alert webhooks are sent.

use super::format::{self, count};
use super::layout::{self, query, urlencode, Frame, Section};
use super::page::{html_page, PageError};
use super::page_extract::Query;
use super::viewer::AccountView;
use super::webhooks_page::{sub_navigation, webhooks_href};
use super::Ds;
use crate::api::blocking;
use axum::extract::State;
use axum::response::Response;
use callmeter_store::{Alert, AlertKind, AlertPage};
use chrono_tz::Tz;
use maud::{html, Markup};
use serde::Deserialize;

/// Alerts on a page.
const PER_PAGE: usize = 50;

/// The page's query: the page.
#[derive(Deserialize, Default)]
pub struct AlertsQuery {
    before: Option<u64>,
}

/// `GET /accounts/{account}/alerts`.
pub async fn page(State(d): Ds, view: AccountView, Query(q): Query<AlertsQuery>) -> Result<Response, PageError> {
    let store = d.app.store.clone();
    let (account, before) = (view.account.name.clone(), q.before);
    let alerts = blocking(move || Ok(store.alerts(&account, before, PER_PAGE)?)).await?;
    let body = body(&view.account.name, view.tz, &alerts, q.before);
    let frame = Frame {
        title: format!("Alerts of {}", view.account.name),
        viewer: Some(&view.viewer),
        account: Some(&view.account.name),
        section: Section::Webhooks,
    };
    Ok(html_page(layout::page(frame, body)))
}

fn kind_words(kind: AlertKind) -> &'static str {
    match kind {
        AlertKind::ThresholdReached => "Threshold reached",
        AlertKind::ProjectedOverage => "Overage foreseen",
        AlertKind::Spike => "Spike",
    }
}

/// What an alert saw, in a sentence.
fn saw(a: &Alert, tz: Tz) -> Markup {
    match a.kind {
        AlertKind::ThresholdReached => html! {
            (a.threshold_percent.map(|t| format!("{t} %")).unwrap_or_default()) " of the plan " (a.plan) ": "
            (count(a.billed_calls)) " billed of " (count(a.included_calls)) " included (" (format!("{:.1} %", a.percent_used)) ")."
        },
        AlertKind::ProjectedOverage => html! {
            "At this pace the period ends at " (a.projected_calls.map(count).unwrap_or_default()) " calls, past the "
            (count(a.included_calls)) " included"
            @if let Some(at) = a.projected_overage_at { ", from " (format::minute(at, tz)) }
            "."
        },
        AlertKind::Spike => html! {
            (a.day.map(|d| d.to_string()).unwrap_or_default()) ": " (a.day_calls.map(count).unwrap_or_default()) " calls"
            @if let Some(median) = a.trailing_median_calls { ", against a 7-day median of " (count(median.round() as u64)) }
            "."
        },
    }
}

fn body(account: &str, tz: Tz, page: &AlertPage, before: Option<u64>) -> Markup {
    let href = format!("/accounts/{}/alerts", urlencode(account));
    html! {
        h1 { "Alerts of " (account) }
        (sub_navigation(account, true))
        p class="lede" { "Usage alerts fire when billed calls reach a share of the plan (50, 80 and 100 % unless set otherwise), when the period's projection passes the plan, and on a day far above the usual; each once. Newest first." }
        @if page.alerts.is_empty() && before.is_none() {
            div class="empty" id="no-alerts" {
                p { strong { "No alerts yet: " } "this account's usage has not reached a threshold of its plan, nor spiked. When it does, the alert shows here and is posted to the account's alert webhooks." }
                p { a href=(format!("{}#new-webhook", webhooks_href(account))) { "Add an alert webhook" } " to be told at once." }
            }
        } @else {
            div class="table-wrap" {
                table id="alerts" {
                    thead { tr { th scope="col" { "Fired" } th scope="col" { "Alert" } th scope="col" { "What it saw" } th scope="col" class="hide-narrow" { "Period" } th scope="col" { "Top waste" } } }
                    tbody {
                        @for a in &page.alerts {
                            tr {
                                td class="nowrap" { (format::minute(a.fired_at, tz)) }
                                td { (kind_words(a.kind)) br; code class="muted" { (a.kind.as_str()) } }
                                td { (saw(a, tz)) }
                                td class="nowrap hide-narrow" { (format::date(a.period.start, tz)) " to " (format::date(a.period.end, tz)) }
                                td {
                                    @match &a.top_finding {
                                        Some(f) => {
                                            (f.summary) " "
                                            a href=(format!("/accounts/{}/audit{}", urlencode(account), query(&[("day", &f.audit_day.to_string())]))) { "The audit" }
                                        },
                                        None => span class="muted" { "none found" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
            div class="pager" {
                @if let Some(next) = page.next_before {
                    a href=(format!("{href}{}", query(&[("before", &next.to_string())]))) id="older-alerts" { "Older alerts" }
                }
                @if before.is_some() { a href=(href) { "Newest alerts" } }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use callmeter_model::UsagePeriod;
    use chrono::Utc;

    #[test]
    fn an_alert_says_what_it_saw() {
        let now = Utc::now();
        let a = Alert {
            id: 1,
            account: "acme".into(),
            kind: AlertKind::ThresholdReached,
            fired_at: now,
            period: UsagePeriod { start: now, end: now },
            plan: "small".into(),
            included_calls: 1_000,
            billed_calls: 812,
            percent_used: 81.2,
            threshold_percent: Some(80),
            projected_calls: None,
            projected_overage_at: None,
            day: None,
            day_calls: None,
            trailing_median_calls: None,
            top_finding: None,
        };
        assert_eq!(
            saw(&a, chrono_tz::UTC).into_string(),
            "80 % of the plan small: 812 billed of 1,000 included (81.2 %)."
        );
        let page = AlertPage { alerts: vec![a], next_before: Some(1) };
        let html = body("acme", chrono_tz::UTC, &page, None).into_string();
        assert!(html.contains("Threshold reached") && html.contains("before=1") && html.contains("none found"));
        let empty = AlertPage { alerts: vec![], next_before: None };
        assert!(body("acme", chrono_tz::UTC, &empty, None).into_string().contains("No alerts yet"));
    }
}
