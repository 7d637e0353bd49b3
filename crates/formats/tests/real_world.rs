//! Logs as real servers write them: the samples of `tests/corpus/` (test
//! fixtures of log viewers, intrusion detectors and log shippers, and a few
//! written by hand where no public sample has a variation; see the README
//! there), each read as `--format auto` would read it.
//!
//! For each file: the format detected, the calls found, the lines that are
//! not calls by kind and the lines refused, which must add up to the lines
//! read (DESIGN §5: nothing read is dropped silently); and for a few calls,
//! their operation, interface, client and path.

use callmeter_formats::{detect, parser, AccountRule, Context, Format, LineIs, LineKeys, NonCall};
use callmeter_model::{CallEvent, Interface, Operation};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// What reading one file gave.
#[derive(Debug, Default)]
struct Read {
    format: Option<Format>,
    lines: u64,
    calls: Vec<CallEvent>,
    batched: u64,
    non_calls: BTreeMap<NonCall, u64>,
    rejected: Vec<String>,
}

fn corpus(name: &str) -> Vec<u8> {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus").join(name);
    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Lines as the import splits them: at `\n`, a last line without one included.
fn lines(data: &[u8]) -> Vec<&[u8]> {
    let mut lines: Vec<&[u8]> = data.split(|c| *c == b'\n').collect();
    if lines.last().is_some_and(|l| l.is_empty()) {
        lines.pop();
    }
    lines
}

/// Reads a file in `format` (or the detected one), every call the account `acme`'s.
fn read_as(name: &str, format: Option<Format>) -> Read {
    let data = corpus(name);
    let lines = lines(&data);
    let detected = detect(&lines);
    let mut read = Read { format: detected, ..Read::default() };
    let Some(format) = format.or(detected) else { return read };
    let ctx =
        Context::new(AccountRule::fixed("acme").unwrap()).with_year_reference("2025-06-30T00:00:00Z".parse().unwrap());
    let mut p = parser(format, ctx);
    let mut keys = LineKeys::new(None);
    for line in &lines {
        read.lines += 1;
        match p.line(keys.next(line), line, &mut read.calls) {
            Ok(LineIs::Call) => {}
            Ok(LineIs::NonCall(kind)) => *read.non_calls.entry(kind).or_default() += 1,
            Err(e) => read.rejected.push(e.to_string()),
        }
    }
    p.finish(&mut read.calls);
    read.batched = p.batched();
    // Nothing read is dropped silently.
    let non_calls: u64 = read.non_calls.values().sum();
    assert_eq!(
        read.lines + read.batched,
        read.calls.len() as u64 + non_calls + read.rejected.len() as u64,
        "{name}: lines = calls - batched + non-calls + rejected: {read:#?}"
    );
    read
}

fn read(name: &str) -> Read {
    read_as(name, None)
}

/// The non-calls of a read, as `(kind, count)` pairs.
fn kinds(r: &Read) -> Vec<(NonCall, u64)> {
    r.non_calls.iter().map(|(k, n)| (*k, *n)).collect()
}

/// A call's operation, interface, client and path.
fn call(e: &CallEvent) -> (Operation, Interface, Option<&str>, Option<&str>) {
    (e.operation, e.interface, e.client_ip.as_deref(), e.path.as_deref())
}

/// The expected reading of one sample.
struct Expected {
    file: &'static str,
    format: Format,
    calls: usize,
    non_calls: &'static [(NonCall, u64)],
    rejected: usize,
}

use NonCall::{Blank, Directive, Housekeeping, NoRequest, OtherProgram, PartOfCall, Reply};

const SAMPLES: &[Expected] = &[
    // Filebeat's nginx and Apache modules.
    Expected {
        file: "beats-nginx-access-test.log",
        format: Format::Combined,
        calls: 6,
        non_calls: &[(NoRequest, 1)],
        rejected: 0,
    },
    Expected {
        file: "beats-nginx-access-test-with-host.log",
        format: Format::VhostCombined,
        calls: 8,
        non_calls: &[(NoRequest, 2)],
        rejected: 0,
    },
    Expected {
        file: "beats-apache-access-test.log",
        format: Format::Combined,
        calls: 5,
        non_calls: &[(NoRequest, 2)],
        rejected: 0,
    },
    Expected {
        file: "beats-apache-access-darwin-2.4.23.log",
        format: Format::Common,
        calls: 5,
        non_calls: &[(NoRequest, 1)],
        rejected: 0,
    },
    Expected {
        file: "beats-apache-access-test-vhost.log",
        format: Format::VhostCombined,
        calls: 1,
        non_calls: &[],
        rejected: 0,
    },
    // Filebeat's IIS module: its last two lines follow no #Fields of theirs.
    Expected {
        file: "beats-iis-access-test.log",
        format: Format::W3c,
        calls: 3,
        non_calls: &[(Directive, 12)],
        rejected: 2,
    },
    // fail2ban's filters' test logs (their annotations taken out).
    Expected {
        file: "fail2ban-nginx-bad-request.log",
        format: Format::Combined,
        calls: 3,
        non_calls: &[(Blank, 7), (NoRequest, 5)],
        rejected: 0,
    },
    Expected {
        file: "fail2ban-vsftpd.log",
        format: Format::Syslog,
        calls: 3,
        non_calls: &[(Blank, 7), (Housekeeping, 5)],
        rejected: 0,
    },
    // lnav's test logs.
    Expected { file: "lnav-logfile_access_log.0", format: Format::Combined, calls: 3, non_calls: &[], rejected: 0 },
    Expected {
        file: "lnav-logfile_access_log.1",
        format: Format::Combined,
        calls: 0,
        non_calls: &[(NoRequest, 1)],
        rejected: 0,
    },
    Expected { file: "lnav-logfile_w3c.0", format: Format::W3c, calls: 1, non_calls: &[(Directive, 4)], rejected: 0 },
    Expected { file: "lnav-logfile_w3c.1", format: Format::W3c, calls: 1, non_calls: &[(Directive, 6)], rejected: 0 },
    Expected {
        file: "lnav-logfile_w3c.2",
        format: Format::W3c,
        calls: 8,
        non_calls: &[(Directive, 8), (Housekeeping, 3), (PartOfCall, 3)],
        rejected: 0,
    },
    Expected {
        file: "lnav-logfile_w3c.3",
        format: Format::W3c,
        calls: 3,
        non_calls: &[(Blank, 3), (Directive, 4)],
        rejected: 0,
    },
    Expected {
        file: "lnav-logfile_w3c_big.0",
        format: Format::W3c,
        calls: 210,
        non_calls: &[(Directive, 44)],
        rejected: 0,
    },
    // plaso's test data.
    Expected { file: "plaso-iis6.log", format: Format::W3c, calls: 12, non_calls: &[(Directive, 4)], rejected: 0 },
    Expected {
        file: "plaso-iis10_edge_cases.log",
        format: Format::W3c,
        calls: 12,
        non_calls: &[(Directive, 4)],
        rejected: 0,
    },
    // Written by hand, where no public sample has the variation.
    Expected {
        file: "hand-proftpd-login-first.log",
        format: Format::Proftpd,
        calls: 4,
        non_calls: &[(Housekeeping, 8), (PartOfCall, 2)],
        rejected: 0,
    },
    Expected {
        file: "hand-debian-other-vhosts-access.log",
        format: Format::VhostCombined,
        calls: 4,
        non_calls: &[(NoRequest, 2)],
        rejected: 0,
    },
    Expected {
        file: "hand-sshd-session-sftp.log",
        format: Format::Syslog,
        calls: 6,
        non_calls: &[(Housekeeping, 5), (PartOfCall, 2), (OtherProgram, 1)],
        rejected: 0,
    },
    Expected {
        file: "hand-nginx-json-variants.log",
        format: Format::NginxJson,
        calls: 4,
        non_calls: &[(NoRequest, 2)],
        rejected: 0,
    },
    Expected { file: "hand-xferlog-extra-fields.log", format: Format::Xferlog, calls: 3, non_calls: &[], rejected: 0 },
    Expected {
        file: "hand-vsftpd-syslog-protocol.log",
        format: Format::Syslog,
        calls: 2,
        non_calls: &[(Housekeeping, 2), (PartOfCall, 1), (Reply, 6), (OtherProgram, 1)],
        rejected: 0,
    },
    Expected {
        file: "hand-syslog-sftp-and-vsftpd.log",
        format: Format::Syslog,
        calls: 13,
        non_calls: &[(Housekeeping, 5), (PartOfCall, 2), (OtherProgram, 2)],
        rejected: 0,
    },
];

#[test]
fn every_sample_is_detected_as_its_format_and_counted_whole() {
    for want in SAMPLES {
        let r = read(want.file);
        assert_eq!(r.format, Some(want.format), "{}", want.file);
        assert_eq!(
            (r.calls.len(), kinds(&r).as_slice(), r.rejected.len()),
            (want.calls, want.non_calls, want.rejected),
            "{}: {:?}",
            want.file,
            r.rejected
        );
    }
}

#[test]
fn every_sample_file_is_in_the_table_and_the_readme() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/corpus");
    let readme = std::fs::read_to_string(dir.join("README.md")).unwrap();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name == "README.md" || name.starts_with("LICENSE") {
            continue;
        }
        let tested = SAMPLES.iter().any(|s| s.file == name) || name == "plaso-firewall.log";
        assert!(tested, "{name} is not in SAMPLES");
        assert!(readme.contains(&format!("`{name}`")), "{name} is not in the README");
    }
}

#[test]
fn a_windows_firewall_log_is_refused_and_is_no_request_when_forced() {
    assert_eq!(read("plaso-firewall.log").format, None);
    let r = read_as("plaso-firewall.log", Some(Format::W3c));
    assert!(r.calls.is_empty());
    assert_eq!(kinds(&r), [(Directive, 4), (NoRequest, 15)]);
}

#[test]
fn the_clients_of_forwarded_lists_and_virtual_hosts() {
    let r = read("beats-nginx-access-test.log");
    let clients: Vec<_> = r.calls.iter().map(|e| e.client_ip.as_deref().unwrap()).collect();
    assert_eq!(
        clients,
        ["10.0.0.2", "172.17.0.1", "10.0.0.2", "85.181.35.98", "10.5.102.222", "2a03:0000:10ff:f00f:0000:0000:0:8000"]
    );
    assert!(r.calls.iter().all(|e| e.user.is_none()), "`- -` is no user");
    let r = read("beats-nginx-access-test-with-host.log");
    assert_eq!(call(&r.calls[3]), (Operation::Other, Interface::Web, Some("81.2.69.143"), Some("/ocelot")));
    assert_eq!(r.calls[7].client_ip.as_deref(), Some("localhost"));
    // A lone vhost_combined line in a Combined file reads as one.
    let r = read("beats-apache-access-test.log");
    assert_eq!(call(&r.calls[4]), (Operation::Other, Interface::Web, Some("123.123.123.123"), Some("/")));
    let r = read("hand-debian-other-vhosts-access.log");
    let got: Vec<_> = r.calls.iter().map(call).collect();
    assert_eq!(
        got,
        [
            (Operation::List, Interface::Sdk, Some("203.0.113.9"), Some("/in")),
            (Operation::Write, Interface::Sdk, Some("203.0.113.9"), Some("/in/a.csv")),
            (Operation::List, Interface::Webdav, Some("198.51.100.7"), Some("/reports/")),
            (Operation::Delete, Interface::Sdk, Some("10.0.0.2"), Some("/old.csv")),
        ]
    );
    assert_eq!(r.calls[2].user.as_deref(), Some("carol"));
}

#[test]
fn the_virtual_host_names_the_account() {
    let data = corpus("hand-debian-other-vhosts-access.log");
    let ctx = Context::new(AccountRule::Host);
    let mut p = parser(Format::VhostCombined, ctx);
    let (mut calls, mut keys) = (Vec::new(), LineKeys::new(None));
    for line in lines(&data) {
        p.line(keys.next(line), line, &mut calls).unwrap();
    }
    let accounts: Vec<_> = calls.iter().map(|e| e.account.as_str()).collect();
    assert_eq!(accounts, ["acme", "acme", "globex", "initech"]);
}

#[test]
fn ftp_sessions_bill_their_file_operations_only() {
    let r = read("hand-proftpd-login-first.log");
    let got: Vec<_> = r.calls.iter().map(call).collect();
    let ftp = |op, path| (op, Interface::Ftp, Some("192.0.2.10"), path);
    assert_eq!(
        got,
        [
            ftp(Operation::Login, None),
            ftp(Operation::List, Some("/in")),
            ftp(Operation::Write, Some("/in/report.csv")),
            ftp(Operation::Move, Some("/in/report.csv")),
        ]
    );
    let r = read("lnav-logfile_w3c.2");
    let ops: Vec<_> = r.calls.iter().map(|e| (e.operation, e.method.as_deref().unwrap())).collect();
    assert_eq!(ops[2..4], [(Operation::Read, "RETR"), (Operation::Write, "STOR")]);
    assert!(r.calls.iter().all(|e| e.interface == Interface::Ftp && e.client_ip.as_deref() == Some("1.1.1.1")));
    let r = read("fail2ban-vsftpd.log");
    let got: Vec<_> =
        r.calls.iter().map(|e| (e.operation, e.status, e.client_ip.as_deref(), e.user.as_deref())).collect();
    assert_eq!(
        got,
        [
            (Operation::Login, Some(530), Some("64.106.46.98"), Some("anonymous")),
            (Operation::Login, Some(530), Some("::ffff:192.0.2.1"), Some("guest")),
            (Operation::Login, Some(530), Some("192.0.2.222"), Some("username")),
        ]
    );
    let r = read("hand-vsftpd-syslog-protocol.log");
    assert_eq!(call(&r.calls[1]), (Operation::Read, Interface::Ftp, Some("192.168.1.10"), Some("/report.csv")));
    assert_eq!((r.calls[1].status, r.calls[1].bytes), (Some(226), Some(2048)));
}

#[test]
fn sftp_from_sshd_session() {
    let r = read("hand-sshd-session-sftp.log");
    let sftp = |op, path| (op, Interface::Sftp, Some("203.0.113.9"), path);
    assert_eq!(call(&r.calls[0]), sftp(Operation::Login, None));
    assert_eq!(call(&r.calls[3]), sftp(Operation::Write, Some("/in/a b.csv")));
    assert_eq!((r.calls[3].bytes, r.calls[5].destination.as_deref()), (Some(1024), Some("/done/a b.csv")));
}

#[test]
fn w3c_as_other_writers_write_it() {
    let r = read("plaso-iis10_edge_cases.log");
    assert_eq!(r.calls[0].user.as_deref(), Some("random\\ranuser1"), "a run of two spaces is one separator");
    assert_eq!(r.calls[6].method.as_deref(), Some("RPC_IN_DATA"));
    let r = read("lnav-logfile_w3c.1");
    assert_eq!(
        r.calls[0].time,
        "2001-10-31T08:00:18Z".parse::<chrono::DateTime<chrono::Utc>>().unwrap(),
        "#GMT-Offset: -0800"
    );
    let r = read("lnav-logfile_w3c.3");
    assert_eq!(call(&r.calls[0]), (Operation::Other, Interface::Web, Some("70.95.0.0"), Some("/Products/theProduct")));
}

#[test]
fn nginx_json_key_variants() {
    let r = read("hand-nginx-json-variants.log");
    let got: Vec<_> = r.calls.iter().map(call).collect();
    assert_eq!(
        got,
        [
            (Operation::List, Interface::Sdk, Some("203.0.113.9"), Some("/in")),
            (Operation::Write, Interface::Sdk, Some("203.0.113.10"), Some("/in/b.csv")),
            (Operation::List, Interface::Webdav, Some("198.51.100.7"), Some("/reports/")),
            (Operation::Delete, Interface::Rest, Some("192.0.2.44"), Some("/old.csv")),
        ]
    );
    assert_eq!(r.calls[1].status, Some(200));
}
