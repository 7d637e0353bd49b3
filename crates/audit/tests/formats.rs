//! One workload written as each log format callmeter reads, read back
//! through the formats crate and audited: the same pollers come out.

use callmeter_audit::simulate::{
    scenario, write_combined, write_ndjson, write_sftp, write_vsftpd, ScenarioShape, Simulation,
};
use callmeter_audit::{audit_log, AuditConfig, AuditReport, Auditor, FindingKind};
use callmeter_formats::{AccountRule, Context, Format, LineKeys};
use std::collections::BTreeSet;

fn audit_as(sim: &Simulation, format: Format) -> AuditReport {
    let mut log = Vec::new();
    match format {
        Format::Ndjson => write_ndjson(&sim.events, &mut log),
        Format::Combined => write_combined(&sim.events, &mut log),
        Format::Sftp => write_sftp(&sim.events, &mut log),
        Format::Vsftpd => write_vsftpd(&sim.events, &mut log),
        f => panic!("no writer for {f}"),
    }
    .unwrap();
    let ctx = Context::new(AccountRule::fixed("acme").unwrap());
    let config = AuditConfig { list_page_size: sim.truth.list_page_size, ..AuditConfig::default() };
    let mut auditor = Auditor::new(config).unwrap();
    let summary = audit_log(&mut auditor, format, ctx, log.as_slice()).unwrap();
    assert_eq!(summary.bad_lines, 0, "{format}: {:?}", summary.first_errors);
    auditor.finish()
}

fn poller_paths(r: &AuditReport) -> BTreeSet<String> {
    r.findings.iter().filter(|f| f.kind() == FindingKind::Polling).map(|f| f.path.clone()).collect()
}

#[test]
fn every_format_finds_the_same_pollers() {
    // sftp-server logs no status, and the vsftpd writer answers every command: retries at a fixed
    // delay through an outage read as polls there, so this workload has none.
    let shape = ScenarioShape { outage_retriers: (0, 0), ..ScenarioShape::default() };
    for seed in [3, 11, 27] {
        let sim = scenario(seed, &shape);
        let truth: BTreeSet<String> =
            sim.truth.patterns.iter().filter(|p| p.kind == FindingKind::Polling).map(|p| p.path.clone()).collect();
        let ndjson = audit_as(&sim, Format::Ndjson);
        assert_eq!(ndjson.calls, sim.events.len() as u64, "ndjson keeps every call");
        assert_eq!(poller_paths(&ndjson), truth, "seed {seed}: ndjson");
        for format in [Format::Combined, Format::Sftp, Format::Vsftpd] {
            let r = audit_as(&sim, format);
            assert_eq!(poller_paths(&r), truth, "seed {seed}: {format}");
        }
    }
}

#[test]
fn ndjson_reads_back_every_field() {
    let sim = scenario(5, &ScenarioShape::default());
    let mut log = Vec::new();
    write_ndjson(&sim.events[..200], &mut log).unwrap();
    let mut p = callmeter_formats::parser(Format::Ndjson, Context::new(AccountRule::Unset));
    let mut keys = LineKeys::new(None);
    let mut back = Vec::new();
    for line in log.split(|b| *b == b'\n').filter(|l| !l.is_empty()) {
        p.line(keys.next(line), line, &mut back).unwrap();
    }
    assert_eq!(back, sim.events[..200].to_vec());
}
