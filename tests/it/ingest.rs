//! Ingest, then usage and the request log; duplicates; bad events.

use crate::harness::{self, ago, event, statuses, ADMIN};

#[test]
fn ingest_then_usage_counts_each_call_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = harness::start(&data, &[]);
    let t = ago(60);
    let mut body = String::new();
    for i in 0..10 {
        body += &event(
            "acme",
            &format!("c{i}"),
            &t,
            "rest",
            r#","method":"GET","operation":"list","path":"/folders/a","status":200"#,
        );
        body += "\n";
    }
    // A repeat inside the same batch.
    body += &event("acme", "c3", &t, "rest", "");
    body += "\n";
    let (status, v) = server.post_events(ADMIN, &body);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["accepted"], 10);
    assert_eq!(v["duplicates"], 1);
    assert_eq!(statuses(&v)[10], "duplicate");

    // Across batches, even with another time: the id decides.
    let again = event("acme", "c1", &ago(5000), "sftp", "") + "\n" + &event("acme", "c10", &t, "mount", "");
    let (_, v) = server.post_events(ADMIN, &again);
    assert_eq!(statuses(&v), vec!["duplicate", "accepted"]);

    let u = server.usage("acme", "current");
    assert_eq!(u["calls"], 11);
    assert_eq!(u["billable_calls"], 11, "mount is billable since 2023-09-26");
    assert_eq!(u["read_calls"], 11);
    assert_eq!(u["by_interface"]["rest"]["calls"], 10);

    // The request log shows every call, LIST included, in time order.
    let (status, log) = server.get(ADMIN, "/v1/accounts/acme/calls?per_page=4");
    assert_eq!(status, 200);
    assert_eq!(log["calls"].as_array().unwrap().len(), 4);
    let cursor = log["next_cursor"].as_str().expect("more pages").to_owned();
    let (_, rest) = server.get(ADMIN, &format!("/v1/accounts/acme/calls?per_page=100&cursor={cursor}"));
    assert_eq!(rest["calls"].as_array().unwrap().len(), 7);
    assert!(rest["next_cursor"].is_null());
    let (_, lists) = server.get(ADMIN, "/v1/accounts/acme/calls?operation=list&per_page=100");
    assert_eq!(lists["calls"].as_array().unwrap().len(), 10);

    // Restart: still duplicates, and the totals stand.
    server.stop();
    let server = harness::start(&data, &[]);
    let (_, v) = server.post_events(ADMIN, &(event("acme", "c0", &t, "rest", "") + "\n"));
    assert_eq!(statuses(&v), vec!["duplicate"]);
    assert_eq!(server.usage("acme", "current")["calls"], 11);

    // CSV export streams every call.
    let csv = server
        .http
        .get(server.url("/v1/accounts/acme/calls?format=csv"))
        .bearer_auth(ADMIN)
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert_eq!(csv.lines().count(), 12, "{csv}");
    assert!(csv.starts_with("id,account,time"));
}

#[test]
fn each_kind_of_bad_event_is_rejected_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(10);
    let future = (chrono::Utc::now() + chrono::Duration::minutes(30)).to_rfc3339();
    let old = (chrono::Utc::now() - chrono::Duration::days(401)).to_rfc3339();
    let long = "x".repeat(5000);
    let lines = [
        (event("acme", "ok1", &t, "rest", ""), "accepted", ""),
        (
            r#"{"account":"acme","time":"2026-01-01T00:00:00Z","interface":"rest"}"#.to_owned(),
            "rejected",
            "missing_field",
        ),
        (event("acme", "b2", &t, "rest", r#","status":"200""#), "rejected", "wrong_type"),
        (event("acme", "b3", "yesterday", "rest", ""), "rejected", "invalid_value"),
        (event("acme", "b4", &t, "telnet", ""), "rejected", "invalid_value"),
        (event("Bad Account", "b5", &t, "rest", ""), "rejected", "invalid_value"),
        (event("acme", "b6", &future, "rest", ""), "rejected", "in_future"),
        (event("acme", "b7", &t, "rest", &format!(r#","path":"{long}""#)), "rejected", "oversize"),
        (event("acme", "b8", &old, "rest", ""), "rejected", "older_than_retention"),
        ("{not json".to_owned(), "rejected", "invalid_json"),
        (event("acme", "ok2", &t, "ftp", r#","method":"RETR""#), "accepted", ""),
    ];
    let body: String = lines.iter().map(|(l, _, _)| format!("{l}\n")).collect();
    let (status, v) = server.post_events(ADMIN, &body);
    assert_eq!(status, 200, "{v}");
    for (i, (_, want, reason)) in lines.iter().enumerate() {
        let r = &v["results"][i];
        assert_eq!(r["index"], i, "{r}");
        assert_eq!(r["status"], *want, "line {i}: {r}");
        if !reason.is_empty() {
            assert_eq!(r["reason"], *reason, "line {i}: {r}");
        }
    }
    assert_eq!(v["results"][2]["field"], "status");
    assert_eq!(v["results"][6]["field"], "time");
    assert_eq!(server.usage("acme", "current")["calls"], 2);
    let (_, log) = server.get(ADMIN, "/v1/accounts/acme/calls?operation=read");
    assert_eq!(log["calls"][0]["id"], "ok2", "operation derived from RETR: {log}");

    // Unknown accounts are rejected when auto-creation is off.
    drop(server);
    let dir2 = tempfile::tempdir().unwrap();
    let server = harness::start(&dir2.path().join("data"), &["--auto-create-accounts", "false"]);
    let (_, v) = server.post_events(ADMIN, &(event("nobody", "x", &t, "rest", "") + "\n"));
    assert_eq!(v["results"][0]["reason"], "unknown_account");

    // Too many events: 413, nothing stored.
    let many: String = (0..10_001).map(|i| event("acme", &format!("m{i}"), &t, "rest", "") + "\n").collect();
    let (status, _) = server.post_events(ADMIN, &many);
    assert_eq!(status, 413);
}

#[test]
fn json_array_and_cloudevents_are_accepted() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(10);
    let arr = format!("[{},{}]", event("acme", "a1", &t, "web", ""), event("acme", "a2", &t, "web", ""));
    let (_, v) = server.send(
        server
            .http
            .post(server.url("/v1/events"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/json")
            .body(arr),
    );
    assert_eq!(v["accepted"], 2);
    let ce = format!(
        r#"[{{"specversion":"1.0","id":"ce1","source":"/x","type":"call","data":{{"account":"acme","time":"{t}","interface":"sdk"}}}}]"#
    );
    let (_, v) = server.send(
        server
            .http
            .post(server.url("/v1/events"))
            .bearer_auth(ADMIN)
            .header("content-type", "application/cloudevents-batch+json")
            .body(ce),
    );
    assert_eq!(v["accepted"], 1, "{v}");
    let (_, log) = server.get(ADMIN, "/v1/accounts/acme/calls?interface=sdk");
    assert_eq!(log["calls"][0]["id"], "ce1");
}
