//! Audits on the server (DESIGN §6): one account's calls read from the store
//! in time order, a page at a time, into an [`Auditor`] with the server's
//! plans, billing rules and `[audit]` thresholds (the list page size the
//! account's own where one is set); and the one-line summary of a kept audit
//! that `GET /v1/audits` lists.
//!
//! Memory stays bounded however long the range: one page of calls, plus what
//! the auditor keeps per source and path.

use crate::error::ApiError;
use crate::options::Settings;
use callmeter_audit::{AuditReport, Auditor, Finding, FindingKind, SourceKey, WhatIf};
use callmeter_model::Operation;
use callmeter_store::{CallFilter, Store};
use chrono::{DateTime, NaiveDate, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use std::sync::atomic::{AtomicBool, Ordering};

/// Calls read from the store at a time.
const PAGE: usize = 10_000;

/// `[from, to)` of a UTC day: the range of a kept daily audit.
pub fn day_range(day: NaiveDate) -> (DateTime<Utc>, DateTime<Utc>) {
    let from = day.and_time(NaiveTime::MIN).and_utc();
    (from, from + chrono::Duration::days(1))
}

/// When an audit in progress gives up, asked before each page of calls: the
/// server's stop (an [`AtomicBool`]), and for an audit made for a request,
/// its client gone or its time out (`live_audits.rs`).
pub trait GiveUp {
    /// Whether the audit should stop now.
    fn given_up(&self) -> bool;
}

impl GiveUp for AtomicBool {
    fn given_up(&self) -> bool {
        self.load(Ordering::Relaxed)
    }
}

/// Either reason.
impl<A: GiveUp + ?Sized, B: GiveUp + ?Sized> GiveUp for (&A, &B) {
    fn given_up(&self) -> bool {
        self.0.given_up() || self.1.given_up()
    }
}

/// Audits `account`'s calls in `[from, to)`. `None` when `stop` gave up
/// before the end (the server is shutting down, the client went away, the
/// time ran out): a partial audit is no audit.
pub fn run(
    store: &dyn Store,
    settings: &Settings,
    account: &str,
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    stop: &(impl GiveUp + ?Sized),
) -> Result<Option<AuditReport>, ApiError> {
    let mut config = settings.audit.config.clone();
    if let Some(n) = store.account(account).and_then(|a| a.list_page_size) {
        config.list_page_size = n;
    }
    let mut auditor = Auditor::new(config)
        // The config was checked when the server started.
        .map_err(|e| ApiError::Internal(e.to_string()))?
        .account(account)
        .range(Some(from), Some(to))
        .in_time_order()
        .plans(&settings.store.plans)
        .billing_rules(settings.store.rules.clone());
    let filter = CallFilter { from: Some(from), to: Some(to), ..CallFilter::default() };
    let mut after = None;
    loop {
        if stop.given_up() {
            return Ok(None);
        }
        let page = store.calls(account, &filter, after, PAGE)?;
        for (_, c) in &page.calls {
            auditor.push(&c.event);
        }
        match page.next {
            Some(p) => after = Some(p),
            None => break,
        }
    }
    Ok(Some(auditor.finish()))
}

/// A kept audit in one line: what `GET /v1/audits` lists for each account.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct AuditSummary {
    /// The account.
    pub account: String,
    /// The UTC day audited.
    pub day: NaiveDate,
    /// Calls that day.
    pub calls: u64,
    /// Of those, billable.
    pub billable_calls: u64,
    /// Calls that would go away with every recommendation applied.
    pub avoidable_calls: u64,
    /// Calls left then.
    pub calls_after: u64,
    /// `calls / calls_after`.
    pub factor: f64,
    /// Findings in the audit.
    pub findings: usize,
    /// The finding with the most avoidable calls.
    pub top_finding: Option<TopFinding>,
}

/// The biggest finding of an audit, in short.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TopFinding {
    /// `polling`, `list_after_write` or `duplicate_requests`.
    #[schema(value_type = crate::openapi::FindingKindName, inline)]
    pub kind: FindingKind,
    /// Who makes the calls.
    #[schema(value_type = crate::openapi::SourceKeyDoc, inline)]
    pub source: SourceKey,
    /// The path they are about.
    pub path: String,
    /// Their operation, when they share one.
    #[schema(value_type = Option<crate::openapi::params::OperationName>, inline)]
    pub operation: Option<Operation>,
    /// Its avoidable calls.
    pub avoidable_calls: u64,
    /// What to do.
    pub recommendation: String,
}

/// The parts of a kept report a summary needs; the rest (top sources,
/// timeline) is skipped unread.
#[derive(Deserialize)]
struct ReportHead {
    calls: u64,
    billable_calls: u64,
    findings: Vec<Finding>,
    what_if: WhatIf,
}

impl AuditSummary {
    /// The summary of a kept report.
    pub fn of(account: String, day: NaiveDate, report_json: &[u8]) -> Result<AuditSummary, ApiError> {
        let r: ReportHead = serde_json::from_slice(report_json)
            .map_err(|e| ApiError::Internal(format!("kept audit of {account} for {day}: {e}")))?;
        let a = r.what_if.avoidable_calls_by_kind;
        // Findings come biggest waste first.
        let top_finding = r.findings.first().map(|f| TopFinding {
            kind: f.kind(),
            source: f.source.key.clone(),
            path: f.path.clone(),
            operation: f.operation,
            avoidable_calls: f.avoidable_calls,
            recommendation: f.recommendation.clone(),
        });
        Ok(AuditSummary {
            account,
            day,
            calls: r.calls,
            billable_calls: r.billable_calls,
            avoidable_calls: a.polling + a.list_after_write + a.duplicate_requests,
            calls_after: r.what_if.calls_after,
            factor: r.what_if.factor,
            findings: r.findings.len(),
            top_finding,
        })
    }
}

/// The CSV header of [`csv_line`].
pub const CSV_HEADER: &str = "account,day,calls,billable_calls,avoidable_calls,calls_after,factor,findings,top_kind,top_source,top_path,top_operation,top_avoidable_calls,top_recommendation\n";

/// One summary as a CSV line.
pub fn csv_line(out: &mut Vec<u8>, s: &AuditSummary) {
    let top = s.top_finding.as_ref();
    let fields = [
        s.account.clone(),
        s.day.to_string(),
        s.calls.to_string(),
        s.billable_calls.to_string(),
        s.avoidable_calls.to_string(),
        s.calls_after.to_string(),
        format!("{:.2}", s.factor),
        s.findings.to_string(),
        top.map(|t| t.kind.to_string()).unwrap_or_default(),
        top.map(|t| t.source.to_string()).unwrap_or_default(),
        top.map(|t| t.path.clone()).unwrap_or_default(),
        top.and_then(|t| t.operation).map(|o| o.as_str().to_owned()).unwrap_or_default(),
        top.map(|t| t.avoidable_calls.to_string()).unwrap_or_default(),
        top.map(|t| t.recommendation.clone()).unwrap_or_default(),
    ];
    crate::export::csv_row(out, &fields);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_day_is_midnight_to_midnight_utc() {
        let (from, to) = day_range(NaiveDate::from_ymd_opt(2026, 11, 28).unwrap());
        assert_eq!(from.to_rfc3339(), "2026-11-28T00:00:00+00:00");
        assert_eq!(to.to_rfc3339(), "2026-11-29T00:00:00+00:00");
    }

    #[test]
    fn summary_of_an_empty_report() {
        let report = Auditor::new(Default::default()).unwrap().account("acme").finish();
        let json = serde_json::to_vec(&report).unwrap();
        let day = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let s = AuditSummary::of("acme".into(), day, &json).unwrap();
        assert_eq!((s.calls, s.avoidable_calls, s.findings), (0, 0, 0));
        assert_eq!(s.top_finding, None);
        let mut out = Vec::new();
        csv_line(&mut out, &s);
        assert_eq!(String::from_utf8(out).unwrap(), "acme,2026-11-28,0,0,0,0,1.00,0,,,,,,\n");
        assert_eq!(CSV_HEADER.matches(',').count(), 13);
    }

    #[test]
    fn a_top_path_that_looks_like_a_formula_is_inert() {
        let day = NaiveDate::from_ymd_opt(2026, 11, 28).unwrap();
        let s = AuditSummary {
            account: "acme".into(),
            day,
            calls: 10,
            billable_calls: 10,
            avoidable_calls: 9,
            calls_after: 1,
            factor: 10.0,
            findings: 1,
            top_finding: Some(TopFinding {
                kind: FindingKind::Polling,
                source: SourceKey::User { user: "@SUM(1+1)".into() },
                path: "=HYPERLINK(\"http://x.example\")".into(),
                operation: Some(Operation::List),
                avoidable_calls: 9,
                recommendation: "subscribe a webhook".into(),
            }),
        };
        let mut out = Vec::new();
        csv_line(&mut out, &s);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "acme,2026-11-28,10,10,9,1,10.00,1,polling,user @SUM(1+1),\"'=HYPERLINK(\"\"http://x.example\"\")\",list,9,subscribe a webhook\n"
        );
    }
}
