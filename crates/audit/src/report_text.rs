//! The report as plain text and as a standalone HTML page, for
//! `callmeter audit --format text|html` (JSON is the report's own serde form).
//!
//! The HTML page draws its charts as inline SVG, computed here: no script, no
//! outside resource (its Content-Security-Policy forbids both), so it opens the
//! same from a mail attachment, a ticket or a disk with no network.

use crate::report::{thousands, AuditReport, Finding, FindingDetails};
use crate::timeline::Timeline;
use crate::top_sources::Share;
use chrono::{DateTime, Utc};
use std::fmt::Write;

fn range(r: &AuditReport) -> String {
    let t = |t: Option<DateTime<Utc>>| t.map_or("-".to_owned(), |t| t.to_rfc3339());
    format!("{} to {}", t(r.from), t(r.to))
}

fn plans(r: &AuditReport) -> Option<String> {
    match (&r.what_if.plan_before, &r.what_if.plan_after) {
        (Some(b), Some(a)) if b.name == a.name => Some(format!("plan {} either way", b.name)),
        (Some(b), Some(a)) => Some(format!("plan {} now, {} after", b.name, a.name)),
        _ => None,
    }
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

/// The avoidable calls of each kind, in words, leaving out the kinds with none.
fn avoidable_words(r: &AuditReport) -> String {
    let k = &r.what_if.avoidable_calls_by_kind;
    let parts: Vec<String> = [
        ("polling", k.polling),
        ("list after write", k.list_after_write),
        ("duplicate requests", k.duplicate_requests),
    ]
    .iter()
    .filter(|(_, n)| *n > 0)
    .map(|(name, n)| format!("{name} {}", thousands(*n)))
    .collect();
    parts.join(", ")
}

/// What a finding adds to its kind, in a few words: the poll period, the batches, the window.
fn finding_detail(f: &Finding) -> String {
    match &f.details {
        FindingDetails::Polling { interval_secs, polls, polls_with_change, .. } => format!(
            "every {}, {} polls, {} saw a change",
            crate::report::duration_words(*interval_secs),
            thousands(*polls),
            thousands(*polls_with_change)
        ),
        FindingDetails::ListAfterWrite { batches, uploads, listings, pages_per_listing, .. } => format!(
            "{} uploads in {} batches, {} listings of {} pages",
            thousands(*uploads),
            thousands(*batches),
            thousands(*listings),
            thousands(*pages_per_listing)
        ),
        FindingDetails::DuplicateRequests { duplicates, window_secs } => {
            format!("{} repeats within {window_secs} s", thousands(*duplicates))
        }
    }
}

/// Cuts `text` at spaces into lines of at most `width` characters.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

/// `value` cut to `width` characters, with an ellipsis when cut.
fn fit(value: &str, width: usize) -> String {
    if value.chars().count() <= width {
        value.to_owned()
    } else {
        let mut s: String = value.chars().take(width.saturating_sub(1)).collect();
        s.push('…');
        s
    }
}

/// What `retries_after_errors` are, in words.
const RETRIES: &str = "repeats after a failed answer (408, 429, 5xx, none): retries, not waste";

/// The report in plain text: the totals and the what-if, the findings as a
/// table (biggest waste first) each with its recommendation, the top sources as tables.
pub fn to_text(r: &AuditReport) -> String {
    let mut s = String::new();
    let w = &r.what_if;
    let _ = writeln!(s, "audit of {}, {}", r.account.as_deref().unwrap_or("-"), range(r));
    let _ = writeln!(s, "calls            {:>14}   ({} billable)", thousands(r.calls), thousands(r.billable_calls));
    let avoidable = w.calls - w.calls_after;
    let by_kind = avoidable_words(r);
    let _ = writeln!(
        s,
        "avoidable        {:>14}{}",
        thousands(avoidable),
        if by_kind.is_empty() { String::new() } else { format!("   ({by_kind})") }
    );
    let _ = writeln!(
        s,
        "with every recommendation applied: {} calls instead of {} ({:.1}× fewer){}",
        thousands(w.calls_after),
        thousands(w.calls),
        w.factor,
        plans(r).map_or(String::new(), |p| format!("; {p}"))
    );
    if r.skipped_calls > 0 {
        let _ =
            writeln!(s, "skipped          {:>14}   (other accounts, or outside the range)", thousands(r.skipped_calls));
    }
    if r.retries_after_errors > 0 {
        let _ = writeln!(s, "retries          {:>14}   ({RETRIES})", thousands(r.retries_after_errors));
    }
    let _ = writeln!(s, "listings costed at {} entries a request", thousands(w.list_page_size));

    let _ = writeln!(s, "\nfindings, biggest waste first:");
    if r.findings.is_empty() {
        let _ = writeln!(s, "  none: no polling, listing after each upload or repeated requests found");
    } else {
        let _ = writeln!(s, "{:>4}  {:<18} {:>11} {:>11}  {:<32} path", "#", "kind", "avoidable", "calls", "source");
        for (i, f) in r.findings.iter().enumerate() {
            let _ = writeln!(
                s,
                "{:>4}. {:<18} {:>11} {:>11}  {:<32} {}",
                i + 1,
                f.kind().as_str(),
                thousands(f.avoidable_calls),
                thousands(f.calls),
                fit(&f.source.key.to_string(), 32),
                f.path
            );
            let _ = writeln!(s, "      {}", finding_detail(f));
            for line in wrap(&f.recommendation, 96) {
                let _ = writeln!(s, "      {line}");
            }
        }
    }

    let _ = writeln!(s, "\ntop sources:");
    for (name, list) in dimensions(r) {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(s, "  {:<60} {:>12} {:>7}", name, "calls", "share");
        for x in list {
            let _ = writeln!(s, "    {:<58} {:>12} {:>6.1}%", fit(&x.value, 58), thousands(x.calls), x.share * 100.0);
        }
    }
    s
}

fn esc(v: &str) -> String {
    v.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;").replace('\'', "&#39;")
}

/// Series colours: distinct, readable on white, the last (grey) for `other sources`.
const COLOURS: [&str; 12] = [
    "#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#17becf",
    "#bcbd22", "#aaaaaa",
];

fn colour(i: usize, name: &str) -> &'static str {
    if name == "other sources" {
        COLOURS[COLOURS.len() - 1]
    } else {
        COLOURS[i % (COLOURS.len() - 1)]
    }
}

/// A round number at or above `v`, for a chart's axis: 1, 2 or 5 times a power of ten.
fn nice_ceiling(v: u64) -> u64 {
    let mut step = 1u64;
    loop {
        for m in [1, 2, 5] {
            if step.saturating_mul(m) >= v {
                return step.saturating_mul(m).max(1);
            }
        }
        step = step.saturating_mul(10);
    }
}

/// A bucket width in words: `1 minute`, `15 minutes`, `3 hours`, `1 day`.
fn bucket_words(secs: u64) -> String {
    let (n, unit) = if secs.is_multiple_of(86_400) {
        (secs / 86_400, "day")
    } else if secs.is_multiple_of(3_600) {
        (secs / 3_600, "hour")
    } else {
        (secs / 60, "minute")
    };
    format!("{n} {unit}{}", if n == 1 { "" } else { "s" })
}

/// Calls over time as stacked areas, one per source, with axes and a legend.
fn timeline_svg(t: &Timeline, out: &mut String) {
    let Some(start) = t.start.filter(|_| !t.calls.is_empty()) else {
        out.push_str("<p>No calls.</p>\n");
        return;
    };
    let (width, height, left, top, bottom) = (960.0, 300.0, 70.0, 10.0, 40.0);
    // Room on the right for the last time label.
    let plot_w = width - left - 40.0;
    let plot_h = height - top - bottom;
    let n = t.calls.len();
    let peak = nice_ceiling(t.calls.iter().copied().max().unwrap_or(1));
    let x = |i: usize| left + plot_w * i as f64 / n as f64;
    let y = |v: u64| top + plot_h * (1.0 - v as f64 / peak as f64);
    let _ = writeln!(
        out,
        "<svg id=\"timeline\" class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" \
         aria-label=\"calls per {} by source\">",
        bucket_words(t.bucket_secs)
    );
    // Horizontal grid and the calls axis.
    for k in 0..=4u64 {
        let v = peak * k / 4;
        let _ = writeln!(
            out,
            "<line x1=\"{left}\" x2=\"{}\" y1=\"{y:.1}\" y2=\"{y:.1}\" class=\"grid\"/>\
             <text x=\"{}\" y=\"{:.1}\" class=\"axis\" text-anchor=\"end\">{}</text>",
            left + plot_w,
            left - 6.0,
            y(v) + 4.0,
            thousands(v),
            y = y(v)
        );
    }
    // Each source's band sits on the ones before it.
    let mut base = vec![0u64; n];
    for (i, s) in t.sources.iter().enumerate() {
        let mut d = String::new();
        for (b, (under, own)) in base.iter().zip(&s.calls).enumerate() {
            let _ = write!(d, "{}{:.1},{:.1} ", if b == 0 { "M" } else { "L" }, x(b), y(under + own));
            let _ = write!(d, "L{:.1},{:.1} ", x(b + 1), y(under + own));
        }
        for b in (0..n).rev() {
            let _ = write!(d, "L{:.1},{:.1} L{:.1},{:.1} ", x(b + 1), y(base[b]), x(b), y(base[b]));
        }
        let _ = writeln!(
            out,
            "<path d=\"{}Z\" fill=\"{}\" fill-opacity=\"0.85\"><title>{}: {} calls</title></path>",
            d,
            colour(i, &s.source),
            esc(&s.source),
            thousands(s.total)
        );
        for (acc, c) in base.iter_mut().zip(&s.calls) {
            *acc += c;
        }
    }
    // Time labels: about six, at bucket edges.
    let every = n.div_ceil(6).max(1);
    for b in (0..=n).step_by(every) {
        let at = start + chrono::Duration::seconds((b as u64 * t.bucket_secs) as i64);
        let label = if t.bucket_secs >= 86_400 { at.format("%Y-%m-%d") } else { at.format("%m-%d %H:%M") };
        let _ = writeln!(
            out,
            "<text x=\"{:.1}\" y=\"{}\" class=\"axis\" text-anchor=\"middle\">{label}</text>",
            x(b),
            height - bottom + 18.0
        );
    }
    let _ = writeln!(
        out,
        "<line x1=\"{left}\" x2=\"{left}\" y1=\"{top}\" y2=\"{}\" class=\"axisline\"/>\
         <line x1=\"{left}\" x2=\"{}\" y1=\"{0}\" y2=\"{0}\" class=\"axisline\"/></svg>",
        top + plot_h,
        left + plot_w
    );
    let _ = writeln!(
        out,
        "<p class=\"note\">Calls per {} (UTC), stacked by source.</p>\n<ul class=\"legend\">",
        bucket_words(t.bucket_secs)
    );
    for (i, s) in t.sources.iter().enumerate() {
        let _ = writeln!(
            out,
            "<li><span class=\"swatch\" style=\"background:{}\"></span>{} <span class=\"n\">{}</span></li>",
            colour(i, &s.source),
            esc(&s.source),
            thousands(s.total)
        );
    }
    out.push_str("</ul>\n");
}

/// Two bars: the calls now (what could go, by kind, in colour) and with every recommendation applied.
fn what_if_svg(r: &AuditReport, out: &mut String) {
    let w = &r.what_if;
    let k = &w.avoidable_calls_by_kind;
    let (width, left, bar_w) = (960.0, 220.0, 640.0);
    let scale = |v: u64| if w.calls == 0 { 0.0 } else { bar_w * v as f64 / w.calls as f64 };
    let _ = writeln!(out, "<svg id=\"what-if-chart\" class=\"chart\" viewBox=\"0 0 {width} 110\" role=\"img\" aria-label=\"calls now and after\">");
    let segments = [
        ("kept", w.calls_after, "#4e79a7"),
        ("polling", k.polling, "#e15759"),
        ("list after write", k.list_after_write, "#f28e2b"),
        ("duplicate requests", k.duplicate_requests, "#b07aa1"),
    ];
    let mut at = left;
    for (name, v, c) in segments {
        if v == 0 {
            continue;
        }
        let _ = writeln!(
            out,
            "<rect x=\"{at:.1}\" y=\"10\" width=\"{:.1}\" height=\"34\" fill=\"{c}\"><title>{name}: {}</title></rect>",
            scale(v),
            thousands(v)
        );
        at += scale(v);
    }
    let _ = writeln!(
        out,
        "<text x=\"{}\" y=\"32\" class=\"label\" text-anchor=\"end\">now</text>\
         <text x=\"{:.1}\" y=\"32\" class=\"label\">{}</text>",
        left - 8.0,
        at + 6.0,
        thousands(w.calls)
    );
    let after = scale(w.calls_after);
    let _ = writeln!(
        out,
        "<rect x=\"{left}\" y=\"60\" width=\"{after:.1}\" height=\"34\" fill=\"#4e79a7\"/>\
         <text x=\"{}\" y=\"82\" class=\"label\" text-anchor=\"end\">every recommendation applied</text>\
         <text x=\"{:.1}\" y=\"82\" class=\"label\">{} ({:.1}× fewer)</text></svg>",
        left - 8.0,
        left + after + 6.0,
        thousands(w.calls_after),
        w.factor
    );
}

/// Each finding's calls, the avoidable part in colour.
fn findings_svg(r: &AuditReport, out: &mut String) {
    let shown: Vec<&Finding> = r.findings.iter().take(20).collect();
    let most = shown.iter().map(|f| f.calls.max(f.avoidable_calls)).max().unwrap_or(1).max(1);
    let (width, left, bar_w, row) = (960.0, 330.0, 520.0, 26.0);
    let height = row * shown.len() as f64 + 10.0;
    let _ = writeln!(
        out,
        "<svg id=\"findings-chart\" class=\"chart\" viewBox=\"0 0 {width} {height}\" role=\"img\" aria-label=\"avoidable calls per finding\">"
    );
    for (i, f) in shown.iter().enumerate() {
        let y = 5.0 + row * i as f64;
        let full = bar_w * f.calls.max(f.avoidable_calls) as f64 / most as f64;
        let part = bar_w * f.avoidable_calls as f64 / most as f64;
        let label = fit(&format!("{}. {} {}", i + 1, f.kind().as_str(), f.path), 48);
        let _ = writeln!(
            out,
            "<text x=\"{}\" y=\"{:.1}\" class=\"label\" text-anchor=\"end\">{}</text>\
             <rect x=\"{left}\" y=\"{y:.1}\" width=\"{full:.1}\" height=\"18\" fill=\"#dddddd\"/>\
             <rect x=\"{left}\" y=\"{y:.1}\" width=\"{part:.1}\" height=\"18\" fill=\"#e15759\"><title>{} of {} calls avoidable</title></rect>\
             <text x=\"{:.1}\" y=\"{:.1}\" class=\"label\">{} of {}</text>",
            left - 8.0,
            y + 14.0,
            esc(&label),
            thousands(f.avoidable_calls),
            thousands(f.calls),
            left + full + 6.0,
            y + 14.0,
            thousands(f.avoidable_calls),
            thousands(f.calls)
        );
    }
    out.push_str("</svg>\n");
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222;padding:0 1em}\
h1{margin-bottom:0}table{border-collapse:collapse;margin:.5em 0 1.5em}\
td,th{border:1px solid #ccc;padding:4px 8px;text-align:left;vertical-align:top}\
td.n,th.n{text-align:right;white-space:nowrap}.chart{width:100%;height:auto;display:block;margin:.5em 0}\
.grid{stroke:#eee}.axisline{stroke:#888}.axis{font-size:11px;fill:#555}.label{font-size:13px;fill:#222}\
.note{color:#555;font-size:90%}.legend{list-style:none;padding:0;display:flex;flex-wrap:wrap;gap:.3em 1.2em}\
.swatch{display:inline-block;width:12px;height:12px;margin-right:5px;vertical-align:middle}\
.cards{display:flex;gap:1em;flex-wrap:wrap}.card{border:1px solid #ddd;border-radius:6px;padding:.6em 1em}\
.card b{display:block;font-size:150%}.rec{max-width:40em}";

/// The report as one standalone HTML page: the totals, a what-if chart, the
/// calls over time per source, the findings (chart and table, each with its
/// recommendation) and the top sources. No script, no outside resource.
pub fn to_html(r: &AuditReport) -> String {
    let mut s = String::new();
    let w = &r.what_if;
    let account = esc(r.account.as_deref().unwrap_or("-"));
    let _ = write!(
        s,
        "<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
         <title>callmeter audit: {account}</title>\n<style>{STYLE}</style></head><body>\n\
         <h1>Usage audit of {account}</h1>\n<p class=\"note\">{}</p>\n",
        esc(&range(r))
    );
    let avoidable = w.calls - w.calls_after;
    let _ = writeln!(
        s,
        "<div class=\"cards\"><div class=\"card\" id=\"calls\">calls<b>{}</b>{} billable</div>\
         <div class=\"card\" id=\"avoidable\">avoidable<b>{}</b>{}</div>\
         <div class=\"card\" id=\"calls-after\">with every recommendation applied<b>{}</b>{:.1}× fewer</div></div>",
        thousands(r.calls),
        thousands(r.billable_calls),
        thousands(avoidable),
        esc(&avoidable_words(r)),
        thousands(w.calls_after),
        w.factor
    );

    let _ = writeln!(s, "<h2>What if</h2>");
    what_if_svg(r, &mut s);
    let _ = writeln!(
        s,
        "<table id=\"what-if\"><tr><th></th><th class=\"n\">calls</th><th class=\"n\">billable</th><th>plan</th></tr>\
         <tr><td>now</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>\
         <tr><td>every recommendation applied</td><td class=\"n\">{}</td><td class=\"n\">{}</td><td>{}</td></tr>\
         <tr><td>factor</td><td class=\"n\">{:.2}×</td><td></td><td></td></tr></table>",
        thousands(w.calls),
        thousands(w.billable_calls),
        w.plan_before.as_ref().map_or(String::new(), |p| esc(&p.name)),
        thousands(w.calls_after),
        thousands(w.billable_calls_after),
        w.plan_after.as_ref().map_or(String::new(), |p| esc(&p.name)),
        w.factor
    );
    let retries = if r.retries_after_errors > 0 {
        format!(" {} {RETRIES}.", thousands(r.retries_after_errors))
    } else {
        String::new()
    };
    let _ = writeln!(
        s,
        "<p class=\"note\" id=\"costing\">Listings costed at {} entries a request.{}</p>",
        thousands(w.list_page_size),
        esc(&retries)
    );

    let _ = writeln!(s, "<h2>Calls over time</h2>");
    timeline_svg(&r.timeline, &mut s);

    let _ = writeln!(s, "<h2>Findings, biggest waste first</h2>");
    if r.findings.is_empty() {
        let _ = writeln!(
            s,
            "<p id=\"findings\">None: no polling, listing after each upload or repeated requests found.</p>"
        );
    } else {
        findings_svg(r, &mut s);
        let _ = writeln!(
            s,
            "<table id=\"findings\"><tr><th>#</th><th>kind</th><th>source</th><th>path</th><th class=\"n\">calls</th>\
             <th class=\"n\">avoidable</th><th>what to do</th></tr>"
        );
        for (i, f) in r.findings.iter().enumerate() {
            let _ = writeln!(
                s,
                "<tr><td class=\"n\">{}</td><td>{}</td><td>{}</td><td class=\"path\">{}</td><td class=\"n\">{}</td>\
                 <td class=\"n\">{}</td><td class=\"rec\">{}<br><span class=\"note\">{}</span></td></tr>",
                i + 1,
                f.kind(),
                esc(&f.source.key.to_string()),
                esc(&f.path),
                thousands(f.calls),
                thousands(f.avoidable_calls),
                esc(&f.recommendation),
                esc(&finding_detail(f))
            );
        }
        let _ = writeln!(s, "</table>");
    }

    let _ = writeln!(s, "<h2>Top sources</h2>");
    for (name, list) in dimensions(r) {
        if list.is_empty() {
            continue;
        }
        let _ = writeln!(
            s,
            "<h3>{name}</h3>\n<table><tr><th>{name}</th><th class=\"n\">calls</th><th class=\"n\">share</th></tr>"
        );
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
    s.push_str("<p class=\"note\">Made by callmeter audit.</p>\n</body></html>\n");
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
        assert!(t.contains("calls                        20   (20 billable)"), "{t}");
        assert!(t.contains("avoidable                     9   (list after write 9)"), "{t}");
        assert!(t.contains("11 calls instead of 20"), "{t}");
        assert!(t.contains("   1. list_after_write"), "{t}");
        assert!(t.contains("9          10  API key key-0001"), "{t}");
        assert!(t.contains("List it once at the end"), "{t}");
        assert!(t.contains("    list "), "{t}");
        assert!(t.contains("50.0%"), "{t}");
        assert!(t.contains("listings costed at 10,000 entries a request") && !t.contains("retries "), "{t}");
        let mut r = report();
        r.retries_after_errors = 1_234;
        let t = to_text(&r);
        assert!(t.contains("retries                   1,234   (repeats after a failed answer"), "{t}");
        assert!(to_html(&r).contains("1,234 repeats after a failed answer"));
    }

    #[test]
    fn html_is_escaped_and_draws_its_charts() {
        let h = to_html(&report());
        assert!(h.contains("/in/&lt;b&gt;") && !h.contains("/in/<b>"), "{h}");
        assert!(h.ends_with("</body></html>\n"));
        for id in ["id=\"timeline\"", "id=\"what-if-chart\"", "id=\"findings-chart\"", "id=\"findings\""] {
            assert!(h.contains(id), "{id}");
        }
        assert!(!h.contains("<script") && !h.contains("http://") && !h.contains("https://"));
    }

    #[test]
    fn axis_numbers_are_round() {
        assert_eq!(
            (nice_ceiling(0), nice_ceiling(1), nice_ceiling(7), nice_ceiling(11), nice_ceiling(4_100)),
            (1, 1, 10, 20, 5_000)
        );
        assert_eq!(bucket_words(900), "15 minutes");
        assert_eq!(bucket_words(86_400), "1 day");
        assert_eq!(wrap("a bb ccc dd", 6), vec!["a bb", "ccc dd"]);
    }
}
