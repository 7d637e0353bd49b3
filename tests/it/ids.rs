//! Content-addressed ids of imported lines (DESIGN §5), end to end: a log
//! imported after every append, then rotated and gzipped, counts each line
//! once; identical lines are calls of their own; `tail` sends the lines of a
//! log that stays small at once.

use crate::harness::{start, ADMIN};
use callmeter_formats::{AccountRule, Classifier, Format};
use callmeter_import::{import_input, Input, ReadOptions, StoreSink, Summary};
use callmeter_server::ServerOptions;
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Instant;

/// Appends to the log, each followed by an import.
const APPENDS: usize = 10_000;

fn ctime(t: DateTime<Utc>) -> String {
    t.format("%a %b %e %H:%M:%S %Y").to_string()
}

/// Line `i` of a vsftpd log with protocol lines: sessions of 16 lines, each a
/// login, two identical LISTs in the same second, an upload and a move; and
/// whether a call starts on it.
fn vsftpd_line(i: usize, start: DateTime<Utc>) -> (String, bool) {
    let (k, step) = (i / 16, i % 16);
    let t = ctime(start + chrono::Duration::seconds(k as i64));
    let (pid, c, u) = (100 + k % 50, format!("Client \"10.0.{}.{}\"", k % 7, k % 200), format!("u{}", k % 5));
    let (what, call) = match step {
        0 => (format!("[pid {pid}] CONNECT: {c}"), false),
        1 => (format!("[pid {pid}] FTP command: {c}, \"USER {u}\""), false),
        2 => (format!("[pid {pid}] [{u}] FTP command: {c}, \"PASS <password>\""), true),
        3 => (format!("[pid {pid}] [{u}] FTP response: {c}, \"230 Login successful.\""), false),
        4 | 6 => (format!("[pid {pid}] [{u}] FTP command: {c}, \"LIST\""), true),
        5 | 7 => (format!("[pid {pid}] [{u}] FTP response: {c}, \"226 Directory send OK.\""), false),
        8 => (format!("[pid {pid}] [{u}] FTP command: {c}, \"STOR f{k}.csv\""), true),
        9 => (format!("[pid {pid}] [{u}] OK UPLOAD: {c}, \"/f{k}.csv\", 10 bytes, 1.00Kbyte/sec"), false),
        10 => (format!("[pid {pid}] [{u}] FTP response: {c}, \"226 Transfer complete.\""), false),
        11 => (format!("[pid {pid}] [{u}] FTP command: {c}, \"RNFR f{k}.csv\""), true),
        12 => (format!("[pid {pid}] [{u}] FTP response: {c}, \"350 Ready for RNTO.\""), false),
        13 => (format!("[pid {pid}] [{u}] FTP command: {c}, \"RNTO /done/f{k}.csv\""), false),
        14 => (format!("[pid {pid}] [{u}] FTP response: {c}, \"250 Rename successful.\""), false),
        _ => (format!("[pid {pid}] [{u}] FTP command: {c}, \"QUIT\""), false),
    };
    (format!("{t} {what}\n"), call)
}

/// Line `i` of a Combined log: a REST listing, every tenth one written twice
/// (a client that asked twice in the same second); each is a call.
fn combined_line(i: usize, start: DateTime<Utc>) -> (String, bool) {
    let j = i - i / 11; // lines 10 and 11 of each 11 are the same request
    let t = (start + chrono::Duration::seconds(j as i64 / 3)).format("%d/%b/%Y:%H:%M:%S +0000");
    let line = format!(
        "198.51.100.{} - - [{t}] \"GET /api/rest/v1/folders/jobs/{} HTTP/1.1\" 200 64 \"-\" \"python-requests/2.31\"\n",
        j % 250,
        j % 40
    );
    (line, true)
}

fn callmeter(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(args)
        .env_remove("CALLMETER_CONFIG")
        .env("CALLMETER_LOG", "warn")
        .output()
        .expect("run callmeter")
}

/// `callmeter import --data DATA --json FILE`, its summary.
fn import_with_binary(data: &Path, format: Format, file: &Path) -> Value {
    let out = callmeter(&[
        "import",
        "--data",
        data.to_str().unwrap(),
        "--json",
        "--account",
        "acme",
        "--format",
        format.as_str(),
        file.to_str().unwrap(),
    ]);
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

/// `callmeter import --server … --json FILE` with more flags, its summary.
fn import_to_server(base: &str, file: &Path, extra: &[&str]) -> Value {
    let mut args = vec!["import", "--server", base, "--token", ADMIN, "--json", "--account", "acme"];
    args.extend_from_slice(extra);
    args.push(file.to_str().unwrap());
    let out = callmeter(&args);
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn append(path: &Path, bytes: &[u8]) {
    std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(bytes).unwrap();
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Writes a log in `APPENDS` appends, the first its first line and the rest
/// pieces of a few bytes that end anywhere, as a server's buffered writes
/// may, and imports it after each append: in this process through
/// `import_input` into the data folder, and through the real binary now and
/// then. Each import must add exactly the calls whose first line has just
/// ended. Then the log is rotated, gzipped and imported again by the binary:
/// nothing new. The server then counts each call once.
fn imported_after_every_append(format: Format, line: fn(usize, DateTime<Utc>) -> (String, bool), lines: usize) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("app.log");
    let first = Utc::now() - chrono::Duration::hours(3);
    let (text, starts_call): (Vec<String>, Vec<bool>) = (0..lines).map(|i| line(i, first)).unzip();
    let text = text.concat().into_bytes();
    let calls = starts_call.iter().filter(|c| **c).count() as u64;
    // The first append is the first line; the others split the rest evenly, at every kind of place.
    let first_line = text.iter().position(|b| *b == b'\n').unwrap() + 1;
    let rest = text.len() - first_line;
    assert!(rest >= APPENDS, "a log of {lines} lines is too short to split in {APPENDS}");
    let cut = |k: usize| first_line + rest * k / (APPENDS - 1);
    let options = ReadOptions {
        format: Some(format),
        accounts: AccountRule::fixed("acme").unwrap(),
        timezone: chrono_tz::UTC,
        source_id: None,
        classifier: Arc::new(Classifier::default()),
        strict: true,
        batch: 1000,
    };
    let store = || ServerOptions { data: Some(data.clone()), ..Default::default() }.resolve().unwrap().store;
    let mut sink = Some(StoreSink::open(&data, store()).unwrap());
    let bar = indicatif::ProgressBar::hidden();
    let (mut ended, mut imported) = (0usize, 0u64);
    let began = Instant::now();
    for k in 0..APPENDS {
        let piece = if k == 0 { &text[..first_line] } else { &text[cut(k - 1)..cut(k)] };
        append(&log, piece);
        let ended_before = ended;
        ended += piece.iter().filter(|b| **b == b'\n').count();
        let want = starts_call[ended_before..ended].iter().filter(|c| **c).count() as u64;
        let by_binary = matches!(k, 0 | 1 | 40 | 999) || k == APPENDS / 2;
        let (lines_read, new) = if by_binary {
            sink.take().unwrap().close();
            let summary = import_with_binary(&data, format, &log);
            assert_eq!(n(&summary, "rejected"), 0, "{summary}");
            sink = Some(StoreSink::open(&data, store()).unwrap());
            (n(&summary, "lines"), n(&summary, "imported"))
        } else {
            let mut summary = Summary::default();
            let input = Input::open(&log).unwrap();
            import_input(input, &options, Some(sink.as_mut().unwrap()), &mut summary, &bar).unwrap();
            assert_eq!(summary.unended, u64::from(!piece.ends_with(b"\n")));
            (summary.lines, summary.imported)
        };
        assert_eq!(lines_read, ended as u64, "append {k}: only ended lines are read");
        assert_eq!(new, want, "import after append {k} ({format}), line {}", ended);
        imported += new;
    }
    sink.take().unwrap().close();
    eprintln!("{format}: {APPENDS} appends and imports of {lines} lines in {:.1} s", began.elapsed().as_secs_f64());
    assert_eq!((ended, imported), (lines, calls));

    // Rotated, then gzipped: the same ids, so nothing new.
    let rotated = dir.path().join("app.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    let gz = dir.path().join("app.log.1.gz");
    std::fs::write(&gz, gzip(&std::fs::read(&rotated).unwrap())).unwrap();
    std::fs::remove_file(&rotated).unwrap();
    let last = import_with_binary(&data, format, &gz);
    assert_eq!((n(&last, "lines"), n(&last, "imported")), (lines as u64, 0), "{last}");
    assert_eq!(n(&last, "duplicates"), calls, "{last}");

    let server = start(&data, &[]);
    assert_eq!(n(&server.usage("acme", "current"), "calls"), calls);
}

#[test]
fn a_vsftpd_log_imported_after_each_of_10_000_appends_then_rotated_and_gzipped_counts_each_call_once() {
    imported_after_every_append(Format::Vsftpd, vsftpd_line, 160);
}

#[test]
fn a_combined_log_imported_after_each_of_10_000_appends_then_rotated_and_gzipped_counts_each_call_once() {
    imported_after_every_append(Format::Combined, combined_line, 130);
}

#[test]
fn two_identical_lines_are_two_calls_and_importing_them_again_counts_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &[]);
    let t = (Utc::now() - chrono::Duration::minutes(30)).format("%d/%b/%Y:%H:%M:%S +0000");
    let poll = format!("203.0.113.9 - - [{t}] \"GET /api/rest/v1/folders/in HTTP/1.1\" 200 64 \"-\" \"curl/8.5.0\"\n");
    let other = poll.replace("/in ", "/out ");
    let log = dir.path().join("access.log");
    std::fs::write(&log, format!("{poll}{poll}{other}")).unwrap();

    let first = import_to_server(&server.base, &log, &[]);
    assert_eq!((n(&first, "calls"), n(&first, "imported")), (3, 3), "{first}");
    let again = import_to_server(&server.base, &log, &[]);
    assert_eq!((n(&again, "imported"), n(&again, "duplicates")), (0, 3), "{again}");
    assert_eq!(n(&server.usage("acme", "current"), "calls"), 3);
    let (status, v) = server.get(ADMIN, "/v1/accounts/acme/calls?per_page=100");
    assert_eq!(status, 200, "{v}");
    let ids: Vec<&str> = v["calls"].as_array().unwrap().iter().map(|c| c["id"].as_str().unwrap()).collect();
    assert!(ids.iter().all(|id| id.len() == 36 && id.starts_with("log-")), "{ids:?}");

    // Another server's byte-identical log is told apart by --source-id; the same name makes the same ids.
    let named = import_to_server(&server.base, &log, &["--source-id", "web-2"]);
    assert_eq!(n(&named, "imported"), 3, "{named}");
    let named_again = import_to_server(&server.base, &log, &["--source-id", "web-2"]);
    assert_eq!((n(&named_again, "imported"), n(&named_again, "duplicates")), (0, 3), "{named_again}");
    assert_eq!(n(&server.usage("acme", "current"), "calls"), 6);
}
