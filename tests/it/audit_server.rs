//! The server's audit (DESIGN §6): an account's audit over a range, who may
//! read it, and the daily audits it keeps and lists across accounts.

use crate::harness::{self, event, wait_for, Server, ADMIN};
use chrono::{DateTime, Duration, DurationRound, SecondsFormat, Utc};
use serde_json::Value;
use std::path::Path;

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Secs, true)
}

/// A poller (the same LIST every 60 s for 3 hours from one API key) and a
/// sync client that lists the folder after each of 20 uploads, from `base`.
fn polling_and_list_after_write(account: &str, base: DateTime<Utc>) -> String {
    let mut body = String::new();
    for i in 0..180 {
        let t = rfc3339(base + Duration::seconds(60 * i));
        let extra = r#","method":"GET","operation":"list","path":"/reports","api_key":"k-poll","status":200"#;
        body += &(event(account, &format!("poll-{i}"), &t, "rest", extra) + "\n");
    }
    for i in 0..20 {
        let up = rfc3339(base + Duration::seconds(10 * i));
        let extra =
            format!(r#","method":"PUT","operation":"write","path":"/inbox/f{i}.csv","api_key":"k-sync","status":201"#);
        body += &(event(account, &format!("up-{i}"), &up, "rest", &extra) + "\n");
        let list = rfc3339(base + Duration::seconds(10 * i + 2));
        let n = i + 1;
        let extra = format!(
            r#","method":"GET","operation":"list","path":"/inbox","api_key":"k-sync","status":200,"result_count":{n}"#
        );
        body += &(event(account, &format!("ls-{i}"), &list, "rest", &extra) + "\n");
    }
    body
}

fn finding<'a>(report: &'a Value, kind: &str) -> &'a Value {
    report["findings"]
        .as_array()
        .expect("findings")
        .iter()
        .find(|f| f["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} finding in {report}"))
}

fn get_with_header(server: &Server, token: &str, path: &str) -> (u16, Option<String>, Value) {
    let resp = server.http.get(server.url(path)).bearer_auth(token).send().expect("request");
    let status = resp.status().as_u16();
    let kept = resp.headers().get("callmeter-audit").map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().unwrap();
    (status, kept, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[test]
fn the_audit_of_a_range_finds_the_poller_and_the_list_after_write() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let base = (Utc::now() - Duration::hours(5)).duration_trunc(Duration::minutes(1)).unwrap();
    let (status, v) = server.post_events(ADMIN, &polling_and_list_after_write("acme", base));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["accepted"], 220);
    let other = event("other", "o-1", &rfc3339(base), "rest", r#","operation":"list","path":"/reports""#);
    assert_eq!(server.post_events(ADMIN, &(other + "\n")).1["accepted"], 1);

    let from = rfc3339(base - Duration::minutes(1));
    let to = rfc3339(base + Duration::hours(4));
    let (status, how, report) =
        get_with_header(&server, ADMIN, &format!("/v1/accounts/acme/audit?from={from}&to={to}"));
    assert_eq!(status, 200, "{report}");
    assert_eq!(how.as_deref(), Some("live"));
    assert_eq!(report["account"], "acme");
    assert_eq!(report["calls"], 220, "only acme's calls: {report}");
    assert_eq!(report["from"].as_str().map(|t| t.parse::<DateTime<Utc>>().unwrap()), Some(base - Duration::minutes(1)));

    let poll = finding(&report, "polling");
    assert_eq!(poll["source"]["api_key"], "k-poll");
    assert_eq!(poll["path"], "/reports");
    assert_eq!(poll["calls"], 180);
    assert_eq!(poll["avoidable_calls"], 179, "every repeat saw no change: {poll}");
    assert_eq!(poll["polls"], 180);
    assert!((poll["interval_secs"].as_f64().unwrap() - 60.0).abs() < 1.0, "{poll}");

    let law = finding(&report, "list_after_write");
    assert_eq!(law["source"]["api_key"], "k-sync");
    assert_eq!(law["path"], "/inbox");
    assert_eq!(law["uploads"], 20);
    assert_eq!(law["listings"], 20);
    assert_eq!(law["avoidable_calls"], 19, "all but the last listing: {law}");

    assert_eq!(report["what_if"]["calls"], 220);
    assert_eq!(report["what_if"]["calls_after"], 220 - 179 - 19);
    assert_eq!(report["what_if"]["avoidable_calls_by_kind"]["polling"], 179);
    assert!(report["top_sources"].is_object());

    // Without a range: the current usage period so far, which holds these calls
    // unless they fall before the account's first period began.
    let (status, report) = server.get(ADMIN, "/v1/accounts/acme/audit");
    assert_eq!(status, 200, "{report}");
    assert!(report["to"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap() <= Utc::now());

    // A day that has no kept audit is audited for the request.
    let day = base.date_naive();
    let (status, how, report) = get_with_header(&server, ADMIN, &format!("/v1/accounts/acme/audit?day={day}"));
    assert_eq!((status, how.as_deref()), (200, Some("live")), "{report}");
    assert_eq!(
        report["from"].as_str().unwrap().parse::<DateTime<Utc>>().unwrap(),
        day.and_hms_opt(0, 0, 0).unwrap().and_utc()
    );

    // Bad parameters say what is wrong.
    for (query, says) in [
        ("from=yesterday", "from"),
        (&format!("from={to}&to={from}") as &str, "not after"),
        ("to=2026-13-01T00:00:00Z", "to"),
        ("day=2026-02-30", "day"),
        (&format!("day={day}&from={from}"), "either day"),
    ] {
        let (status, v) = server.get(ADMIN, &format!("/v1/accounts/acme/audit?{query}"));
        assert_eq!(status, 400, "{query}: {v}");
        assert_eq!(v["error"]["code"], "bad_request");
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{query}: {v}");
    }
    let (status, _) = server.get(ADMIN, "/v1/accounts/nobody/audit");
    assert_eq!(status, 404);
    let (status, _) = server.get(ADMIN, "/v1/audits?day=yesterday");
    assert_eq!(status, 400);
    let (status, _) = server.get(ADMIN, "/v1/audits?format=xml");
    assert_eq!(status, 400);
    server.stop();
}

#[test]
fn the_audit_endpoints_check_the_token_and_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = harness::ago(60);
    let seed = event("acme", "a1", &t, "rest", "") + "\n" + &event("other", "o1", &t, "rest", "") + "\n";
    assert_eq!(server.post_events(ADMIN, &seed).1["accepted"], 2);
    let key_for = |account: &str| {
        let (s, v) =
            server.send(server.http.post(server.url(&format!("/v1/accounts/{account}/keys"))).bearer_auth(ADMIN));
        assert_eq!(s, 201, "{v}");
        v["secret"].as_str().unwrap().to_owned()
    };
    let scoped = |scope: &str| {
        let (s, v) = server.send(
            server.http.post(server.url("/v1/tokens")).bearer_auth(ADMIN).json(&serde_json::json!({"scope": scope})),
        );
        assert_eq!(s, 201, "{v}");
        v["secret"].as_str().unwrap().to_owned()
    };
    let (own, other, support, ingest) = (key_for("acme"), key_for("other"), scoped("support"), scoped("ingest"));

    let unauthenticated = |path: &str| server.send(server.http.get(server.url(path))).0;
    for path in ["/v1/accounts/acme/audit", "/v1/audits"] {
        assert_eq!(unauthenticated(path), 401, "{path}");
        assert_eq!(server.get("cm_wrong", path).0, 401, "{path}");
    }
    let account = "/v1/accounts/acme/audit";
    assert_eq!(server.get(ADMIN, account).0, 200);
    assert_eq!(server.get(&support, account).0, 200);
    assert_eq!(server.get(&own, account).0, 200);
    assert_eq!(server.get(&other, account).0, 403);
    assert_eq!(server.get(&ingest, account).0, 403);
    let (status, v) = server.get(&other, account);
    assert_eq!((status, &v["error"]["code"]), (403, &Value::from("forbidden")));

    let all = "/v1/audits";
    assert_eq!(server.get(ADMIN, all).0, 200);
    assert_eq!(server.get(&support, all).0, 200);
    assert_eq!(server.get(&own, all).0, 403);
    assert_eq!(server.get(&ingest, all).0, 403);
    server.stop();
}

fn write_config(dir: &Path, name: &str, audit: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, format!("[audit]\n{audit}")).unwrap();
    path.to_str().unwrap().to_owned()
}

#[test]
fn the_daily_audit_of_yesterday_is_kept_listed_and_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let off = write_config(dir.path(), "off.toml", "daily = false\n");
    let now_due = write_config(dir.path(), "now.toml", "daily = true\nrun_at_hour = 0\n");

    // Yesterday's calls, posted to a server that keeps no daily audits.
    let yesterday = Utc::now().date_naive() - Duration::days(1);
    let base = yesterday.and_hms_opt(9, 0, 0).unwrap().and_utc();
    let server = harness::start(&data, &["--config", &off]);
    assert_eq!(server.post_events(ADMIN, &polling_and_list_after_write("acme", base)).1["accepted"], 220);
    let quiet = event("globex", "g-1", &rfc3339(base), "sftp", r#","operation":"read","path":"/a.csv""#);
    assert_eq!(server.post_events(ADMIN, &(quiet + "\n")).1["accepted"], 1);
    let (status, v) = server.get(ADMIN, &format!("/v1/audits?day={yesterday}"));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["accounts"], serde_json::json!([]), "nothing kept yet");
    server.stop();

    // A server whose run is due at 00:00 UTC makes the missing audits at once.
    let server = harness::start(&data, &["--config", &now_due]);
    let mut listed = Value::Null;
    let kept = wait_for(std::time::Duration::from_secs(60), || {
        let (status, v) = server.get(ADMIN, "/v1/audits");
        listed = v;
        status == 200 && listed["accounts"].as_array().is_some_and(|a| a.len() == 2)
    });
    assert!(kept, "the day's audits were not kept: {listed}");
    assert_eq!(listed["day"], yesterday.to_string(), "the default day is yesterday");
    let rows = listed["accounts"].as_array().unwrap();
    assert_eq!(rows[0]["account"], "acme", "most avoidable calls first: {listed}");
    assert_eq!(rows[0]["calls"], 220);
    assert_eq!(rows[0]["avoidable_calls"], 179 + 19);
    assert_eq!(rows[0]["findings"], 2);
    assert_eq!(rows[0]["top_finding"]["kind"], "polling");
    assert_eq!(rows[0]["top_finding"]["source"]["api_key"], "k-poll");
    assert_eq!(rows[0]["top_finding"]["avoidable_calls"], 179);
    assert!((rows[0]["factor"].as_f64().unwrap() - 10.0).abs() < 1e-9, "220 / 22: {listed}");
    assert_eq!(rows[1]["account"], "globex");
    assert_eq!(rows[1]["avoidable_calls"], 0);
    assert!(rows[1]["top_finding"].is_null());

    let csv = server
        .http
        .get(server.url(&format!("/v1/audits?day={yesterday}&format=csv")))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines[0].starts_with("account,day,calls,billable_calls,avoidable_calls"), "{csv}");
    assert!(
        lines[1]
            .starts_with(&format!("acme,{yesterday},220,220,198,22,10.00,2,polling,API key k-poll,/reports,list,179,")),
        "{csv}"
    );
    server.stop();

    // After a restart (schedule off) the kept audit is still there, and is what
    // the account's audit of that day returns.
    let server = harness::start(&data, &["--config", &off]);
    let (status, v) = server.get(ADMIN, &format!("/v1/audits?day={yesterday}"));
    assert_eq!(status, 200);
    assert_eq!(v["accounts"].as_array().unwrap().len(), 2, "{v}");
    let (status, how, report) = get_with_header(&server, ADMIN, &format!("/v1/accounts/acme/audit?day={yesterday}"));
    assert_eq!((status, how.as_deref()), (200, Some("kept")), "{report}");
    assert_eq!(report["calls"], 220);
    assert_eq!(finding(&report, "polling")["avoidable_calls"], 179);
    assert_eq!(finding(&report, "list_after_write")["avoidable_calls"], 19);
    server.stop();
}

/// The platform's example as a log records it, one event per listing with its
/// entries: 1,000 uploads into a folder growing from 99,000 to 100,000 files,
/// listed after each upload.
fn platform_example_one_event_per_listing(account: &str, base: DateTime<Utc>) -> String {
    let mut body = String::new();
    for i in 0..1_000 {
        let up = rfc3339(base + Duration::seconds(30 * i));
        let extra =
            format!(r#","method":"POST","operation":"write","path":"/reports/in/f{i}.csv","user":"etl","status":201"#);
        body += &(event(account, &format!("up-{i}"), &up, "sftp", &extra) + "\n");
        let ls = rfc3339(base + Duration::seconds(30 * i + 2));
        let entries = 99_001 + i;
        let extra = format!(
            r#","method":"LIST","operation":"list","path":"/reports/in","user":"etl","status":226,"result_count":{entries}"#
        );
        body += &(event(account, &format!("ls-{i}"), &ls, "ftp", &extra) + "\n");
    }
    body
}

#[test]
fn an_accounts_own_list_page_size_costs_its_listings() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = harness::start(&data, &[]);
    let put = |account: &str, body: serde_json::Value| {
        server.send(server.http.put(server.url(&format!("/v1/accounts/{account}"))).bearer_auth(ADMIN).json(&body))
    };
    let (status, rec) = put("acme", serde_json::json!({"list_page_size": 2_500}));
    assert_eq!((status, &rec["list_page_size"]), (200, &Value::from(2_500)), "{rec}");
    for bad in [serde_json::json!({"list_page_size": 0}), serde_json::json!({"list_page_size": 10_000_000})] {
        let (status, v) = put("acme", bad);
        assert_eq!(status, 400, "{v}");
        assert!(v["error"]["message"].as_str().unwrap().contains("list_page_size"), "{v}");
    }
    // Another change leaves it as it is; globex has none and takes [audit]'s default, 10,000.
    assert_eq!(put("acme", serde_json::json!({"timezone": "Europe/Paris"})).1["list_page_size"], 2_500);
    let base = (Utc::now() - Duration::hours(10)).duration_trunc(Duration::minutes(1)).unwrap();
    for account in ["acme", "globex"] {
        let (status, v) = server.post_events(ADMIN, &platform_example_one_event_per_listing(account, base));
        assert_eq!((status, &v["accepted"]), (200, &Value::from(2_000)), "{v}");
    }
    let range = format!("from={}&to={}", rfc3339(base), rfc3339(base + Duration::hours(9)));
    let audit = |account: &str| {
        let (status, report) = server.get(ADMIN, &format!("/v1/accounts/{account}/audit?{range}"));
        assert_eq!(status, 200, "{report}");
        report
    };
    let acme = audit("acme");
    assert_eq!(acme["calls"], 2_000, "the events");
    let w = &acme["what_if"];
    assert_eq!(
        (&w["calls"], &w["calls_after"], &w["list_page_size"]),
        (&Value::from(41_000), &Value::from(1_040), &Value::from(2_500)),
        "{w}"
    );
    assert_eq!(finding(&acme, "list_after_write")["pages_per_listing"], 40);
    let w = &audit("globex")["what_if"];
    assert_eq!(
        (&w["calls"], &w["calls_after"], &w["list_page_size"]),
        (&Value::from(11_000), &Value::from(1_010), &Value::from(10_000)),
        "{w}"
    );

    // `callmeter audit --server` asks the server for the account's page size, as the server's audit does.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(["audit", "--server", &server.base, "--token", ADMIN, "--account", "acme", "--format", "json"])
        .args(["--from", &rfc3339(base), "--to", &rfc3339(base + Duration::hours(9))])
        .current_dir(dir.path())
        .env_remove("CALLMETER_CONFIG")
        .env("CALLMETER_LOG", "warn")
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let from_cli: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(from_cli["what_if"], acme["what_if"]);

    // Kept in the account record: still there after a restart.
    server.stop();
    let server = harness::start(&data, &[]);
    let (status, rec) = server.get(ADMIN, "/v1/accounts/acme");
    assert_eq!((status, &rec["list_page_size"]), (200, &Value::from(2_500)), "{rec}");
    let (_, report) = server.get(ADMIN, &format!("/v1/accounts/acme/audit?{range}"));
    assert_eq!(report["what_if"]["calls_after"], 1_040);
    server.stop();

    // And `callmeter audit --data` reads it from the record too.
    let cli = std::process::Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(["audit", "--data", data.to_str().unwrap(), "--account", "acme", "--format", "json"])
        .args(["--from", &rfc3339(base), "--to", &rfc3339(base + Duration::hours(9))])
        .current_dir(dir.path())
        .env_remove("CALLMETER_CONFIG")
        .env("CALLMETER_LOG", "warn")
        .output()
        .unwrap();
    assert!(cli.status.success(), "{}", String::from_utf8_lossy(&cli.stderr));
    let from_data: Value = serde_json::from_slice(&cli.stdout).unwrap();
    assert_eq!(from_data["what_if"], acme["what_if"]);
}
