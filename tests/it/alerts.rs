//! Usage alerts end to end (DESIGN §7): a real server whose one plan
//! includes 1,000 calls, an alert subscription to a real loopback receiver
//! (every delivery's signature verified), calls from the ingest API.
//!
//! The account's periods start at today's midnight (UTC), so yesterday's
//! calls are in the period before, which has not closed yet: both periods are
//! open, and the test crosses from one to the other without waiting. Crashes
//! come from failpoints right before and right after the alerts' batch, and
//! from `kill -9`.

use crate::harness::{self, Server, ADMIN};
use crate::webhook_receiver::Receiver;
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// A config with the plan `small` (1,000 calls a 30-day period) and no spikes in the way.
fn config(dir: &Path) -> String {
    let path = dir.join("callmeter.toml");
    std::fs::write(
        &path,
        "default_plan = \"small\"\n\
         [[plans]]\nname = \"small\"\nperiod = \"30d\"\nincluded_calls = 1000\noverage_price_per_1000 = 5\n\
         [alerts]\nspike_min_calls = 1000000\n",
    )
    .unwrap();
    path.to_string_lossy().into_owned()
}

fn start(data: &Path, config: &str, failpoints: Option<&str>) -> Server {
    let flags = ["--config", config, "--webhooks-allow-private-targets", "true"];
    let envs: Vec<(&str, &str)> = failpoints.map(|f| ("CALLMETER_FAILPOINTS", f)).into_iter().collect();
    harness::start_with(data, "127.0.0.1:0", &flags, &envs)
}

/// Makes `acme` with periods from today's midnight, and subscribes `url` to its alerts: the secret.
fn subscribe_alerts(server: &Server, url: &str) -> (String, String) {
    let anchor = Utc::now().date_naive() - Duration::days(30);
    let (s, v) = server.send(
        server
            .http
            .put(server.url("/v1/accounts/acme"))
            .bearer_auth(ADMIN)
            .json(&json!({"period_anchor": anchor, "timezone": "UTC"})),
    );
    assert_eq!(s, 200, "{v}");
    // `all`: every alert event.
    let body = json!({"url": url, "events": ["all"]});
    let (s, v) = server.send(server.http.post(server.url("/v1/accounts/acme/webhooks")).bearer_auth(ADMIN).json(&body));
    assert_eq!(s, 201, "{v}");
    assert_eq!(v["webhook"]["events"].as_array().unwrap().len(), 3, "{v}");
    assert!(v["webhook"].get("folder").is_none(), "an alert subscription watches no folder: {v}");
    (v["webhook"]["id"].as_str().unwrap().to_owned(), v["secret"].as_str().unwrap().to_owned())
}

/// `n` calls at `time`, ids `{tag}-{i}`, in one request: all accepted.
fn post_calls(server: &Server, tag: &str, n: usize, time: &str) {
    let body: String = (0..n)
        .map(|i| {
            harness::event("acme", &format!("{tag}-{i}"), time, "rest", r#","operation":"list","path":"/inbound""#)
                + "\n"
        })
        .collect();
    let (s, v) = server.post_events(ADMIN, &body);
    assert_eq!((s, v["accepted"].as_u64()), (200, Some(n as u64)), "{v}");
}

/// Two hours before today's midnight: the period before.
fn yesterday() -> String {
    (Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc() - Duration::hours(2)).to_rfc3339()
}

/// Halfway between today's midnight and now: the current period.
fn today() -> String {
    let midnight = Utc::now().date_naive().and_hms_opt(0, 0, 0).unwrap().and_utc();
    (midnight + (Utc::now() - midnight) / 2).to_rfc3339()
}

/// The deliveries by `webhook-id`, each verified with `secret`; every copy of one id has the same body.
fn by_webhook_id(receiver: &Receiver, secret: &str) -> BTreeMap<String, Value> {
    let mut out: BTreeMap<String, Value> = BTreeMap::new();
    for r in receiver.all() {
        assert!(r.signed_with(secret), "every delivery verifies with the README's code");
        let body = r.json();
        if let Some(seen) = out.insert(r.header("webhook-id").to_owned(), body.clone()) {
            assert_eq!(seen, body, "a redelivery sends the same body");
        }
    }
    out
}

/// Waits until `n` distinct webhook-ids came (and no more after a moment to settle): them.
fn distinct(receiver: &Receiver, secret: &str, n: usize) -> BTreeMap<String, Value> {
    harness::wait_for(WAIT, || by_webhook_id(receiver, secret).len() >= n);
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    let got = by_webhook_id(receiver, secret);
    assert_eq!(got.len(), n, "{:#?}", got.keys().collect::<Vec<_>>());
    got
}

/// `(period start, threshold)` of each threshold alert delivered.
fn thresholds(got: &BTreeMap<String, Value>) -> BTreeSet<(String, u64)> {
    got.values()
        .filter(|b| b["type"] == "usage.threshold_reached")
        .map(|b| {
            (
                b["data"]["period"]["start"].as_str().unwrap().to_owned(),
                b["data"]["threshold_percent"].as_u64().unwrap(),
            )
        })
        .collect()
}

fn alerts(server: &Server) -> Vec<Value> {
    let (s, v) = server.get(ADMIN, "/v1/accounts/acme/alerts");
    assert_eq!(s, 200, "{v}");
    v["alerts"].as_array().unwrap().clone()
}

/// One batch past 50, 80 and 100 % fires three alerts, delivered once each
/// with their own `webhook-id` to the alert subscription, though the server
/// crashed right after firing them; a `kill -9` and a restart fire none
/// again; the next period fires them again; thresholds the account sets
/// mid-period fire at once where usage is past them.
#[test]
fn threshold_alerts_are_delivered_once_each_across_crashes_and_again_each_period() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config(dir.path());
    let receiver = Receiver::start();
    let server = start(&data, &config, None);
    let (webhook, secret) = subscribe_alerts(&server, &receiver.url);
    server.stop();

    // Fired, durable, and the server dies before a delivery could be recorded.
    let server = start(&data, &config, Some("alerts.after_sync=1:crash"));
    post_calls(&server, "y", 1_000, &yesterday());
    let status = server.wait_exit(WAIT);
    assert_eq!(status.signal(), Some(libc::SIGKILL), "the failpoint crashed the server");

    let server = start(&data, &config, None);
    let got = distinct(&receiver, &secret, 3);
    let previous = got.values().next().unwrap()["data"]["period"]["start"].as_str().unwrap().to_owned();
    assert_eq!(thresholds(&got), [50, 80, 100].map(|t| (previous.clone(), t)).into());
    let kept = alerts(&server);
    assert_eq!(kept.len(), 3);
    let ids: BTreeSet<String> =
        kept.iter().map(|a| format!("msg_{webhook}_alert_{:x}", a["id"].as_u64().unwrap())).collect();
    assert_eq!(ids, got.keys().cloned().collect(), "each delivery is one kept alert, under its own webhook-id");
    let body = got.values().next().unwrap();
    assert_eq!(body["data"]["account"], "acme");
    assert_eq!(body["data"]["billed_calls"], 1_000);
    assert_eq!(body["data"]["included_calls"], 1_000);

    // kill -9 and a restart: the evaluator looks at every account again and fires nothing twice.
    server.kill();
    let server = start(&data, &config, None);
    distinct(&receiver, &secret, 3);
    assert_eq!(alerts(&server).len(), 3);

    // The current period: the same thresholds again.
    post_calls(&server, "t", 1_000, &today());
    let got = distinct(&receiver, &secret, 6);
    let current: BTreeSet<(String, u64)> = thresholds(&got).into_iter().filter(|(p, _)| *p != previous).collect();
    assert_eq!(current.len(), 3, "{current:?}");
    assert!(current.iter().all(|(p, _)| p.as_str() > previous.as_str()));

    // Thresholds set on the account mid-period: 90 and 95 % are passed in both open periods; 120 is not.
    let (s, v) = server.send(
        server
            .http
            .put(server.url("/v1/accounts/acme"))
            .bearer_auth(ADMIN)
            .json(&json!({"alert_thresholds": [120, 90, 95]})),
    );
    assert_eq!((s, &v["alert_thresholds"]), (200, &json!([90, 95, 120])), "{v}");
    let got = distinct(&receiver, &secret, 10);
    let added: BTreeSet<u64> = thresholds(&got).into_iter().map(|(_, t)| t).collect();
    assert_eq!(added, [50, 80, 90, 95, 100].into());
    assert_eq!(alerts(&server).len(), 10);
    server.stop();
}

/// An alert whose batch never committed (the server died just before) is
/// found due after the restart and fired then: nothing is lost.
#[test]
fn an_alert_lost_before_its_batch_fires_after_the_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let config = config(dir.path());
    let receiver = Receiver::start();
    let server = start(&data, &config, None);
    let (_, secret) = subscribe_alerts(&server, &receiver.url);
    server.stop();
    let server = start(&data, &config, Some("alerts.before_commit=1:crash"));
    post_calls(&server, "t", 500, &today());
    assert_eq!(server.wait_exit(WAIT).signal(), Some(libc::SIGKILL));
    assert_eq!(receiver.count(), 0, "nothing was fired");
    let server = start(&data, &config, None);
    let got = distinct(&receiver, &secret, 1);
    let delivered: Vec<&Value> = got.values().collect();
    assert_eq!(delivered[0]["data"]["threshold_percent"], 50);
    assert_eq!(alerts(&server).len(), 1);
    let (_, usage) = server.get(ADMIN, "/v1/accounts/acme/usage");
    assert_eq!(usage["billed_calls"], 500, "the calls were stored before the crash");
    server.stop();
}
