//! Webhooks end to end (DESIGN §7, §8): a real server, a real receiver on
//! loopback, calls from the ingest API, an imported SFTP log and a tailed
//! vsftpd log; the CLI; who may do what; refused targets.

use crate::harness::{self, event, Server, ADMIN};
use crate::webhook_receiver::{Receiver, Reply};
use chrono::{Duration, Utc};
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};

/// The flag the tests start servers with: their receivers are on loopback.
pub const ALLOW_PRIVATE: &[&str] = &["--webhooks-allow-private-targets", "true"];

const WAIT: std::time::Duration = std::time::Duration::from_secs(30);

/// Makes the account (anchored 40 days ago: a call 35 days old is late) and
/// subscribes `url` to `folder`; the webhook's id and secret.
pub fn subscribe(server: &Server, account: &str, body: Value) -> (String, String) {
    let anchor = (Utc::now() - Duration::days(40)).date_naive();
    let (s, v) = server.send(
        server
            .http
            .put(server.url(&format!("/v1/accounts/{account}")))
            .bearer_auth(ADMIN)
            .json(&json!({"period_anchor": anchor, "timezone": "UTC"})),
    );
    assert_eq!(s, 200, "{v}");
    let (s, v) = server
        .send(server.http.post(server.url(&format!("/v1/accounts/{account}/webhooks"))).bearer_auth(ADMIN).json(&body));
    assert_eq!(s, 201, "{v}");
    (v["webhook"]["id"].as_str().unwrap().to_owned(), v["secret"].as_str().unwrap().to_owned())
}

fn write(id: &str, path: &str, extra: &str) -> String {
    event("acme", id, &harness::ago(5), "rest", &format!(r#","operation":"write","path":"{path}"{extra}"#)) + "\n"
}

fn op(id: &str, operation: &str, path: &str, extra: &str) -> String {
    event("acme", id, &harness::ago(5), "rest", &format!(r#","operation":"{operation}","path":"{path}"{extra}"#)) + "\n"
}

type Change = (String, String, Option<String>);

fn change(action: &str, path: &str, destination: Option<&str>) -> Change {
    (action.to_owned(), path.to_owned(), destination.map(str::to_owned))
}

/// The changes received (sorted: deliveries may arrive in any order), every one signed with `secret`.
fn received(receiver: &Receiver, n: usize, secret: &str) -> Vec<Change> {
    let got = receiver.wait_for(n, WAIT);
    assert!(got.iter().all(|r| r.signed_with(secret)), "every delivery verifies with the README's code");
    let mut changes: Vec<Change> = got.iter().map(|r| r.change()).collect();
    changes.sort();
    changes
}

fn sorted(mut v: Vec<Change>) -> Vec<Change> {
    v.sort();
    v
}

fn callmeter(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(args)
        .env_remove("CALLMETER_CONFIG")
        .env("CALLMETER_LOG", "warn")
        .output()
        .expect("run callmeter")
}

/// Uploads, an imported SFTP log and a tailed vsftpd log each produce
/// exactly the deliveries their changes make: create vs update, destroy,
/// move with its destination; a duplicate, a failed or a late call, a path
/// outside the folder and an action not subscribed produce none.
#[test]
fn uploads_imports_and_tails_each_produce_exactly_the_expected_deliveries() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), ALLOW_PRIVATE);
    let receiver = Receiver::start();
    let (_, secret) = subscribe(
        &server,
        "acme",
        json!({"url": receiver.url, "folder": "/in", "actions": ["create", "update", "destroy", "move"]}),
    );

    // 1. The ingest API.
    let late = (Utc::now() - Duration::days(35)).to_rfc3339();
    let calls = [
        write("u1", "/in/a.csv", ""),
        write("u2", "/in/a.csv", r#","status":201"#),
        write("u3", "/in/b.csv", r#","status":500"#),
        write("u4", "/out/x.csv", ""),
        op("u5", "move", "/out/x.csv", r#","destination":"/in/x.csv""#),
        op("u6", "copy", "/in/a.csv", r#","destination":"/in/c.csv""#),
        op("u7", "delete", "/in/a.csv", ""),
        op("u8", "read", "/in/x.csv", ""),
        event("acme", "u9", &late, "rest", r#","operation":"write","path":"/in/late.csv""#) + "\n",
    ]
    .concat();
    let (s, v) = server.post_events(ADMIN, &calls);
    let acknowledged = std::time::Instant::now();
    assert_eq!((s, v["accepted"].as_u64()), (200, Some(9)), "{v}");
    let (_, v) = server.post_events(ADMIN, &write("u1", "/in/a.csv", ""));
    assert_eq!(harness::statuses(&v), ["duplicate"]);
    let api = received(&receiver, 4, &secret);
    let expected = sorted(vec![
        change("create", "/in/a.csv", None),
        change("update", "/in/a.csv", None),
        change("move", "/out/x.csv", Some("/in/x.csv")),
        change("destroy", "/in/a.csv", None),
    ]);
    assert_eq!(api, expected);
    let first = &receiver.all()[0];
    // DESIGN §7: the first attempt within 2 s of the call being durable (the answer comes after that).
    let latency = first.at.saturating_duration_since(acknowledged);
    assert!(latency < std::time::Duration::from_secs(2), "first delivery {latency:?} after the answer");
    println!("first webhook delivery {} ms after the ingest answer", latency.as_millis());
    assert_eq!(first.header("content-type"), "application/json");
    assert!(first.header("webhook-id").starts_with("msg_"));
    let body = first.json();
    assert_eq!(body["data"]["account"], "acme");
    assert_eq!(body["data"]["interface"], "rest");
    assert!(body["type"].as_str().unwrap().starts_with("file."));

    // 2. An imported SFTP log (OpenSSH at VERBOSE): an upload, a rename, a remove, a failed nothing.
    let t = Utc::now().format("%b %e %H:%M:%S").to_string();
    let sftp = dir.path().join("sftp.log");
    let lines = [
        format!("{t} files1 internal-sftp[77]: session opened for local user alice from [203.0.113.9]"),
        format!(r#"{t} files1 internal-sftp[77]: open "/in/s1.csv" flags WRITE,CREATE,TRUNCATE mode 0644"#),
        format!(r#"{t} files1 internal-sftp[77]: close "/in/s1.csv" bytes read 0 written 1024"#),
        format!(r#"{t} files1 internal-sftp[77]: opendir "/in""#),
        format!(r#"{t} files1 internal-sftp[77]: rename old "/in/s1.csv" new "/in/s2.csv""#),
        format!(r#"{t} files1 internal-sftp[77]: remove name "/in/s2.csv""#),
        format!(r#"{t} files1 internal-sftp[77]: mkdir name "/elsewhere/d" mode 0777"#),
    ];
    std::fs::write(&sftp, lines.map(|l| l + "\n").concat()).unwrap();
    let out =
        callmeter(&["import", "--server", &server.base, "--token", ADMIN, "--account", "acme", sftp.to_str().unwrap()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let all = received(&receiver, 7, &secret);
    let mut want = expected.clone();
    want.extend([
        change("create", "/in/s1.csv", None),
        change("move", "/in/s1.csv", Some("/in/s2.csv")),
        change("destroy", "/in/s2.csv", None),
    ]);
    assert_eq!(all, sorted(want.clone()));
    let sftp_user = receiver.all().iter().find(|r| r.change().1 == "/in/s1.csv").unwrap().json();
    assert_eq!(
        (sftp_user["data"]["user"].as_str(), sftp_user["data"]["interface"].as_str()),
        (Some("alice"), Some("sftp"))
    );
    // Imported again: every call a duplicate, no delivery.
    let again =
        callmeter(&["import", "--server", &server.base, "--token", ADMIN, "--account", "acme", sftp.to_str().unwrap()]);
    assert!(again.status.success());

    // 3. A tailed vsftpd log (no protocol lines): upload twice (create, update), mkdir, rename, a failed upload, delete.
    let vsftpd = dir.path().join("vsftpd.log");
    let tail = Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(["tail", "--server", &server.base, "--token", ADMIN, "--account", "acme", "--poll-ms", "100"])
        .arg("--checkpoint")
        .arg(dir.path().join("tail.json"))
        .arg(&vsftpd)
        .env_remove("CALLMETER_CONFIG")
        .env("CALLMETER_LOG", "warn")
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut tail = scopeguard(tail);
    let t = Utc::now().format("%a %b %e %H:%M:%S %Y").to_string();
    let c = r#"Client "192.168.1.10""#;
    let lines = [
        format!(r#"{t} [pid 3] [carol] OK LOGIN: {c}"#),
        format!(r#"{t} [pid 3] [carol] OK UPLOAD: {c}, "/in/v.csv", 10 bytes, 1.00Kbyte/sec"#),
        format!(r#"{t} [pid 3] [carol] OK UPLOAD: {c}, "/in/v.csv", 12 bytes, 1.00Kbyte/sec"#),
        format!(r#"{t} [pid 3] [carol] OK MKDIR: {c}, "/in/new""#),
        format!(r#"{t} [pid 3] [carol] FAIL UPLOAD: {c}, "/in/broken.csv", 0.00Kbyte/sec"#),
        format!(r#"{t} [pid 3] [carol] OK RENAME: {c}, "/in/v.csv /in/new/v.csv""#),
        format!(r#"{t} [pid 3] [carol] OK DELETE: {c}, "/in/new/v.csv""#),
    ];
    let mut f = std::fs::OpenOptions::new().create(true).append(true).open(&vsftpd).unwrap();
    f.write_all(lines.map(|l| l + "\n").concat().as_bytes()).unwrap();
    drop(f);
    want.extend([
        change("create", "/in/v.csv", None),
        change("update", "/in/v.csv", None),
        change("create", "/in/new", None),
        change("move", "/in/v.csv", Some("/in/new/v.csv")),
        change("destroy", "/in/new/v.csv", None),
    ]);
    let all = received(&receiver, want.len(), &secret);
    assert_eq!(all, sorted(want.clone()));
    let _ = tail.0.kill();
    // Nothing more comes: no duplicate, failed, late, outside or unsubscribed call fires.
    std::thread::sleep(std::time::Duration::from_millis(1_500));
    assert_eq!(receiver.count(), want.len());
    let ids: std::collections::HashSet<String> =
        receiver.all().iter().map(|r| r.header("webhook-id").to_owned()).collect();
    assert_eq!(ids.len(), want.len(), "one webhook-id per event");
}

/// Kills the child when dropped.
struct Guard(std::process::Child);

impl Drop for Guard {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scopeguard(child: std::process::Child) -> Guard {
    Guard(child)
}

/// Targets on refused addresses are refused when the subscription is made,
/// a name that resolves to loopback too; a redirect is never followed.
#[test]
fn refused_targets_and_redirects() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    let (s, _) = server.send(server.http.put(server.url("/v1/accounts/acme")).bearer_auth(ADMIN).json(&json!({})));
    assert_eq!(s, 200);
    for url in [
        "http://127.0.0.1:9/hook",
        "http://[::1]:9/hook",
        "http://10.0.0.1/hook",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::ffff:127.0.0.1]/hook",
        "http://[fd00:ec2::254]/",
        "http://100.64.0.1/",
        "http://localhost:9/hook",
        "ftp://example.com/x",
        "file:///etc/passwd",
    ] {
        let (s, v) = server.send(
            server.http.post(server.url("/v1/accounts/acme/webhooks")).bearer_auth(ADMIN).json(&json!({"url": url})),
        );
        assert_eq!(s, 400, "{url}: {v}");
        assert!(v["error"]["message"].as_str().unwrap().starts_with("url: "), "{url}: {v}");
    }
    let (_, v) = server.get(ADMIN, "/v1/accounts/acme/webhooks");
    assert_eq!(v["webhooks"], json!([]));
    server.stop();

    // A redirect (to loopback) is a failed attempt, not followed.
    let server = harness::start(&dir.path().join("data"), ALLOW_PRIVATE);
    let inner = Receiver::start();
    let redirecting = Receiver::scripted(vec![Reply::Status(307, format!("location: {}\r\n", inner.url))]);
    let (id, _) = subscribe(&server, "acme", json!({"url": redirecting.url}));
    server.post_events(ADMIN, &write("r1", "/in/a.csv", ""));
    redirecting.wait_for(1, WAIT);
    let attempts = wait_attempts(&server, "acme", &id, 1);
    assert_eq!(attempts[0]["status"], "failed");
    assert_eq!(attempts[0]["response_code"], 307);
    assert!(attempts[0]["error"].as_str().unwrap().contains("redirects are not followed"), "{attempts:?}");
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(inner.count(), 0, "the redirect's target got nothing");
    assert_eq!(redirecting.script_left(), 0);
}

/// The attempts of a webhook once there are at least `n`, newest first.
pub fn wait_attempts(server: &Server, account: &str, id: &str, n: usize) -> Vec<Value> {
    let path = format!("/v1/accounts/{account}/webhooks/{id}/deliveries");
    let mut attempts = Vec::new();
    harness::wait_for(WAIT, || {
        attempts = server.get(ADMIN, &path).1["attempts"].as_array().cloned().unwrap_or_default();
        attempts.len() >= n
    });
    attempts
}

/// Who may manage, read or not touch webhooks, and that no one reads a secret back.
#[test]
fn scopes_and_secrets() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), ALLOW_PRIVATE);
    let receiver = Receiver::start();
    let (id, secret) = subscribe(&server, "acme", json!({"url": receiver.url, "folder": "/in/"}));
    subscribe(&server, "globex", json!({"url": receiver.url}));
    let token = |body: Value, path: &str| {
        let (s, v) = server.send(server.http.post(server.url(path)).bearer_auth(ADMIN).json(&body));
        assert_eq!(s, 201, "{v}");
        v["secret"].as_str().unwrap().to_owned()
    };
    let support = token(json!({"scope": "support"}), "/v1/tokens");
    let ingest = token(json!({"scope": "ingest"}), "/v1/tokens");
    let acme_key = token(json!({}), "/v1/accounts/acme/keys");
    let globex_key = token(json!({}), "/v1/accounts/globex/keys");
    let list = "/v1/accounts/acme/webhooks";
    let one = format!("/v1/accounts/acme/webhooks/{id}");
    for (who, reads, manages) in
        [(&support, 200, 403), (&ingest, 403, 403), (&acme_key, 200, 200), (&globex_key, 403, 403)]
    {
        assert_eq!(server.get(who, list).0, reads);
        assert_eq!(server.get(who, &one).0, reads);
        let patch = server.http.patch(server.url(&one)).bearer_auth(who).json(&json!({"actions": ["create"]}));
        assert_eq!(server.send(patch).0, manages);
    }
    let (_, v) = server.get(&support, &one);
    assert_eq!(v["webhook"]["folder"], "/in");
    assert_eq!(v["webhook"]["actions"], json!(["create"]));
    // A change to what is already so changes nothing, `updated_at` included.
    assert!(v["webhook"]["updated_at"].is_string(), "{v}");
    for same in [json!({}), json!({"actions": ["create"], "enabled": true})] {
        let (status, after) = server.send(server.http.patch(server.url(&one)).bearer_auth(&acme_key).json(&same));
        assert_eq!(status, 200, "{after}");
        assert_eq!(after["webhook"]["updated_at"], v["webhook"]["updated_at"], "{same}");
    }
    let text = v.to_string();
    assert!(!text.contains(&secret) && !text.contains("whsec_"), "no secret is read back: {text}");
    // Custom headers: bounded, never the delivery's own, values masked when read.
    let headers = |h: Value| {
        server.send(server.http.patch(server.url(&one)).bearer_auth(&acme_key).json(&json!({"headers": h}))).0
    };
    assert_eq!(headers(json!({"webhook-id": "x"})), 400);
    assert_eq!(headers(json!({"Connection": "close"})), 400);
    let many: BTreeMap<String, String> = (0..11).map(|i| (format!("x-{i}"), "v".into())).collect();
    assert_eq!(headers(json!(many)), 400);
    assert_eq!(headers(json!({"Authorization": "Bearer receiver-secret"})), 200);
    let (_, v) = server.get(ADMIN, &one);
    assert_eq!(v["webhook"]["headers"], json!({"authorization": "***"}));
    // Sent back as read (the mask), a header keeps its value; a mask with no value to keep is 400.
    assert_eq!(headers(json!({"authorization": "***", "x-team": "ops"})), 200);
    assert_eq!(headers(json!({"authorization": "***", "x-new": "***"})), 400);
    server.post_events(ADMIN, &write("s1", "/in/a.csv", ""));
    let got = receiver.wait_for(1, WAIT);
    assert_eq!(got[0].header("authorization"), "Bearer receiver-secret");
    assert_eq!(got[0].header("x-team"), "ops");
    // Masked values stay with their host (they may be its credentials): a
    // move elsewhere needs them given again, and a move on the same host keeps them.
    let other = Receiver::start();
    let patch = |body: Value| server.send(server.http.patch(server.url(&one)).bearer_auth(&acme_key).json(&body));
    let (status, v) = patch(json!({"url": other.url}));
    assert_eq!(status, 409, "{v}");
    assert!(v.to_string().contains("give its headers again"), "{v}");
    assert_eq!(patch(json!({"url": other.url, "headers": {"authorization": "***"}})).0, 400);
    assert_eq!(patch(json!({"url": format!("{}?moved=1", receiver.url)})).0, 200, "same host");
    assert_eq!(server.get(ADMIN, &one).1["webhook"]["headers"], json!({"authorization": "***", "x-team": "***"}));
    assert_eq!(patch(json!({"url": other.url, "headers": {"x-team": "dev"}})).0, 200);
    server.post_events(ADMIN, &write("s1b", "/in/c.csv", ""));
    let got = other.wait_for(1, WAIT);
    assert_eq!((got[0].header("authorization"), got[0].header("x-team")), ("", "dev"));
    // Nor at once: a move and a masked value kept, sent together, never
    // leave the value at the new host (each is decided from the webhook as
    // it is when written).
    for round in 0..20 {
        let (race, _) = subscribe(
            &server,
            "acme",
            json!({"url": receiver.url, "folder": "/race", "headers": {"x-secret": "real"}}),
        );
        let path = format!("/v1/accounts/acme/webhooks/{race}");
        let patch = |body: Value| {
            let (server, path, key) = (&server, &path, &acme_key);
            move || server.send(server.http.patch(server.url(path)).bearer_auth(key).json(&body)).0
        };
        let move_away = patch(json!({"url": other.url, "headers": {}}));
        let keep_masked = patch(json!({"headers": {"x-secret": "***"}}));
        std::thread::scope(|scope| {
            let a = scope.spawn(move_away);
            let b = scope.spawn(keep_masked);
            (a.join().unwrap(), b.join().unwrap())
        });
        let (_, v) = server.get(ADMIN, &path);
        let at_other = v["webhook"]["url"] == other.url.as_str();
        assert!(!(at_other && v["webhook"]["headers"].get("x-secret").is_some()), "round {round}: {v}");
        assert_eq!(server.send(server.http.delete(server.url(&path)).bearer_auth(ADMIN)).0, 204);
    }
    // Unknown ones are 404; a bad body is 400.
    assert_eq!(server.get(ADMIN, "/v1/accounts/acme/webhooks/wh_nope").0, 404);
    assert_eq!(server.get(ADMIN, "/v1/accounts/nobody/webhooks").0, 404);
    // An id longer than any stored one (256 bytes) is 404 for every operation, and writes go on.
    let long = format!("/v1/accounts/acme/webhooks/{}", "w".repeat(256));
    assert_eq!(server.get(&support, &long).0, 404);
    assert_eq!(server.send(server.http.delete(server.url(&long)).bearer_auth(&acme_key)).0, 404);
    let patch = server.http.patch(server.url(&long)).bearer_auth(ADMIN).json(&json!({"enabled": false}));
    assert_eq!(server.send(patch).0, 404);
    assert_eq!(server.send(server.http.post(server.url(&format!("{long}/rotate-secret"))).bearer_auth(ADMIN)).0, 404);
    assert_eq!(server.get(ADMIN, &format!("{long}/deliveries")).0, 404);
    let (status, v) =
        server.send(server.http.post(server.url(&format!("{one}/deliveries/x1/redeliver"))).bearer_auth(ADMIN));
    assert_eq!(status, 400);
    assert!(v["error"]["message"].as_str().unwrap().contains("\"x1\" is no delivery id"), "{v}");
    assert_eq!(server.post_events(ADMIN, &write("s2", "/in/b.csv", "")).0, 200);
    assert_eq!(server.http.get(server.url("/readyz")).send().unwrap().status().as_u16(), 200);
    let bad = server
        .http
        .post(server.url(list))
        .bearer_auth(ADMIN)
        .json(&json!({"url": receiver.url, "actions": ["delete"]}));
    assert_eq!(server.send(bad).0, 400);
    let bad = server.http.post(server.url(list)).bearer_auth(ADMIN).json(&json!({"url": receiver.url, "folder": "in"}));
    assert_eq!(server.send(bad).0, 400);
    for hidden in ["/a\u{202e}b", "/a\u{200b}b", "/a\u{2028}b"] {
        let bad =
            server.http.post(server.url(list)).bearer_auth(ADMIN).json(&json!({"url": receiver.url, "folder": hidden}));
        let (status, v) = server.send(bad);
        assert_eq!(status, 400, "{hidden:?}: {v}");
    }
}

/// The CLI end to end: create, list, deliveries, redeliver (same webhook-id),
/// rotate-secret (both secrets sign), update --disable (events kept),
/// --enable and replay --since, delete.
#[test]
fn the_webhooks_command() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), ALLOW_PRIVATE);
    let (s, _) = server.send(server.http.put(server.url("/v1/accounts/acme")).bearer_auth(ADMIN).json(&json!({})));
    assert_eq!(s, 200);
    let receiver = Receiver::start();
    let cli = |args: &[&str]| {
        let mut all = vec!["webhooks", "--server", &server.base, "--token", ADMIN];
        all.extend_from_slice(args);
        let out = callmeter(&all);
        assert!(out.status.success(), "{args:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let created = cli(&[
        "create",
        "acme",
        "--url",
        &receiver.url,
        "--folder",
        "/in",
        "--actions",
        "create, update",
        "--header",
        "X-Env: test",
    ]);
    let field = |text: &str, name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).unwrap().split_whitespace().next().unwrap().to_owned()
    };
    let (id, secret) = (field(&created, "id:"), field(&created, "secret:"));
    assert!(secret.starts_with("whsec_"));
    let listed = cli(&["list", "acme"]);
    assert!(listed.contains(&id) && listed.contains("create,update") && listed.contains("enabled"), "{listed}");
    let (head, row) = (listed.lines().next().unwrap(), listed.lines().find(|l| l.contains(&id)).unwrap());
    assert_eq!(head.find(" url "), row.find(&receiver.url).map(|at| at - 1), "the columns line up:\n{listed}");
    let empty = ["webhooks", "--server", &server.base, "--token", ADMIN, "create", "acme", "--url", &receiver.url];
    let out = callmeter(&[&empty[..], &["--actions", ""]].concat());
    assert!(!out.status.success() && String::from_utf8_lossy(&out.stderr).contains("an empty name"));

    server.post_events(ADMIN, &write("c1", "/in/a.csv", ""));
    let got = receiver.wait_for(1, WAIT);
    assert!(got[0].signed_with(&secret));
    assert_eq!(got[0].header("x-env"), "test");
    wait_attempts(&server, "acme", &id, 1);
    let deliveries = cli(&["deliveries", "acme", &id, "--json"]);
    let v: Value = serde_json::from_str(&deliveries).unwrap();
    let delivery = v["attempts"][0]["delivery"].as_u64().unwrap().to_string();
    assert_eq!(v["attempts"][0]["status"], "delivered");
    let table = cli(&["deliveries", "acme", &id]);
    let (head, row) = (table.lines().next().unwrap(), table.lines().nth(1).unwrap());
    // The columns line up: each of the row's fields starts under its heading.
    for (heading, field) in [("at", v["attempts"][0]["at"].as_str().unwrap()), ("status", "delivered")] {
        assert_eq!(head.find(&format!(" {heading} ")).map(|at| at + 1), row.find(field), "{heading}:\n{table}");
    }

    cli(&["redeliver", "acme", &id, &delivery]);
    let got = receiver.wait_for(2, WAIT);
    assert_eq!(got[1].header("webhook-id"), got[0].header("webhook-id"), "a redelivery keeps the webhook-id");
    assert_eq!(got[1].body, got[0].body);

    let rotated = cli(&["rotate-secret", "acme", &id]);
    let new_secret = field(&rotated, "secret:");
    server.post_events(ADMIN, &write("c2", "/in/b.csv", ""));
    let got = receiver.wait_for(3, WAIT);
    assert_eq!(got[2].header("webhook-signature").split(' ').count(), 2, "both secrets sign for 24 h");
    assert!(got[2].signed_with(&secret) && got[2].signed_with(&new_secret));
    assert_eq!(got[2].header("x-env"), "test");
    cli(&["update", "acme", &id, "--no-headers"]);

    let before_disable = Utc::now().to_rfc3339();
    cli(&["update", "acme", &id, "--disable"]);
    server.post_events(ADMIN, &write("c3", "/in/c.csv", ""));
    std::thread::sleep(std::time::Duration::from_millis(1_000));
    assert_eq!(receiver.count(), 3, "a disabled webhook keeps its events");
    let listed = cli(&["list", "acme"]);
    assert!(listed.contains("disabled"), "{listed}");
    cli(&["update", "acme", &id, "--enable"]);
    let replayed = cli(&["replay", "acme", &id, "--since", &before_disable]);
    assert!(replayed.starts_with("1 events"), "{replayed}");
    let got = receiver.wait_for(4, WAIT);
    assert_eq!(got[3].change(), change("create", "/in/c.csv", None));
    assert!(got[3].signed_with(&new_secret));
    assert_eq!(got[3].header("x-env"), "", "--no-headers took the header away");

    let ahead = (Utc::now() + chrono::Duration::days(1)).to_rfc3339();
    let out =
        callmeter(&["webhooks", "--server", &server.base, "--token", ADMIN, "replay", "acme", &id, "--since", &ahead]);
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("0 events"));
    assert!(String::from_utf8_lossy(&out.stderr).contains("is in the future"), "a hint for a time yet to come");

    // A value from the command line stays one path segment: this once deleted the token.
    let (s, v) =
        server.send(server.http.post(server.url("/v1/tokens")).bearer_auth(ADMIN).json(&json!({"scope": "support"})));
    assert_eq!(s, 201, "{v}");
    let token = v["token"]["id"].as_str().unwrap().to_owned();
    let traversal = format!("../../../tokens/{token}");
    let out = callmeter(&["webhooks", "--server", &server.base, "--token", ADMIN, "delete", "acme", &traversal]);
    assert!(!out.status.success(), "no webhook has that id");
    assert!(String::from_utf8_lossy(&out.stderr).contains("404"), "{}", String::from_utf8_lossy(&out.stderr));
    let (_, tokens) = server.send(server.http.get(server.url("/v1/tokens")).bearer_auth(ADMIN));
    assert!(tokens.to_string().contains(&token), "the token is still there: {tokens}");
    let out = callmeter(&["webhooks", "--server", &server.base, "--token", ADMIN, "delete", "acme", ".."]);
    assert!(!out.status.success());

    cli(&["delete", "acme", &id]);
    assert!(!cli(&["list", "acme"]).contains(&id));
}

/// The README's receiver snippet is the code of `webhook_receiver.rs`, so that the snippet is tested.
#[test]
fn the_readme_snippet_is_the_tested_verifier() {
    let source = include_str!("webhook_receiver.rs");
    let start = source.find("// README: verify").unwrap();
    let start = start + source[start..].find('\n').unwrap() + 1;
    let end = source.find("// README: end").unwrap();
    let snippet = &source[start..end];
    let readme = include_str!("../../README.md");
    assert!(
        readme.contains(snippet),
        "README.md's verification snippet differs from tests/it/webhook_receiver.rs:\n{snippet}"
    );
}
