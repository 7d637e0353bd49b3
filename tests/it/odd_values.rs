//! Every input checked, every output inert: values no real call has are
//! refused per event with the field and why, whichever way they come in (a
//! request, a log line); a body saved with a byte order mark is read; and
//! text from the metered API's callers leaves the CSV export as text, never
//! as a spreadsheet formula.

use crate::harness::{self, ago, event, statuses, ADMIN};
use serde_json::Value;
use std::collections::BTreeSet;
use std::process::Command;

/// The bad events of one request: (id, extra fields, the field refused).
fn odd_events() -> Vec<(&'static str, &'static str, &'static str)> {
    vec![
        ("s-neg", r#","status":-1"#, "status"),
        ("s-big", r#","status":99999999999"#, "status"),
        ("s-1000", r#","status":1000"#, "status"),
        ("d-neg", r#","duration_ms":-5"#, "duration_ms"),
        ("d-inf", r#","duration_ms":1e999"#, "duration_ms"),
        ("b-big", r#","bytes":9007199254740992"#, "bytes"),
        ("p-nul", r#","path":"/in/a\u0000b""#, "path"),
        ("u-nl", r#","user":"eve\nroot""#, "user"),
        ("ua-esc", r#","user_agent":"x\u001b[2J""#, "user_agent"),
        ("k-tab", r#","api_key":"k\t1""#, "api_key"),
        ("dst-cr", r#","destination":"/b\r""#, "destination"),
        ("m-nul", r#","method":"GET\u0000""#, "method"),
        ("i-del", r#","integration":"n\u007f""#, "integration"),
        ("c-c1", r#","cursor":"c\u009b""#, "cursor"),
    ]
}

#[test]
fn odd_values_are_refused_per_event_and_the_good_events_stored() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(30);
    let mut body = String::new();
    let mut expected = Vec::new(); // (index, Some(field) when refused)
    let mut good = BTreeSet::new();
    let mut index = 0;
    for (n, (id, extra, field)) in odd_events().into_iter().enumerate() {
        let ok = format!("good-{n}");
        body += &(event("acme", &ok, &t, "sftp", r#","status":0,"duration_ms":0,"path":"/in""#) + "\n");
        expected.push((index, None));
        good.insert(ok);
        index += 1;
        body += &(event("acme", id, &t, "rest", extra) + "\n");
        expected.push((index, Some(field)));
        index += 1;
    }
    // Ids no one can read back: a space, a NUL, a line break.
    for (id, field) in [(" ", "id"), ("\\u0000", "id"), ("\\n", "id")] {
        body += &(event("acme", id, &t, "rest", "") + "\n");
        expected.push((index, Some(field)));
        index += 1;
    }
    let (status, v) = server.post_events(ADMIN, &body);
    assert_eq!(status, 200, "{v}");
    for (i, field) in &expected {
        let r = &v["results"][*i];
        assert_eq!(r["index"], *i, "{r}");
        match field {
            None => assert_eq!(r["status"], "accepted", "{r}"),
            Some(field) => {
                assert_eq!(
                    (r["status"].as_str(), r["reason"].as_str()),
                    (Some("rejected"), Some("invalid_value")),
                    "{r}"
                );
                assert_eq!(r["field"], *field, "{r}");
                assert!(r["error"].as_str().unwrap().starts_with(&format!("field \"{field}\": ")), "{r}");
            }
        }
    }
    assert_eq!(v["accepted"], good.len());
    assert_eq!(v["rejected"], expected.len() - good.len());

    // Nothing of a refused event is stored or counted.
    let stored: BTreeSet<String> = server.stored_ids("acme").into_iter().collect();
    assert_eq!(stored, good);
    assert_eq!(server.usage("acme", "current")["calls"], good.len());
}

#[test]
fn a_body_with_a_byte_order_mark_is_read_in_each_framing() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(30);
    let call = |id: &str| event("acme", id, &t, "web", "");
    let cloud = |id: &str| {
        format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"/files","type":"com.example.call","data":{{"account":"acme","time":"{t}","interface":"sftp"}}}}"#
        )
    };
    let bodies = [
        ("application/x-ndjson", format!("\u{feff}{}\n{}\n", call("n1"), call("n2"))),
        ("application/json", format!("\u{feff}[{},{}]", call("a1"), call("a2"))),
        ("application/json", format!("\u{feff}{}", call("o1"))),
        ("application/cloudevents-batch+json", format!("\u{feff}[{},{}]", cloud("ce1"), cloud("ce2"))),
    ];
    for (content_type, body) in bodies {
        let (status, v) = server.send(
            server
                .http
                .post(server.url("/v1/events"))
                .bearer_auth(ADMIN)
                .header("content-type", content_type)
                .body(body.clone()),
        );
        assert_eq!(status, 200, "{content_type}: {v}");
        assert!(statuses(&v).iter().all(|s| s == "accepted"), "{content_type}: {v}");
    }
    assert_eq!(server.usage("acme", "current")["calls"], 7);
}

/// The cells of a CSV export that hold `text` (as is, quoted or made inert), as written.
fn cells_of<'a>(csv: &'a str, text: &str) -> Vec<&'a str> {
    let unwrapped = |c: &'a str| c.trim_matches('"').trim_start_matches('\'');
    csv.lines().flat_map(|l| l.split(',')).filter(|c| unwrapped(c) == text).collect()
}

#[test]
fn the_request_log_as_csv_holds_no_formula() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(30);
    let formulas = ["=HYPERLINK(1)", "+cmd|calc", "-2+3", "@SUM(9)"];
    let mut body = String::new();
    for (i, f) in formulas.iter().enumerate() {
        let extra = format!(r#","path":"{f}/p","user_agent":"{f}/ua","user":"{f}/u","status":200"#);
        body += &(event("acme", &format!("f{i}"), &t, "rest", &extra) + "\n");
    }
    let (_, v) = server.post_events(ADMIN, &body);
    assert_eq!(v["accepted"], formulas.len(), "{v}");
    let csv = server
        .http
        .get(server.url("/v1/accounts/acme/calls?format=csv"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(csv.lines().count(), 1 + formulas.len(), "{csv}");
    for f in formulas {
        for suffix in ["/p", "/ua", "/u"] {
            let text = format!("{f}{suffix}");
            assert_eq!(cells_of(&csv, &text), vec![format!("\"'{text}\"")], "{csv}");
        }
    }
    // No cell of any line starts a formula.
    for line in csv.lines() {
        for cell in line.split(',') {
            assert!(!cell.starts_with(['=', '+', '@']), "{cell} in {line}");
            assert!(!cell.starts_with('-') || cell.parse::<f64>().is_ok(), "{cell} in {line}");
        }
    }
}

#[test]
fn a_log_line_with_an_odd_value_is_a_refused_line_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let t = chrono::Utc::now() - chrono::Duration::minutes(10);
    let clf_time = t.format("%d/%b/%Y:%H:%M:%S +0000");
    let line = |path: &str, agent: &str| {
        format!(r#"203.0.113.9 - alice [{clf_time}] "GET {path} HTTP/1.1" 200 512 "-" "{agent}""#) + "\n"
    };
    let log = dir.path().join("access.log");
    let text = [
        line("/dav/in/a.txt", "curl/8.5.0"),
        line("/dav/in/a%00b.txt", "curl/8.5.0"),
        line("/dav/in/b.txt", "curl\\x1b[2J"),
        line("/dav/in/c.txt", "curl/8.5.0"),
    ]
    .concat();
    std::fs::write(&log, text).unwrap();
    let import = |target: &[&str]| -> Value {
        let out = Command::new(env!("CARGO_BIN_EXE_callmeter"))
            .arg("import")
            .args(target)
            .args(["--account", "acme", "--json"])
            .arg(&log)
            .env_remove("CALLMETER_CONFIG")
            .env("CALLMETER_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let check = |summary: &Value, imported: u64| {
        assert_eq!((summary["calls"].as_u64(), summary["rejected"].as_u64()), (Some(2), Some(2)), "{summary}");
        assert_eq!(summary["imported"].as_u64(), Some(imported), "{summary}");
        let refused = &summary["reasons"]["invalid_value"];
        let file = log.display().to_string();
        assert_eq!(refused["first"], serde_json::json!([format!("{file}:2"), format!("{file}:3")]), "{summary}");
        assert!(refused["example"].as_str().unwrap().contains("field \"path\": control character U+0000"), "{summary}");
    };

    // The reader refuses the lines, so a dry run, a data folder and a server all see the same.
    check(&import(&["--dry-run"]), 0);
    let data = dir.path().join("data");
    check(&import(&["--data", data.to_str().unwrap()]), 2);
    let server = harness::start(&dir.path().join("served"), &[]);
    check(&import(&["--server", &server.base, "--token", ADMIN]), 2);
    assert_eq!(server.stored_ids("acme").len(), 2);
}
