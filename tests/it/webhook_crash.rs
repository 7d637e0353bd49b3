//! Webhooks survive `kill -9` (DESIGN §7: at least once, same `webhook-id`).
//!
//! Rounds of load against a server that is killed at a random moment, or
//! crashes (or fails) at a failpoint of the change pipeline: the writer's
//! commit, the syncer, the change processor's batch, the outbox's claim and
//! completion. After the last restart every change of a stored call (the
//! request log is the truth) is delivered at least once, every delivery is
//! of a stored call, and each call's deliveries carry one `webhook-id`.

use crate::harness::{self, Server, ADMIN};
use crate::webhook_receiver::Receiver;
use crate::webhooks::{subscribe, ALLOW_PRIVATE};
use rand::{Rng, SeedableRng};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

const BATCH: u64 = 20;

/// Sends batches of uploads (each a new path) until the server stops answering or `stop` is raised.
fn load(server: &Server, round: usize, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<()> {
    let url = server.url("/v1/events");
    let next = Arc::new(AtomicU64::new(0));
    std::thread::spawn(move || {
        let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
        let time = harness::ago(5);
        while !stop.load(Ordering::Relaxed) {
            let n = next.fetch_add(BATCH, Ordering::Relaxed);
            let body: String = (n..n + BATCH)
                .map(|i| {
                    let id = format!("r{round}-{i}");
                    harness::event(
                        "acme",
                        &id,
                        &time,
                        "sftp",
                        &format!(r#","operation":"write","path":"/in/{id}.csv""#),
                    ) + "\n"
                })
                .collect();
            let sent =
                http.post(&url).bearer_auth(ADMIN).header("content-type", "application/x-ndjson").body(body).send();
            match sent.map(|r| r.status().as_u16()).unwrap_or(0) {
                200 => {}
                // Busy (a loaded machine: checkpoints waiting for compaction): as a client would, wait and go on,
                // so that the load reaches the round's failpoint.
                503 => std::thread::sleep(Duration::from_millis(200)),
                _ => return,
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    })
}

#[test]
fn kill_dash_nine_with_deliveries_pending_delivers_every_stored_change_at_least_once() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let receiver = Receiver::start();
    let mut rng = rand::rngs::StdRng::seed_from_u64(0x5EB400C);
    let mut flags = ALLOW_PRIVATE.to_vec();
    flags.extend(["--checkpoint-interval-ms", "50"]);
    let server = harness::start(&data, &flags);
    let (_, secret) = subscribe(&server, "acme", json!({"url": receiver.url, "folder": "/in"}));
    server.kill();

    let crashes = [
        "commit.after_engine=4:crash",
        "sync.after=4:crash",
        "processor.before_commit=3:crash",
        "processor.after_commit=3:crash",
        "outbox.claim=6:crash",
        "outbox.complete=5:crash",
        "outbox.complete.after=5:crash",
    ];
    // A failed sync: its calls are answered 503 and undone at the next open, their changes with them.
    let failures =
        ["sync=4:error", "processor.before_commit=2:error", "outbox.complete=3:error", "outbox.claim=3:error"];
    let mut rounds: Vec<(&str, bool)> = crashes.iter().map(|s| (*s, true)).collect();
    rounds.extend(failures.iter().map(|s| (*s, false)));
    rounds.extend(std::iter::repeat_n(("", false), 6));
    for (round, (spec, crashes)) in rounds.into_iter().enumerate() {
        let envs: Vec<(&str, &str)> = if spec.is_empty() { vec![] } else { vec![("CALLMETER_FAILPOINTS", spec)] };
        let server = harness::start_with(&data, "127.0.0.1:0", &flags, &envs);
        let stop = Arc::new(AtomicBool::new(false));
        let client = load(&server, round, stop.clone());
        if crashes {
            let status = server.wait_exit(Duration::from_secs(30));
            assert_eq!(status.signal(), Some(libc::SIGKILL), "{spec}: the failpoint crashed the server");
        } else {
            std::thread::sleep(Duration::from_millis(rng.gen_range(200..900)));
            server.kill();
        }
        stop.store(true, Ordering::Relaxed);
        client.join().unwrap();
    }

    // The last start: everything stored is delivered, at least once, with one webhook-id a call.
    let server = harness::start(&data, ALLOW_PRIVATE);
    let stored: HashSet<String> = server.stored_ids("acme").into_iter().collect();
    assert!(stored.len() > 200, "the load got calls through: {}", stored.len());
    let delivered = |r: &crate::webhook_receiver::Received| r.json()["data"]["call_id"].as_str().unwrap().to_owned();
    let complete = harness::wait_for(Duration::from_secs(60), || {
        let got: HashSet<String> = receiver.all().iter().map(delivered).collect();
        stored.is_subset(&got)
    });
    let all = receiver.all();
    let got: HashSet<String> = all.iter().map(delivered).collect();
    let missing: Vec<&String> = stored.difference(&got).take(5).collect();
    assert!(complete, "{} stored calls were never delivered, e.g. {missing:?}", stored.difference(&got).count());
    let mut ids: HashMap<String, HashSet<String>> = HashMap::new();
    for r in &all {
        let call = delivered(r);
        assert!(stored.contains(&call), "{call} was delivered and is not stored");
        assert!(r.signed_with(&secret));
        ids.entry(call).or_default().insert(r.header("webhook-id").to_owned());
    }
    for (call, webhook_ids) in &ids {
        assert_eq!(webhook_ids.len(), 1, "{call}: one webhook-id on every delivery, got {webhook_ids:?}");
    }
    let distinct: HashSet<&String> = ids.values().flatten().collect();
    assert_eq!(distinct.len(), ids.len(), "no two calls share a webhook-id");
    println!(
        "webhooks after kill -9 rounds: {} stored calls, {} deliveries ({} sent more than once)",
        stored.len(),
        all.len(),
        all.len() - ids.len()
    );
}
