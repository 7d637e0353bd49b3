//! Log reading benchmark: callmeter's parse-and-classify pass against
//! goaccess and mawk on the same 1 GB Combined log, in one run.
//!
//! `cargo bench --bench formats` (CALLMETER_BENCH_LOG_MB, default 1024;
//! CALLMETER_BENCH_SKIP_STORE=1 to skip the `import --data` run).
//!
//! 1. Writes a Combined log of that size (REST, WebDAV and web requests from
//!    200 accounts' hosts, realistic user agents) into `target/`, once, and
//!    reads it through so every run starts from the page cache.
//! 2. Times, on that file: `goaccess FILE --log-format=COMBINED -o report.json`
//!    (Debian's goaccess, the tool an operator would reach for);
//!    `mawk '{c[$1]++}'` (the floor of a single pass); `callmeter import
//!    --dry-run` (read, parse, classify, no store); and
//!    `callmeter import --data` (the same into an empty embedded store).
//! 3. Prints lines/s and the ratios.

#[path = "shared/combined_log.rs"]
mod combined_log;

use combined_log::write_log;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

fn time(name: &str, cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let out = cmd.stdout(Stdio::null()).stderr(Stdio::piped()).output().unwrap_or_else(|e| panic!("{name}: {e}"));
    let took = t.elapsed();
    assert!(out.status.success(), "{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    took
}

fn main() {
    let mb: u64 = std::env::var("CALLMETER_BENCH_LOG_MB").ok().and_then(|v| v.parse().ok()).unwrap_or(1024);
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/bench-formats");
    std::fs::create_dir_all(&dir).expect("bench folder");
    let log = dir.join(format!("combined-{mb}mb.log"));
    let t = Instant::now();
    if std::fs::metadata(&log).map(|m| m.len() < mb << 20).unwrap_or(true) {
        write_log(&log, mb << 20);
        println!("wrote {} in {:.1}s", log.display(), t.elapsed().as_secs_f64());
    }
    // Read it through once: every tool then starts from the page cache.
    let mut lines = 0u64;
    let mut f = std::fs::File::open(&log).expect("open log");
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf).expect("read log");
        if n == 0 {
            break;
        }
        lines += memchr_count(&buf[..n]);
    }
    let size = std::fs::metadata(&log).expect("log").len();
    println!("log: {} MB, {lines} Combined lines", size >> 20);
    let callmeter = env!("CARGO_BIN_EXE_callmeter");
    let rate = |d: Duration| lines as f64 / d.as_secs_f64();

    let report = dir.join("goaccess-report.json");
    let goaccess = time(
        "goaccess",
        Command::new("goaccess").arg(&log).args(["--log-format=COMBINED", "--no-global-config", "-o"]).arg(&report),
    );
    println!("goaccess JSON report: {:.1}s = {:.0} lines/s", goaccess.as_secs_f64(), rate(goaccess));
    let mawk = time("mawk", Command::new("mawk").arg("{c[$1]++}").arg(&log));
    println!("mawk '{{c[$1]++}}': {:.1}s = {:.0} lines/s", mawk.as_secs_f64(), rate(mawk));
    let dry = time(
        "callmeter import --dry-run",
        Command::new(callmeter)
            .args(["import", "--dry-run", "--format", "combined", "--account", "acme"])
            .arg(&log)
            .env("CALLMETER_LOG", "warn"),
    );
    println!("callmeter import --dry-run: {:.1}s = {:.0} lines/s", dry.as_secs_f64(), rate(dry));
    let stored = if std::env::var("CALLMETER_BENCH_SKIP_STORE").is_ok() {
        None
    } else {
        let data = dir.join("data");
        let _ = std::fs::remove_dir_all(&data);
        let d = time(
            "callmeter import --data",
            Command::new(callmeter)
                .args(["import", "--format", "combined", "--account", "acme", "--batch", "10000", "--data"])
                .arg(&data)
                .arg(&log)
                .env("CALLMETER_LOG", "warn"),
        );
        println!("callmeter import --data: {:.1}s = {:.0} lines/s", d.as_secs_f64(), rate(d));
        let _ = std::fs::remove_dir_all(&data);
        Some(d)
    };

    println!();
    println!("| pass over {} MB, {lines} lines | seconds | lines/s | callmeter --dry-run is |", size >> 20);
    println!("|---|---|---|---|");
    println!(
        "| callmeter `import --dry-run` (parse + classify) | {:.1} | {:.0} | 1.00 |",
        dry.as_secs_f64(),
        rate(dry)
    );
    println!(
        "| goaccess JSON report | {:.1} | {:.0} | {:.1}× faster |",
        goaccess.as_secs_f64(),
        rate(goaccess),
        goaccess.as_secs_f64() / dry.as_secs_f64()
    );
    println!(
        "| mawk `{{c[$1]++}}` | {:.1} | {:.0} | {:.2}× mawk's time |",
        mawk.as_secs_f64(),
        rate(mawk),
        dry.as_secs_f64() / mawk.as_secs_f64()
    );
    if let Some(d) = stored {
        println!(
            "| callmeter `import --data` (into an empty store, durable) | {:.1} | {:.0} | |",
            d.as_secs_f64(),
            rate(d)
        );
    }
}

fn memchr_count(b: &[u8]) -> u64 {
    b.iter().filter(|&&c| c == b'\n').count() as u64
}
