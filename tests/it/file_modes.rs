//! What callmeter writes is its owner's only (folders 0700, files 0600),
//! under the usual umask of 022: the data folder, a backup, a data folder
//! made by `import --data`, and a `tail` checkpoint hold every call and the
//! token hashes.

use crate::harness::{self, ago, event, ADMIN};
use std::io::{BufRead, BufReader};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// `callmeter ARGS` run by a shell whose umask is 022, as a login shell's is.
fn under_umask_022(args: &[&str]) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"umask 022 && exec "$0" "$@""#)
        .arg(env!("CARGO_BIN_EXE_callmeter"))
        .args(args)
        .env_remove("CALLMETER_CONFIG")
        .env("CALLMETER_LOG", "warn");
    cmd
}

/// Every folder and file under `root` (itself included) whose mode is not 0700 or 0600.
fn not_private(root: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    let mut todo = vec![root.to_path_buf()];
    while let Some(path) = todo.pop() {
        let meta = std::fs::symlink_metadata(&path).unwrap();
        let mode = meta.permissions().mode() & 0o777;
        let want = if meta.is_dir() { 0o700 } else { 0o600 };
        if mode != want {
            wrong.push(format!("{} is {mode:o}", path.display()));
        }
        if meta.is_dir() {
            todo.extend(std::fs::read_dir(&path).unwrap().map(|e| e.unwrap().path()));
        }
    }
    wrong
}

/// Counts the folders and files under `root`, to be sure a check saw something.
fn entries(root: &Path) -> usize {
    std::fs::read_dir(root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .map(|p| if p.is_dir() { 1 + entries(&p) } else { 1 })
        .sum()
}

/// `callmeter serve` under umask 022, with the admin token it makes, and its base URL.
fn serve(data: &Path) -> (Child, String) {
    let mut child = under_umask_022(&["serve", "--listen", "127.0.0.1:0", "--data", data.to_str().unwrap()])
        .env_remove("CALLMETER_ADMIN_TOKEN")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("the server exited before listening").unwrap();
        if let Some(url) = line.strip_prefix("listening on ") {
            break url.trim().to_owned();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    (child, base)
}

#[test]
fn the_shell_umask_of_these_tests_would_make_shared_files() {
    // The control: without callmeter's own mask, this shell makes 0644 files.
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("plain");
    let status = Command::new("sh").arg("-c").arg("umask 022 && : > \"$0\"").arg(&file).status().unwrap();
    assert!(status.success());
    assert_eq!(std::fs::metadata(&file).unwrap().permissions().mode() & 0o777, 0o644);
}

#[test]
fn serve_and_its_backup_write_only_private_files() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let (mut child, base) = serve(&data);
    let admin = std::fs::read_to_string(data.join("admin-token")).unwrap().trim().to_owned();
    let client = reqwest::blocking::Client::new();
    let t = ago(30);
    let body: String = (0..500).map(|i| event("acme", &format!("m{i}"), &t, "sftp", "") + "\n").collect();
    let answer = client
        .post(format!("{base}/v1/events"))
        .bearer_auth(&admin)
        .header("content-type", "application/x-ndjson")
        .body(body)
        .send()
        .unwrap();
    assert!(answer.status().is_success());

    let backup = dir.path().join("backups").join("today");
    let out =
        under_umask_022(&["backup", "--server", &base, "--token", &admin, backup.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));

    // A clean stop writes its last checkpoint: those files too.
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    assert!(child.wait().unwrap().success());
    assert!(entries(&data) > 5 && entries(&backup) > 5, "the store wrote its files");
    assert_eq!(not_private(&data), Vec::<String>::new());
    assert_eq!(not_private(&dir.path().join("backups")), Vec::<String>::new());
}

#[test]
fn import_into_a_new_data_folder_and_a_tail_checkpoint_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("calls.ndjson");
    let lines: String = (0..50).map(|i| event("acme", &format!("i{i}"), &ago(60), "rest", "") + "\n").collect();
    std::fs::write(&log, &lines).unwrap();

    let data = dir.path().join("imported").join("data");
    let out = under_umask_022(&["import", "--data", data.to_str().unwrap(), log.to_str().unwrap()]).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(entries(&data) > 5);
    assert_eq!(not_private(&dir.path().join("imported")), Vec::<String>::new());

    let server = harness::start(&dir.path().join("served"), &[]);
    let checkpoint = dir.path().join("tail").join("checkpoint.json");
    std::fs::create_dir(checkpoint.parent().unwrap()).unwrap();
    std::fs::set_permissions(checkpoint.parent().unwrap(), std::fs::Permissions::from_mode(0o700)).unwrap();
    let mut tail = under_umask_022(&["tail", "--server", &server.base, "--token", ADMIN, "--poll-ms", "100"])
        .arg("--checkpoint")
        .arg(&checkpoint)
        .arg(&log)
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let sent = harness::wait_for(Duration::from_secs(60), || {
        checkpoint.exists() && server.usage("acme", "current")["calls"] == 50
    });
    let _ = tail.kill();
    let _ = tail.wait();
    assert!(sent, "tail sent the calls and kept its place");
    assert_eq!(not_private(checkpoint.parent().unwrap()), Vec::<String>::new());
}
