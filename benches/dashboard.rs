//! Dashboard benchmark: each page's Largest Contentful Paint and weight in
//! headless Chromium, and the request log's paging at any depth, against a
//! real `callmeter serve` over many stored calls of one account.
//!
//! `cargo bench --bench dashboard` (full size: 10 million calls). Scale down
//! with `CALLMETER_BENCH_DASHBOARD_CALLS` (default 10000000).
//!
//! 1. Builds a data folder of that many calls of account `bench`, once,
//!    cached in `target/bench-dashboard/data-N`: `callmeter simulate` day
//!    after day up to yesterday (pollers, upload batches, duplicates, people,
//!    mount and iPaaS traffic), each day through `callmeter import --data`,
//!    oldest first, so that the account's 30-day periods are full (the
//!    current one holds its days up to yesterday).
//! 2. Starts `callmeter serve` on it with the daily audits due at once, and
//!    waits for yesterday's kept audit (the audit page opens on it).
//! 3. In Chromium (cache off, so each load is a first load), signs in with an
//!    account key and loads each page three times: the median LCP
//!    (targets: under 300 ms) and the bytes it took on the wire, page and
//!    assets (target: under 150 KB compressed). The operator's list is
//!    loaded signed in with the admin token. For the webhooks pages the
//!    account has a webhook on `/` (to a loopback port nothing listens on, so
//!    that its delivery log holds failed attempts) and a few uploads for it.
//! 4. Over plain HTTP with the session's cookie: the request log's page
//!    newest first at depths from the newest call to the oldest, unfiltered
//!    and with filters the aggregates count and cannot count (target: under
//!    100 ms each), best of three.

#[path = "../tests/it/browser.rs"]
#[allow(dead_code)]
mod browser;

use serde_json::{json, Value};
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const ADMIN: &str = "bench-admin-token";
const LCP_TARGET_MS: f64 = 300.0;
const WEIGHT_TARGET_BYTES: u64 = 150 * 1024;
const PAGING_TARGET_MS: f64 = 100.0;

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

fn run(name: &str, cmd: &mut Command) -> String {
    let out = cmd.env("CALLMETER_LOG", "warn").env_remove("CALLMETER_CONFIG").output().expect(name);
    assert!(out.status.success(), "{name} failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// One simulated day of account `bench`, as NDJSON lines.
fn simulate_day(callmeter: &str, chunk: &Path, day: chrono::NaiveDate, seed: u64) -> PathBuf {
    run(
        "callmeter simulate",
        Command::new(callmeter)
            .args(["simulate", "--seed", &seed.to_string(), "--start", &format!("{day}T00:00:00Z"), "--hours", "24"])
            .args(["--account", "bench", "--formats", "ndjson", "--pollers", "20-40", "--uploaders", "2-4"])
            .args(["--people", "5-10", "--duplicate-clients", "2-4", "--out", chunk.to_str().unwrap()]),
    );
    chunk.join("calls.ndjson")
}

/// The data folder with `calls` calls of account `bench`, the last day yesterday, built once.
fn stored_calls(callmeter: &str, dir: &Path, calls: u64) -> PathBuf {
    let data = dir.join(format!("data-{calls}"));
    let done = data.join("bench-complete");
    if done.exists() {
        return data;
    }
    let _ = std::fs::remove_dir_all(&data);
    let chunk = dir.join("chunk");
    let yesterday = chrono::Utc::now().date_naive() - chrono::Duration::days(1);
    // Days are simulated back from yesterday until they hold the calls (each
    // day's seed is its distance from yesterday), then simulated again and
    // imported oldest first: the account's periods start at its first day.
    let t = Instant::now();
    let (mut counted, mut days) = (0u64, 0i64);
    while counted < calls {
        assert!(days < 390, "{days} simulated days gave only {counted} calls: make the days busier");
        let file = simulate_day(callmeter, &chunk, yesterday - chrono::Duration::days(days), days as u64 + 1);
        counted += BufReader::new(std::fs::File::open(&file).unwrap()).lines().count() as u64;
        days += 1;
        eprint!("\rcounting the calls of simulated days: {counted} in {days} days");
    }
    eprintln!();
    let (mut stored, mut day) = (0u64, 0i64);
    while stored < calls {
        let back = days - 1 - day;
        let file = simulate_day(callmeter, &chunk, yesterday - chrono::Duration::days(back), back as u64 + 1);
        let take = chunk.join("take.ndjson");
        let mut out = BufWriter::new(std::fs::File::create(&take).unwrap());
        // The oldest day gives up its first calls, so that the number is exact and yesterday whole.
        let skip = if day == 0 { (counted - calls) as usize } else { 0 };
        let mut n = 0u64;
        for line in BufReader::new(std::fs::File::open(&file).unwrap()).lines().skip(skip) {
            writeln!(out, "{}", line.unwrap()).unwrap();
            n += 1;
        }
        out.flush().unwrap();
        drop(out);
        let summary = run(
            "callmeter import --data",
            Command::new(callmeter).args(["import", "--json", "--batch", "10000", "--data"]).arg(&data).arg(&take),
        );
        let v: Value = serde_json::from_str(&summary).unwrap();
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

struct Server {
    child: Child,
    base: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

fn serve(callmeter: &str, data: &Path, dir: &Path) -> Server {
    let config = dir.join("bench.toml");
    std::fs::write(&config, "[audit]\ndaily = true\nrun_at_hour = 0\n[webhooks]\nallow_private_targets = true\n")
        .unwrap();
    let mut child = Command::new(callmeter)
        .args(["serve", "--listen", "127.0.0.1:0", "--config"])
        .arg(&config)
        .arg("--data")
        .arg(data)
        .env("CALLMETER_ADMIN_TOKEN", ADMIN)
        .env("CALLMETER_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start callmeter serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    Server { child, base }
}

/// The account's webhook (made on the first run; the data folder keeps it),
/// and five uploads for it, whose deliveries fail: its id.
fn webhook_with_deliveries(http: &reqwest::blocking::Client, base: &str) -> String {
    let url = format!("{base}/v1/accounts/bench/webhooks");
    let listed: Value = http.get(&url).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    let id = match listed["webhooks"][0]["id"].as_str() {
        Some(id) => id.to_owned(),
        None => {
            let body = json!({"url": "http://127.0.0.1:9/hook", "folder": "/"});
            let made: Value = http.post(&url).bearer_auth(ADMIN).json(&body).send().unwrap().json().unwrap();
            made["webhook"]["id"].as_str().expect("a webhook").to_owned()
        }
    };
    let run = chrono::Utc::now().timestamp_millis();
    let uploads: String = (0..5)
        .map(|i| {
            let time = chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
            format!(
                "{{\"id\":\"bench-upload-{run}-{i}\",\"account\":\"bench\",\"time\":\"{time}\",\"interface\":\"rest\",\"operation\":\"write\",\"path\":\"/bench-in/{run}-{i}.csv\",\"status\":201}}\n"
            )
        })
        .collect();
    let posted = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(ADMIN)
        .header("content-type", "application/x-ndjson")
        .body(uploads)
        .send()
        .unwrap();
    assert_eq!(posted.status(), 200, "the uploads");
    // Their first attempts fail at once (nothing listens): wait for them to be in the log.
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(30) {
        let log: Value = http.get(format!("{url}/{id}/deliveries")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
        if log["attempts"].as_array().is_some_and(|a| a.len() >= 5) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    id
}

/// Signs in over plain HTTP through the form; the session's cookie header.
fn session_cookie(http: &reqwest::blocking::Client, base: &str, token: &str) -> String {
    let form = http.get(format!("{base}/sign-in")).send().unwrap();
    let sign_in_cookie = form.headers()["set-cookie"].to_str().unwrap().split(';').next().unwrap().to_owned();
    let html = form.text().unwrap();
    let csrf = html.split("name=\"csrf\" value=\"").nth(1).unwrap().split('"').next().unwrap().to_owned();
    let answer = http
        .post(format!("{base}/sign-in"))
        .header("cookie", &sign_in_cookie)
        .form(&[("token", token), ("csrf", &csrf)])
        .send()
        .unwrap();
    assert_eq!(answer.status(), 303, "signed in");
    let cookie = answer.headers().get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        v.starts_with("cm_session=").then(|| v.split(';').next().unwrap().to_owned())
    });
    cookie.expect("a session cookie")
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

/// Loads a page three times in the browser: (median LCP ms, bytes on the wire).
fn load(b: &mut browser::Browser, url: &str) -> (f64, u64) {
    let mut lcps = Vec::new();
    let mut bytes = 0;
    for _ in 0..3 {
        b.open(url);
        lcps.push(b.largest_contentful_paint_ms());
        bytes = b.transferred_bytes();
    }
    let problems = b.take_problems();
    assert!(problems.is_empty(), "{url}: {problems:?}");
    (median(lcps), bytes)
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "OVER"
    }
}

fn main() {
    let calls = env_u64("CALLMETER_BENCH_DASHBOARD_CALLS", 10_000_000);
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target"), PathBuf::from);
    let dir = target.join("bench-dashboard");
    std::fs::create_dir_all(&dir).expect("bench folder");
    let callmeter = env!("CARGO_BIN_EXE_callmeter");
    let data = stored_calls(callmeter, &dir, calls);
    let server = serve(callmeter, &data, &dir);
    let base = server.base.clone();
    let http = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    // Yesterday's kept audit, which the audit page opens on.
    let yesterday = (chrono::Utc::now().date_naive() - chrono::Duration::days(1)).to_string();
    let started = Instant::now();
    loop {
        let v: Value =
            http.get(format!("{base}/v1/audits?day={yesterday}")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
        if v["accounts"].as_array().is_some_and(|a| !a.is_empty()) {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(600), "no kept audit of {yesterday} after 10 minutes");
        std::thread::sleep(Duration::from_millis(500));
    }
    let key: Value =
        http.post(format!("{base}/v1/accounts/bench/keys")).bearer_auth(ADMIN).send().unwrap().json().unwrap();
    let key = key["secret"].as_str().unwrap().to_owned();
    let usage: Value = http
        .get(format!("{base}/v1/accounts/bench/usage?period=current"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    println!("{calls} calls stored; the current period holds {}", usage["calls"]);

    // 3. Pages in the browser.
    let mut b = browser::Browser::start();
    b.command("Network.setCacheDisabled", json!({"cacheDisabled": true}));
    b.open(&format!("{base}/sign-in"));
    b.navigate_by(&format!(
        "document.getElementById('token').value = {}; document.querySelector('form').submit()",
        json!(key)
    ));
    let first_call = b.eval("fetch('/accounts/bench/calls').then(r => r.text()).then(t => (t.match(/calls\\/([0-9a-f.]+)\"/) || [])[1] || '')");
    let mut pages = vec![
        ("usage, current period".to_owned(), format!("{base}/accounts/bench/usage")),
        ("usage, per hour".to_owned(), format!("{base}/accounts/bench/usage?granularity=hour")),
        ("usage, previous period".to_owned(), format!("{base}/accounts/bench/usage?period=previous")),
        ("request log, newest".to_owned(), format!("{base}/accounts/bench/calls")),
        ("request log, filtered".to_owned(), format!("{base}/accounts/bench/calls?interface=sftp&operation=list")),
        ("request log, no match".to_owned(), format!("{base}/accounts/bench/calls?path_prefix=%2Fno-such-path")),
        ("audit, yesterday (kept)".to_owned(), format!("{base}/accounts/bench/audit")),
    ];
    if let Some(c) = first_call.as_str().filter(|c| !c.is_empty()) {
        pages.push(("a call's detail".to_owned(), format!("{base}/accounts/bench/calls/{c}")));
    }
    let hook = webhook_with_deliveries(&http, &base);
    pages.push(("webhooks".to_owned(), format!("{base}/accounts/bench/webhooks")));
    pages.push(("a webhook and its delivery log".to_owned(), format!("{base}/accounts/bench/webhooks/{hook}")));
    pages.push(("alerts".to_owned(), format!("{base}/accounts/bench/alerts")));
    println!("\n| page | LCP (median of 3) | on the wire | |");
    println!("|---|---|---|---|");
    let report = |b: &mut browser::Browser, name: &str, url: &str| {
        let (lcp, bytes) = load(b, url);
        let ok = lcp < LCP_TARGET_MS && bytes < WEIGHT_TARGET_BYTES;
        println!("| {name} | {lcp:.0} ms | {:.1} KB | {} |", bytes as f64 / 1024.0, verdict(ok));
    };
    for (name, url) in &pages {
        report(&mut b, name, url);
    }
    b.open(&format!("{base}/sign-in"));
    b.navigate_by(&format!(
        "document.getElementById('token').value = {}; document.querySelector('form').submit()",
        json!(ADMIN)
    ));
    report(&mut b, "all accounts (admin)", &format!("{base}/accounts"));
    drop(b);

    // 4. The request log's pages at depth, over HTTP.
    let cookie = session_cookie(&http, &base, &key);
    let first: Value = http
        .get(format!("{base}/v1/accounts/bench/calls?per_page=1"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let oldest = chrono::DateTime::parse_from_rfc3339(first["calls"][0]["time"].as_str().unwrap()).unwrap().to_utc();
    let newest = chrono::Utc::now();
    // Filters from the data: a smaller interface (the aggregates count it), the
    // busiest path prefix and one that matches nothing (they cannot).
    let mut interfaces: Vec<(String, u64)> = usage["by_interface"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v["calls"].as_u64().unwrap_or(0)))
        .collect();
    interfaces.sort_by_key(|(_, n)| std::cmp::Reverse(*n));
    let smaller = interfaces.get(1).or(interfaces.first()).map(|(k, _)| k.clone()).unwrap_or_default();
    let kept: Value = http
        .get(format!("{base}/v1/accounts/bench/audit?day={yesterday}"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .json()
        .unwrap();
    let prefix = kept["top_sources"]["path_prefix"][0]["value"].as_str().unwrap_or("/").to_owned();
    let filters = [
        ("unfiltered".to_owned(), String::new()),
        (format!("interface={smaller}"), format!("&interface={smaller}")),
        (format!("path_prefix={prefix}"), format!("&path_prefix={}", prefix.replace('/', "%2F"))),
        ("path_prefix=/no-such-path".to_owned(), "&path_prefix=%2Fno-such-path".to_owned()),
    ];
    println!("\n| request log page, newest first | depth | calls on the page | best of 3 | |");
    println!("|---|---|---|---|---|");
    for (label, filter) in &filters {
        for depth in [0.0, 0.1, 0.5, 0.9, 0.999] {
            // The cursor of a call at that depth: the position of the first call at or after that time.
            let cursor = if depth == 0.0 {
                String::new()
            } else {
                let at = newest - (newest - oldest) * ((depth * 1000.0) as i32) / 1000;
                let at = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
                let v: Value = http
                    .get(format!("{base}/v1/accounts/bench/calls?per_page=1&from={at}"))
                    .bearer_auth(ADMIN)
                    .send()
                    .unwrap()
                    .json()
                    .unwrap();
                format!("&cursor={}", v["next_cursor"].as_str().unwrap_or(""))
            };
            let url = format!("{base}/accounts/bench/calls?order=newest{filter}{cursor}");
            let (mut best, mut rows) = (f64::MAX, 0);
            for _ in 0..3 {
                let t = Instant::now();
                let page = http.get(&url).header("cookie", &cookie).send().unwrap();
                assert_eq!(page.status(), 200, "{url}");
                let html = page.text().unwrap();
                best = best.min(t.elapsed().as_secs_f64() * 1000.0);
                assert!(html.contains("id=\"calls\"") || html.contains("class=\"empty\""), "{url}");
                rows = html.matches("<a href=\"/accounts/bench/calls/").count();
            }
            let depth = depth * 100.0;
            println!("| {label} | {depth:.1} % back | {rows} | {best:.1} ms | {} |", verdict(best < PAGING_TARGET_MS));
        }
    }
    let _ = std::io::stdout().flush();
}
