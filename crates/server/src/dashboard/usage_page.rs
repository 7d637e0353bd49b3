//! The usage page: the period against the plan (a gauge with the projection
//! and the day the allowance would be passed), calls over the period as a
//! chart, the previous periods, and who makes the calls (tables by
//! interface, operation, API key and user, each downloadable as CSV).
//!
//! The numbers are the API's: the report is `routes::usage::usage_report`,
//! the function behind `GET /v1/accounts/{a}/usage`, and the tables are
//! `usage::groups_from_totals` / `groups_from_breakdown`, behind `group_by=`.
//! The same page, without the forms, is what a share link shows.

use super::charts::{self, Series};
use super::format::{self, count};
use super::layout::{self, query, urlencode, Frame, Section};
use super::page::{html_page, PageError};
use super::page_extract::{Path, Query};
use super::share;
use super::usage_chart::{self, Stacking};
use super::viewer::AccountView;
use super::{Dashboard, Ds};
use crate::api::blocking;
use crate::export::csv_row;
use crate::routes::usage::{usage_report, UsageParams};
use crate::usage::{self, Dimension, Granularity, Group, UsageReport};
use axum::extract::State;
use axum::http::{header, HeaderMap};
use axum::response::{IntoResponse, Response};
use callmeter_store::AccountRecord;
use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use maud::{html, Markup};
use serde::Deserialize;
use std::sync::Arc;

/// Rows of a breakdown table shown on the page; the CSV has them all.
const TABLE_ROWS: usize = 15;
/// Previous periods listed.
const PREVIOUS_PERIODS: usize = 6;

/// The page's query.
#[derive(Deserialize, Default, Clone)]
pub struct UsageQuery {
    /// `current`, `previous` or a local date in the period.
    pub period: Option<String>,
    /// `hour` or `day`.
    pub granularity: Option<String>,
    /// What the chart stacks: `interface`, `direction` or `billable`.
    pub view: Option<String>,
}

/// Everything the page shows, read in one blocking task.
pub struct UsageData {
    report: UsageReport,
    granularity: Granularity,
    stacking: Stacking,
    slots: Vec<(String, DateTime<Utc>)>,
    layers: Vec<Series>,
    tables: Vec<(Dimension, Vec<Group>)>,
    previous: Vec<UsageReport>,
    now: DateTime<Utc>,
}

/// The breakdowns the page has, with the names their CSV files take.
const DIMENSIONS: [(Dimension, &str, &str); 4] = [
    (Dimension::Interface, "interface", "Interface"),
    (Dimension::Operation, "operation", "Operation"),
    (Dimension::ApiKey, "api_key", "API key"),
    (Dimension::User, "user", "User"),
];

/// Reads what the page shows.
pub fn read(d: &Dashboard, account: &AccountRecord, tz: Tz, q: &UsageQuery) -> Result<UsageData, PageError> {
    let now = Utc::now();
    let app = &d.app;
    // Hourly, for the day the allowance was passed.
    let params = UsageParams {
        period: Some(q.period.clone().unwrap_or_else(|| "current".into())),
        granularity: Some("hour".into()),
        ..Default::default()
    };
    let report = usage_report(app, &account.name, &params, now)?;
    let period = report.period.as_ref().expect("a period was asked for");
    let shown_to = period.end.min(now.max(period.start));
    let granularity = match q.granularity.as_deref() {
        Some("hour") => Granularity::Hour,
        Some("day") => Granularity::Day,
        _ if shown_to - period.start <= chrono::Duration::days(3) => Granularity::Hour,
        _ => Granularity::Day,
    };
    let stacking = Stacking::parse(q.view.as_deref());
    let (b0, b1) = usage::bucket_range(report.from, report.to);
    let rows = app.store.totals(&account.name, b0, b1)?;
    let breakdown = app.store.breakdown(&account.name, b0, b1)?;
    let slots = usage_chart::slots(period.start, shown_to, tz, granularity);
    let layers = usage_chart::layers(&rows, tz, granularity, &slots, stacking);
    let tables = DIMENSIONS
        .iter()
        .map(|(dim, _, _)| {
            let groups = match dim {
                Dimension::Interface | Dimension::Operation => usage::groups_from_totals(&rows, &[*dim]),
                Dimension::ApiKey | Dimension::User => usage::groups_from_breakdown(&breakdown, &[*dim]),
            };
            (*dim, groups)
        })
        .collect();
    let mut previous = Vec::new();
    let mut before = period.start;
    for _ in 0..PREVIOUS_PERIODS {
        let day = (before - chrono::Duration::seconds(1)).with_timezone(&tz).date_naive();
        let params = UsageParams { period: Some(day.to_string()), ..Default::default() };
        let Ok(r) = usage_report(app, &account.name, &params, now) else { break };
        let Some(info) = r.period.as_ref() else { break };
        let start = info.start;
        // Periods before the account's first had no calls (a backfill's would): the list stops there.
        if start >= before || (r.calls == 0 && info.end <= account.created_at) {
            break;
        }
        before = start;
        previous.push(r);
    }
    Ok(UsageData { report, granularity, stacking, slots, layers, tables, previous, now })
}

/// `GET /accounts/{account}/usage`.
pub async fn page(
    State(d): Ds,
    view: AccountView,
    headers: HeaderMap,
    Query(q): Query<UsageQuery>,
) -> Result<Response, PageError> {
    let (dd, account, tz, q2) = (d.clone(), view.account.clone(), view.tz, q.clone());
    let data = blocking(move || read(&dd, &account, tz, &q2).map_err(into_api)).await?;
    let shares =
        if view.viewer.caller.may_manage(&view.account.name) { Some(share::panel(&d, &view, &headers)) } else { None };
    let body = body(&view.account.name, tz, &q, &data, Mode::SignedIn { shares });
    let frame = Frame {
        title: format!("Usage of {}", view.account.name),
        viewer: Some(&view.viewer),
        account: Some(&view.account.name),
        section: Section::Usage,
    };
    Ok(html_page(layout::page(frame, body)))
}

/// A page error carried through `blocking`, which takes the API's error type.
pub fn into_api(e: PageError) -> crate::error::ApiError {
    match e {
        PageError::Api(e) => e,
        PageError::NotFound(m) => crate::error::ApiError::NotFound(m),
        other => crate::error::ApiError::Internal(format!("{other:?}")),
    }
}

/// Whether the page is for a signed-in viewer (links, forms) or behind a share link (read-only).
pub enum Mode {
    /// Signed in; the share-link panel when the viewer may make links.
    SignedIn {
        /// The panel, if shown.
        shares: Option<Markup>,
    },
    /// Behind a share link: no links to other pages, no forms.
    Shared {
        /// The link's token, for the page's own links (period, chart).
        token: String,
        /// When the link stops working.
        expires: DateTime<Utc>,
    },
}

/// The page's main content.
pub fn body(account: &str, tz: Tz, q: &UsageQuery, data: &UsageData, mode: Mode) -> Markup {
    let r = &data.report;
    let period = r.period.as_ref().expect("a period report");
    let base = match &mode {
        Mode::SignedIn { .. } => format!("/accounts/{}/usage", urlencode(account)),
        Mode::Shared { token, .. } => format!("/share/{token}"),
    };
    let selector = q.period.clone().unwrap_or_else(|| "current".into());
    let link = |period: &str, granularity: &str, view: &str| {
        format!("{base}{}", query(&[("period", period), ("granularity", granularity), ("view", view)]))
    };
    let gran = match data.granularity {
        Granularity::Hour => "hour",
        Granularity::Day => "day",
    };
    html! {
        @if let Mode::Shared { expires, .. } = &mode {
            p class="callout" { "A read-only view of " strong { (account) } "'s usage, shared with you. The link works until " (format::minute(*expires, tz)) "." }
        }
        h1 { "Usage of " (account) }
        p class="lede" {
            "Period " strong { (format::date(period.start, tz)) " to " (format::date(period.end - chrono::Duration::seconds(1), tz)) }
            " on plan " strong { (r.plan) } ", times in " (r.timezone) ". "
            @if period.closed { "This period has closed: its billed total is final." }
            @else if period.end <= data.now { "This period has ended and closes " (format::minute(period.closes_at, tz)) "." }
        }
        (gauge(r, data.now, tz))
        @if r.calls == 0 {
            (empty_state(account))
        }
        h2 id="chart-heading" { "Calls per " (gran) }
        div class="actions" role="group" aria-label="Chart options" {
            @for s in [Stacking::Interface, Stacking::Direction, Stacking::Billable] {
                @if s == data.stacking { strong aria-current="true" { (s.label()) } }
                @else { a href=(link(&selector, gran, s.as_str())) { (s.label()) } }
            }
            span class="muted" { "·" }
            @for (g, label) in [("hour", "Per hour"), ("day", "Per day")] {
                @if g == gran { strong aria-current="true" { (label) } }
                @else { a href=(link(&selector, g, data.stacking.as_str())) { (label) } }
            }
        }
        (chart(data, tz))
        h2 { "Where the calls come from" }
        @for (dim, groups) in &data.tables {
            (breakdown_table(*dim, groups, r.calls, &base, &selector, &mode))
        }
        h2 { "Previous periods" }
        @if data.previous.is_empty() {
            p class="muted" { "No earlier period of this account." }
        } @else {
            div class="table-wrap" {
                table {
                    thead { tr { th scope="col" { "Period" } th scope="col" class="num" { "Calls" } th scope="col" class="num" { "Billed" } th scope="col" class="num" { "Included" } th scope="col" class="num" { "Overage" } th scope="col" { "Status" } } }
                    tbody {
                        @for p in &data.previous {
                            @let info = p.period.as_ref().expect("a period report");
                            @let day = format::date(info.start, tz);
                            tr {
                                th scope="row" { a href=(link(&day, "day", data.stacking.as_str())) { (day) " to " (format::date(info.end - chrono::Duration::seconds(1), tz)) } }
                                td class="num" { (count(p.calls)) }
                                td class="num" { (count(p.billed_calls)) }
                                td class="num" { (count(p.included_calls)) }
                                td class="num" { (format::money(p.overage.price, &p.overage.currency)) }
                                td { @if info.closed { "closed" } @else { "open" } }
                            }
                        }
                    }
                }
            }
        }
        @if let Mode::SignedIn { shares: Some(panel) } = mode { (panel) }
    }
}

/// The gauge and the numbers beside it.
fn gauge(r: &UsageReport, now: DateTime<Utc>, tz: Tz) -> Markup {
    let period = r.period.as_ref().expect("a period report");
    let over = r.billed_calls > r.included_calls;
    let passing = passing_date(r, now);
    let label = format!(
        "{} of {} included calls billed so far{}",
        count(r.billed_calls),
        count(r.included_calls),
        r.projected_calls.map(|p| format!(", {} projected by the period's end", count(p))).unwrap_or_default()
    );
    html! {
        div class="cards" {
            div class="card" { span class="label" { "Billed calls" } span class={"value" @if over { " over" }} id="billed-calls" { (count(r.billed_calls)) } }
            div class="card" { span class="label" { "Included in the plan" } span class="value" { (count(r.included_calls)) } }
            div class="card" { span class="label" { "All calls" } span class="value" id="all-calls" { (count(r.calls)) } }
            @if let Some(p) = r.projected_calls {
                div class="card" { span class="label" { "Projected by the period's end" } span class={"value" @if p > r.included_calls { " over" }} id="projected-calls" { (count(p)) } }
            }
            div class="card" { span class="label" { "Overage so far" } span class={"value" @if over { " over" }} { (format::money(r.overage.price, &r.overage.currency)) } }
        }
        figure {
            (charts::gauge(&label, r.billed_calls, r.projected_calls, r.included_calls))
            figcaption {
                ul class="legend" {
                    li { span class="swatch c0" {} "billed so far" }
                    @if r.projected_calls.is_some() { li { span class="swatch projection" {} "projected by " (format::date(period.end - chrono::Duration::seconds(1), tz)) } }
                    li { span class="swatch limit" {} "the plan's allowance" }
                }
            }
        }
        p {
            (count(r.billable_calls)) " billable and " (count(r.non_billable_calls)) " non-billable calls; "
            (count(r.read_calls)) " reads, " (count(r.write_calls)) " writes"
            @if r.late_calls > 0 { "; " (count(r.late_calls)) " arrived late (after their period closed)" }
            @if r.adjustments != 0 { "; the operator adjusted the period by " (format::signed(r.adjustments)) " calls" }
            "."
        }
        @match passing {
            Some(Passing::Passed(t)) => p class="callout warn" { "The allowance was passed on " strong { (format::date(t, tz)) } ": every started 1,000 calls since is overage." },
            Some(Passing::WillPass(t)) => p class="callout warn" { "At this pace the allowance will be passed on " strong { (format::date(t, tz)) } ", before the period ends." },
            None => {},
        }
    }
}

/// When the allowance was or will be passed.
#[derive(Debug, PartialEq)]
enum Passing {
    Passed(DateTime<Utc>),
    WillPass(DateTime<Utc>),
}

fn passing_date(r: &UsageReport, now: DateTime<Utc>) -> Option<Passing> {
    let period = r.period.as_ref()?;
    if r.billed_calls > r.included_calls {
        // The first hour in which the running billed total passed it (adjustments counted from the start).
        let mut running = r.adjustments;
        for point in r.series.iter().flatten() {
            running = running.saturating_add(point.count.billable_calls as i64);
            if running > r.included_calls as i64 {
                return DateTime::parse_from_rfc3339(&point.start).ok().map(|t| Passing::Passed(t.with_timezone(&Utc)));
            }
        }
        return None;
    }
    let projected = r.projected_calls?;
    if projected <= r.included_calls || now < period.start || now >= period.end {
        return None;
    }
    let elapsed = (now - period.start).num_seconds().max(1) as f64;
    let pace = r.billable_calls as f64 / elapsed;
    if pace <= 0.0 {
        return None;
    }
    let left = (r.included_calls - r.billed_calls) as f64;
    let at = now + chrono::Duration::seconds((left / pace).ceil() as i64);
    (at < period.end).then_some(Passing::WillPass(at))
}

fn empty_state(account: &str) -> Markup {
    html! {
        div class="empty" {
            p { strong { "No calls yet in this period." } " Here is how to send some:" }
            pre { "curl -H \"Authorization: Bearer $INGEST_TOKEN\" -H 'content-type: application/x-ndjson' \\\n  --data-binary '{\"id\":\"1\",\"account\":\"" (account) "\",\"time\":\"" (Utc::now().format("%Y-%m-%dT%H:%M:%SZ")) "\",\"interface\":\"rest\",\"method\":\"GET\",\"path\":\"/inbox/\"}' \\\n  http://127.0.0.1:8080/v1/events" }
            p { "or read a server's log: " code { "callmeter import --account " (account) " access.log" } ". Calls show here as soon as they are stored." }
        }
    }
}

fn chart(data: &UsageData, tz: Tz) -> Markup {
    let labels: Vec<String> =
        data.slots.iter().map(|(_, t)| usage_chart::axis_label(*t, tz, data.granularity)).collect();
    let names: Vec<&str> = data.layers.iter().map(|l| l.name.as_str()).collect();
    let label = format!(
        "Calls per {} of the period, {}",
        if data.granularity == Granularity::Hour { "hour" } else { "day" },
        data.stacking.label().to_lowercase()
    );
    html! {
        figure aria-labelledby="chart-heading" {
            (charts::stacked(&label, &labels, &data.layers, 320))
            figcaption { (charts::legend(&names)) }
        }
        details {
            summary { "The chart's numbers" }
            div class="table-wrap" {
                table id="series-table" {
                    thead { tr { th scope="col" { "Slot" } @for n in &names { th scope="col" class="num" { (n) } } th scope="col" class="num" { "total" } } }
                    tbody {
                        @for (i, (_, t)) in data.slots.iter().enumerate() {
                            @let total: u64 = data.layers.iter().map(|l| l.values[i]).sum();
                            @if total > 0 {
                                tr { th scope="row" { (format::minute(*t, tz)) } @for l in &data.layers { td class="num" { (count(l.values[i])) } } td class="num" { (count(total)) } }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn breakdown_table(dim: Dimension, groups: &[Group], total: u64, base: &str, period: &str, mode: &Mode) -> Markup {
    let (_, key, title) = DIMENSIONS.iter().find(|(d, _, _)| *d == dim).expect("a listed dimension");
    let csv = format!("{base}/{key}.csv{}", query(&[("period", period)]));
    let csv = match mode {
        Mode::SignedIn { .. } => Some(csv),
        Mode::Shared { .. } => None,
    };
    html! {
        section aria-labelledby={"by-" (key)} {
            h3 id={"by-" (key)} { "By " (title.to_lowercase()) }
            @if groups.is_empty() {
                p class="muted" { "No calls." }
            } @else {
                div class="table-wrap" {
                    table id={"table-" (key)} {
                        thead { tr { th scope="col" { (title) } th scope="col" class="num" { "Calls" } th scope="col" class="num" { "Billable" } th scope="col" class="num" { "Share" } } }
                        tbody {
                            @for g in groups.iter().take(TABLE_ROWS) {
                                @let value = g.key.values().next().cloned().unwrap_or_default();
                                tr {
                                    th scope="row" { @if value.is_empty() { span class="muted" { "(none)" } } @else { (value) } }
                                    td class="num" { (count(g.count.calls)) }
                                    td class="num" { (count(g.count.billable_calls)) }
                                    td class="num" { (format::percent(if total == 0 { 0.0 } else { g.count.calls as f64 / total as f64 })) }
                                }
                            }
                        }
                        @if groups.len() > TABLE_ROWS { caption { "The " (TABLE_ROWS) " largest of " (count(groups.len() as u64)) "; the CSV has them all." } }
                    }
                }
            }
            @if let Some(csv) = csv { p { a href=(csv) download { "Download by " (title.to_lowercase()) " as CSV" } } }
        }
    }
}

/// `GET /accounts/{account}/usage/{dimension}.csv`: one breakdown, every row.
pub async fn breakdown_csv(
    State(d): Ds,
    view: AccountView,
    Path((_, file)): Path<(String, String)>,
    Query(q): Query<UsageQuery>,
) -> Result<Response, PageError> {
    let Some((dim, key, title)) = file.strip_suffix(".csv").and_then(|k| DIMENSIONS.iter().find(|(_, n, _)| *n == k))
    else {
        return Err(PageError::NotFound(format!("no breakdown {file:?}")));
    };
    let (dim, key, title) = (*dim, *key, *title);
    let account = view.account.clone();
    let tz = view.tz;
    let data = blocking({
        let d: Arc<Dashboard> = d.clone();
        move || read(&d, &account, tz, &q).map_err(into_api)
    })
    .await?;
    let groups = data.tables.iter().find(|(d, _)| *d == dim).map(|(_, g)| g.as_slice()).unwrap_or(&[]);
    let mut out = Vec::new();
    csv_row(&mut out, &[key, "calls", "billable_calls"]);
    for g in groups {
        let value = g.key.values().next().cloned().unwrap_or_default();
        csv_row(&mut out, &[value, g.count.calls.to_string(), g.count.billable_calls.to_string()]);
    }
    let period = data.report.period.as_ref().map(|p| format::date(p.start, tz)).unwrap_or_default();
    let name = format!(
        "attachment; filename=\"{}-{period}-by-{}.csv\"",
        view.account.name,
        title.to_lowercase().replace(' ', "-")
    );
    Ok(([(header::CONTENT_TYPE, "text/csv".to_owned()), (header::CONTENT_DISPOSITION, name)], out).into_response())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usage::{CallCount, OverageInfo, PeriodInfo, SeriesPoint};
    use std::collections::BTreeMap;

    fn t(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    fn report(billed: u64, projected: Option<u64>, series: Vec<(&str, u64)>) -> UsageReport {
        UsageReport {
            account: "acme".into(),
            plan: "p".into(),
            timezone: "UTC".into(),
            period: Some(PeriodInfo {
                start: t("2026-11-01T00:00:00Z"),
                end: t("2026-12-01T00:00:00Z"),
                closed: false,
                closes_at: t("2026-12-04T00:00:00Z"),
            }),
            from: t("2026-11-01T00:00:00Z"),
            to: t("2026-12-01T00:00:00Z"),
            calls: billed,
            billable_calls: billed,
            non_billable_calls: 0,
            late_calls: 0,
            read_calls: billed,
            write_calls: 0,
            by_interface: BTreeMap::new(),
            adjustments: 0,
            billed_calls: billed,
            included_calls: 1_000,
            remaining_calls: 1_000u64.saturating_sub(billed),
            overage: OverageInfo { calls: 0, blocks: 0, price: 0, currency: "USD".into() },
            projected_calls: projected,
            groups: None,
            groups_truncated: None,
            other_groups: None,
            series: Some(
                series
                    .into_iter()
                    .map(|(s, n)| SeriesPoint { start: s.into(), count: CallCount { calls: n, billable_calls: n } })
                    .collect(),
            ),
        }
    }

    #[test]
    fn the_day_the_allowance_is_passed() {
        // Past it: the slot where the running total went over.
        let r = report(1_200, None, vec![("2026-11-02T00:00:00+00:00", 700), ("2026-11-05T00:00:00+00:00", 500)]);
        assert_eq!(passing_date(&r, t("2026-11-10T00:00:00Z")), Some(Passing::Passed(t("2026-11-05T00:00:00Z"))));
        // Under it, at a pace that passes it: 500 in 10 days is 50 a day, 500 more take 10 days.
        let r = report(500, Some(1_500), vec![]);
        assert_eq!(passing_date(&r, t("2026-11-11T00:00:00Z")), Some(Passing::WillPass(t("2026-11-21T00:00:00Z"))));
        // A pace that stays under it.
        let r = report(100, Some(300), vec![]);
        assert_eq!(passing_date(&r, t("2026-11-11T00:00:00Z")), None);
    }
}
