//! Every endpoint against malformed queries and bodies (issue 12): without a
//! token, 401 before anything else; with one, an answer in the error envelope
//! with a documented code, never the framework's plain text or a 422.

use crate::harness::{self, ago, event, ADMIN};
use reqwest::Method;
use serde_json::Value;
use std::time::{Duration, Instant};

/// The documented codes of each error status (`crates/server/src/error.rs`).
fn documented(status: u16) -> &'static [&'static str] {
    match status {
        400 => &["bad_request"],
        401 => &["unauthorized"],
        403 => &["forbidden"],
        404 => &["not_found"],
        405 => &["method_not_allowed"],
        409 => &["unknown_plan"],
        413 => &["too_large"],
        415 => &["unsupported_media_type"],
        503 => &["unavailable", "busy"],
        507 => &["disk_full"],
        _ => &[],
    }
}

/// Every endpoint that takes a token: method, path, and whether it reads a body.
const ENDPOINTS: [(Method, &str); 20] = [
    (Method::POST, "/v1/events"),
    (Method::GET, "/v1/usage"),
    (Method::GET, "/v1/audits"),
    (Method::GET, "/v1/plans"),
    (Method::GET, "/v1/accounts"),
    (Method::GET, "/v1/accounts/acme"),
    (Method::PUT, "/v1/accounts/acme"),
    (Method::GET, "/v1/accounts/acme/usage"),
    (Method::GET, "/v1/accounts/acme/calls"),
    (Method::GET, "/v1/accounts/acme/audit"),
    (Method::GET, "/v1/accounts/acme/adjustments"),
    (Method::POST, "/v1/accounts/acme/adjustments"),
    (Method::POST, "/v1/accounts/acme/keys"),
    (Method::DELETE, "/v1/accounts/acme/keys/nope"),
    (Method::GET, "/v1/tokens"),
    (Method::POST, "/v1/tokens"),
    (Method::DELETE, "/v1/tokens/nope"),
    (Method::POST, "/v1/admin/backup"),
    (Method::POST, "/v1/admin/rotate-token"),
    (Method::GET, "/metrics"),
];

/// A malformed request: its query, content type and body.
struct Malformed {
    what: &'static str,
    query: String,
    content_type: Option<&'static str>,
    body: Vec<u8>,
}

fn malformations() -> Vec<Malformed> {
    let m = |what, query: &str, content_type, body: &[u8]| Malformed {
        what,
        query: query.to_owned(),
        content_type,
        body: body.to_vec(),
    };
    let json = Some("application/json");
    let deep = "[".repeat(5_000) + &"]".repeat(5_000);
    vec![
        m("bad JSON", "", json, b"{\"calls\": 5,"),
        m(
            "wrong types",
            "",
            json,
            br#"{"calls":"five","reason":5,"scope":7,"plan":1,"dir":3,"label":[],"timezone":{}}"#,
        ),
        m("a number past i64", "", json, br#"{"calls":99999999999999999999999,"reason":"r","scope":"x"}"#),
        m("a negative number past i64", "", json, br#"{"calls":-99999999999999999999999,"reason":"r"}"#),
        m("JSON nested too deep", "", json, deep.as_bytes()),
        m("not UTF-8", "", json, b"{\"reason\":\"\xff\xfe\"}"),
        m("an unknown content type", "", Some("text/plain"), b"{}"),
        m("a form", "", Some("application/x-www-form-urlencoded"), b"calls=5"),
        m("no content type", "", None, b"{\"calls\":"),
        m("bad query numbers", "per_page=-1&from=yesterday&day=2026-13-45", None, b""),
        m("a query number past u64", "per_page=99999999999999999999999999", None, b""),
        m("a repeated query parameter", "period=current&period=previous&format=csv&format=json", None, b""),
        m("repeated group_by", "group_by=interface,interface,interface", None, b""),
        m("a query not percent-decodable", "period=%FF%FE&user=%ZZ", None, b""),
        m("a long query", &format!("path_prefix=/{}", "p".repeat(9_000)), None, b""),
        m("unknown values", "format=xml&granularity=minute&status=2yy&interface=fax&period=someday", None, b""),
    ]
}

fn send(server: &harness::Server, method: &Method, path: &str, bad: &Malformed, token: Option<&str>) -> (u16, Value) {
    let url = if bad.query.is_empty() { server.url(path) } else { server.url(&format!("{path}?{}", bad.query)) };
    let mut req = server.http.request(method.clone(), url).body(bad.body.clone());
    if let Some(ct) = bad.content_type {
        req = req.header("content-type", ct);
    }
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let resp = req.send().unwrap_or_else(|e| panic!("{method} {path} with {}: {e}", bad.what));
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
    let text = resp.text().unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    if status >= 400 {
        assert_eq!(content_type.as_deref(), Some("application/json"), "{method} {path} with {}: {v}", bad.what);
    }
    (status, v)
}

/// Asserts an error answer is the envelope with a documented code for its status.
fn assert_envelope(status: u16, v: &Value, context: &str) {
    let code = v["error"]["code"].as_str().unwrap_or_else(|| panic!("{context}: {status} without the envelope: {v}"));
    assert!(documented(status).contains(&code), "{context}: {status} with code {code:?}: {v}");
    assert!(v["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{context}: {v}");
}

#[test]
fn every_endpoint_answers_malformed_requests_in_the_envelope_and_401_first() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(5);
    assert_eq!(server.post_events(ADMIN, &(event("acme", "seed", &t, "rest", "") + "\n")).1["accepted"], 1);

    let cases = malformations();
    for (method, path) in &ENDPOINTS {
        for bad in &cases {
            let context = format!("{method} {path} with {}", bad.what);
            // Without a token, or with a wrong one: 401, whatever else is wrong.
            for token in [None, Some("wrong")] {
                let (status, v) = send(&server, method, path, bad, token);
                assert_eq!(status, 401, "{context}, token {token:?}: {v}");
                assert_envelope(status, &v, &context);
            }
            // The admin (the admin token is rotated by one endpoint: not with a token).
            if *path == "/v1/admin/rotate-token" {
                continue;
            }
            let (status, v) = send(&server, method, path, bad, Some(ADMIN));
            assert!(status < 300 || !documented(status).is_empty(), "{context}: {status} {v}");
            if status >= 400 {
                assert_envelope(status, &v, &context);
            }
        }
    }
    assert!(server.metric("callmeter_refused_unauthorized_total") >= (ENDPOINTS.len() * cases.len() * 2) as u64);

    // Some answers in particular.
    let by_name = |what: &str| cases.iter().find(|c| c.what == what).unwrap();
    let admin = |method: Method, path: &str, what: &str| send(&server, &method, path, by_name(what), Some(ADMIN));
    let adjustments = "/v1/accounts/acme/adjustments";
    assert_eq!(admin(Method::POST, adjustments, "a number past i64").0, 400, "not 422");
    assert_eq!(admin(Method::POST, adjustments, "wrong types").0, 400, "not 422");
    assert_eq!(admin(Method::POST, adjustments, "bad JSON").0, 400);
    assert_eq!(admin(Method::POST, adjustments, "JSON nested too deep").0, 400);
    assert_eq!(admin(Method::POST, adjustments, "an unknown content type").0, 415);
    assert_eq!(admin(Method::POST, "/v1/events", "an unknown content type").0, 415);
    assert_eq!(admin(Method::POST, "/v1/events", "a form").0, 415);
    assert_eq!(admin(Method::POST, "/v1/events", "bad JSON").0, 400);
    assert_eq!(admin(Method::PUT, "/v1/accounts/acme", "wrong types").0, 400);
    assert_eq!(admin(Method::GET, "/v1/accounts/acme/calls", "a query number past u64").0, 400);
    assert_eq!(admin(Method::GET, "/v1/accounts/acme/calls", "a long query").0, 400);
    assert_eq!(admin(Method::GET, "/v1/usage", "a repeated query parameter").0, 400);
    assert_eq!(admin(Method::GET, "/v1/accounts/acme/usage", "repeated group_by").0, 400);
    assert_eq!(admin(Method::GET, "/v1/accounts/acme/usage", "a query not percent-decodable").0, 400);

    // The framework's own refusals: an unknown route, a method a route does not take, a path not UTF-8.
    let plain = Malformed { what: "", query: String::new(), content_type: None, body: b"{}".to_vec() };
    let (status, v) = send(&server, &Method::GET, "/v1/nothing-here", &plain, Some(ADMIN));
    assert_eq!(status, 404);
    assert_envelope(status, &v, "unknown route");
    for (method, path) in
        [(Method::PATCH, "/v1/accounts/acme"), (Method::DELETE, "/v1/events"), (Method::PUT, "/healthz")]
    {
        let resp = server.http.request(method.clone(), server.url(path)).bearer_auth(ADMIN).send().unwrap();
        assert_eq!(resp.status().as_u16(), 405, "{method} {path}");
        assert!(resp.headers().contains_key("allow"), "{method} {path}");
        let v: Value = resp.json().unwrap();
        assert_envelope(405, &v, &format!("{method} {path}"));
    }
    let (status, v) = send(&server, &Method::GET, "/v1/accounts/%FF%FE/usage", &plain, Some(ADMIN));
    assert_eq!(status, 400, "{v}");
    assert_envelope(status, &v, "a path not UTF-8");
}

#[test]
fn group_by_takes_each_dimension_once_and_a_long_list_is_refused_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(5);
    let calls: String =
        (0..200).map(|i| event("acme", &format!("c{i}"), &t, "rest", r#","user":"u""#) + "\n").collect();
    assert_eq!(server.post_events(ADMIN, &calls).1["accepted"], 200);
    let (_, v) = server.send(
        server
            .http
            .post(server.url("/v1/accounts/acme/keys"))
            .bearer_auth(ADMIN)
            .body("")
            .header("content-type", "application/json"),
    );
    let key = v["secret"].as_str().unwrap().to_owned();

    let (status, v) = server.get(&key, "/v1/accounts/acme/usage?group_by=interface,interface");
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("bad_request")), "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains("twice"), "{v}");
    let many = vec!["interface"; 5_000].join(",");
    for query in [many.clone(), vec!["interface,operation,api_key,user"; 1_000].join(",")] {
        let started = Instant::now();
        let (status, v) = server.get(&key, &format!("/v1/accounts/acme/usage?group_by={query}"));
        assert_eq!((status, v["error"]["code"].as_str()), (400, Some("bad_request")), "{v}");
        assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
    }
    // Every dimension once is still a grouping.
    let (status, v) = server.get(&key, "/v1/accounts/acme/usage?group_by=user,interface,operation,api_key");
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["groups"][0]["calls"], 200, "{v}");
}

#[test]
fn the_ingest_scope_only_posts_calls() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let (_, v) = server.send(
        server.http.post(server.url("/v1/tokens")).bearer_auth(ADMIN).json(&serde_json::json!({"scope": "ingest"})),
    );
    let ingest = v["secret"].as_str().unwrap().to_owned();
    for path in ["/v1/plans", "/v1/accounts", "/v1/usage", "/v1/tokens", "/metrics"] {
        let (status, v) = server.get(&ingest, path);
        assert_eq!((status, v["error"]["code"].as_str()), (403, Some("forbidden")), "{path}: {v}");
    }
    let (status, v) = server.post_events(&ingest, &(event("acme", "i1", &ago(5), "rest", "") + "\n"));
    assert_eq!((status, v["accepted"].as_u64()), (200, Some(1)), "{v}");
}

#[test]
fn a_query_parameter_the_route_does_not_take_is_refused_by_name() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let t = ago(5);
    let calls = event("acme", "l1", &t, "rest", r#","operation":"list","status":200"#)
        + "\n"
        + &event("acme", "r1", &t, "rest", "");
    assert_eq!(server.post_events(ADMIN, &(calls + "\n")).1["accepted"], 2);

    // A typo filtered nothing and answered every call; now it is 400 naming it and what the route takes.
    let (status, v) = server.get(ADMIN, "/v1/accounts/acme/calls?operaton=list");
    assert_envelope(status, &v, "operaton");
    let message = v["error"]["message"].as_str().unwrap();
    assert_eq!(status, 400, "{v}");
    assert!(message.starts_with(r#"query: unknown parameter "operaton": this route takes "#), "{message}");
    assert!(message.contains("operation") && message.contains("status"), "{message}");
    // The README once named `status_class`: the filter is `status`.
    let (status, v) = server.get(ADMIN, "/v1/accounts/acme/calls?status_class=2xx");
    assert_eq!(status, 400, "{v}");
    let (status, v) = server.get(ADMIN, "/v1/accounts/acme/calls?operation=list&status=2xx");
    assert_eq!((status, v["calls"].as_array().map(Vec::len)), (200, Some(1)), "{v}");
    // Public routes and routes that take no parameter refuse them too; several are named together.
    let (status, v) = server.get(ADMIN, "/healthz?verbose=1");
    assert_eq!(status, 400, "{v}");
    let (status, v) = server.get(ADMIN, "/v1/plans?a=1&b=2&a=3");
    assert_eq!(status, 400, "{v}");
    assert!(v["error"]["message"].as_str().unwrap().contains(r#"parameters "a", "b": this route takes none"#), "{v}");
    // Without a valid token: 401, as if the query were right.
    for token in ["", "wrong"] {
        let (status, v) = server.get(token, "/v1/accounts/acme/calls?operaton=list");
        assert_eq!((status, v["error"]["code"].as_str()), (401, Some("unauthorized")), "{token:?}: {v}");
    }
    // Parameters the route takes are answered as before.
    let (status, v) = server.get(ADMIN, "/v1/accounts/acme/usage?period=current&group_by=operation");
    assert_eq!(status, 200, "{v}");
}
