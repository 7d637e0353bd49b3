//! The request log page: every call, LIST included, newest first (or oldest
//! first), with the API's filters, cursor pages, a CSV export of the
//! filtered view, and one call's detail.
//!
//! The filters are the API's (`routes::calls::call_filter` reads them), with
//! two differences that a form needs: the time range is typed in the
//! account's own zone, and an empty field means "any". Newest first is
//! `newest_first.rs`; oldest first and the export are the API's own pages and
//! stream (`Store::calls`, `export::stream`).

use super::format::{self, count};
use super::layout::{self, query, urlencode, Frame, Section};
use super::newest_first;
use super::page::{html_page, PageError};
use super::page_extract::{Path, Query};
use super::usage_page::into_api;
use super::viewer::AccountView;
use super::Ds;
use crate::api::blocking;
use crate::error::ApiError;
use crate::export;
use crate::routes::calls::{call_filter, CallsParams};
use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::Response;
use callmeter_model::{Interface, Operation};
use callmeter_store::{CallFilter, Position, StoredCall};
use chrono::Utc;
use chrono_tz::Tz;
use maud::{html, Markup};
use serde::Deserialize;

/// Calls on a page.
const PER_PAGE: usize = 50;

/// The page's query: the filter form's fields, the order and the cursor.
#[derive(Deserialize, Default, Clone, Debug)]
pub struct CallsQuery {
    from: Option<String>,
    to: Option<String>,
    interface: Option<String>,
    operation: Option<String>,
    path_prefix: Option<String>,
    api_key: Option<String>,
    user: Option<String>,
    client_ip: Option<String>,
    status: Option<String>,
    order: Option<String>,
    cursor: Option<String>,
}

fn given(v: &Option<String>) -> Option<String> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

impl CallsQuery {
    /// The filter, read as the API reads its parameters.
    fn filter(&self, tz: Tz) -> Result<CallFilter, ApiError> {
        let time = |name: &str, v: &Option<String>| -> Result<Option<String>, ApiError> {
            given(v)
                .map(|v| {
                    format::parse_datetime_local(&v, tz)
                        .map(|t| t.to_rfc3339())
                        .ok_or_else(|| ApiError::BadRequest(format!("{name}: {v:?} is not a date and time")))
                })
                .transpose()
        };
        let params = CallsParams {
            from: time("from", &self.from)?,
            to: time("to", &self.to)?,
            interface: given(&self.interface),
            operation: given(&self.operation),
            path_prefix: given(&self.path_prefix),
            api_key: given(&self.api_key),
            user: given(&self.user),
            client_ip: given(&self.client_ip),
            status: given(&self.status),
            ..Default::default()
        };
        call_filter(&params)
    }

    fn newest_first(&self) -> bool {
        self.order.as_deref() != Some("oldest")
    }

    /// The filter fields as a query string (for the export, the pages and the order).
    fn pairs(&self) -> Vec<(&'static str, String)> {
        [
            ("from", &self.from),
            ("to", &self.to),
            ("interface", &self.interface),
            ("operation", &self.operation),
            ("path_prefix", &self.path_prefix),
            ("api_key", &self.api_key),
            ("user", &self.user),
            ("client_ip", &self.client_ip),
            ("status", &self.status),
        ]
        .into_iter()
        .filter_map(|(k, v)| given(v).map(|v| (k, v)))
        .collect()
    }

    fn href(&self, base: &str, extra: &[(&str, &str)]) -> String {
        let pairs = self.pairs();
        let mut all: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        all.extend_from_slice(extra);
        format!("{base}{}", query(&all))
    }

    fn is_filtered(&self) -> bool {
        !self.pairs().is_empty()
    }
}

/// One page of calls, and where the next one starts.
struct CallsPage {
    calls: Vec<(Position, StoredCall)>,
    next: Option<Position>,
    searched_back_to: Option<chrono::DateTime<Utc>>,
}

/// `GET /accounts/{account}/calls`.
pub async fn page(State(d): Ds, view: AccountView, Query(q): Query<CallsQuery>) -> Result<Response, PageError> {
    let tz = view.tz;
    let filter = q.filter(tz);
    let body = match filter {
        Err(e) => body(&view, &q, Err(e.to_string())),
        Ok(filter) => {
            let cursor = given(&q.cursor)
                .map(|c| {
                    Position::from_cursor(&c)
                        .ok_or_else(|| ApiError::BadRequest("cursor: not one this server gave".into()))
                })
                .transpose()?;
            let (store, account, newest) = (d.app.store.clone(), view.account.name.clone(), q.newest_first());
            let retention = d.app.settings.store.retention;
            let page = blocking(move || {
                let now = Utc::now();
                if newest {
                    let floor = now - retention - chrono::Duration::days(1);
                    let p = newest_first::page(store.as_ref(), &account, &filter, cursor, PER_PAGE, floor, now)?;
                    Ok(CallsPage { calls: p.calls, next: p.older, searched_back_to: p.searched_back_to })
                } else {
                    let p = store.calls(&account, &filter, cursor, PER_PAGE)?;
                    Ok(CallsPage { calls: p.calls, next: p.next, searched_back_to: None })
                }
            })
            .await?;
            body(&view, &q, Ok(page))
        }
    };
    let frame = Frame {
        title: format!("Request log of {}", view.account.name),
        viewer: Some(&view.viewer),
        account: Some(&view.account.name),
        section: Section::Calls,
    };
    Ok(html_page(layout::page(frame, body)))
}

fn body(view: &AccountView, q: &CallsQuery, page: Result<CallsPage, String>) -> Markup {
    let account = &view.account.name;
    let tz = view.tz;
    let base = format!("/accounts/{}/calls", urlencode(account));
    let order = if q.newest_first() { "newest" } else { "oldest" };
    html! {
        h1 { "Request log of " (account) }
        p class="lede" { "Every call, listings included, " @if q.newest_first() { "newest first" } @else { "oldest first" } ". Times in " (tz.name()) "." }
        (filter_form(q, &base, tz))
        @match page {
            Err(problem) => p class="callout warn" role="alert" { "These filters cannot be used: " (problem) },
            Ok(page) => {
                div class="actions" {
                    a href=(q.href(&format!("{base}.csv"), &[])) download { "Download these calls as CSV" }
                    @if q.newest_first() { a href=(q.href(&base, &[("order", "oldest")])) { "Oldest first" } }
                    @else { a href=(q.href(&base, &[])) { "Newest first" } }
                }
                @if page.calls.is_empty() {
                    @if page.searched_back_to.is_some() {
                        p class="empty" { "No match yet back to " (format::time(page.searched_back_to.expect("set"), tz)) ". " a href=(q.href(&base, &[("order", order), ("cursor", &page.next.map(|p| p.to_cursor()).unwrap_or_default())])) { "Search older calls" } }
                    } @else if q.is_filtered() || given(&q.cursor).is_some() {
                        p class="empty" { "No call matches these filters" @if given(&q.cursor).is_some() { " on this page" } ". " a href=(base) { "Show every call" } }
                    } @else {
                        div class="empty" {
                            p { strong { "No calls yet." } " Send some to " code { "POST /v1/events" } " or import a server's log:" }
                            pre { "callmeter import --account " (account) " access.log" }
                        }
                    }
                } @else {
                    div class="table-wrap" {
                        table id="calls" {
                            caption { (count(page.calls.len() as u64)) " calls on this page." }
                            thead { tr {
                                th scope="col" { "Time" } th scope="col" { "Interface" } th scope="col" { "Operation" }
                                th scope="col" class="hide-narrow" { "Method" } th scope="col" { "Path" } th scope="col" class="num" { "Status" }
                                th scope="col" { "API key" } th scope="col" { "User" } th scope="col" class="hide-narrow" { "Client" } th scope="col" { "Billable" }
                            } }
                            tbody {
                                @for (pos, c) in &page.calls {
                                    @let e = &c.event;
                                    tr {
                                        td class="nowrap" { a href=(format!("{base}/{}", pos.to_cursor())) { (format::time(e.time, tz)) } }
                                        td { (e.interface.as_str()) }
                                        td { (e.operation.as_str()) }
                                        td class="hide-narrow" { (e.method.as_deref().unwrap_or("")) }
                                        td class="path" { (e.path.as_deref().unwrap_or("")) }
                                        td class="num" { (e.status.map(|s| s.to_string()).unwrap_or_default()) }
                                        td { (e.api_key.as_deref().unwrap_or("")) }
                                        td { (e.user.as_deref().unwrap_or("")) }
                                        td class="hide-narrow" { (e.client_ip.as_deref().unwrap_or("")) }
                                        td { @if c.billable && !c.late { "yes" } @else if c.late { "late" } @else { "no" } }
                                    }
                                }
                            }
                        }
                    }
                }
                nav class="pager" aria-label="Pages" {
                    @if given(&q.cursor).is_some() { a href=(q.href(&base, &[("order", order)])) { @if q.newest_first() { "Newest calls" } @else { "Oldest calls" } } }
                    @if let Some(next) = page.next {
                        a id="next-page" rel="next" href=(q.href(&base, &[("order", order), ("cursor", &next.to_cursor())])) {
                            @if page.searched_back_to.is_some() { "Search older calls" }
                            @else if q.newest_first() { "Older calls →" } @else { "Later calls →" }
                        }
                    }
                    @if let Some(t) = page.searched_back_to {
                        @if !page.calls.is_empty() { span class="muted" { "Searched back to " (format::time(t, tz)) "." } }
                    }
                }
            }
        }
    }
}

fn filter_form(q: &CallsQuery, base: &str, tz: Tz) -> Markup {
    let v = |o: &Option<String>| o.clone().unwrap_or_default();
    let selected = |o: &Option<String>, value: &str| o.as_deref() == Some(value);
    html! {
        // Folded on a phone unless a filter is set (the script unfolds it on a wide screen).
        details class="filter-box" open[q.is_filtered()] {
        summary { "Filters" @if q.is_filtered() { " (set)" } }
        form class="filters" method="get" action=(base) aria-label="Filter the calls" {
            @if !q.newest_first() { input type="hidden" name="order" value="oldest"; }
            div { label for="f-from" { "From (" (tz.name()) ")" } input id="f-from" name="from" type="datetime-local" value=(v(&q.from)); }
            div { label for="f-to" { "To, not included" } input id="f-to" name="to" type="datetime-local" value=(v(&q.to)); }
            div { label for="f-interface" { "Interface" }
                select id="f-interface" name="interface" {
                    option value="" { "any" }
                    @for i in Interface::ALL { option value=(i.as_str()) selected[selected(&q.interface, i.as_str())] { (i.as_str()) } }
                }
            }
            div { label for="f-operation" { "Operation" }
                select id="f-operation" name="operation" {
                    option value="" { "any" }
                    @for o in Operation::ALL { option value=(o.as_str()) selected[selected(&q.operation, o.as_str())] { (o.as_str()) } }
                }
            }
            div { label for="f-path" { "Path starts with" } input id="f-path" name="path_prefix" type="text" value=(v(&q.path_prefix)) placeholder="/inbox/"; }
            div { label for="f-key" { "API key" } input id="f-key" name="api_key" type="text" value=(v(&q.api_key)); }
            div { label for="f-user" { "User" } input id="f-user" name="user" type="text" value=(v(&q.user)); }
            div { label for="f-ip" { "Client address" } input id="f-ip" name="client_ip" type="text" value=(v(&q.client_ip)); }
            div { label for="f-status" { "Status" }
                select id="f-status" name="status" {
                    option value="" { "any" }
                    @for s in ["1xx", "2xx", "3xx", "4xx", "5xx"] { option value=(s) selected[selected(&q.status, s)] { (s) } }
                }
            }
            div class="actions" { button type="submit" { "Filter" } a href=(base) { "Clear" } }
        }
        }
    }
}

/// `GET /accounts/{account}/calls.csv`: every call of the filtered view, streamed, in time order.
pub async fn csv(State(d): Ds, view: AccountView, Query(q): Query<CallsQuery>) -> Result<Response, PageError> {
    let filter = q.filter(view.tz)?;
    let mut response =
        export::stream(d.app.store.clone(), view.account.name.clone(), filter, None, export::Format::Csv);
    let name = format!("attachment; filename=\"{}-calls.csv\"", view.account.name);
    if let Ok(v) = HeaderValue::from_str(&name) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(response)
}

/// `GET /accounts/{account}/calls/{cursor}`: one call, every field.
pub async fn detail(
    State(d): Ds,
    view: AccountView,
    Path((_, cursor)): Path<(String, String)>,
) -> Result<Response, PageError> {
    let pos = Position::from_cursor(&cursor).ok_or_else(|| PageError::NotFound("No such call.".into()))?;
    let (store, account) = (d.app.store.clone(), view.account.name.clone());
    let found = blocking(move || {
        let t = chrono::DateTime::from_timestamp_nanos(pos.time_ns);
        let at_that_time =
            CallFilter { from: Some(t), to: Some(t + chrono::Duration::nanoseconds(1)), ..Default::default() };
        let mut after = None;
        loop {
            let page = store.calls(&account, &at_that_time, after, 1_000)?;
            if let Some((_, c)) = page.calls.iter().find(|(p, _)| *p == pos) {
                return Ok(Some(c.clone()));
            }
            match page.next {
                Some(p) => after = Some(p),
                None => return Ok(None),
            }
        }
    })
    .await
    .map_err(|e| PageError::from(into_api(PageError::Api(e))))?
    .ok_or_else(|| PageError::NotFound("No such call: it may have passed the retention.".into()))?;
    let tz = view.tz;
    let base = format!("/accounts/{}/calls", urlencode(&view.account.name));
    let e = &found.event;
    let json = serde_json::to_string_pretty(&export::call_json(&found)).unwrap_or_default();
    let source_link = match (&e.api_key, &e.user) {
        (Some(k), _) => Some(("calls with this API key", format!("{base}{}", query(&[("api_key", k)])))),
        (None, Some(u)) => Some(("calls by this user", format!("{base}{}", query(&[("user", u)])))),
        _ => {
            e.client_ip.as_ref().map(|ip| ("calls from this address", format!("{base}{}", query(&[("client_ip", ip)]))))
        }
    };
    let body = html! {
        h1 { "A call of " (view.account.name) }
        dl class="facts" id="call" {
            dt { "Time" } dd { (format::time(e.time, tz)) " (" (e.time.to_rfc3339()) ")" }
            dt { "Id" } dd { code { (e.id) } }
            dt { "Interface" } dd { (e.interface.as_str()) }
            dt { "Operation" } dd { (e.operation.as_str()) }
            @for (name, value) in [("Method", &e.method), ("Path", &e.path), ("Destination", &e.destination), ("API key", &e.api_key), ("User", &e.user), ("Client address", &e.client_ip), ("User agent", &e.user_agent), ("Integration", &e.integration), ("List cursor", &e.cursor)] {
                @if let Some(v) = value { dt { (name) } dd { (v) } }
            }
            @if let Some(s) = e.status { dt { "Status" } dd { (s) } }
            @if let Some(n) = e.result_count { dt { "Entries returned" } dd { (count(n)) } }
            @if let Some(n) = e.bytes { dt { "Bytes" } dd { (count(n)) } }
            @if let Some(ms) = e.duration_ms { dt { "Duration" } dd { (ms) " ms" } }
            dt { "Billable" } dd { @if found.billable { "yes" } @else { "no" } @if found.late { ", late: it arrived after its period closed, and is not billed there" } }
        }
        div class="actions" {
            @if let Some((label, href)) = source_link { a href=(href) { "Every " (label) } }
            @if let Some(p) = &e.path { a href=(format!("{base}{}", query(&[("path_prefix", p)]))) { "Every call to this path" } }
            a href=(base) { "Back to the request log" }
        }
        details { summary { "As the API gives it (JSON)" } pre { (json) } }
    };
    let frame = Frame {
        title: format!("A call of {}", view.account.name),
        viewer: Some(&view.viewer),
        account: Some(&view.account.name),
        section: Section::Calls,
    };
    Ok(html_page(layout::page(frame, body)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_reads_like_the_api() {
        let q = CallsQuery {
            from: Some("2026-11-27T11:00".into()),
            interface: Some("sftp".into()),
            operation: Some(String::new()),
            path_prefix: Some("  ".into()),
            status: Some("4xx".into()),
            ..Default::default()
        };
        let berlin: Tz = "Europe/Berlin".parse().unwrap();
        let f = q.filter(berlin).unwrap();
        assert_eq!(f.from.unwrap().to_rfc3339(), "2026-11-27T10:00:00+00:00", "typed in the account's zone");
        assert_eq!(f.interface, Some(Interface::Sftp));
        assert_eq!(
            (f.operation, f.path_prefix.as_deref(), f.status_class),
            (None, None, Some(4)),
            "empty fields are any"
        );
        let bad = CallsQuery { interface: Some("carrier-pigeon".into()), ..Default::default() };
        assert!(bad.filter(berlin).unwrap_err().to_string().starts_with("interface:"));
        let bad = CallsQuery { to: Some("soon".into()), ..Default::default() };
        assert!(bad.filter(berlin).is_err());
        assert_eq!(
            q.href("/x", &[("order", "oldest")]),
            "/x?from=2026-11-27T11%3A00&interface=sftp&status=4xx&order=oldest"
        );
    }
}
