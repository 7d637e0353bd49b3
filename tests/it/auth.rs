//! The auth matrix: every endpoint, every kind of caller (DESIGN §8).

use crate::harness::{self, ago, event, ADMIN};
use reqwest::Method;

#[derive(Clone, Copy, PartialEq, Debug)]
enum Who {
    Admin,
    Ingest,
    Support,
    OwnKey,
    OtherKey,
}

#[test]
fn every_endpoint_checks_the_token_and_its_scope() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(5);
    let seed = event("acme", "s1", &t, "rest", "") + "\n" + &event("other", "s2", &t, "rest", "") + "\n";
    assert_eq!(server.post_events(ADMIN, &seed).1["accepted"], 2);

    let make = |scope: &str| {
        let (s, v) = server.send(
            server.http.post(server.url("/v1/tokens")).bearer_auth(ADMIN).json(&serde_json::json!({"scope": scope})),
        );
        assert_eq!(s, 201, "{v}");
        v["secret"].as_str().unwrap().to_owned()
    };
    let key_for = |account: &str| {
        let (s, v) =
            server.send(server.http.post(server.url(&format!("/v1/accounts/{account}/keys"))).bearer_auth(ADMIN));
        assert_eq!(s, 201, "{v}");
        v["secret"].as_str().unwrap().to_owned()
    };
    let tokens = [
        (Who::Admin, ADMIN.to_owned()),
        (Who::Ingest, make("ingest")),
        (Who::Support, make("support")),
        (Who::OwnKey, key_for("acme")),
        (Who::OtherKey, key_for("other")),
    ];
    use Who::*;
    let ndjson = event("acme", "x", &t, "rest", "");
    // (method, path, body, who may)
    let table: Vec<(Method, &str, String, Vec<Who>)> = vec![
        (Method::POST, "/v1/events", ndjson, vec![Admin, Ingest]),
        (Method::GET, "/v1/usage", String::new(), vec![Admin, Support]),
        (Method::GET, "/v1/plans", String::new(), vec![Admin, Support, OwnKey, OtherKey]),
        (Method::GET, "/v1/accounts/acme", String::new(), vec![Admin, Support, OwnKey]),
        (Method::PUT, "/v1/accounts/acme", r#"{"alert_thresholds":[50,90]}"#.into(), vec![Admin, OwnKey]),
        (Method::PUT, "/v1/accounts/acme", r#"{"list_page_size":1000}"#.into(), vec![Admin, OwnKey]),
        // Billing terms are the admin's alone: a key cannot choose what its account is billed.
        (Method::PUT, "/v1/accounts/acme", r#"{"plan":"starter"}"#.into(), vec![Admin]),
        (Method::PUT, "/v1/accounts/acme", r#"{"timezone":"Europe/Paris"}"#.into(), vec![Admin]),
        (Method::PUT, "/v1/accounts/acme", r#"{"period_anchor":"2026-01-15"}"#.into(), vec![Admin]),
        (Method::GET, "/v1/accounts/acme/usage", String::new(), vec![Admin, Support, OwnKey]),
        (Method::GET, "/v1/accounts/acme/calls", String::new(), vec![Admin, Support, OwnKey]),
        (Method::GET, "/v1/accounts/acme/audit", String::new(), vec![Admin, Support, OwnKey]),
        (Method::GET, "/v1/audits", String::new(), vec![Admin, Support]),
        (Method::GET, "/v1/accounts/acme/adjustments", String::new(), vec![Admin, Support, OwnKey]),
        (Method::POST, "/v1/accounts/acme/adjustments", r#"{"calls":5,"reason":"goodwill"}"#.into(), vec![Admin]),
        (Method::POST, "/v1/accounts/acme/keys", String::new(), vec![Admin, OwnKey]),
        (Method::DELETE, "/v1/accounts/acme/keys/nope", String::new(), vec![Admin, OwnKey]),
        (Method::GET, "/v1/tokens", String::new(), vec![Admin]),
        (Method::POST, "/v1/tokens", r#"{"scope":"support"}"#.into(), vec![Admin]),
        (Method::DELETE, "/v1/tokens/nope", String::new(), vec![Admin]),
        (Method::GET, "/metrics", String::new(), vec![Admin, Support]),
    ];
    for (method, path, body, allowed) in &table {
        let req = |token: Option<&str>| {
            let mut r = server.http.request(method.clone(), server.url(path)).header(
                "content-type",
                if *path == "/v1/events" { "application/x-ndjson" } else { "application/json" },
            );
            if let Some(t) = token {
                r = r.bearer_auth(t);
            }
            if !body.is_empty() {
                r = r.body(body.clone());
            }
            r.send().unwrap().status().as_u16()
        };
        assert_eq!(req(None), 401, "{method} {path} without a token");
        assert_eq!(req(Some("wrong")), 401, "{method} {path} with a wrong token");
        for (who, token) in &tokens {
            let status = req(Some(token));
            if allowed.contains(who) {
                assert!(status != 401 && status != 403, "{method} {path} as {who:?}: {status}");
            } else {
                assert_eq!(status, 403, "{method} {path} as {who:?}");
            }
        }
    }
    // GET /v1/accounts lists only what the caller may read.
    let (_, v) = server.get(&tokens[3].1, "/v1/accounts");
    let names: Vec<&str> = v["accounts"].as_array().unwrap().iter().map(|a| a["name"].as_str().unwrap()).collect();
    assert_eq!(names, vec!["acme"]);
    assert_eq!(server.get(&tokens[1].1, "/v1/accounts").0, 403);
    // Public endpoints.
    for p in ["/healthz", "/readyz", "/openapi.json"] {
        assert_eq!(server.http.get(server.url(p)).send().unwrap().status().as_u16(), 200, "{p}");
    }
}

#[test]
fn revoked_tokens_and_rotated_admin_tokens_stop_working() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = harness::start(&data, &[]);
    let (_, v) = server.send(
        server.http.post(server.url("/v1/tokens")).bearer_auth(ADMIN).json(&serde_json::json!({"scope": "support"})),
    );
    let (id, secret) = (v["token"]["id"].as_str().unwrap().to_owned(), v["secret"].as_str().unwrap().to_owned());
    assert_eq!(server.get(&secret, "/v1/plans").0, 200);
    // Secrets are never listed.
    let (_, list) = server.get(ADMIN, "/v1/tokens");
    assert!(!list.to_string().contains(&secret));
    assert_eq!(server.send(server.http.delete(server.url(&format!("/v1/tokens/{id}"))).bearer_auth(ADMIN)).0, 204);
    assert_eq!(server.get(&secret, "/v1/plans").0, 401);

    // Tokens survive a restart.
    let (_, v) = server.send(
        server.http.post(server.url("/v1/tokens")).bearer_auth(ADMIN).json(&serde_json::json!({"scope": "ingest"})),
    );
    let ingest = v["secret"].as_str().unwrap().to_owned();
    server.stop();
    let server = harness::start(&data, &[]);
    assert_eq!(server.post_events(&ingest, "").0, 200);
}

#[test]
fn first_start_without_a_token_makes_one_and_rotation_needs_no_restart() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env_remove("CALLMETER_ADMIN_TOKEN")
        .env("CALLMETER_LOG", "warn")
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::BufRead;
    let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
    let printed = lines.next().unwrap().unwrap();
    let base = lines.next().unwrap().unwrap().strip_prefix("listening on ").unwrap().to_owned();
    let token = printed.rsplit(' ').next().unwrap().to_owned();
    let file = data.join("admin-token");
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), token);
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o600);
    let http = reqwest::blocking::Client::new();
    let get = |t: &str| http.get(format!("{base}/v1/tokens")).bearer_auth(t).send().unwrap().status().as_u16();
    assert_eq!(get(&token), 200);
    let v: serde_json::Value =
        http.post(format!("{base}/v1/admin/rotate-token")).bearer_auth(&token).send().unwrap().json().unwrap();
    let new = v["secret"].as_str().unwrap();
    assert_eq!(get(&token), 401);
    assert_eq!(get(new), 200);
    assert_eq!(std::fs::read_to_string(&file).unwrap().trim(), new);
    let _ = child.kill();
    let _ = child.wait();
}
