//! The operator's view (admin and support): every account's current period
//! against its plan, with its growth over the previous period and the calls
//! yesterday's daily audit found avoidable, sortable by each, each account a
//! click away from its own pages. Support sees all of it and changes
//! nothing (it has no forms here at all).
//!
//! The numbers are the API's: `usage_report` for each period (as `GET
//! /v1/usage`), and the kept audits' summaries (as `GET /v1/audits`).

use super::format::{self, count};
use super::layout::{self, query, urlencode, Frame, Section};
use super::page::{html_page, PageError};
use super::page_extract::Query;
use super::viewer::Viewer;
use super::Ds;
use crate::api::blocking;
use crate::audit::AuditSummary;
use crate::routes::usage::{usage_report, UsageParams};
use axum::extract::State;
use axum::response::Response;
use chrono::{NaiveDate, Utc};
use maud::{html, Markup};
use serde::Deserialize;

/// The page's query.
#[derive(Deserialize, Default)]
pub struct OperatorQuery {
    sort: Option<String>,
}

/// How the table is sorted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum SortBy {
    Name,
    Usage,
    Overage,
    Growth,
    Avoidable,
}

impl SortBy {
    const ALL: [SortBy; 5] = [SortBy::Name, SortBy::Usage, SortBy::Overage, SortBy::Growth, SortBy::Avoidable];

    fn parse(v: Option<&str>) -> SortBy {
        SortBy::ALL.into_iter().find(|s| Some(s.key()) == v).unwrap_or(SortBy::Usage)
    }

    fn key(self) -> &'static str {
        match self {
            SortBy::Name => "name",
            SortBy::Usage => "usage",
            SortBy::Overage => "overage",
            SortBy::Growth => "growth",
            SortBy::Avoidable => "avoidable",
        }
    }
}

/// One account's line.
#[derive(Debug, Clone, Default)]
struct AccountLine {
    name: String,
    plan: String,
    billed: u64,
    included: u64,
    projected: Option<u64>,
    overage_price: u64,
    currency: String,
    /// This period (projected to its end) over the previous one's billed calls.
    growth: Option<f64>,
    /// Avoidable calls in yesterday's kept audit, and the what-if factor.
    avoidable: Option<(u64, f64)>,
    /// Why the account's usage cannot be shown (its plan is no longer configured).
    problem: Option<String>,
}

impl AccountLine {
    fn usage_share(&self) -> f64 {
        if self.included == 0 {
            f64::INFINITY
        } else {
            self.billed as f64 / self.included as f64
        }
    }
}

fn sort(lines: &mut [AccountLine], by: SortBy) {
    let key = |l: &AccountLine| -> f64 {
        match by {
            SortBy::Name => 0.0,
            SortBy::Usage => l.usage_share(),
            SortBy::Overage => l.overage_price as f64,
            SortBy::Growth => l.growth.unwrap_or(f64::NEG_INFINITY),
            SortBy::Avoidable => l.avoidable.map_or(-1.0, |(n, _)| n as f64),
        }
    };
    lines.sort_by(|a, b| key(b).total_cmp(&key(a)).then_with(|| a.name.cmp(&b.name)));
}

/// `GET /accounts`.
pub async fn page(State(d): Ds, viewer: Viewer, Query(q): Query<OperatorQuery>) -> Result<Response, PageError> {
    if !viewer.sees_every_account() {
        return Err(PageError::Forbidden("This page lists every account: it is for the operator and support.".into()));
    }
    let by = SortBy::parse(q.sort.as_deref());
    let app = d.app.clone();
    let day = Utc::now().date_naive() - chrono::Duration::days(1);
    let mut lines = blocking(move || {
        let now = Utc::now();
        let kept = app.store.audits(day)?;
        let mut lines = Vec::new();
        for rec in app.store.accounts() {
            let current = usage_report(
                &app,
                &rec.name,
                &UsageParams { period: Some("current".into()), ..Default::default() },
                now,
            );
            let previous = usage_report(
                &app,
                &rec.name,
                &UsageParams { period: Some("previous".into()), ..Default::default() },
                now,
            );
            let avoidable = kept
                .iter()
                .find(|(name, _)| *name == rec.name)
                .and_then(|(name, json)| AuditSummary::of(name.clone(), day, json).ok())
                .map(|s| (s.avoidable_calls, s.factor));
            let line = match current {
                Ok(r) => {
                    let this = r.projected_calls.unwrap_or(r.billed_calls);
                    let growth =
                        previous.ok().filter(|p| p.billed_calls > 0).map(|p| this as f64 / p.billed_calls as f64);
                    AccountLine {
                        name: rec.name.clone(),
                        plan: r.plan,
                        billed: r.billed_calls,
                        included: r.included_calls,
                        projected: r.projected_calls,
                        overage_price: r.overage.price,
                        currency: r.overage.currency,
                        growth,
                        avoidable,
                        problem: None,
                    }
                }
                Err(e) => AccountLine {
                    name: rec.name.clone(),
                    avoidable,
                    problem: Some(e.to_string()),
                    ..Default::default()
                },
            };
            lines.push(line);
        }
        Ok(lines)
    })
    .await?;
    sort(&mut lines, by);
    let body = body(&lines, by, day);
    let frame =
        Frame { title: "All accounts".into(), viewer: Some(&viewer), account: None, section: Section::Accounts };
    Ok(html_page(layout::page(frame, body)))
}

fn body(lines: &[AccountLine], by: SortBy, day: NaiveDate) -> Markup {
    let header = |label: &str, s: SortBy, class: &str| {
        html! {
            th scope="col" class=(class) aria-sort=[(s == by).then_some(if s == SortBy::Name { "ascending" } else { "descending" })] {
                a href=(format!("/accounts{}", query(&[("sort", s.key())]))) { (label) }
            }
        }
    };
    html! {
        h1 { "All accounts" }
        p class="lede" { "Each account's current period against its plan. Sort by a column's heading; open an account to see its usage, calls and audit." }
        @if lines.is_empty() {
            div class="empty" {
                p { strong { "No accounts yet." } " An account is created by its first call:" }
                pre { "curl -H \"Authorization: Bearer $CALLMETER_TOKEN\" -H 'content-type: application/x-ndjson' \\\n  --data-binary @calls.ndjson http://127.0.0.1:8080/v1/events" }
                p { "or " code { "callmeter import access.log --account-from host" } "." }
            }
        } @else {
            div class="table-wrap" {
                table id="accounts" {
                    caption { "Growth: this period, projected to its end, over the previous period's billed calls. Avoidable: in the daily audit of " (day) " (UTC)." }
                    thead { tr {
                        (header("Account", SortBy::Name, ""))
                        th scope="col" { "Plan" }
                        (header("Billed of included", SortBy::Usage, "num"))
                        th scope="col" class="num hide-narrow" { "Projected" }
                        (header("Overage", SortBy::Overage, "num"))
                        (header("Growth", SortBy::Growth, "num"))
                        (header("Avoidable", SortBy::Avoidable, "num"))
                    } }
                    tbody {
                        @for l in lines {
                            tr {
                                th scope="row" { a href=(format!("/accounts/{}/usage", urlencode(&l.name))) { (l.name) } }
                                @if let Some(problem) = &l.problem {
                                    td colspan="5" class="over" { (problem) }
                                } @else {
                                    td { (l.plan) }
                                    td class={"num" @if l.billed > l.included { " over" }} { (count(l.billed)) " / " (count(l.included)) " (" (format::percent(l.usage_share())) ")" }
                                    td class="num hide-narrow" { (l.projected.map(count).unwrap_or_default()) }
                                    td class="num" { (format::money(l.overage_price, &l.currency)) }
                                    td class="num" { @match l.growth { Some(g) => (format!("{:.2}×", g)), None => span class="muted" { "new" } } }
                                }
                                td class="num" {
                                    @match l.avoidable {
                                        Some((n, factor)) => a href=(format!("/accounts/{}/audit{}", urlencode(&l.name), query(&[("day", &day.to_string())]))) { (count(n)) " (" (format!("{factor:.1}")) "×)" },
                                        None => span class="muted" { "no audit" },
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

#[cfg(test)]
mod tests {
    use super::*;

    fn line(name: &str, billed: u64, overage: u64, growth: Option<f64>, avoidable: Option<u64>) -> AccountLine {
        AccountLine {
            name: name.into(),
            billed,
            included: 100,
            overage_price: overage,
            growth,
            avoidable: avoidable.map(|n| (n, 2.0)),
            ..Default::default()
        }
    }

    #[test]
    fn sorted_by_each_column_largest_first() {
        let mut lines = vec![
            line("a", 50, 0, Some(3.0), None),
            line("b", 150, 40, None, Some(900)),
            line("c", 90, 0, Some(0.5), Some(10)),
        ];
        let names = |l: &[AccountLine]| l.iter().map(|x| x.name.clone()).collect::<Vec<_>>().join("");
        sort(&mut lines, SortBy::Usage);
        assert_eq!(names(&lines), "bca");
        sort(&mut lines, SortBy::Growth);
        assert_eq!(names(&lines), "acb", "new accounts last");
        sort(&mut lines, SortBy::Avoidable);
        assert_eq!(names(&lines), "bca", "no audit last");
        sort(&mut lines, SortBy::Overage);
        assert_eq!(names(&lines), "bac");
        sort(&mut lines, SortBy::Name);
        assert_eq!(names(&lines), "abc");
        assert_eq!(SortBy::parse(Some("growth")), SortBy::Growth);
        assert_eq!(SortBy::parse(Some("junk")), SortBy::Usage);
    }
}
