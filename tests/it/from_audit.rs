//! From audit to webhook, against a real server: the walk-through's
//! `examples/calls.ndjson` (key_7f3a lists /inbox every minute) in the
//! current period, `callmeter webhooks create --from-audit acme` subscribes
//! the folder the audit's polling finding names, and the webhook it made
//! delivers the next change under it. Alert subscriptions from the CLI too.

use crate::harness::{self, ADMIN};
use crate::webhook_receiver::Receiver;
use crate::webhooks::ALLOW_PRIVATE;
use serde_json::Value;
use std::io::Write;
use std::process::{Command, Stdio};

/// The sample, moved so that its last call was a minute ago, as NDJSON.
fn sample_now() -> String {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/examples/calls.ndjson")).unwrap();
    let events: Vec<Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let time = |e: &Value| chrono::DateTime::parse_from_rfc3339(e["time"].as_str().unwrap()).unwrap();
    let shift =
        (chrono::Utc::now() - chrono::Duration::minutes(1)).fixed_offset() - events.iter().map(time).max().unwrap();
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e["time"] = Value::String((time(&e) + shift).to_rfc3339());
            e.to_string() + "\n"
        })
        .collect()
}

/// `callmeter webhooks …` with `answer` on its standard input: its output.
fn webhooks(server: &harness::Server, args: &[&str], answer: &str) -> String {
    let mut all = vec!["webhooks", "--server", &server.base, "--token", ADMIN];
    all.extend_from_slice(args);
    let mut child = Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(&all)
        .env_remove("CALLMETER_CONFIG")
        .env("CALLMETER_LOG", "warn")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child.stdin.take().unwrap().write_all(answer.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout).unwrap()
}

fn listed(server: &harness::Server) -> Vec<Value> {
    let (s, v) = server.get(ADMIN, "/v1/accounts/acme/webhooks");
    assert_eq!(s, 200, "{v}");
    v["webhooks"].as_array().unwrap().clone()
}

#[test]
fn from_audit_creates_the_webhooks_the_audit_proposes() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), ALLOW_PRIVATE);
    let (s, v) = server.post_events(ADMIN, &sample_now());
    assert_eq!((s, v["rejected"].as_u64()), (200, Some(0)), "{v}");
    let (_, audit) = server.get(ADMIN, "/v1/accounts/acme/audit");
    let polling = audit["findings"].as_array().unwrap().iter().find(|f| f["kind"] == "polling").unwrap().clone();
    assert_eq!(polling["webhook"]["folder"], "/inbox", "the finding names its webhook: {polling}");
    assert_eq!(polling["webhook"]["actions"], serde_json::json!(["create", "update", "destroy", "move", "copy"]));
    assert!(
        audit["findings"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|f| f["kind"] != "polling")
            .all(|f| f.get("webhook").is_none()),
        "only polling findings carry one"
    );

    let receiver = Receiver::start();
    let out = webhooks(&server, &["create", "--from-audit", "acme", "--url", &receiver.url, "--yes"], "");
    assert!(out.contains("webhook on /inbox (create,update,destroy,move,copy), in place of:"), "{out}");
    assert!(out.contains("api key key_7f3a polls /inbox every 60 s"), "{out}");
    assert!(out.contains("1 created, 0 not created"), "{out}");
    let secret = out.lines().find_map(|l| l.strip_prefix("secret: ")).unwrap().split_whitespace().next().unwrap();
    let all = listed(&server);
    assert_eq!(all.len(), 1);
    assert_eq!((all[0]["folder"].as_str(), all[0]["url"].as_str()), (Some("/inbox"), Some(receiver.url.as_str())));

    // Again: the folder is watched already.
    let again = webhooks(&server, &["create", "--from-audit", "acme", "--url", &receiver.url, "--yes"], "");
    assert!(again.contains("already subscribed: skipped") && again.contains("0 created, 1 not created"), "{again}");
    // Another target: asked for, and refused on the terminal.
    let other = Receiver::start();
    let asked = webhooks(&server, &["create", "--from-audit", "acme", "--url", &other.url], "n\n");
    assert!(asked.contains("create it (about 119 calls fewer)? [y/N]"), "{asked}");
    assert!(asked.contains("0 created, 1 not created"), "{asked}");
    assert_eq!(listed(&server).len(), 1);

    // The webhook the audit proposed delivers what the poller was waiting for.
    let upload =
        harness::event("acme", "new-1", &harness::ago(1), "rest", r#","operation":"write","path":"/inbox/new.csv""#);
    server.post_events(ADMIN, &(upload + "\n"));
    let got = receiver.wait_for(1, std::time::Duration::from_secs(30));
    assert!(got[0].signed_with(secret));
    assert_eq!(got[0].change(), ("create".to_owned(), "/inbox/new.csv".to_owned(), None));

    // An alert subscription from the CLI: listed with its events.
    let alerts = webhooks(&server, &["create", "acme", "--url", &other.url, "--events", "all"], "");
    assert!(alerts.contains("secret: whsec_"), "{alerts}");
    let list = webhooks(&server, &["list", "acme"], "");
    assert!(list.contains("usage.threshold_reached,usage.projected_overage,usage.spike"), "{list}");
}
