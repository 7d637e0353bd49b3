//! The client commands print as an operator expects: piped into `head` they
//! stop quietly, and prices read as money.

use crate::harness::{self, ago, event, ADMIN};
use std::io::{BufRead, BufReader, Read};
use std::process::{Command, Stdio};

#[test]
fn calls_piped_into_head_end_quietly_with_status_0() {
    let dir = tempfile::tempdir().unwrap();
    let server = harness::start(&dir.path().join("data"), &[]);
    // Far more than a pipe holds (64 KiB): the command is still printing when the reader goes.
    let t = ago(60);
    let path = format!(r#","path":"/{}""#, "deep/".repeat(40));
    let body: String = (0..2000).map(|i| event("acme", &format!("c{i}"), &t, "rest", &path) + "\n").collect();
    assert_eq!(server.post_events(ADMIN, &body).1["accepted"], 2000);

    for format in [&[][..], &["--json"][..]] {
        let mut child = Command::new(env!("CARGO_BIN_EXE_callmeter"))
            .args(["calls", "acme", "--limit", "2000", "--server", &server.base, "--token", ADMIN])
            .args(format)
            .env("CALLMETER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // What `head -1` does: read one line, close the pipe.
        let mut first = String::new();
        BufReader::new(child.stdout.take().unwrap()).read_line(&mut first).unwrap();
        assert!(first.starts_with("time") || first.starts_with('{'), "{first}");
        let status = child.wait().unwrap();
        let mut stderr = String::new();
        child.stderr.take().unwrap().read_to_string(&mut stderr).unwrap();
        assert!(status.success(), "{format:?}: {status}, {stderr}");
        assert_eq!(stderr, "", "{format:?}: nothing said on a closed pipe");
    }
}

#[test]
fn usage_shows_the_overage_price_as_money() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("callmeter.toml");
    let plan = "[[plans]]\nname = \"small\"\nperiod = \"30d\"\nincluded_calls = 10\noverage_price_per_1000 = 1250\ncurrency = \"EUR\"\n";
    std::fs::write(&config, format!("default_plan = \"small\"\n\n{plan}")).unwrap();
    let server = harness::start(&dir.path().join("data"), &["--config", config.to_str().unwrap()]);
    let t = ago(60);
    let body: String = (0..11).map(|i| event("acme", &format!("u{i}"), &t, "rest", "") + "\n").collect();
    assert_eq!(server.post_events(ADMIN, &body).1["accepted"], 11);

    let usage = || {
        let out = Command::new(env!("CARGO_BIN_EXE_callmeter"))
            .args(["usage", "acme", "--server", &server.base, "--token", ADMIN])
            .env("CALLMETER_LOG", "warn")
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8(out.stdout).unwrap()
    };
    let text = usage();
    let line = text.lines().find(|l| l.starts_with("overage")).unwrap_or_else(|| panic!("{text}"));
    assert_eq!(line, "overage                    1 calls, 1 blocks, €12.50", "{text}");
    assert!(!text.contains("minor units"), "{text}");
}

/// A `--limit` out of its range is refused before anything is asked of a server.
#[test]
fn a_limit_out_of_range_is_refused_with_its_range() {
    for args in
        [&["alerts", "acme", "--limit", "0"][..], &["webhooks", "deliveries", "acme", "wh_1", "--limit", "1001"]]
    {
        let out = Command::new(env!("CARGO_BIN_EXE_callmeter")).args(args).output().unwrap();
        assert!(!out.status.success(), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains("--limit") && stderr.contains("1..=1000"), "{stderr}");
    }
}
