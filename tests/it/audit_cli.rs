//! `callmeter simulate` and `callmeter audit` end to end: a seeded workload
//! written as NDJSON and logs, audited from the files, from a data folder
//! filled by `import --data` and from a running server, checked against the
//! workload's truth; the platform's own example; and the HTML report opened
//! in a real headless Chromium.

use crate::harness::{start, ADMIN};
use callmeter_audit::simulate::{write_ndjson, Upload, Workload};
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

fn callmeter_in(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(args)
        .current_dir(dir)
        .env_remove("CALLMETER_CONFIG")
        .env_remove("CALLMETER_TOKEN")
        .env_remove("CALLMETER_SERVER")
        .env("CALLMETER_LOG", "warn")
        .output()
        .expect("run callmeter")
}

/// Runs callmeter in `dir` and insists that it succeeded.
fn run(dir: &Path, args: &[&str]) -> Output {
    let out = callmeter_in(dir, args);
    assert!(
        out.status.success(),
        "callmeter {args:?} failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `callmeter audit ARGS --format json`, parsed.
fn audit_json(dir: &Path, args: &[&str]) -> Value {
    let mut all = vec!["audit"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = run(dir, &all);
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)))
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// `simulate` into `dir/sim`; returns the folder and its truth.
fn simulate(dir: &Path, extra: &[&str]) -> (PathBuf, Value) {
    let out_dir = dir.join("sim");
    let mut args = vec!["simulate", "--out", s(&out_dir)];
    args.extend_from_slice(extra);
    let out = run(dir, &args);
    let printed = String::from_utf8_lossy(&out.stdout);
    assert!(printed.contains("truth.json") && printed.contains("callmeter audit"), "{printed}");
    let truth: Value = serde_json::from_slice(&std::fs::read(out_dir.join("truth.json")).unwrap()).unwrap();
    (out_dir, truth)
}

fn paths_of(findings: &Value, kind: &str) -> BTreeSet<String> {
    findings
        .as_array()
        .expect("findings")
        .iter()
        .filter(|f| f["kind"] == kind)
        .map(|f| f["path"].as_str().unwrap().to_owned())
        .collect()
}

/// (kind, path, avoidable calls) of each finding, sorted.
fn finding_set(report: &Value) -> Vec<(String, String, u64)> {
    let mut v: Vec<(String, String, u64)> = report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .map(|f| {
            (
                f["kind"].as_str().unwrap().into(),
                f["path"].as_str().unwrap().into(),
                f["avoidable_calls"].as_u64().unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn n(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not a count: {v}"))
}

/// `1234567` as `1,234,567`, as the reports write numbers.
fn thousands(v: u64) -> String {
    let digits = v.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[test]
fn simulate_then_audit_ndjson_combined_and_sftp_find_the_truth() {
    let dir = tempfile::tempdir().unwrap();
    // Seed 3 at a fixed start: the same workload the audit crate's cross-format test checks.
    let (sim, truth) = simulate(dir.path(), &["--seed", "3", "--start", "2026-11-02T00:00:00Z"]);
    for file in ["calls.ndjson", "access.log", "vsftpd.log", "sftp.log", "truth.json"] {
        assert!(sim.join(file).exists(), "{file}");
    }
    let page = truth["list_page_size"].as_u64().unwrap().to_string();
    let patterns = truth["patterns"].as_array().unwrap();
    let truth_pollers: BTreeSet<String> =
        patterns.iter().filter(|p| p["kind"] == "polling").map(|p| p["path"].as_str().unwrap().to_owned()).collect();
    assert!(truth_pollers.len() >= 2, "{truth}");

    // NDJSON keeps every field: every pattern found, by source and path, its avoidable calls within 5 %.
    let ndjson = audit_json(dir.path(), &[s(&sim.join("calls.ndjson")), "--list-page-size", &page]);
    assert_eq!(ndjson["calls"], truth["calls"]);
    assert_eq!(ndjson["account"], "acme");
    assert_eq!(paths_of(&ndjson["findings"], "polling"), truth_pollers);
    for p in patterns {
        let found = ndjson["findings"]
            .as_array()
            .unwrap()
            .iter()
            .find(|f| f["kind"] == p["kind"] && f["path"] == p["path"] && f["source"]["by"] == p["source"]["by"])
            .unwrap_or_else(|| panic!("not found: {p}\nin {:#}", ndjson["findings"]));
        let (got, want) = (n(&found["avoidable_calls"]), n(&p["avoidable_calls"]));
        assert!(got.abs_diff(want) * 20 <= want, "{p}: found {got} avoidable, truth {want}");
    }
    let w = &ndjson["what_if"];
    assert!(n(&w["calls_after"]) < n(&w["calls"]) && w["factor"].as_f64().unwrap() > 1.0, "{w}");
    assert!(!ndjson["timeline"]["calls"].as_array().unwrap().is_empty());

    // The logs lose the API keys (Combined) or later pages and cursors (sftp), never the pollers.
    // sftp-server and vsftpd log no status, so the simulator's clients retrying through an outage
    // at a fixed delay (under /exports/o) read as polls there: those logs may add them, nothing else.
    let logged_pollers = |file: &str, findings: &Value| {
        let found = paths_of(findings, "polling");
        if file == "access.log" {
            return found;
        }
        assert!(found.iter().all(|p| truth_pollers.contains(p) || p.starts_with("/exports/o")), "{file}: {found:?}");
        found.into_iter().filter(|p| truth_pollers.contains(p)).collect()
    };
    for (file, format) in [("access.log", None), ("sftp.log", Some("sftp")), ("vsftpd.log", None)] {
        let mut args = vec![s(&sim.join(file)).to_owned(), "--account".into(), "acme".into()];
        args.extend(["--list-page-size".into(), page.clone()]);
        if let Some(f) = format {
            args.extend(["--log-format".into(), f.into()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let r = audit_json(dir.path(), &args);
        assert_eq!(logged_pollers(file, &r["findings"]), truth_pollers, "{file}: {:#}", r["findings"]);
        assert_eq!(r["account"], "acme", "{file}");
    }
    // Told from their content, as import tells them.
    let auto = audit_json(dir.path(), &[s(&sim.join("sftp.log")), "--account", "acme", "--list-page-size", &page]);
    assert_eq!(logged_pollers("sftp.log", &auto["findings"]), truth_pollers);

    // The text report: biggest waste first, each with its recommendation.
    let text = run(dir.path(), &["audit", s(&sim.join("calls.ndjson")), "--list-page-size", &page]);
    let text = String::from_utf8(text.stdout).unwrap();
    assert!(text.starts_with("audit of acme"), "{text}");
    let first = &ndjson["findings"][0];
    let first_line = format!("   1. {}", first["kind"].as_str().unwrap());
    assert!(text.contains(&first_line), "{text}");
    assert!(text.contains("Subscribe a webhook to"), "{text}");
    assert!(text.contains(&format!(
        "{} calls instead of {}",
        thousands(n(&w["calls_after"])),
        thousands(n(&w["calls"]))
    )));
}

/// The HTTP server's log and the SFTP server's, audited together: one answer
/// in either order, the SFTP uploads ending the REST poller's waste; and a log
/// given with its gzipped rotated copy audits as the log alone.
#[test]
fn logs_are_one_stream_in_any_order_and_a_copy_counts_once() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, truth) =
        simulate(dir.path(), &["--seed", "3", "--start", "2026-11-02T00:00:00Z", "--formats", "split,combined"]);
    let (http, sftp) = (sim.join("http-access.log"), sim.join("sftp-server.log"));
    let page = truth["list_page_size"].as_u64().unwrap().to_string();
    let common = ["--account", "acme", "--list-page-size", &page];
    let audit = |files: &[&Path]| {
        let mut args: Vec<&str> = files.iter().map(|f| s(f)).collect();
        args.extend_from_slice(&common);
        audit_json(dir.path(), &args)
    };
    let http_first = audit(&[&http, &sftp]);
    let sftp_first = audit(&[&sftp, &http]);
    assert_eq!(http_first, sftp_first, "the order of the files changed the report");
    // Every call of the workload is in one of the two logs; the SFTP log adds each SFTP user's login.
    let extra = n(&http_first["calls"]) - n(&truth["calls"]);
    assert!((1..=10).contains(&extra), "{} calls, truth {}", http_first["calls"], truth["calls"]);
    assert_eq!(http_first["retries_after_errors"], truth["retries_after_errors"]);
    let fed = truth["patterns"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["kind"] == "polling" && p["path"].as_str().unwrap().starts_with("/partners/sftp"))
        .expect("a REST poller of a folder uploaded into over SFTP");
    let found = http_first["findings"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["kind"] == "polling" && f["path"] == fed["path"])
        .unwrap_or_else(|| panic!("{fed} not found in {:#}", http_first["findings"]));
    let (got, want) = (n(&found["avoidable_calls"]), n(&fed["avoidable_calls"]));
    assert!(got.abs_diff(want) * 50 <= want, "{}: {got} avoidable, truth {want}", fed["path"]);

    // A log and its rotated copy, gzipped, given together (in any order): the log alone.
    let log = sim.join("access.log");
    let copy = sim.join("access.log.1.gz");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    std::io::Write::write_all(&mut gz, &std::fs::read(&log).unwrap()).unwrap();
    std::fs::write(&copy, gz.finish().unwrap()).unwrap();
    let alone = audit(&[&log]);
    assert_eq!(audit(&[&log, &copy]), alone);
    assert_eq!(audit(&[&copy, &log]), alone);
    let mut args = vec![s(&log), s(&copy)];
    args.extend_from_slice(&common);
    let out = run(dir.path(), &[&["audit"][..], &args].concat());
    let said = String::from_utf8_lossy(&out.stderr);
    assert!(said.contains(&format!("{} calls had an id already read", truth["calls"])), "{said}");
}

/// The platform's example as NDJSON: 1,000 uploads into a folder growing
/// from 99,000 to 100,000 files, listed (every page) after each upload.
fn platform_example(dir: &Path, page_size: u64) -> PathBuf {
    let start = chrono::Utc::now() - chrono::Duration::days(2);
    let mut w = Workload::new("acme", start, page_size, 1);
    w.upload_batches("/reports/in", &[(1_000, 99_000)], 60.0, Upload::SingleRequest);
    let sim = w.build();
    let path = dir.join(format!("platform-{page_size}.ndjson"));
    let mut out = std::io::BufWriter::new(std::fs::File::create(&path).unwrap());
    write_ndjson(&sim.events, &mut out).unwrap();
    drop(out);
    path
}

#[test]
fn the_platform_example_through_the_cli() {
    let dir = tempfile::tempdir().unwrap();
    // The page size from the config file's [audit] table, then from the flag.
    std::fs::write(dir.path().join("callmeter.toml"), "[audit]\nlist_page_size = 10000\n").unwrap();
    for (page_size, calls, after, flag) in [(10_000u64, 11_000u64, 1_010u64, false), (2_500, 41_000, 1_040, true)] {
        let file = platform_example(dir.path(), page_size);
        let page = page_size.to_string();
        let mut args = vec![s(&file)];
        if flag {
            args.extend_from_slice(&["--list-page-size", &page]);
        }
        let r = audit_json(dir.path(), &args);
        let w = &r["what_if"];
        assert_eq!((n(&w["calls"]), n(&w["calls_after"])), (calls, after), "page size {page_size}: {w}");
        let factor = calls as f64 / after as f64;
        assert!((w["factor"].as_f64().unwrap() - factor).abs() < 1e-9, "{w}");
        let f = &r["findings"][0];
        assert_eq!((f["kind"].as_str(), f["path"].as_str()), (Some("list_after_write"), Some("/reports/in")), "{f}");
        assert_eq!(n(&f["avoidable_calls"]), calls - after);
        assert_eq!(n(&f["pages_per_listing"]), 100_000 / page_size);
        assert_eq!(r["findings"].as_array().unwrap().len(), 1, "{:#}", r["findings"]);
        let text = String::from_utf8(run(dir.path(), &["audit", s(&file)]).stdout).unwrap();
        assert!(text.contains(&format!("{} calls instead of {}", thousands(after), thousands(calls))), "{text}");
    }
    // A misspelt setting is an error that names it.
    std::fs::write(dir.path().join("callmeter.toml"), "[audit]\nlist_pagesize = 10000\n").unwrap();
    let bad = callmeter_in(dir.path(), &["audit", s(&dir.path().join("platform-10000.ndjson"))]);
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(!bad.status.success() && err.contains("[audit]") && err.contains("list_pagesize"), "{err}");
}

#[test]
fn audit_of_a_data_folder_filled_by_import() {
    let dir = tempfile::tempdir().unwrap();
    // The default start: whole days before today, inside any retention.
    let (sim, truth) = simulate(dir.path(), &["--seed", "11", "--formats", "ndjson"]);
    assert!(!sim.join("access.log").exists(), "only the formats asked for");
    let ndjson = sim.join("calls.ndjson");
    let page = truth["list_page_size"].as_u64().unwrap().to_string();
    let data = dir.path().join("data");
    let imported = run(dir.path(), &["import", "--data", s(&data), "--json", s(&ndjson)]);
    let imported: Value = serde_json::from_slice(&imported.stdout).unwrap();
    assert_eq!(imported["imported"], truth["calls"], "{imported}");

    let from_file = audit_json(dir.path(), &[s(&ndjson), "--list-page-size", &page]);
    let from_store = audit_json(dir.path(), &["--data", s(&data), "--account", "acme", "--list-page-size", &page]);
    assert_eq!(from_store["calls"], truth["calls"]);
    assert_eq!(finding_set(&from_store), finding_set(&from_file));
    assert_eq!(from_store["what_if"], from_file["what_if"]);

    // A range: the same calls from the store as from the file.
    let from = from_file["from"].as_str().unwrap();
    let mid = (chrono::DateTime::parse_from_rfc3339(from).unwrap() + chrono::Duration::hours(24)).to_rfc3339();
    let half_store = audit_json(dir.path(), &["--data", s(&data), "--account", "acme", "--from", &mid]);
    let half_file = audit_json(dir.path(), &[s(&ndjson), "--from", &mid]);
    assert!(n(&half_store["calls"]) > 0 && n(&half_store["calls"]) < n(&truth["calls"]), "{}", half_store["calls"]);
    assert_eq!(half_store["calls"], half_file["calls"]);

    let unknown = callmeter_in(dir.path(), &["audit", "--data", s(&data), "--account", "globex"]);
    assert!(!unknown.status.success());
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("no account \"globex\""));
    let no_account = callmeter_in(dir.path(), &["audit", "--data", s(&data)]);
    assert!(String::from_utf8_lossy(&no_account.stderr).contains("--data needs --account"));
    let missing = callmeter_in(dir.path(), &["audit", "--data", s(&dir.path().join("nope")), "--account", "acme"]);
    assert!(String::from_utf8_lossy(&missing.stderr).contains("no data folder"));
    assert!(!dir.path().join("nope").exists(), "an audit makes no store");
}

#[test]
fn audit_of_a_running_server_streams_the_calls() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, truth) = simulate(dir.path(), &["--seed", "27", "--formats", "ndjson"]);
    let ndjson = sim.join("calls.ndjson");
    let page = truth["list_page_size"].as_u64().unwrap().to_string();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let server = start(&data, &[]);
    run(dir.path(), &["import", "--server", &server.base, "--token", ADMIN, s(&ndjson)]);

    let from_file = audit_json(dir.path(), &[s(&ndjson), "--list-page-size", &page]);
    let args = ["--server", &server.base, "--token", ADMIN, "--account", "acme", "--list-page-size", &page];
    let from_server = audit_json(dir.path(), &args);
    assert_eq!(from_server["calls"], truth["calls"]);
    assert_eq!(finding_set(&from_server), finding_set(&from_file));
    assert_eq!(from_server["what_if"], from_file["what_if"]);

    let to = from_file["to"].as_str().unwrap();
    let mid = (chrono::DateTime::parse_from_rfc3339(to).unwrap() - chrono::Duration::hours(12)).to_rfc3339();
    let part = audit_json(dir.path(), &["--server", &server.base, "--token", ADMIN, "--account", "acme", "--to", &mid]);
    let part_file = audit_json(dir.path(), &[s(&ndjson), "--to", &mid]);
    assert_eq!(part["calls"], part_file["calls"]);
    assert!(n(&part["calls"]) < n(&truth["calls"]));

    let denied =
        callmeter_in(dir.path(), &["audit", "--server", &server.base, "--token", "wrong", "--account", "acme"]);
    assert!(!denied.status.success());
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("server answered 401"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    server.stop();
}

/// Chromium, or a failure that says how to get it: the browser test never passes without a browser.
fn chromium() -> PathBuf {
    let path = std::env::var_os("PATH").unwrap_or_default();
    for name in ["chromium", "chromium-browser", "google-chrome"] {
        for dir in std::env::split_paths(&path) {
            let candidate = dir.join(name);
            if candidate.is_file() {
                return candidate;
            }
        }
    }
    panic!("the HTML report test needs a headless Chromium and none is on PATH: apt-get install -y chromium");
}

/// Opens a page in headless Chromium: (the rendered DOM, the console messages).
fn render(page: &Path, profile: &Path) -> (String, Vec<String>) {
    // Into files, not pipes: a DOM bigger than a pipe's buffer would stall Chromium while we wait for it.
    std::fs::create_dir_all(profile).unwrap();
    let (dom_path, log_path) = (profile.join("dom.html"), profile.join("chromium.log"));
    let mut child = Command::new(chromium())
        .args(["--headless=new", "--disable-gpu", "--no-sandbox", "--no-first-run", "--enable-logging=stderr", "--v=0"])
        .arg(format!("--user-data-dir={}", profile.join("data").display()))
        .arg("--dump-dom")
        .arg(format!("file://{}", page.display()))
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&dom_path).unwrap())
        .stderr(std::fs::File::create(&log_path).unwrap())
        .spawn()
        .expect("start chromium");
    let deadline = Instant::now() + Duration::from_secs(120);
    let status = loop {
        if let Some(status) = child.try_wait().expect("chromium") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("chromium did not finish within 120 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let log = std::fs::read_to_string(&log_path).unwrap_or_default();
    assert!(status.success(), "chromium failed: {log}");
    // Every console message (errors, refused resources, script failures) is logged as CONSOLE.
    let console = log.lines().filter(|l| l.contains(":CONSOLE")).map(str::to_owned).collect();
    (std::fs::read_to_string(&dom_path).unwrap(), console)
}

#[test]
fn the_html_report_renders_in_chromium_with_no_console_errors() {
    let dir = tempfile::tempdir().unwrap();
    let (sim, truth) = simulate(dir.path(), &["--seed", "3", "--start", "2026-11-02T00:00:00Z", "--formats", "ndjson"]);
    let ndjson = sim.join("calls.ndjson");
    let page = truth["list_page_size"].as_u64().unwrap().to_string();
    let html = dir.path().join("report.html");
    run(dir.path(), &["audit", s(&ndjson), "--list-page-size", &page, "--format", "html", "--out", s(&html)]);
    let json = audit_json(dir.path(), &[s(&ndjson), "--list-page-size", &page]);

    // First, that this way of looking does see console errors.
    let broken = dir.path().join("broken.html");
    std::fs::write(&broken, "<!doctype html><p>x</p><script>console.error('boom'); notAFunction()</script>").unwrap();
    let (_, console) = render(&broken, &dir.path().join("profile-broken"));
    assert!(console.iter().any(|l| l.contains("notAFunction")), "console errors are not seen: {console:?}");

    let (dom, console) = render(&html, &dir.path().join("profile"));
    assert!(console.is_empty(), "console messages: {console:#?}");
    assert!(dom.contains("Usage audit of acme"), "{dom}");
    for p in truth["patterns"].as_array().unwrap().iter().filter(|p| p["kind"] == "polling") {
        assert!(dom.contains(p["path"].as_str().unwrap()), "poller {} not in the page", p["path"]);
    }
    let w = &json["what_if"];
    for number in [n(&w["calls"]), n(&w["calls_after"])] {
        assert!(dom.contains(&thousands(number)), "{} not in the page", thousands(number));
    }
    assert!(dom.contains(&format!("{:.1}× fewer", w["factor"].as_f64().unwrap())));
    // The charts: calls over time per source, the findings, the what-if.
    for id in ["id=\"timeline\"", "id=\"findings-chart\"", "id=\"what-if-chart\"", "id=\"findings\""] {
        assert!(dom.contains(id), "{id} not rendered");
    }
    assert!(dom.matches("<path ").count() >= 2, "the timeline draws one area per source");
    assert!(dom.contains("Subscribe a webhook to"));
}
