//! The audit page: for a chosen range, the what-if at the top ("fix these
//! and your calls drop from X to Y"), the calls over time by source, then
//! the findings, biggest waste first, each with its source, its source's
//! calls over time, the avoidable calls and the recommendation.
//!
//! The report is the API's (`GET /v1/accounts/{a}/audit`): a day the daily
//! audits kept is read as kept; any other range is audited for the request
//! on the live audits' thread (`live_audits.rs`), one at a time, refused
//! with "try again" when that thread stays busy. With no range asked, the
//! page shows yesterday's kept audit when there is one (it opens at once
//! however many calls the account has), else the period so far.
//!
//! Each finding has a row of actions: a link to the finding's calls in the
//! request log and, for polling, a form that creates the webhook the
//! recommendation names (the finding's `webhook`: folder and actions), asking
//! only for the receiver's URL, then lands on the webhooks page showing it
//! (see [`finding_actions`]).

use super::charts::{self, Series};
use super::format::{self, count};
use super::layout::{self, query, urlencode, Frame, Section};
use super::page::{html_page, PageError};
use super::page_extract::Query;
use super::viewer::AccountView;
use super::Ds;
use crate::api::blocking;
use crate::audit;
use crate::error::ApiError;
use crate::live_audits::Refused;
use crate::metrics::Metrics;
use crate::routes::audits::{audit_range, AuditParams};
use axum::extract::State;
use axum::response::Response;
use callmeter_audit::{AuditReport, Finding, FindingDetails, FindingKind, Share, SourceKey, Timeline};
use chrono::{DateTime, NaiveDate, Utc};
use chrono_tz::Tz;
use maud::{html, Markup};
use serde::Deserialize;

/// Findings shown with their charts; the rest are listed in a table.
const FINDINGS_IN_FULL: usize = 12;

/// The page's query: a UTC day, or a range of local dates, or nothing.
#[derive(Deserialize, Default, Clone)]
pub struct AuditQuery {
    day: Option<String>,
    from: Option<String>,
    to: Option<String>,
    range: Option<String>,
}

/// Where the report came from.
enum Provenance {
    /// Kept by the daily audits for this UTC day.
    Kept(NaiveDate),
    /// Made for this request.
    Live,
}

/// `GET /accounts/{account}/audit`.
pub async fn page(State(d): Ds, view: AccountView, Query(q): Query<AuditQuery>) -> Result<Response, PageError> {
    let tz = view.tz;
    let now = Utc::now();
    let account = view.account.name.clone();
    let given = |v: &Option<String>| v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned);
    // A local date's midnight (or the next day's, for the last day), never past now.
    let local_day = |name: &str, v: &str, next: bool| -> Result<String, ApiError> {
        let date = NaiveDate::parse_from_str(v, "%Y-%m-%d")
            .map_err(|_| ApiError::BadRequest(format!("{name}: {v:?} is not a date")))?;
        let date = if next { date.succ_opt().unwrap_or(date) } else { date };
        Ok(callmeter_model::local_midnight(tz, date).min(now).to_rfc3339())
    };
    let yesterday = now.date_naive() - chrono::Duration::days(1);
    let params = match (given(&q.day), given(&q.from), given(&q.to), q.range.as_deref()) {
        (Some(day), _, _, _) => AuditParams { day: Some(day), ..Default::default() },
        (None, from, to, _) if from.is_some() || to.is_some() => AuditParams {
            from: from.map(|f| local_day("from", &f, false)).transpose()?,
            to: to.map(|t| local_day("to", &t, true)).transpose()?,
            day: None,
        },
        (None, None, None, Some("period")) => AuditParams::default(),
        _ => {
            let store = d.app.store.clone();
            let name = account.clone();
            let kept = blocking(move || Ok(store.audit(&name, yesterday)?.is_some())).await?;
            if kept {
                AuditParams { day: Some(yesterday.to_string()), ..Default::default() }
            } else {
                AuditParams::default()
            }
        }
    };
    let (from, to, day) = audit_range(&view.account, &params, now)?;
    let kept = match day {
        Some(day) => {
            let store = d.app.store.clone();
            let name = account.clone();
            blocking(move || Ok(store.audit(&name, day)?))
                .await?
                .map(|json| {
                    serde_json::from_slice::<AuditReport>(&json)
                        .map(|r| (r, Provenance::Kept(day)))
                        .map_err(|e| ApiError::Internal(format!("kept audit of {account} for {day}: {e}")))
                })
                .transpose()?
        }
        None => None,
    };
    let (report, provenance) = match kept {
        Some(k) => k,
        None => {
            let app = d.app.clone();
            let name = account.clone();
            let report = d
                .app
                .live_audits
                .run(move || audit::run(app.store.as_ref(), &app.settings, &name, from, to, &app.stopping))
                .await
                .inspect_err(|r| {
                    if matches!(r, Refused::Busy) {
                        Metrics::add(&d.app.metrics.refused_live_audits, 1);
                    }
                })
                .map_err(ApiError::from)?
                .ok_or_else(|| ApiError::Unavailable("the server is shutting down".into()))?;
            (report, Provenance::Live)
        }
    };
    let body = body(&view, tz, &q, &report, &provenance, from, to);
    let frame = Frame {
        title: format!("Audit of {}", view.account.name),
        viewer: Some(&view.viewer),
        account: Some(&view.account.name),
        section: Section::Audit,
    };
    Ok(html_page(layout::page(frame, body)))
}

fn kind_words(kind: FindingKind) -> &'static str {
    match kind {
        FindingKind::Polling => "Polling",
        FindingKind::ListAfterWrite => "Listing after every upload",
        FindingKind::DuplicateRequests => "Repeated requests",
    }
}

fn body(
    view: &AccountView,
    tz: Tz,
    q: &AuditQuery,
    r: &AuditReport,
    provenance: &Provenance,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
) -> Markup {
    let account = &view.account.name;
    let base = format!("/accounts/{}/audit", urlencode(account));
    let w = &r.what_if;
    let avoidable = w.calls.saturating_sub(w.calls_after);
    html! {
        h1 { "Audit of " (account) }
        p class="lede" {
            "From " strong { (format::minute(from, tz)) } " to " strong { (format::minute(to, tz)) } ": "
            (count(r.calls)) " calls, " (count(r.billable_calls)) " billable. "
            @match provenance {
                Provenance::Kept(day) => { "Kept by the daily audit of " (day) " (UTC)." }
                Provenance::Live => { "Audited just now." }
            }
        }
        (range_form(q, &base))
        @if r.calls == 0 {
            div class="empty" { p { strong { "No calls in this range." } " Pick another range, or send calls first: " a href=(format!("/accounts/{}/usage", urlencode(account))) { "the usage page" } " shows how." } }
        } @else {
            div class="callout" id="what-if" {
                @if avoidable == 0 {
                    p { strong { "No waste found." } " Every call in this range looks needed." }
                } @else {
                    p class="lede" {
                        "Fix " @if r.findings.len() == 1 { "this finding" } @else { "these " (r.findings.len()) " findings" }
                        " and your calls drop from " strong { (count(w.calls)) } " to " strong { (count(w.calls_after)) } ": "
                        strong { (format!("{:.1}", w.factor)) "× fewer" } "."
                    }
                    (plan_words(r))
                }
                @if r.retries_after_errors > 0 {
                    p class="muted" { (count(r.retries_after_errors)) " repeats followed a failed answer: retries, as they should be, and not counted as waste." }
                }
            }
            h2 id="timeline-heading" { "Calls over time, by source" }
            (timeline_chart(&r.timeline, tz))
            h2 { "Findings, biggest waste first" }
            @if r.findings.is_empty() {
                p class="empty" { "No polling, listing after uploads or repeated requests in this range." }
            }
            @for (i, f) in r.findings.iter().take(FINDINGS_IN_FULL).enumerate() {
                (finding(i, f, &r.timeline, account, manager_csrf(view)))
            }
            @if r.findings.len() > FINDINGS_IN_FULL {
                (other_findings(&r.findings[FINDINGS_IN_FULL..]))
            }
            h2 { "Where the calls come from" }
            div class="grid-2" {
                (shares("By source", &r.top_sources.source))
                (shares("By path", &r.top_sources.path_prefix))
                (shares("By interface", &r.top_sources.interface))
                (shares("By operation", &r.top_sources.operation))
            }
        }
    }
}

fn plan_words(r: &AuditReport) -> Markup {
    let w = &r.what_if;
    match (&w.plan_before, &w.plan_after) {
        (Some(before), Some(after)) if before.name != after.name && after.included_calls > 0 => {
            let smaller = before.included_calls as f64 / after.included_calls as f64;
            html! { p { "At this rate the plan that fits goes from " strong { (before.name) } " (" (count(before.included_calls)) " calls included) to " strong { (after.name) } " (" (count(after.included_calls)) "): " strong { (format!("{smaller:.1}")) "× smaller" } "." } }
        }
        (Some(before), Some(_)) => {
            html! { p { "The same plan, " strong { (before.name) } ", fits before and after: the saving is in overage and headroom." } }
        }
        _ => html! {},
    }
}

fn range_form(q: &AuditQuery, base: &str) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    html! {
        div class="actions" {
            a href=(format!("{base}?range=period")) { "This period so far" }
            a href=(format!("{base}{}", query(&[("day", &(Utc::now().date_naive() - chrono::Duration::days(1)).to_string())]))) { "Yesterday (UTC)" }
        }
        form class="filters" method="get" action=(base) aria-label="Audit another range" {
            div { label for="a-from" { "From (first day)" } input id="a-from" name="from" type="date" value=(v(&q.from)); }
            div { label for="a-to" { "To (last day)" } input id="a-to" name="to" type="date" value=(v(&q.to)); }
            div class="actions" { button type="submit" { "Audit this range" } }
        }
    }
}

/// Slot labels of a timeline.
fn timeline_labels(t: &Timeline, tz: Tz) -> Vec<String> {
    let start = t.start.unwrap_or_else(Utc::now);
    (0..t.calls.len())
        .map(|i| {
            let at = start + chrono::Duration::seconds((t.bucket_secs * i as u64) as i64);
            let local = at.with_timezone(&tz);
            if t.bucket_secs >= 86_400 {
                local.format("%-d %b").to_string()
            } else {
                local.format("%-d %b %H:%M").to_string()
            }
        })
        .collect()
}

fn timeline_chart(t: &Timeline, tz: Tz) -> Markup {
    if t.calls.is_empty() {
        return html! {};
    }
    let labels = timeline_labels(t, tz);
    let series: Vec<Series> = if t.sources.is_empty() {
        vec![Series { name: "all calls".into(), values: t.calls.clone() }]
    } else {
        t.sources.iter().map(|s| Series { name: s.source.clone(), values: s.calls.clone() }).collect()
    };
    let names: Vec<&str> = series.iter().map(|s| s.name.as_str()).collect();
    html! {
        figure aria-labelledby="timeline-heading" {
            (charts::stacked("Calls over time by source", &labels, &series, 300))
            figcaption { (charts::legend(&names)) p { "Each slot is " (format::duration(t.bucket_secs as f64)) "." } }
        }
    }
}

/// The session's CSRF token when the viewer may create webhooks (its key, the admin; not support).
fn manager_csrf(view: &AccountView) -> Option<&str> {
    view.viewer.caller.may_manage(&view.account.name).then_some(view.viewer.csrf.as_str())
}

fn finding(i: usize, f: &Finding, timeline: &Timeline, account: &str, csrf: Option<&str>) -> Markup {
    let source = f.source.key.to_string();
    let series = timeline.sources.iter().find(|s| s.source == source);
    let id = format!("finding-{}", i + 1);
    html! {
        article class="finding" id=(id) aria-labelledby=(format!("{id}-title")) {
            h3 id=(format!("{id}-title")) { (i + 1) ". " (kind_words(f.kind())) " of " code { (f.path) } " by " (source) }
            div class="grid" {
                div {
                    dl class="facts" {
                        dt { "Source" } dd { (source) (seen(f)) }
                        dt { "Path" } dd { code { (f.path) } }
                        @if let Some(op) = f.operation { dt { "Operation" } dd { (op.as_str()) } }
                        dt { "Calls" } dd { (count(f.calls)) }
                        dt { "Avoidable" } dd { strong { (count(f.avoidable_calls)) } " (" (count(f.avoidable_billable_calls)) " billable)" }
                        (details(&f.details))
                    }
                    p { strong { "What to do: " } (f.recommendation) }
                }
                div {
                    @match series {
                        Some(s) => figure {
                            (charts::spark(&format!("Calls of {source} over time"), &s.calls, (420, 110)))
                            figcaption { "Calls of this source over the range (" (count(s.total)) " in all)." }
                        },
                        None => p class="muted" { "This source is not among the busiest sources the audit charts; its calls are in the request log." },
                    }
                }
            }
            (finding_actions(&id, f, account, csrf))
        }
    }
}

/// A finding's actions: its calls in the request log and, for polling, the
/// form that creates the webhook on the finding's folder (an audit kept
/// before findings named their webhook offers the webhooks page instead).
/// Support, who changes nothing, is told who can create it.
fn finding_actions(id: &str, f: &Finding, account: &str, csrf: Option<&str>) -> Markup {
    let mut filter: Vec<(&str, &str)> = vec![("path_prefix", f.path.as_str())];
    match &f.source.key {
        SourceKey::ApiKey { api_key } => filter.push(("api_key", api_key)),
        SourceKey::User { user } => filter.push(("user", user)),
        SourceKey::Client { client_ip: Some(ip), .. } => filter.push(("client_ip", ip)),
        SourceKey::Client { .. } => {}
    }
    if let Some(op) = f.operation {
        filter.push(("operation", op.as_str()));
    }
    let webhooks = format!("/accounts/{}/webhooks", urlencode(account));
    let proposed = match &f.details {
        FindingDetails::Polling { webhook, .. } => Some(webhook.as_ref()),
        _ => None,
    };
    html! {
        div class="finding-actions" data-finding-kind=(f.kind().as_str()) {
            a href=(format!("/accounts/{}/calls{}", urlencode(account), query(&filter))) { "See these calls in the request log" }
        }
        @match (proposed, csrf) {
            (Some(Some(w)), Some(csrf)) => {
                form method="post" action=(webhooks) class="webhook-from-finding" aria-label=(format!("Create the webhook on {}", w.folder)) {
                    input type="hidden" name="csrf" value=(csrf);
                    input type="hidden" name="from" value="audit";
                    input type="hidden" name="watch" value="folder";
                    input type="hidden" name="folder" value=(w.folder);
                    @for a in &w.actions { input type="hidden" name="actions" value=(a.as_str()); }
                    div class="field" {
                        label for=(format!("{id}-url")) { "Your receiver's URL for a webhook on " code { (w.folder) } " (" (w.actions.iter().map(|a| a.as_str()).collect::<Vec<_>>().join(", ")) ")" }
                        input type="url" id=(format!("{id}-url")) name="url" required placeholder="https://example.com/hooks/callmeter";
                    }
                    button type="submit" { "Create the webhook" }
                }
            },
            (Some(Some(w)), None) => p class="muted" { "A webhook on " code { (w.folder) } " would replace this polling: the account's key or the operator can create it." },
            (Some(None), Some(_)) => p { a href=(format!("{webhooks}{}#new-webhook", query(&[("folder", &f.path)]))) { "Create a webhook for this folder" } },
            _ => {},
        }
    }
}

fn seen(f: &Finding) -> Markup {
    let s = &f.source;
    let parts: Vec<String> = [
        s.interface.map(|i| format!("over {}", i.as_str())),
        s.seen_user.as_ref().map(|u| format!("user {u}")),
        s.seen_client_ip.as_ref().map(|ip| format!("from {ip}")),
        s.seen_user_agent.as_ref().map(|ua| format!("agent {ua}")),
        s.integration.as_ref().map(|i| format!("integration {i}")),
    ]
    .into_iter()
    .flatten()
    .collect();
    html! { @if !parts.is_empty() { br; span class="muted" { (parts.join(", ")) } } }
}

fn details(d: &FindingDetails) -> Markup {
    match d {
        FindingDetails::Polling { interval_secs, polls, polls_with_change, regularity, .. } => html! {
            dt { "Every" } dd { (format::duration(*interval_secs)) }
            dt { "Polls" } dd { (count(*polls)) ", of which " (count(*polls_with_change)) " found a change" }
            dt { "Regularity" } dd { (format!("{:.0} %", regularity * 100.0)) }
        },
        FindingDetails::ListAfterWrite { batches, uploads, listings, pages_per_listing, .. } => html! {
            dt { "Batches" } dd { (count(*batches)) " batches, " (count(*uploads)) " uploads, " (count(*listings)) " listings" }
            dt { "Pages a listing" } dd { (count(*pages_per_listing)) }
        },
        FindingDetails::DuplicateRequests { duplicates, window_secs } => html! {
            dt { "Repeats" } dd { (count(*duplicates)) " within " (format::duration(*window_secs)) }
        },
    }
}

fn other_findings(rest: &[Finding]) -> Markup {
    html! {
        h3 { "Smaller findings" }
        div class="table-wrap" {
            table {
                thead { tr { th scope="col" { "Kind" } th scope="col" { "Source" } th scope="col" { "Path" } th scope="col" class="num" { "Avoidable" } th scope="col" { "What to do" } } }
                tbody {
                    @for f in rest {
                        tr { td { (kind_words(f.kind())) } td { (f.source.key.to_string()) } td class="path" { (f.path) } td class="num" { (count(f.avoidable_calls)) } td { (f.recommendation) } }
                    }
                }
            }
        }
    }
}

fn shares(title: &str, rows: &[Share]) -> Markup {
    html! {
        div {
            h3 { (title) }
            @if rows.is_empty() { p class="muted" { "None." } }
            @else {
                div class="table-wrap" {
                    table {
                        thead { tr { th scope="col" { "Value" } th scope="col" class="num" { "Calls" } th scope="col" class="num" { "Share" } } }
                        tbody { @for s in rows.iter().take(10) { tr { td class="path" { (s.value) } td class="num" { (count(s.calls)) } td class="num" { (format::percent(s.share)) } } } }
                    }
                }
            }
        }
    }
}
