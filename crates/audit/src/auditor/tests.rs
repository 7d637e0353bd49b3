//! The engine on hand-made calls and small workloads: each finding, precedence, the report's shape.

use super::*;
use crate::report::{FindingDetails, FindingKind};
use crate::simulate::{PollerSpec, Simulation, Upload, Via, Workload};
use crate::source::SourceKey;
use callmeter_model::{Interface, Operation, PeriodKind};
use chrono::TimeZone;

fn start() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 11, 2, 0, 0, 0).unwrap()
}

fn audit_events(events: &[CallEvent], page_size: u64) -> AuditReport {
    let mut a = Auditor::new(AuditConfig { list_page_size: page_size, ..AuditConfig::default() }).unwrap();
    for e in events {
        a.push(e);
    }
    a.finish()
}

fn audit(sim: &Simulation) -> AuditReport {
    audit_events(&sim.events, sim.truth.list_page_size)
}

fn of_kind(r: &AuditReport, kind: FindingKind) -> Vec<&crate::Finding> {
    r.findings.iter().filter(|f| f.kind() == kind).collect()
}

/// A hand-made call `secs` after the start.
fn call(secs: f64, key: &str, op: Operation, path: &str, cursor: Option<&str>, rc: Option<u64>) -> CallEvent {
    let id = format!("{key}-{secs}-{path}-{cursor:?}");
    let time = start() + chrono::Duration::microseconds((secs * 1e6) as i64);
    CallEvent {
        method: Some(if op == Operation::Write { "POST" } else { "GET" }.into()),
        path: Some(path.into()),
        status: Some(200),
        api_key: Some(key.into()),
        client_ip: Some("203.0.113.9".into()),
        user_agent: Some("curl/8.5.0".into()),
        cursor: cursor.map(Into::into),
        result_count: rc,
        ..CallEvent::new(id, "acme".into(), time, Interface::Rest, op)
    }
}

fn poller(period: f64, jitter: f64, missed: f64, pauses: Vec<(f64, f64)>, until: f64) -> PollerSpec {
    PollerSpec {
        operation: Operation::List,
        path: "/partners/acme/outbox".into(),
        period_secs: period,
        jitter,
        missed,
        pauses,
        from_secs: 0.0,
        until_secs: until,
        entries: 42,
        via: Via::Rest,
    }
}

/// The one polling finding, checked against the truth: found, same avoidable calls, nothing else.
fn assert_poller_found(sim: &Simulation) -> AuditReport {
    let r = audit(sim);
    let truth = &sim.truth.patterns[0];
    let found = of_kind(&r, FindingKind::Polling);
    assert_eq!(found.len(), 1, "{:#?}", r.findings);
    assert!(truth.matches(found[0]), "{:?} vs {truth:?}", found[0]);
    assert_eq!(found[0].avoidable_calls, truth.avoidable_calls);
    assert!(of_kind(&r, FindingKind::DuplicateRequests).is_empty(), "a poller is not retrying: {:#?}", r.findings);
    r
}

/// Calls already in time order (a store's request log) give the same
/// report whether or not they pass through the reorder buffer.
#[test]
fn in_time_order_skips_the_reorder_buffer_and_changes_nothing() {
    for seed in [3, 17, 42] {
        let sim = crate::simulate::scenario(seed, &crate::simulate::ScenarioShape::default());
        let config = AuditConfig { list_page_size: sim.truth.list_page_size, ..AuditConfig::default() };
        let mut buffered = Auditor::new(config.clone()).unwrap();
        let mut direct = Auditor::new(config).unwrap().in_time_order();
        for e in &sim.events {
            buffered.push(e);
            direct.push(e);
        }
        let (a, b) = (buffered.finish(), direct.finish());
        assert!(!a.findings.is_empty(), "seed {seed} has waste to find");
        assert_eq!(serde_json::to_value(&a).unwrap(), serde_json::to_value(&b).unwrap(), "seed {seed}");
    }
}

#[test]
fn the_platform_example_at_10000_and_2500_a_page() {
    for (page_size, calls, after) in [(10_000, 11_000, 1_010), (2_500, 41_000, 1_040)] {
        let mut w = Workload::new("acme", start(), page_size, 1);
        w.upload_batches("/reports/in", &[(1_000, 99_000)], 60.0, Upload::SingleRequest);
        let sim = w.build();
        let r = audit(&sim);
        assert_eq!((r.what_if.calls, r.what_if.calls_after), (calls, after), "page size {page_size}");
        let factor = calls as f64 / after as f64;
        assert!((r.what_if.factor - factor).abs() < 1e-9);
        assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
        let f = &r.findings[0];
        assert_eq!(
            (f.kind(), f.path.as_str(), f.avoidable_calls),
            (FindingKind::ListAfterWrite, "/reports/in", calls - after)
        );
        assert!(
            f.recommendation.contains("/reports/in") && f.recommendation.contains("1,000 uploads"),
            "{}",
            f.recommendation
        );
        match &f.details {
            FindingDetails::ListAfterWrite { batches, uploads, listings, entries, pages_per_listing } => {
                assert_eq!((*batches, *uploads, *listings, *entries), (1, 1_000, 1_000, 100_000));
                assert_eq!(*pages_per_listing, 100_000 / page_size);
            }
            d => panic!("{d:?}"),
        }
    }
    let r = {
        let mut w = Workload::new("acme", start(), 10_000, 1);
        w.upload_batches("/reports/in", &[(1_000, 99_000)], 60.0, Upload::SingleRequest);
        audit(&w.build())
    };
    assert!((r.what_if.factor - 10.891).abs() < 0.001, "about 11×: {}", r.what_if.factor);
}

/// The platform's example as a log that records each listing as one line
/// with its entries: the what-if costs each listing at the page size.
#[test]
fn a_listing_logged_as_one_line_costs_its_pages_everywhere() {
    let k = "etl";
    let mut events = Vec::new();
    for i in 0..1_000u64 {
        let t = 30.0 * i as f64;
        events.push(call(t, k, Operation::Write, &format!("/reports/in/f{i}.csv"), None, None));
        events.push(call(t + 2.0, k, Operation::List, "/reports/in", None, Some(99_001 + i)));
    }
    for (page_size, calls, after) in [(10_000, 11_000, 1_010), (2_500, 41_000, 1_040)] {
        let r = audit_events(&events, page_size);
        assert_eq!(r.calls, 2_000, "the events");
        let w = &r.what_if;
        assert_eq!((w.calls, w.calls_after, w.list_page_size), (calls, after, page_size), "{w:?}");
        assert_eq!((w.billable_calls, w.billable_calls_after), (calls, after));
        assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
        assert_eq!(r.findings[0].avoidable_calls, calls - after);
    }
}

#[test]
fn retries_after_errors_are_counted_apart_and_a_loop_is_duplicates() {
    let mut events = Vec::new();
    for i in 0..10 {
        let t = 60.0 * i as f64;
        let path = format!("/out/f{i}.csv");
        // A download answered 503, retried a second later; then a loop fetching another file three times.
        let mut failed = call(t, "retrier", Operation::Read, &path, None, None);
        failed.status = Some(if i % 2 == 0 { 503 } else { 429 });
        events.push(failed);
        events.push(call(t + 1.0, "retrier", Operation::Read, &path, None, None));
        for j in 0..3 {
            events.push(call(t + 5.0 + f64::from(j), "looper", Operation::Read, &path, None, None));
        }
    }
    let r = audit_events(&events, 10_000);
    assert_eq!(r.retries_after_errors, 10);
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    let f = &r.findings[0];
    assert_eq!((f.kind(), f.source.key.to_string().as_str()), (FindingKind::DuplicateRequests, "API key looper"));
    assert_eq!((f.avoidable_calls, f.calls), (20, 30), "two of every three, of ten loops");
}

#[test]
fn retries_through_an_outage_are_retries_only_whatever_their_delay() {
    for delay in [1.0, 2.5, 3.0, 10.0, 60.0] {
        // Thirty tries of one download at a fixed delay, 29 answered 503 (or 429), the last 200.
        let events: Vec<CallEvent> = (0..30)
            .map(|i| {
                let mut e = call(delay * f64::from(i), "kx", Operation::Read, "/files/z", None, None);
                e.status = Some(match i {
                    29 => 200,
                    _ if delay == 3.0 => 429,
                    _ => 503,
                });
                e
            })
            .collect();
        let r = audit_events(&events, 10_000);
        assert_eq!(r.retries_after_errors, 29, "delay {delay}");
        assert!(r.findings.is_empty(), "delay {delay}: a retry is in no finding: {:#?}", r.findings);
        assert_eq!((r.what_if.calls, r.what_if.calls_after), (30, 30), "delay {delay}");
    }
}

#[test]
fn a_poller_through_an_outage_wastes_only_the_polls_that_were_answered() {
    // A 1-minute poller of a folder; for ten minutes in the middle every poll is answered 503.
    let events: Vec<CallEvent> = (0..60)
        .map(|i| {
            let mut e = call(60.0 * f64::from(i), "poller", Operation::List, "/in", None, None);
            e.status = Some(if (20..30).contains(&i) { 503 } else { 200 });
            e
        })
        .collect();
    let r = audit_events(&events, 10_000);
    // The polls after a failed one (21..=30) are retries; the others repeat an answered poll.
    assert_eq!(r.retries_after_errors, 10);
    let polling = of_kind(&r, FindingKind::Polling);
    assert_eq!(polling.len(), 1, "{:#?}", r.findings);
    assert_eq!((polling[0].calls, polling[0].avoidable_calls), (50, 49));
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
}

#[test]
fn uploads_of_begin_and_finish_are_one_upload_and_no_duplicate() {
    let mut w = Workload::new("acme", start(), 10_000, 2);
    w.upload_batches("/in", &[(50, 0), (20, 500)], 0.0, Upload::BeginAndFinish);
    let sim = w.build();
    let r = audit(&sim);
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    assert_eq!(r.findings[0].avoidable_calls, 49 + 19);
    match &r.findings[0].details {
        FindingDetails::ListAfterWrite { batches, uploads, .. } => assert_eq!((*batches, *uploads), (2, 70)),
        d => panic!("{d:?}"),
    }
}

#[test]
fn fast_and_slow_pollers_are_found() {
    for (period, until) in [(1.0, 1_500.0), (5.0, 7_200.0), (900.0, 2.0 * 86_400.0), (3_600.0, 3.0 * 86_400.0)] {
        let mut w = Workload::new("acme", start(), 10_000, period as u64);
        w.poller(&poller(period, 0.2, 0.0, vec![], until));
        let r = assert_poller_found(&w.build());
        match &r.findings[0].details {
            FindingDetails::Polling { interval_secs, .. } => {
                assert!((interval_secs / period - 1.0).abs() < 0.1, "{interval_secs} for {period}")
            }
            d => panic!("{d:?}"),
        }
        assert!(r.findings[0].recommendation.contains("webhook to /partners/acme/outbox"));
    }
}

#[test]
fn a_poller_with_pauses_of_hours_and_missed_polls_is_found() {
    let mut w = Workload::new("acme", start(), 10_000, 3);
    let pauses = vec![(3.0 * 3_600.0, 5.0 * 3_600.0), (12.0 * 3_600.0, 3.0 * 3_600.0)];
    w.poller(&poller(60.0, 0.2, 0.1, pauses, 86_400.0));
    let r = assert_poller_found(&w.build());
    match &r.findings[0].details {
        FindingDetails::Polling { interval_secs, fit, .. } => {
            assert!((interval_secs / 60.0 - 1.0).abs() < 0.1 && *fit > 0.9, "{:?}", r.findings[0].details)
        }
        d => panic!("{d:?}"),
    }
    // Few polls, so that the sample holds every interval: then the pauses are counted exactly.
    let mut w = Workload::new("acme", start(), 10_000, 3);
    w.poller(&poller(600.0, 0.2, 0.1, vec![(3.0 * 3_600.0, 5.0 * 3_600.0), (12.0 * 3_600.0, 3.0 * 3_600.0)], 86_400.0));
    let r = assert_poller_found(&w.build());
    match &r.findings[0].details {
        FindingDetails::Polling { pauses, .. } => assert_eq!(*pauses, 2),
        d => panic!("{d:?}"),
    }
}

#[test]
fn repeats_that_saw_a_change_are_not_avoidable() {
    let mut w = Workload::new("acme", start(), 2_500, 4);
    // A folder of 6,000 entries: three pages a poll.
    let spec = PollerSpec { entries: 6_000, ..poller(300.0, 0.1, 0.05, vec![], 86_400.0) };
    w.poller(&spec);
    w.changes("/partners/acme/outbox", 25, 0.0, 86_400.0);
    // A change elsewhere is no change of the polled folder.
    w.changes("/partners/other", 25, 0.0, 86_400.0);
    let sim = w.build();
    let r = assert_poller_found(&sim);
    match &r.findings[0].details {
        FindingDetails::Polling { polls, polls_with_change, .. } => {
            assert!((15..=25).contains(polls_with_change), "{polls_with_change}");
            assert_eq!(r.findings[0].avoidable_calls, 3 * (polls - 1 - polls_with_change));
        }
        d => panic!("{d:?}"),
    }
}

#[test]
fn people_revisiting_folders_at_random_are_not_pollers() {
    let mut w = Workload::new("acme", start(), 10_000, 5);
    for _ in 0..10 {
        let folders: Vec<(String, u64)> = (0..4).map(|i| (format!("/team/f{i}"), 20)).collect();
        w.person(&folders, 60, 0.0, 5.0 * 86_400.0);
    }
    let sim = w.build();
    let r = audit(&sim);
    assert!(r.findings.is_empty(), "{:#?}", r.findings);
    assert_eq!(sim.truth.people.len(), 10);
}

#[test]
fn listing_pages_are_not_duplicates_but_a_doubled_page_is() {
    let k = "key-1";
    let events = vec![
        call(0.0, k, Operation::List, "/big", None, Some(10_000)),
        call(0.2, k, Operation::List, "/big", Some("c1"), Some(10_000)),
        call(0.4, k, Operation::List, "/big", Some("c2"), Some(10_000)),
        call(0.6, k, Operation::List, "/big", Some("c3"), Some(3)),
        // The same listing again, its second page sent twice.
        call(30.0, k, Operation::List, "/big", None, Some(10_000)),
        call(30.2, k, Operation::List, "/big", Some("d1"), Some(10_000)),
        call(30.5, k, Operation::List, "/big", Some("d1"), Some(10_000)),
        call(30.7, k, Operation::List, "/big", Some("d2"), Some(3)),
    ];
    let r = audit_events(&events, 10_000);
    let dups = of_kind(&r, FindingKind::DuplicateRequests);
    assert_eq!(dups.len(), 1, "{:#?}", r.findings);
    assert_eq!((dups[0].avoidable_calls, dups[0].path.as_str()), (1, "/big"));
}

#[test]
fn a_file_uploaded_again_and_again_is_no_duplicate_but_a_doubled_upload_is() {
    let k = "key-3";
    let mut events = Vec::new();
    for i in 0..6 {
        // Begin and finish of the same file every ten minutes.
        let t = 600.0 * i as f64;
        events.push(call(t, k, Operation::Write, "/out/state.json", None, None));
        events.push(call(t + 0.8, k, Operation::Write, "/out/state.json", None, None));
    }
    assert!(audit_events(&events, 10_000).findings.is_empty());
    // Then once with begin and finish each sent twice.
    for dt in [0.0, 0.3, 1.0, 1.2] {
        events.push(call(4_000.0 + dt, k, Operation::Write, "/out/state.json", None, None));
    }
    let r = audit_events(&events, 10_000);
    assert_eq!(r.findings.len(), 1, "{:#?}", r.findings);
    assert_eq!((r.findings[0].kind(), r.findings[0].avoidable_calls), (FindingKind::DuplicateRequests, 2));
}

#[test]
fn one_call_is_in_one_finding_only() {
    // Five uploads, each followed by a one-page listing that is sent twice.
    let k = "key-2";
    let mut events = Vec::new();
    for i in 0..5 {
        let t = 10.0 * i as f64;
        events.push(call(t, k, Operation::Write, &format!("/drop/f{i}"), None, None));
        events.push(call(t + 1.0, k, Operation::List, "/drop", None, Some(i + 1)));
        events.push(call(t + 1.3, k, Operation::List, "/drop", None, Some(i + 1)));
    }
    let r = audit_events(&events, 10_000);
    let dup = of_kind(&r, FindingKind::DuplicateRequests);
    let law = of_kind(&r, FindingKind::ListAfterWrite);
    assert_eq!((dup.len(), law.len(), r.findings.len()), (1, 1, 2), "{:#?}", r.findings);
    assert_eq!((dup[0].avoidable_calls, law[0].avoidable_calls), (5, 4));
    // What is left: the five uploads and the last listing.
    assert_eq!((r.what_if.calls, r.what_if.calls_after), (15, 6));
    assert_eq!(r.what_if.avoidable_calls_by_kind.polling, 0);
}

#[test]
fn calls_somewhat_out_of_order_give_the_same_report() {
    let mut w = Workload::new("acme", start(), 10_000, 6);
    w.poller(&poller(30.0, 0.2, 0.05, vec![], 20_000.0));
    w.duplicate_client("/sync", 100, 0.0, 20_000.0);
    let sim = w.build();
    let in_order = audit(&sim);
    // Swap neighbours: each call at most a few seconds early or late.
    let mut shuffled = sim.events.clone();
    for i in (1..shuffled.len()).step_by(2) {
        if (shuffled[i].time - shuffled[i - 1].time).num_seconds() < 5 {
            shuffled.swap(i - 1, i);
        }
    }
    let r = audit_events(&shuffled, 10_000);
    assert_eq!(r.findings, in_order.findings);
    assert_eq!(in_order.findings.len(), 2);
}

#[test]
fn the_report_has_the_design_shape() {
    let mut w = Workload::new("acme", start(), 10_000, 7);
    w.poller(&poller(60.0, 0.1, 0.0, vec![], 7_200.0));
    let sim = w.build();
    let plan = |name: &str, included| Plan {
        name: name.into(),
        period: PeriodKind::ThirtyDays,
        included_calls: included,
        overage_price_per_1000: 100,
        currency: "USD".into(),
    };
    let mut a = Auditor::new(AuditConfig::default()).unwrap().plans(&[plan("small", 10), plan("large", 1_000)]);
    for e in &sim.events {
        a.push(e);
    }
    let r = a.finish();
    let v = serde_json::to_value(&r).unwrap();
    for k in ["account", "from", "to", "calls", "billable_calls", "findings", "top_sources", "what_if"] {
        assert!(v.get(k).is_some(), "{k}");
    }
    let f = &v["findings"][0];
    assert_eq!(f["kind"], "polling");
    assert_eq!(f["source"]["by"], "api_key");
    assert_eq!(f["operation"], "list");
    for k in ["path", "calls", "avoidable_calls", "recommendation", "interval_secs"] {
        assert!(f.get(k).is_some(), "finding {k}");
    }
    for k in ["calls", "calls_after", "factor"] {
        assert!(v["what_if"].get(k).is_some(), "what_if {k}");
    }
    assert_eq!(v["what_if"]["plan_before"]["name"], "large");
    assert_eq!(v["what_if"]["plan_after"]["name"], "small");
    assert_eq!(v["top_sources"]["operation"][0]["value"], "list");
    assert_eq!(v["top_sources"]["operation"][0]["share"], 1.0);
    let back: AuditReport = serde_json::from_value(v).unwrap();
    assert_eq!(back, r);
    assert_eq!(r.account.as_deref(), Some("acme"));
    assert_eq!(r.findings[0].source.key, SourceKey::ApiKey { api_key: "key-0001".into() });
}

#[test]
fn other_accounts_and_calls_outside_the_range_are_skipped() {
    let mut e = call(0.0, "k", Operation::Read, "/a", None, None);
    let mut a = Auditor::new(AuditConfig::default())
        .unwrap()
        .account("acme")
        .range(Some(start()), Some(start() + chrono::Duration::hours(1)));
    a.push(&e);
    e.account = "globex".into();
    a.push(&e);
    e.account = "acme".into();
    e.time = start() + chrono::Duration::hours(2);
    a.push(&e);
    let r = a.finish();
    assert_eq!((r.calls, r.skipped_calls), (1, 2));
    assert_eq!(r.to, Some(start() + chrono::Duration::hours(1)));
}

#[test]
fn a_bad_config_is_refused() {
    let c = AuditConfig { polling_min_intervals: 1, ..AuditConfig::default() };
    assert!(Auditor::new(c).unwrap_err().to_string().starts_with("bad audit setting polling_min_intervals"));
}
