//! Admin operations across restarts: the admin token's rotation against a
//! configured token (DESIGN §8), and where a backup may go (DESIGN §9).

use crate::harness::{self, ago, event, Server, ADMIN};
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A server whose admin token comes from `CALLMETER_ADMIN_TOKEN = token`,
/// with its log (WARN and up) written to `log`.
fn start_with_token(data: &Path, token: &str, log: &Path) -> Server {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(data)
        .env("CALLMETER_ADMIN_TOKEN", token)
        .env("CALLMETER_LOG", "warn")
        .env("NO_COLOR", "1")
        .env_remove("CALLMETER_CONFIG")
        .current_dir(data.parent().unwrap())
        .stdout(Stdio::piped())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn()
        .expect("start callmeter serve");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("listening on ") {
                    break url.trim().to_owned();
                }
            }
            _ => panic!("server exited before listening: {}", std::fs::read_to_string(log).unwrap_or_default()),
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
    Server { child, base, http }
}

/// The status of an admin-only request with this token.
fn admin_status(server: &Server, token: &str) -> u16 {
    server.get(token, "/v1/tokens").0
}

#[test]
fn a_rotation_outlives_a_restart_with_the_same_configured_token_and_a_new_one_overrides_it() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let log = dir.path().join("serve.log");
    let server = start_with_token(&data, "env-token-one", &log);
    assert_eq!(admin_status(&server, "env-token-one"), 200);
    let (s, v) = server.send(server.http.post(server.url("/v1/admin/rotate-token")).bearer_auth("env-token-one"));
    assert_eq!(s, 200, "{v}");
    let rotated = v["secret"].as_str().unwrap().to_owned();
    assert_eq!(admin_status(&server, "env-token-one"), 401);
    assert_eq!(admin_status(&server, &rotated), 200);
    server.stop();

    // The same configured token: the rotation stands, and the log says why.
    let server = start_with_token(&data, "env-token-one", &log);
    assert_eq!(admin_status(&server, &rotated), 200);
    assert_eq!(admin_status(&server, "env-token-one"), 401, "a rotated-away token must not come back");
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("WARN") && said.contains("configured admin token ignored"), "{said}");
    assert!(said.contains("configure a different one"), "{said}");
    server.stop();

    // A different configured token: set on purpose, it replaces the rotated one.
    let server = start_with_token(&data, "env-token-two", &log);
    assert_eq!(admin_status(&server, "env-token-two"), 200);
    assert_eq!(admin_status(&server, &rotated), 401);
    assert_eq!(admin_status(&server, "env-token-one"), 401);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("WARN") && said.contains("configured admin token overrides"), "{said}");
    assert!(!data.join("admin-token").exists(), "the rotated secret is not left behind");
    server.stop();

    // The first configured token again (a rolled-back config): replaced tokens never come back.
    let server = start_with_token(&data, "env-token-one", &log);
    assert_eq!(admin_status(&server, "env-token-one"), 401, "a replaced token must not come back");
    assert_eq!(admin_status(&server, "env-token-two"), 200);
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(said.contains("a later configured token replaced it"), "{said}");
    server.stop();

    // No configured token at all for one start: the token in force stays, none is made.
    let mut plain = Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env_remove("CALLMETER_ADMIN_TOKEN")
        .env("CALLMETER_LOG", "warn")
        .env_remove("CALLMETER_CONFIG")
        .current_dir(dir.path())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(plain.stdout.take().unwrap()).lines();
    let mut printed = Vec::new();
    let base = loop {
        let line = lines.next().expect("listening").unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_owned();
        }
        printed.push(line);
    };
    assert!(printed.iter().all(|l| !l.contains("admin token")), "no new admin token is made: {printed:?}");
    std::thread::spawn(move || for _ in lines {});
    let http = reqwest::blocking::Client::new();
    let status = |token: &str| http.get(format!("{base}/v1/tokens")).bearer_auth(token).send().unwrap().status();
    assert_eq!(status("env-token-two"), 200, "the configured token still works with the variable unset");
    Server { child: plain, base: base.clone(), http: http.clone() }.stop();

    // What the folder keeps: private files, and no configured secret in them.
    use std::os::unix::fs::PermissionsExt;
    for entry in std::fs::read_dir(&data).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name().into_string().unwrap();
        if name.starts_with("admin-token") {
            assert_eq!(entry.metadata().unwrap().permissions().mode() & 0o777, 0o600, "{name}");
            let text = std::fs::read_to_string(entry.path()).unwrap();
            assert!(!text.contains("env-token"), "{name} holds a configured secret");
        }
    }
    // No log line carries a secret.
    let said = std::fs::read_to_string(&log).unwrap();
    assert!(!said.contains("env-token") && !said.contains(&rotated), "{said}");
}

/// POSTs a backup request; returns the status and the error message, if any.
fn backup(server: &Server, dir: &str) -> (u16, String) {
    let (s, v) = server.send(
        server.http.post(server.url("/v1/admin/backup")).bearer_auth(ADMIN).json(&serde_json::json!({ "dir": dir })),
    );
    (s, v["error"]["message"].as_str().unwrap_or_default().to_owned())
}

#[test]
fn a_backup_goes_only_to_an_empty_folder_outside_the_data_folder() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path().canonicalize().unwrap();
    let data = root.join("data");
    let server = harness::start(&data, &[]);
    let t = ago(30);
    let body: String = (0..50).map(|i| event("acme", &format!("k{i}"), &t, "rest", "") + "\n").collect();
    assert_eq!(server.post_events(ADMIN, &body).1["accepted"], 50);

    std::os::unix::fs::symlink(&data, root.join("link")).unwrap();
    std::fs::create_dir(root.join("full")).unwrap();
    std::fs::write(root.join("full/notes.txt"), "keep me").unwrap();
    let inside = data.join("keyspaces/x");
    let cases = [
        ("relative/copy".to_owned(), "not an absolute path"),
        (String::new(), "give the folder"),
        (inside.display().to_string(), "is inside the data folder"),
        (data.display().to_string(), "is inside the data folder"),
        (root.join("link/copy").display().to_string(), "is inside the data folder"),
        (root.join("full/../data/copy").display().to_string(), "is inside the data folder"),
        (root.display().to_string(), "contains the data folder"),
        (root.join("full").display().to_string(), "is not empty"),
    ];
    for (target, rule) in &cases {
        let (status, message) = backup(&server, target);
        assert_eq!(status, 400, "{target:?}: {message}");
        assert!(message.contains(rule), "{target:?}: {message}");
        if !target.is_empty() && target != "relative/copy" {
            assert!(message.contains(target.as_str()), "the message names the path: {message}");
        }
    }
    assert!(!inside.exists() && !data.join("copy").exists(), "nothing was written into the data folder");
    assert_eq!(std::fs::read_dir(root.join("full")).unwrap().count(), 1);

    // The CLI sends a relative folder as an absolute one, from its own working directory.
    let out = Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(["backup", "--server", &server.base, "--token", ADMIN, "nightly/copy"])
        .current_dir(&root)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(said.contains(&format!("backup written to {}", root.join("nightly/copy").display())), "{said}");
    server.stop();

    // The data folder still starts, and so does the copy, with the same calls.
    let again = harness::start(&data, &[]);
    assert_eq!(again.usage("acme", "current")["calls"], 50);
    again.stop();
    let restored = harness::start(&root.join("nightly/copy"), &[]);
    assert_eq!(restored.usage("acme", "current")["calls"], 50);
}
