//! Audit benchmark: `callmeter audit` over an account's stored calls, and
//! straight from a large Combined log side by side with goaccess.
//!
//! `cargo bench --bench audit` (full size: 10 million stored calls, the 1 GB
//! log of `benches/formats.rs`). Scale down with `CALLMETER_BENCH_AUDIT_CALLS`
//! (default 10000000) and `CALLMETER_BENCH_LOG_MB` (default 1024);
//! `CALLMETER_BENCH_SKIP_LOG=1` skips part b.
//!
//! a. Builds a data folder of that many calls of one account, once, cached in
//!    `target/bench-audit/data-N`: `callmeter simulate` day after day (pollers,
//!    upload batches, duplicates, people, mount and iPaaS traffic), each day
//!    imported with `callmeter import --data`. Then times `callmeter audit
//!    --data … --account bench --format json` under `/usr/bin/time -v`:
//!    seconds and peak RSS (targets: under 5 s and 1 GiB at 10 M calls).
//! b. On the Combined log (`target/bench-formats/combined-{MB}mb.log`, written
//!    when missing): `callmeter audit LOG --format json` against `goaccess LOG
//!    --log-format=COMBINED -o report.json`, seconds and peak RSS of both.

#[path = "shared/combined_log.rs"]
mod combined_log;

use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

/// Seconds and peak RSS of one run.
struct Run {
    secs: f64,
    peak_rss_mib: f64,
}

/// Runs `cmd` under `/usr/bin/time -v` and reads its wall time and peak RSS.
fn measure(name: &str, program: &str, args: &[&str]) -> Run {
    let out = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(program)
        .args(args)
        .env("CALLMETER_LOG", "warn")
        .env_remove("CALLMETER_CONFIG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output()
        .unwrap_or_else(|e| panic!("{name}: /usr/bin/time: {e} (apt-get install time)"));
    let report = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{name} failed: {report}");
    let field = |label: &str| {
        report
            .lines()
            .find_map(|l| l.trim().strip_prefix(label))
            .unwrap_or_else(|| panic!("{name}: no {label:?} in {report}"))
            .trim()
            .to_owned()
    };
    // "Elapsed (wall clock) time (h:mm:ss or m:ss): 0:01.23"
    let wall = field("Elapsed (wall clock) time (h:mm:ss or m:ss):");
    let secs = wall.split(':').fold(0.0, |acc, part| acc * 60.0 + part.parse::<f64>().unwrap_or(0.0));
    let kib: f64 = field("Maximum resident set size (kbytes):").parse().unwrap_or(0.0);
    Run { secs, peak_rss_mib: kib / 1024.0 }
}

fn run(name: &str, cmd: &mut Command) -> String {
    let out = cmd.env("CALLMETER_LOG", "warn").env_remove("CALLMETER_CONFIG").output().expect(name);
    assert!(out.status.success(), "{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The data folder with `calls` calls of account `bench`, built once.
fn stored_calls(callmeter: &str, dir: &Path, calls: u64) -> PathBuf {
    let data = dir.join(format!("data-{calls}"));
    let done = data.join("bench-complete");
    if done.exists() {
        return data;
    }
    let _ = std::fs::remove_dir_all(&data);
    let chunk = dir.join("chunk");
    // Days back to back, the last ending today: inside the store's 400-day retention.
    let days = 380i64;
    let first = chrono::Utc::now().date_naive() - chrono::Duration::days(days);
    let t = std::time::Instant::now();
    let (mut stored, mut day) = (0u64, 0i64);
    while stored < calls {
        assert!(day < days, "{days} simulated days gave only {stored} calls: make the days busier");
        let start = format!("{}T00:00:00Z", first + chrono::Duration::days(day));
        let seed = (day + 1).to_string();
        run(
            "callmeter simulate",
            Command::new(callmeter).args(["simulate", "--seed", &seed, "--start", &start, "--hours", "24"]).args([
                "--account",
                "bench",
                "--formats",
                "ndjson",
                "--pollers",
                "20-40",
                "--uploaders",
                "2-4",
                "--people",
                "5-10",
                "--duplicate-clients",
                "2-4",
                "--out",
                chunk.to_str().unwrap(),
            ]),
        );
        // The last day only up to the number asked for.
        let file = chunk.join("calls.ndjson");
        let take = chunk.join("take.ndjson");
        let mut out = BufWriter::new(std::fs::File::create(&take).unwrap());
        let mut n = 0u64;
        for line in BufReader::new(std::fs::File::open(&file).unwrap()).lines() {
            if stored + n == calls {
                break;
            }
            writeln!(out, "{}", line.unwrap()).unwrap();
            n += 1;
        }
        out.flush().unwrap();
        drop(out);
        let summary = run(
            "callmeter import --data",
            Command::new(callmeter).args(["import", "--json", "--batch", "10000", "--data"]).arg(&data).arg(&take),
        );
        let v: serde_json::Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(v["imported"].as_u64(), Some(n), "every simulated call stored: {v}");
        stored += n;
        day += 1;
        eprint!(
            "\rbuilding {}: {stored} of {calls} calls, {day} days, {:.0}s",
            data.display(),
            t.elapsed().as_secs_f64()
        );
    }
    eprintln!();
    let _ = std::fs::remove_dir_all(&chunk);
    std::fs::write(&done, format!("{stored} calls\n")).unwrap();
    data
}

fn main() {
    let calls = env_u64("CALLMETER_BENCH_AUDIT_CALLS", 10_000_000);
    let mb = env_u64("CALLMETER_BENCH_LOG_MB", 1024);
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target");
    let dir = root.join("bench-audit");
    std::fs::create_dir_all(&dir).expect("bench folder");
    let callmeter = env!("CARGO_BIN_EXE_callmeter");

    // a. Stored calls.
    let data = stored_calls(callmeter, &dir, calls);
    let report = dir.join("audit-data.json");
    let args = ["audit", "--data", data.to_str().unwrap(), "--account", "bench", "--format", "json", "--out"];
    let mut all: Vec<&str> = args.to_vec();
    all.push(report.to_str().unwrap());
    // Once to warm the page cache, then measured.
    measure("callmeter audit --data", callmeter, &all);
    let stored = measure("callmeter audit --data", callmeter, &all);
    let v: serde_json::Value = serde_json::from_slice(&std::fs::read(&report).unwrap()).unwrap();
    assert_eq!(v["calls"].as_u64(), Some(calls), "the audit saw every stored call");
    println!(
        "audit --data: {calls} calls in {:.2}s ({:.0} calls/s), peak RSS {:.0} MiB; {} findings, {:.1}× fewer calls after",
        stored.secs,
        calls as f64 / stored.secs,
        stored.peak_rss_mib,
        v["findings"].as_array().map_or(0, Vec::len),
        v["what_if"]["factor"].as_f64().unwrap_or(0.0)
    );

    // b. The Combined log, against goaccess.
    let from_log = if std::env::var("CALLMETER_BENCH_SKIP_LOG").is_ok() {
        None
    } else {
        let log = root.join("bench-formats").join(format!("combined-{mb}mb.log"));
        std::fs::create_dir_all(log.parent().unwrap()).unwrap();
        if std::fs::metadata(&log).map(|m| m.len() < mb << 20).unwrap_or(true) {
            combined_log::write_log(&log, mb << 20);
        }
        let size_mib = std::fs::metadata(&log).unwrap().len() >> 20;
        let lines = BufReader::new(std::fs::File::open(&log).unwrap()).split(b'\n').count();
        let log_s = log.to_str().unwrap();
        let ours = dir.join("audit-log.json");
        let audit_args =
            ["audit", log_s, "--log-format", "combined", "--account", "bench", "--format", "json", "--out"];
        let mut all: Vec<&str> = audit_args.to_vec();
        all.push(ours.to_str().unwrap());
        let audit = measure("callmeter audit LOG", callmeter, &all);
        let theirs = dir.join("goaccess-report.json");
        let goaccess = measure(
            "goaccess",
            "goaccess",
            &[log_s, "--log-format=COMBINED", "--no-global-config", "-o", theirs.to_str().unwrap()],
        );
        Some((size_mib, lines, audit, goaccess))
    };

    println!();
    println!("| run | seconds | peak RSS MiB | |");
    println!("|---|---|---|---|");
    println!(
        "| `audit --data`, {calls} stored calls of one account | {:.2} | {:.0} | {:.0} calls/s (target < 5 s, < 1024 MiB at 10 M) |",
        stored.secs,
        stored.peak_rss_mib,
        calls as f64 / stored.secs
    );
    if let Some((size_mib, lines, audit, goaccess)) = from_log {
        println!(
            "| `audit LOG --format json`, {size_mib} MiB Combined, {lines} lines | {:.2} | {:.0} | {:.0} lines/s |",
            audit.secs,
            audit.peak_rss_mib,
            lines as f64 / audit.secs
        );
        println!(
            "| goaccess JSON report, same file | {:.2} | {:.0} | callmeter {:.1}× faster, {:.2}× goaccess's memory |",
            goaccess.secs,
            goaccess.peak_rss_mib,
            goaccess.secs / audit.secs,
            audit.peak_rss_mib / goaccess.peak_rss_mib
        );
    }
}
