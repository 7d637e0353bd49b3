//! Operator flows: plan changes, adjustments, breakdowns, backup, metrics.

use crate::harness::{self, ago, event, ADMIN};

#[test]
fn plan_changes_take_effect_next_period_and_adjustments_show_apart() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(60);
    let mut body = String::new();
    for i in 0..30 {
        let (iface, key) = if i % 3 == 0 { ("sftp", "k2") } else { ("rest", "k1") };
        body += &event("acme", &format!("e{i}"), &t, iface, &format!(r#","api_key":"{key}","user":"u{}""#, i % 2));
        body += "\n";
    }
    assert_eq!(server.post_events(ADMIN, &body).1["accepted"], 30);

    let before = server.usage("acme", "current");
    assert_eq!(before["plan"], "starter");
    let (s, rec) = server.send(
        server
            .http
            .put(server.url("/v1/accounts/acme"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"plan": "business"})),
    );
    assert_eq!(s, 200, "{rec}");
    let after = server.usage("acme", "current");
    assert_eq!(after["plan"], "starter", "the current period keeps its plan");
    assert_eq!(after["period"], before["period"], "the period's bounds never move");
    let (s, _) = server.send(
        server.http.put(server.url("/v1/accounts/acme")).bearer_auth(ADMIN).json(&serde_json::json!({"plan": "gold"})),
    );
    assert_eq!(s, 400, "unknown plans are refused");

    let (s, _) = server.send(
        server
            .http
            .post(server.url("/v1/accounts/acme/adjustments"))
            .bearer_auth(ADMIN)
            .json(&serde_json::json!({"calls": -5, "reason": "retry storm on our side"})),
    );
    assert_eq!(s, 201);
    let u = server.usage("acme", "current");
    assert_eq!(
        (u["billable_calls"].as_u64(), u["adjustments"].as_i64(), u["billed_calls"].as_u64()),
        (Some(30), Some(-5), Some(25))
    );

    let (_, g) = server.get(ADMIN, "/v1/accounts/acme/usage?group_by=interface,api_key");
    let groups = g["groups"].as_array().unwrap();
    assert_eq!(groups[0]["key"], serde_json::json!({"interface": "rest", "api_key": "k1"}));
    assert_eq!(groups[0]["calls"], 20);
    let (_, s) = server.get(ADMIN, "/v1/accounts/acme/usage?granularity=hour");
    let total: u64 = s["series"].as_array().unwrap().iter().map(|p| p["calls"].as_u64().unwrap()).sum();
    assert_eq!(total, 30);
    let (st, _) = server.get(ADMIN, "/v1/accounts/acme/usage?group_by=color");
    assert_eq!(st, 400);
}

#[test]
fn backup_of_a_running_server_starts_a_server_with_the_same_numbers() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(30);
    let body: String =
        (0..2000).map(|i| event("acme", &format!("b{i}"), &t, "ftp", r#","method":"STOR""#) + "\n").collect();
    assert_eq!(server.post_events(ADMIN, &body).1["accepted"], 2000);
    let copy = dir.path().join("copy");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(["backup", "--server", &server.base, "--token", ADMIN])
        .arg(&copy)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let original = server.usage("acme", "current");
    server.stop();
    let restored = harness::start(&copy, &[]);
    let u = restored.usage("acme", "current");
    assert_eq!(u["calls"], 2000);
    assert_eq!(u["write_calls"], original["write_calls"]);
    let (_, v) = restored.post_events(ADMIN, &(event("acme", "b7", &t, "ftp", "") + "\n"));
    assert_eq!(harness::statuses(&v), vec!["duplicate"]);
}

#[test]
fn import_command_sends_a_file_and_a_second_import_adds_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    // The shipped sample, moved in time so that it stays inside retention whenever the test runs.
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/calls.ndjson")).unwrap();
    let events: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let time = |e: &serde_json::Value| chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
    let shift =
        (chrono::Utc::now() - chrono::Duration::hours(1)).fixed_offset() - events.iter().map(time).max().unwrap();
    let moved: String = events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e["time"] = serde_json::Value::String((time(&e) + shift).to_rfc3339());
            e.to_string() + "\n"
        })
        .collect();
    let sample_path = dir.path().join("calls.ndjson");
    std::fs::write(&sample_path, moved).unwrap();
    let sample = sample_path.to_str().unwrap();
    let run = || {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_callmeter"))
            .args(["import", sample, "--server", &server.base, "--token", ADMIN, "--json"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice::<serde_json::Value>(&out.stdout).unwrap()
    };
    let first = run();
    let lines = events.len();
    assert_eq!((first["imported"].as_u64(), first["rejected"].as_u64()), (Some(lines as u64), Some(0)), "{first}");
    let second = run();
    assert_eq!((second["imported"].as_u64(), second["duplicates"].as_u64()), (Some(0), Some(lines as u64)), "{second}");
    let (_, m) = server.get(ADMIN, "/metrics");
    let text = m.as_str().unwrap();
    assert!(text.contains(&format!("callmeter_events_accepted_total {lines}")), "{text}");
}

#[test]
fn one_adjustment_is_bounded_and_their_sum_does_not_wrap() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    assert_eq!(server.post_events(ADMIN, &(event("acme", "a1", &ago(30), "rest", "") + "\n")).1["accepted"], 1);
    let adjust = |calls: serde_json::Value| {
        server.send(
            server
                .http
                .post(server.url("/v1/accounts/acme/adjustments"))
                .bearer_auth(ADMIN)
                .json(&serde_json::json!({"calls": calls, "reason": "test"})),
        )
    };
    for calls in [serde_json::json!(i64::MAX), serde_json::json!(1_000_000_000_001i64), serde_json::json!(i64::MIN)] {
        let (s, v) = adjust(calls.clone());
        assert_eq!(s, 400, "{calls}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("from -1000000000000 to 1000000000000"), "{v}");
    }
    for _ in 0..3 {
        assert_eq!(adjust(serde_json::json!(1_000_000_000_000i64)).0, 201);
    }
    let u = server.usage("acme", "current");
    assert_eq!(u["adjustments"], 3_000_000_000_000i64);
    assert_eq!(u["billed_calls"], 3_000_000_000_001u64);
    assert!(u["projected_calls"].as_u64().unwrap() >= 3_000_000_000_001, "{u}");
}

const PLANS_WITH_GOLD: &str = r#"
[[plans]]
name = "starter"
period = "30d"
included_calls = 1000
overage_price_per_1000 = 100
currency = "USD"

[[plans]]
name = "gold"
period = "monthly"
included_calls = 5000
overage_price_per_1000 = 50
currency = "EUR"
"#;

#[test]
fn an_account_whose_plan_left_the_config_is_answered_apart_and_the_others_as_usual() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let with_gold = dir.path().join("with-gold.toml");
    let without_gold = dir.path().join("without-gold.toml");
    std::fs::write(&with_gold, PLANS_WITH_GOLD).unwrap();
    std::fs::write(&without_gold, &PLANS_WITH_GOLD[..PLANS_WITH_GOLD.find("[[plans]]\nname = \"gold\"").unwrap()])
        .unwrap();
    let server = harness::start(&data, &["--config", with_gold.to_str().unwrap()]);
    let (s, v) = server.send(
        server.http.put(server.url("/v1/accounts/vip")).bearer_auth(ADMIN).json(&serde_json::json!({"plan": "gold"})),
    );
    assert_eq!(s, 200, "{v}");
    let t = ago(30);
    let body = event("acme", "p1", &t, "rest", "") + "\n" + &event("vip", "p2", &t, "rest", "") + "\n";
    assert_eq!(server.post_events(ADMIN, &body).1["accepted"], 2);
    assert_eq!(server.usage("vip", "current")["plan"], "gold");
    server.stop();

    let server = harness::start(&data, &["--config", without_gold.to_str().unwrap()]);
    let (s, v) = server.get(ADMIN, "/v1/accounts/vip/usage");
    assert_eq!(s, 409, "{v}");
    assert_eq!(v["error"]["code"], "unknown_plan");
    assert!(v["error"]["message"].as_str().unwrap().contains("\"gold\""), "{v}");
    assert_eq!(server.usage("acme", "current")["calls"], 1);

    let (s, v) = server.get(ADMIN, "/v1/usage");
    assert_eq!(s, 200, "{v}");
    let accounts = v["accounts"].as_array().unwrap();
    let of = |name: &str| accounts.iter().find(|a| a["account"] == name).unwrap_or_else(|| panic!("{name}: {v}"));
    assert_eq!((of("acme")["calls"].as_u64(), of("acme").get("error")), (Some(1), None));
    let vip = of("vip");
    assert_eq!((vip["plan"].as_str(), vip["error"]["code"].as_str()), (Some("gold"), Some("unknown_plan")));
    assert!(vip["period"]["start"].is_string() && vip.get("calls").is_none(), "{vip}");

    let csv = server
        .http
        .get(server.url("/v1/usage?format=csv"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .error_for_status()
        .unwrap()
        .text()
        .unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    assert_eq!(header.last(), Some(&"error"));
    let rows: Vec<Vec<&str>> = lines.map(|l| l.split(',').collect()).collect();
    assert!(rows.iter().all(|r| r.len() == header.len()), "{csv}");
    let row = |name: &str| rows.iter().find(|r| r[0] == name).unwrap();
    assert_eq!((row("acme")[5], *row("acme").last().unwrap()), ("1", ""));
    assert_eq!((row("vip")[1], row("vip")[5], *row("vip").last().unwrap()), ("gold", "", "unknown_plan"));
}

/// The server runs with transparent huge pages off (`src/main.rs`:
/// zeroing 2 MiB a fault halved ingest's top rate on the project's VM).
#[test]
fn the_server_runs_without_transparent_huge_pages() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let status = std::fs::read_to_string(format!("/proc/{}/status", server.pid())).unwrap();
    let line = status.lines().find(|l| l.starts_with("THP_enabled:"));
    // Kernels before 5.0 do not show the flag.
    if let Some(line) = line {
        assert_eq!(line.split_whitespace().nth(1), Some("0"), "{line}");
    }
    server.stop();
}
