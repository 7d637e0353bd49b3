//! The report as plain text and as a standalone HTML page, for
//! `callmeter audit --format text|html` (JSON is the report's own serde form).

use crate::report::{thousands, AuditReport};
use crate::top_sources::Share;
use std::fmt::Write;

fn range(r: &AuditReport) -> String {
    let t = |t: Option<chrono::DateTime<chrono::Utc>>| t.map_or("-".to_owned(), |t| t.to_rfc3339());
    format!("{} to {}", t(r.from), t(r.to))
}

fn plans(r: &AuditReport) -> Option<String> {
    match (&r.what_if.plan_before, &r.what_if.plan_after) {
        (Some(b), Some(a)) if b.name == a.name => Some(format!("plan {} either way", b.name)),
        (Some(b), Some(a)) => Some(format!("plan {} now, {} after", b.name, a.name)),
        _ => None,
    }
}

fn shares(list: &[Share]) -> String {
    list.iter()
        .map(|s| format!("{} {} ({:.1} %)", s.value, thousands(s.calls), s.share * 100.0))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The top-sources dimensions with their names, in the order shown.
fn dimensions(r: &AuditReport) -> [(&'static str, &[Share]); 8] {
    let t = &r.top_sources;
    [
        ("source", &t.source),
        ("interface", &t.interface),
        ("operation", &t.operation),
        ("path prefix", &t.path_prefix),
        ("api key", &t.api_key),
        ("user", &t.user),
        ("client ip", &t.client_ip),
        ("user agent", &t.user_agent),
    ]
}

/// The report in plain text: the totals, the what-if, each finding with its recommendation, the top sources.
pub fn to_text(r: &AuditReport) -> String {
    let mut s = String::new();
    let w = &r.what_if;
    let _ = writeln!(s, "audit of {}, {}", r.account.as_deref().unwrap_or("-"), range(r));
    let _ = writeln!(s, "calls: {} ({} billable)", thousands(r.calls), thousands(r.billable_calls));
    let _ = write!(
        s,
        "with every recommendation applied: {} calls instead of {} ({:.1}× fewer)",
        thousands(w.calls_after),
        thousands(w.calls),
        w.factor
    );
    match plans(r) {
        Some(p) => {
            let _ = writeln!(s, "; {p}");
        }
        None => s.push('\n'),
    }
    let _ = writeln!(s, "\nfindings, biggest waste first:");
    if r.findings.is_empty() {
        let _ = writeln!(s, "  none");
    }
    for (i, f) in r.findings.iter().enumerate() {
        let _ = writeln!(
            s,
            "{:>3}. {} {} by {}: {} of {} calls avoidable\n     {}",
            i + 1,
            f.kind(),
            f.path,
            f.source.key,
            thousands(f.avoidable_calls),
            thousands(f.calls),
            f.recommendation
        );
    }
    let _ = writeln!(s, "\ntop sources:");
    for (name, list) in dimensions(r) {
        if !list.is_empty() {
            let _ = writeln!(s, "  {name}: {}", shares(list));
        }
    }
    s
}

fn esc(v: &str) -> String {
    v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// The report as one standalone HTML page (no scripts, no outside resources).
pub fn to_html(r: &AuditReport) -> String {
    let mut s = String::new();
    let w = &r.what_if;
    let account = esc(r.account.as_deref().unwrap_or("-"));
    let _ = write!(
        s,
        "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>callmeter audit: {account}</title>\n<style>\
         body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}}\
         td.n{{text-align:right}}</style></head><body>\n<h1>Audit of {account}</h1>\n<p>{}</p>\n",
        esc(&range(r))
    );
    let _ = writeln!(
        s,
        "<p>{} calls ({} billable). With every recommendation applied: <b>{}</b> calls ({:.1}× fewer){}.</p>",
        thousands(r.calls),
        thousands(r.billable_calls),
        thousands(w.calls_after),
        w.factor,
        plans(r).map_or(String::new(), |p| format!("; {}", esc(&p)))
    );
    let _ = writeln!(s, "<h2>Findings</h2>");
    if r.findings.is_empty() {
        let _ = writeln!(s, "<p>None.</p>");
    } else {
        let _ = writeln!(
            s,
            "<table><tr><th>kind</th><th>source</th><th>path</th><th>calls</th><th>avoidable</th><th>recommendation</th></tr>"
        );
        for f in &r.findings {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td>{}</td><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>",
                f.kind(),
                esc(&f.source.key.to_string()),
                esc(&f.path),
                thousands(f.calls),
                thousands(f.avoidable_calls),
                esc(&f.recommendation)
            );
        }
        let _ = writeln!(s, "</table>");
    }
    let _ = writeln!(s, "<h2>Top sources</h2>");
    for (name, list) in dimensions(r) {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(s, "<h3>{name}</h3>\n<table><tr><th>{name}</th><th>calls</th><th>share</th></tr>");
        for x in list {
            let _ = writeln!(
                s,
                "<tr><td>{}</td><td class=\"n\">{}</td><td class=\"n\">{:.1} %</td></tr>",
                esc(&x.value),
                thousands(x.calls),
                x.share * 100.0
            );
        }
        let _ = writeln!(s, "</table>");
    }
    s.push_str("</body></html>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::simulate::{Upload, Workload};
    use crate::{AuditConfig, Auditor};
    use chrono::TimeZone;

    fn report() -> AuditReport {
        let start = chrono::Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap();
        let mut w = Workload::new("acme", start, 10_000, 1);
        w.upload_batches("/in/<b>", &[(10, 0)], 0.0, Upload::SingleRequest);
        let mut a = Auditor::new(AuditConfig::default()).unwrap();
        for e in &w.build().events {
            a.push(e);
        }
        a.finish()
    }

    #[test]
    fn text_names_the_numbers_and_the_recommendation() {
        let t = to_text(&report());
        assert!(t.starts_with("audit of acme, 2026-11-02T00:00:"), "{t}");
        assert!(t.contains("calls: 20 (20 billable)"), "{t}");
        assert!(t.contains("11 calls instead of 20"), "{t}");
        assert!(t.contains("1. list_after_write /in/<b> by API key key-0001: 9 of 10 calls avoidable"), "{t}");
        assert!(t.contains("operation: list 10 (50.0 %), write 10 (50.0 %)"), "{t}");
    }

    #[test]
    fn html_is_escaped() {
        let h = to_html(&report());
        assert!(h.contains("/in/&lt;b&gt;") && !h.contains("/in/<b>"), "{h}");
        assert!(h.ends_with("</body></html>\n"));
    }
}
