//! The audit measured on generated workloads: precision and recall of every
//! finding kind, avoidable calls against the truth, people never called
//! pollers, retries after errors never called waste; and the same workloads
//! as two logs (an HTTP server's and an SFTP server's) give one answer in
//! either order.

use callmeter_audit::simulate::{scenario, write_combined, write_sftp, KindScore, ScenarioShape, Simulation};
use callmeter_audit::{audit_merged, AuditConfig, AuditReport, Auditor, FindingKind, LogCalls};
use callmeter_formats::{AccountRule, Context, Format};
use callmeter_model::{CallEvent, Interface};

const KINDS: [FindingKind; 3] = [FindingKind::Polling, FindingKind::ListAfterWrite, FindingKind::DuplicateRequests];

fn auditor(sim: &Simulation) -> Auditor {
    Auditor::new(AuditConfig { list_page_size: sim.truth.list_page_size, ..AuditConfig::default() }).unwrap()
}

fn audit(sim: &Simulation) -> AuditReport {
    let mut a = auditor(sim);
    for e in &sim.events {
        a.push(e);
    }
    a.finish()
}

/// What went wrong in one scenario, for the test's output.
fn explain(seed: u64, kind: FindingKind, sim: &Simulation, report: &AuditReport, s: &KindScore) {
    eprintln!("seed {seed} {kind}: {s:?}");
    for p in sim.truth.patterns.iter().filter(|p| p.kind == kind) {
        let found = report.findings.iter().find(|f| p.matches(f)).map(|f| f.avoidable_calls);
        eprintln!("  truth {} {}: avoidable {}, found {found:?} ({})", p.source, p.path, p.avoidable_calls, p.note);
    }
    let extra = report.findings.iter().filter(|f| f.kind() == kind && !sim.truth.patterns.iter().any(|p| p.matches(f)));
    for f in extra {
        eprintln!("  not in the truth: {} {}: avoidable {}, {:?}", f.source.key, f.path, f.avoidable_calls, f.details);
    }
}

#[test]
fn fifty_scenarios_meet_the_bar() {
    let shape = ScenarioShape::default();
    let mut totals = [KindScore::default(); 3];
    let (mut calls, mut loops, mut retries) = (0, 0, 0);
    for seed in 0..50 {
        let sim = scenario(seed, &shape);
        calls += sim.events.len();
        let report = audit(&sim);
        assert_eq!(report.calls, sim.events.len() as u64);
        let flagged = sim.truth.people_flagged_as_polling(&report.findings);
        assert!(flagged.is_empty(), "seed {seed}: people flagged as polling: {flagged:#?}");
        // Retries after 503 and 429: none of them waste, every one counted apart.
        let flagged = sim.truth.retrying_clients_flagged(&report.findings);
        assert!(flagged.is_empty(), "seed {seed}: retries after errors called waste: {flagged:#?}");
        assert!(sim.truth.retries_after_errors > 0, "seed {seed}: no retries to count");
        assert_eq!(report.retries_after_errors, sim.truth.retries_after_errors, "seed {seed}");
        retries += report.retries_after_errors;
        loops += sim.truth.patterns.iter().filter(|p| p.path.starts_with("/loops/")).count();
        for (i, kind) in KINDS.iter().enumerate() {
            let s = sim.truth.score(&report.findings, *kind);
            if s.false_positives + s.false_negatives > 0 || s.avoidable_relative_error() > 0.05 {
                explain(seed, *kind, &sim, &report, &s);
            }
            totals[i].add(&s);
        }
    }
    eprintln!("{calls} calls in 50 scenarios, {loops} fixed-delay loops, {retries} retries after errors");
    for (kind, s) in KINDS.iter().zip(&totals) {
        eprintln!(
            "{kind}: precision {:.3}, recall {:.3}, avoidable calls off by {:.4} of {} ({s:?})",
            s.precision(),
            s.recall(),
            s.avoidable_relative_error(),
            s.avoidable_true
        );
    }
    assert!(loops >= 50, "too few fixed-delay loops to measure: {loops}");
    for (kind, s) in KINDS.iter().zip(&totals) {
        assert!(s.true_positives >= 50, "{kind}: too few patterns to measure ({})", s.true_positives);
        assert!(s.precision() >= 0.95, "{kind} precision {}", s.precision());
        assert!(s.recall() >= 0.95, "{kind} recall {}", s.recall());
        assert!(s.avoidable_relative_error() <= 0.05, "{kind} avoidable error {}", s.avoidable_relative_error());
    }
}

/// The SFTP server's calls, and everyone else's.
fn split(events: &[CallEvent]) -> (Vec<CallEvent>, Vec<CallEvent>) {
    let (sftp, http) = events.iter().cloned().partition(|e| e.interface == Interface::Sftp);
    (http, sftp)
}

/// Audits inputs of calls, each named, merged by time in the order given.
fn audit_inputs(sim: &Simulation, inputs: &[(&str, &[CallEvent])]) -> AuditReport {
    let mut a = auditor(sim);
    let inputs =
        inputs.iter().map(|(name, calls)| ((*name).to_owned(), calls.iter().cloned().map(Ok::<_, ()>))).collect();
    let read_twice = audit_merged(&mut a, inputs, drop).unwrap();
    assert_eq!(read_twice, 0);
    a.finish()
}

/// A log as the calls its lines give, read through the formats crate.
fn read_log(format: Format, bytes: &[u8]) -> Vec<CallEvent> {
    let mut calls = LogCalls::new(format, Context::new(AccountRule::fixed("acme").unwrap()), bytes);
    let read: Vec<CallEvent> = calls.by_ref().map(Result::unwrap).collect();
    assert_eq!(calls.summary().bad_lines, 0, "{format}: {:?}", calls.summary().first_errors);
    read
}

/// An SFTP partner uploads into a folder that a REST client polls: the HTTP
/// server's log and the SFTP server's are audited together, in both orders.
#[test]
fn two_logs_of_fifty_scenarios_give_one_answer_in_either_order() {
    // Half days: reading the logs back is what takes the time, and every kind of traffic is there.
    let shape = ScenarioShape { hours: 12.0, ..ScenarioShape::default() };
    let (mut error, mut truth_total, mut pollers) = (0u64, 0u64, 0);
    for seed in 0..50 {
        let sim = scenario(seed, &shape);
        // Split with every field kept, the two inputs are the single stream, exactly.
        let (http, sftp) = split(&sim.events);
        let whole = serde_json::to_value(audit(&sim)).unwrap();
        for order in
            [[("calls.ndjson", &http), ("sftp.ndjson", &sftp)], [("sftp.ndjson", &sftp), ("calls.ndjson", &http)]]
        {
            let inputs: Vec<(&str, &[CallEvent])> = order.iter().map(|(n, c)| (*n, c.as_slice())).collect();
            assert_eq!(serde_json::to_value(audit_inputs(&sim, &inputs)).unwrap(), whole, "seed {seed}");
        }

        // As the servers' own logs: a Combined access log and an sftp-server log.
        let (mut access, mut sftp_log) = (Vec::new(), Vec::new());
        write_combined(&http, &mut access).unwrap();
        write_sftp(&sftp, &mut sftp_log).unwrap();
        let (access, sftp_log) = (read_log(Format::Combined, &access), read_log(Format::Sftp, &sftp_log));
        let access_first = audit_inputs(&sim, &[("access.log", &access), ("sftp.log", &sftp_log)]);
        let sftp_first = audit_inputs(&sim, &[("sftp.log", &sftp_log), ("access.log", &access)]);
        assert_eq!(
            serde_json::to_value(&access_first).unwrap(),
            serde_json::to_value(&sftp_first).unwrap(),
            "seed {seed}: the order of the files changed the report"
        );
        assert_eq!(
            access_first.retries_after_errors, sim.truth.retries_after_errors,
            "seed {seed}: the log keeps statuses"
        );
        // The REST pollers of the folders the SFTP partners upload into: the uploads end their waste.
        for p in
            sim.truth.patterns.iter().filter(|p| p.kind == FindingKind::Polling && p.path.starts_with("/partners/sftp"))
        {
            let found = access_first
                .findings
                .iter()
                .find(|f| f.kind() == FindingKind::Polling && f.path == p.path)
                .unwrap_or_else(|| panic!("seed {seed}: poller of {} not found", p.path));
            pollers += 1;
            truth_total += p.avoidable_calls;
            error += found.avoidable_calls.abs_diff(p.avoidable_calls);
        }
    }
    let relative = error as f64 / truth_total.max(1) as f64;
    eprintln!("{pollers} SFTP-fed pollers: avoidable calls off by {relative:.4} of {truth_total}");
    assert!(pollers >= 40, "too few SFTP-fed pollers to measure: {pollers}");
    assert!(relative <= 0.05, "avoidable calls of SFTP-fed pollers off by {relative}");
}
