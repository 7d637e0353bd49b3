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
//! c. The same log split in two (cached in `target/bench-audit/split-{MB}mb/`):
//!    its WebDAV uploads (`PUT`, a tenth of the lines) as an sftp-server log
//!    of uploads, the rest as an HTTP access log. `callmeter audit HTTP SFTP`
//!    (the two merged by time) against `callmeter audit LOG`, each run twice,
//!    alternately, the faster of each kept: the merge's cost in seconds and
//!    memory (targets: within 10 % of the single file's time, memory flat).

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

/// The Combined line's upload as sftp-server lines (open and close), if it is a WebDAV `PUT`.
fn as_sftp_upload(line: &str, users: &mut std::collections::HashMap<String, u32>, out: &mut String) -> bool {
    let Some((head, rest)) = line.split_once(" [") else { return false };
    let Some((time, rest)) = rest.split_once("] \"") else { return false };
    let Some(path) = rest.strip_prefix("PUT /dav") else { return false };
    let Some((path, rest)) = path.split_once(' ') else { return false };
    let mut fields = head.split(' ');
    let (ip, user) = (fields.next().unwrap_or("-"), fields.nth(1).unwrap_or("-"));
    let Ok(time) = chrono::DateTime::parse_from_str(time, "%d/%b/%Y:%H:%M:%S %z") else { return false };
    let bytes = rest.split(' ').nth(2).unwrap_or("0");
    let next = 5_000 + users.len() as u32;
    let pid = *users.entry(user.to_owned()).or_insert_with(|| {
        out.push_str(&format!(
            "{} files1 internal-sftp[{next}]: session opened for local user {user} from [{ip}]\n",
            time.to_rfc3339_opts(chrono::SecondsFormat::Micros, false)
        ));
        next
    });
    let t = time.to_rfc3339_opts(chrono::SecondsFormat::Micros, false);
    out.push_str(&format!("{t} files1 internal-sftp[{pid}]: open \"{path}\" flags WRITE,CREATE,TRUNCATE mode 0644\n"));
    out.push_str(&format!("{t} files1 internal-sftp[{pid}]: close \"{path}\" bytes read 0 written {bytes}\n"));
    true
}

/// The log split in two, written once: (the HTTP access log, the sftp-server log of the uploads).
fn split_log(log: &Path, dir: &Path) -> (PathBuf, PathBuf) {
    let (http, sftp, done) = (dir.join("http-access.log"), dir.join("sftp-server.log"), dir.join("split-complete"));
    if done.exists() {
        return (http, sftp);
    }
    std::fs::create_dir_all(dir).unwrap();
    let mut to_http = BufWriter::with_capacity(1 << 20, std::fs::File::create(&http).unwrap());
    let mut to_sftp = BufWriter::with_capacity(1 << 20, std::fs::File::create(&sftp).unwrap());
    let (mut users, mut lines) = (std::collections::HashMap::new(), String::new());
    for line in BufReader::with_capacity(1 << 20, std::fs::File::open(log).unwrap()).lines() {
        let line = line.unwrap();
        lines.clear();
        if as_sftp_upload(&line, &mut users, &mut lines) {
            to_sftp.write_all(lines.as_bytes()).unwrap();
        } else {
            writeln!(to_http, "{line}").unwrap();
        }
    }
    to_http.flush().unwrap();
    to_sftp.flush().unwrap();
    std::fs::write(&done, "").unwrap();
    (http, sftp)
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
        // c. The same calls as two logs, merged by time, against the one log.
        let (http, sftp) = split_log(&log, &dir.join(format!("split-{mb}mb")));
        let (merged_out, single_out) = (dir.join("audit-split.json"), dir.join("audit-single.json"));
        let common = ["--account", "bench", "--format", "json", "--out"];
        let single_args: Vec<&str> = [&["audit", log_s][..], &common, &[single_out.to_str().unwrap()]].concat();
        let merged_args: Vec<&str> =
            [&["audit", http.to_str().unwrap(), sftp.to_str().unwrap()][..], &common, &[merged_out.to_str().unwrap()]]
                .concat();
        let (mut single, mut merged): (Option<Run>, Option<Run>) = (None, None);
        let faster = |best: Option<Run>, r: Run| match best {
            Some(b) if b.secs <= r.secs => Some(Run { peak_rss_mib: b.peak_rss_mib.max(r.peak_rss_mib), ..b }),
            Some(b) => Some(Run { peak_rss_mib: b.peak_rss_mib.max(r.peak_rss_mib), ..r }),
            None => Some(r),
        };
        for _ in 0..2 {
            single = faster(single, measure("callmeter audit LOG", callmeter, &single_args));
            merged = faster(merged, measure("callmeter audit HTTP SFTP", callmeter, &merged_args));
        }
        let read = |p: &Path| serde_json::from_slice::<serde_json::Value>(&std::fs::read(p).unwrap()).unwrap();
        let (one, two) = (read(&single_out), read(&merged_out));
        let uploads = |v: &serde_json::Value| v["top_sources"]["operation"].clone();
        eprintln!("one log: {} calls; two logs: {} calls", one["calls"], two["calls"]);
        assert!(
            two["calls"].as_u64() >= one["calls"].as_u64(),
            "the split lost calls: {} vs {}",
            uploads(&one),
            uploads(&two)
        );
        let split = (single.expect("ran"), merged.expect("ran"), std::fs::metadata(&sftp).unwrap().len() >> 20);
        Some((size_mib, lines, audit, goaccess, split))
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
    if let Some((size_mib, lines, audit, goaccess, (single, merged, sftp_mib))) = from_log {
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
        println!(
            "| `audit LOG --format json` (format told from the content), the same log, in the same run | {:.2} | {:.0} | |",
            single.secs, single.peak_rss_mib
        );
        println!(
            "| `audit HTTP SFTP --format json`: the same calls as an access log and a {sftp_mib} MiB sftp-server log of its uploads, merged by time | {:.2} | {:.0} | {:+.1} % time, {:+.1} % memory of the one log's (the bar: within 10 %, memory flat) |",
            merged.secs,
            merged.peak_rss_mib,
            100.0 * (merged.secs / single.secs - 1.0),
            100.0 * (merged.peak_rss_mib / single.peak_rss_mib - 1.0)
        );
    }
}
