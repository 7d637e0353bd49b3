//! Log import and tail, end to end: real files (plain, gzip, zstd), a real
//! server, real `callmeter import` and `callmeter tail` processes.

use crate::harness::{self, free_address, start, start_on, wait_for, ADMIN};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn when(seconds_ago: i64) -> DateTime<Utc> {
    Utc::now() - chrono::Duration::seconds(seconds_ago)
}

/// A Combined log line for a REST folder listing.
fn combined(i: usize, t: DateTime<Utc>) -> String {
    format!(
        "203.0.113.{} - alice [{}] \"GET /api/rest/v1/folders/inbox/{i} HTTP/1.1\" 200 512 \"-\" \"python-requests/2.31 (sync job {i})\"\n",
        i % 250,
        t.format("%d/%b/%Y:%H:%M:%S +0000")
    )
}

fn combined_lines(range: std::ops::Range<usize>, base_ago: i64) -> String {
    range.map(|i| combined(i, when(base_ago - i as i64))).collect()
}

fn ctime(t: DateTime<Utc>) -> String {
    t.format("%a %b %e %H:%M:%S %Y").to_string()
}

/// xferlog lines: uploads by bob.
fn xferlog_lines(n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("{} 1 192.0.2.7 2048 /home/bob/part{i}.csv b _ i r bob ftp 0 * c\n", ctime(when(5000 - i as i64)))
        })
        .collect()
}

/// One vsftpd session with protocol lines: login, list, write (STOR + OK UPLOAD), move.
fn vsftpd_session() -> String {
    let t = ctime(when(4000));
    let c = r#"Client "192.168.1.10""#;
    [
        format!(r#"{t} [pid 2] CONNECT: {c}"#),
        format!(r#"{t} [pid 2] FTP command: {c}, "USER carol""#),
        format!(r#"{t} [pid 2] [carol] FTP command: {c}, "PASS <password>""#),
        format!(r#"{t} [pid 1] [carol] OK LOGIN: {c}"#),
        format!(r#"{t} [pid 3] [carol] FTP response: {c}, "230 Login successful.""#),
        format!(r#"{t} [pid 3] [carol] FTP command: {c}, "PASV""#),
        format!(r#"{t} [pid 3] [carol] FTP command: {c}, "CWD in""#),
        format!(r#"{t} [pid 3] [carol] FTP response: {c}, "250 Directory successfully changed.""#),
        format!(r#"{t} [pid 3] [carol] FTP command: {c}, "LIST -la""#),
        format!(r#"{t} [pid 3] [carol] FTP response: {c}, "226 Directory send OK.""#),
        format!(r#"{t} [pid 3] [carol] FTP command: {c}, "STOR a.csv""#),
        format!(r#"{t} [pid 3] [carol] OK UPLOAD: {c}, "/in/a.csv", 10 bytes, 1.00Kbyte/sec"#),
        format!(r#"{t} [pid 3] [carol] FTP response: {c}, "226 Transfer complete.""#),
        format!(r#"{t} [pid 3] [carol] FTP command: {c}, "RNFR a.csv""#),
        format!(r#"{t} [pid 3] [carol] FTP command: {c}, "RNTO /done/a.csv""#),
        format!(r#"{t} [pid 3] [carol] OK RENAME: {c}, "/in/a.csv /done/a.csv""#),
        format!(r#"{t} [pid 3] [carol] FTP response: {c}, "250 Rename successful.""#),
        format!(r#"{t} [pid 3] [carol] FTP command: {c}, "QUIT""#),
    ]
    .map(|l| l + "\n")
    .concat()
}

fn gzip(text: &str) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(text.as_bytes()).unwrap();
    gz.finish().unwrap()
}

fn callmeter(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(args)
        .env_remove("CALLMETER_CONFIG")
        .env("CALLMETER_LOG", "warn")
        .output()
        .expect("run callmeter")
}

fn import_json(server: &harness::Server, files: &[&Path], extra: &[&str]) -> Value {
    let mut args = vec!["import", "--server", &server.base, "--token", ADMIN, "--json"];
    args.extend_from_slice(extra);
    let names: Vec<&str> = files.iter().map(|p| p.to_str().unwrap()).collect();
    args.extend(names);
    let out = callmeter(&args);
    assert!(out.status.success(), "import failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).expect("summary JSON")
}

fn n(v: &Value, key: &str) -> u64 {
    v[key].as_u64().unwrap_or_else(|| panic!("{key} in {v}"))
}

fn calls_of(server: &harness::Server, account: &str) -> Vec<Value> {
    let (status, v) = server.get(ADMIN, &format!("/v1/accounts/{account}/calls?per_page=10000"));
    assert_eq!(status, 200, "{v}");
    v["calls"].as_array().unwrap().clone()
}

#[test]
fn import_of_mixed_files_counts_each_call_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &[]);
    let access = dir.path().join("access.log");
    let mut text = combined_lines(0..40, 7200);
    text.insert_str(combined(0, when(7200)).len() * 10, "this is not a log line\n");
    std::fs::write(&access, &text).unwrap();
    let older = dir.path().join("access.log.2.gz");
    std::fs::write(&older, gzip(&combined_lines(100..130, 6000))).unwrap();
    let xfer = dir.path().join("xferlog.zst");
    std::fs::write(&xfer, zstd::encode_all(xferlog_lines(10).as_bytes(), 3).unwrap()).unwrap();
    let ftp = dir.path().join("vsftpd.log");
    std::fs::write(&ftp, vsftpd_session()).unwrap();
    let files = [access.as_path(), older.as_path(), xfer.as_path(), ftp.as_path()];

    let first = import_json(&server, &files, &["--account", "acme"]);
    assert_eq!((n(&first, "files"), n(&first, "imported"), n(&first, "duplicates")), (4, 84, 0), "{first}");
    assert_eq!(n(&first, "rejected"), 1, "{first}");
    let bad = &first["reasons"]["bad_line"];
    assert_eq!(bad["first"][0], format!("{}:11", access.display()), "{first}");

    let usage = server.usage("acme", "current");
    assert_eq!(n(&usage, "calls"), 84, "{usage}");
    assert_eq!(usage["by_interface"]["sdk"]["calls"], 70, "{usage}");
    assert_eq!(usage["by_interface"]["ftp"]["calls"], 14, "{usage}");
    let calls = calls_of(&server, "acme");
    assert_eq!(calls.len(), 84);
    let ftp_ops: Vec<&str> =
        calls.iter().filter(|c| c["user"] == "carol").map(|c| c["operation"].as_str().unwrap()).collect();
    assert_eq!(ftp_ops.len(), 4);
    for op in ["login", "list", "write", "move"] {
        assert!(ftp_ops.contains(&op), "{ftp_ops:?}");
    }
    assert!(calls.iter().filter(|c| c["interface"] == "sdk").all(|c| c["operation"] == "list"));

    let second = import_json(&server, &files, &["--account", "acme"]);
    assert_eq!((n(&second, "imported"), n(&second, "duplicates")), (0, 84), "{second}");
    assert_eq!(n(&server.usage("acme", "current"), "calls"), 84);

    // --strict stops at the bad line, naming it; what came before it is
    // already counted, and the summary it prints adds up, the bad line rejected.
    let out = callmeter(&[
        "import",
        "--server",
        &server.base,
        "--token",
        ADMIN,
        "--account",
        "acme",
        "--strict",
        "--json",
        access.to_str().unwrap(),
    ]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("line 11") && err.contains("--strict"), "{err}");
    let stopped: Value = serde_json::from_slice(&out.stdout).expect("the summary before the stop");
    let non_calls: u64 = stopped["non_calls"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
    assert_eq!((n(&stopped, "lines"), n(&stopped, "rejected_lines")), (11, 1), "{stopped}");
    assert_eq!(
        n(&stopped, "lines"),
        n(&stopped, "calls") - n(&stopped, "batched") + non_calls + n(&stopped, "rejected_lines"),
        "{stopped}"
    );
}

#[test]
fn import_straight_into_a_data_folder_and_dry_run() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("access.log");
    std::fs::write(&log, combined_lines(0..25, 3000)).unwrap();
    let path = log.to_str().unwrap();

    let dry = callmeter(&["import", "--dry-run", "--json", "--account", "acme", path]);
    assert!(dry.status.success(), "{}", String::from_utf8_lossy(&dry.stderr));
    let dry: Value = serde_json::from_slice(&dry.stdout).unwrap();
    assert_eq!((n(&dry, "lines"), n(&dry, "calls")), (25, 25), "{dry}");
    assert!(!data.exists(), "a dry run writes nothing");

    let direct = callmeter(&["import", "--data", data.to_str().unwrap(), "--json", "--account", "acme", path]);
    assert!(direct.status.success(), "{}", String::from_utf8_lossy(&direct.stderr));
    let direct: Value = serde_json::from_slice(&direct.stdout).unwrap();
    assert_eq!(n(&direct, "imported"), 25, "{direct}");

    // A server on the same folder sees them; while it runs, the folder is not writable by import.
    let server = start(&data, &[]);
    assert_eq!(n(&server.usage("acme", "current"), "calls"), 25);
    let busy = callmeter(&["import", "--data", data.to_str().unwrap(), "--account", "acme", path]);
    assert!(!busy.status.success());
    assert!(String::from_utf8_lossy(&busy.stderr).contains("is a server running on it?"));
}

struct Tail {
    child: Child,
}

impl Tail {
    fn start(base: &str, files: &[&Path], checkpoint: &Path) -> Tail {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_callmeter"));
        cmd.args(["tail", "--server", base, "--token", ADMIN, "--account", "acme", "--poll-ms", "100"])
            .arg("--checkpoint")
            .arg(checkpoint)
            .args(files)
            .env_remove("CALLMETER_CONFIG")
            .env("CALLMETER_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        Tail { child: cmd.spawn().expect("start tail") }
    }

    fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Tail {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn append(path: &PathBuf, text: &str) {
    std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

fn wait_calls(server: &harness::Server, expected: u64) {
    let ok = wait_for(Duration::from_secs(60), || {
        let (status, v) = server.get(ADMIN, "/v1/accounts/acme/usage?period=current");
        status == 200 && v["calls"].as_u64() == Some(expected)
    });
    let (_, v) = server.get(ADMIN, "/v1/accounts/acme/usage?period=current");
    assert!(ok, "expected {expected} calls, usage says {}", v["calls"]);
}

#[test]
fn tail_through_rotation_crashes_and_a_server_restart_then_import_of_the_gzipped_copy() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let address = free_address();
    let base = format!("http://{address}");
    let log = dir.path().join("app.log");
    let checkpoint = dir.path().join("tail.json");
    let server = start_on(&data, &address, &[]);
    let tail = Tail::start(&base, &[&log], &checkpoint);

    // The file appears after tail started, and grows past 4 KiB (nothing waits for that).
    append(&log, &combined_lines(0..100, 9000));
    wait_calls(&server, 100);

    // The server dies; lines keep coming; tail retries.
    server.kill();
    append(&log, &combined_lines(100..150, 9000));
    std::thread::sleep(Duration::from_millis(700));

    // Tail dies too, and the log is rotated while both are down.
    tail.kill();
    let rotated = dir.path().join("app.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    append(&log, &combined_lines(150..210, 9000));

    let server = start_on(&data, &address, &[]);
    let tail = Tail::start(&base, &[&log], &checkpoint);
    wait_calls(&server, 210);

    // A rotation while tail runs, then a last write to the old file before the server reopens its log.
    let rotated2 = dir.path().join("app.log.2");
    std::fs::rename(&log, &rotated2).unwrap();
    append(&rotated2, &combined_lines(210..215, 9000));
    append(&log, &combined_lines(215..260, 9000));
    wait_calls(&server, 260);
    std::thread::sleep(Duration::from_secs(1));
    wait_calls(&server, 260);
    drop(tail);

    let calls = calls_of(&server, "acme");
    assert_eq!(calls.len(), 260);
    let mut paths: Vec<&str> = calls.iter().map(|c| c["path"].as_str().unwrap()).collect();
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 260, "every line once");

    // The rotated file, gzipped, adds nothing; nor does the second one as it is.
    let gz = dir.path().join("app.log.1.gz");
    std::fs::write(&gz, gzip(&std::fs::read_to_string(&rotated).unwrap())).unwrap();
    std::fs::remove_file(&rotated).unwrap();
    let again = import_json(&server, &[&gz, &rotated2], &["--account", "acme"]);
    assert_eq!((n(&again, "imported"), n(&again, "duplicates")), (0, 215), "{again}");
    assert_eq!(n(&server.usage("acme", "current"), "calls"), 260);
}

#[test]
fn tail_sends_each_line_of_a_log_under_4_kib_within_a_second() {
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("data"), &[]);
    let log = dir.path().join("small.log");
    let _tail = Tail::start(&server.base, &[&log], &dir.path().join("tail.json"));
    let calls = |server: &harness::Server| {
        let (status, v) = server.get(ADMIN, "/v1/accounts/acme/usage?period=current");
        if status == 200 {
            v["calls"].as_u64().unwrap_or(0)
        } else {
            0
        }
    };
    // The first line also waits for tail to start; each one after it is timed.
    append(&log, &combined(0, when(300)));
    wait_calls(&server, 1);
    for i in 1..6 {
        append(&log, &combined(i, when(300 - i as i64)));
        let written = Instant::now();
        while calls(&server) < i as u64 + 1 && written.elapsed() < Duration::from_secs(5) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let took = written.elapsed();
        assert_eq!(calls(&server), i as u64 + 1, "line {i} never came");
        assert!(took < Duration::from_secs(1), "line {i} took {took:?}");
    }
    assert!(std::fs::metadata(&log).unwrap().len() < 4096, "the log stayed under 4 KiB");
}
