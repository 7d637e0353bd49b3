//! The audit measured on generated workloads: precision and recall of every
//! finding kind, avoidable calls against the truth, people never called pollers.

use callmeter_audit::simulate::{scenario, KindScore, ScenarioShape, Simulation};
use callmeter_audit::{AuditConfig, AuditReport, Auditor, FindingKind};

const KINDS: [FindingKind; 3] = [FindingKind::Polling, FindingKind::ListAfterWrite, FindingKind::DuplicateRequests];

fn audit(sim: &Simulation) -> AuditReport {
    let config = AuditConfig { list_page_size: sim.truth.list_page_size, ..AuditConfig::default() };
    let mut a = Auditor::new(config).unwrap();
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
    let mut calls = 0;
    for seed in 0..50 {
        let sim = scenario(seed, &shape);
        calls += sim.events.len();
        let report = audit(&sim);
        assert_eq!(report.calls, sim.events.len() as u64);
        let flagged = sim.truth.people_flagged_as_polling(&report.findings);
        assert!(flagged.is_empty(), "seed {seed}: people flagged as polling: {flagged:#?}");
        for (i, kind) in KINDS.iter().enumerate() {
            let s = sim.truth.score(&report.findings, *kind);
            if s.false_positives + s.false_negatives > 0 || s.avoidable_relative_error() > 0.05 {
                explain(seed, *kind, &sim, &report, &s);
            }
            totals[i].add(&s);
        }
    }
    eprintln!("{calls} calls in 50 scenarios");
    for (kind, s) in KINDS.iter().zip(&totals) {
        eprintln!(
            "{kind}: precision {:.3}, recall {:.3}, avoidable calls off by {:.4} of {} ({s:?})",
            s.precision(),
            s.recall(),
            s.avoidable_relative_error(),
            s.avoidable_true
        );
    }
    for (kind, s) in KINDS.iter().zip(&totals) {
        assert!(s.true_positives >= 50, "{kind}: too few patterns to measure ({})", s.true_positives);
        assert!(s.precision() >= 0.95, "{kind} precision {}", s.precision());
        assert!(s.recall() >= 0.95, "{kind} recall {}", s.recall());
        assert!(s.avoidable_relative_error() <= 0.05, "{kind} avoidable error {}", s.avoidable_relative_error());
    }
}
