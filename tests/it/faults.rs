//! Fault injection at every step that writes (crates/store/src/failpoint.rs):
//! a crash (SIGKILL) or a failure at that step under load, then a restart and
//! an exact count. Every acknowledged call is stored once, nothing of a failed
//! request counts, and no retry is answered `duplicate` for a call that is not
//! stored. Checkpoints run every 30 ms so that the load crosses them.

use crate::harness::{self, Server, ADMIN};
use serde_json::Value;
use std::collections::HashSet;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ACCOUNT: &str = "faults";
const BATCH: usize = 100;
const CLIENTS: usize = 2;
const FAST_CHECKPOINTS: &[&str] = &["--checkpoint-interval-ms", "30"];

/// What the clients saw.
#[derive(Default)]
struct Seen {
    /// Ids answered accepted or duplicate.
    acked: HashSet<String>,
    /// Batches with no answer (the server died): a real client retries them.
    unanswered: Vec<Vec<String>>,
    /// Batches answered 503 or 507: failed as a whole.
    failed: Vec<Vec<String>>,
}

fn body(ids: &[String]) -> String {
    let time = harness::ago(20);
    ids.iter()
        .map(|id| {
            format!(r#"{{"id":"{id}","account":"{ACCOUNT}","time":"{time}","interface":"sftp","method":"stat","path":"/in"}}"#) + "\n"
        })
        .collect()
}

/// Posts one batch: `Some(answer)` when answered 200, `Err(status)` when answered otherwise, `None` without answer.
fn post(http: &reqwest::blocking::Client, url: &str, ids: &[String]) -> Option<Result<Value, u16>> {
    let resp =
        http.post(url).bearer_auth(ADMIN).header("content-type", "application/x-ndjson").body(body(ids)).send().ok()?;
    let status = resp.status().as_u16();
    if status != 200 {
        return Some(Err(status));
    }
    resp.json::<Value>().ok().map(Ok)
}

/// Clients send new batches until the server stops answering, a request fails, or `until` passes.
fn load(server: &Server, prefix: &str, until: Duration) -> Seen {
    let seen = Arc::new(Mutex::new(Seen::default()));
    let next = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (url, seen, next, stop) = (server.url("/v1/events"), seen.clone(), next.clone(), stop.clone());
            let prefix = prefix.to_owned();
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(20)).build().unwrap();
                while !stop.load(Ordering::Relaxed) && started.elapsed() < until {
                    let n = next.fetch_add(BATCH as u64, Ordering::Relaxed);
                    let ids: Vec<String> = (n..n + BATCH as u64).map(|i| format!("{prefix}-{i}")).collect();
                    match post(&http, &url, &ids) {
                        Some(Ok(v)) => {
                            for r in v["results"].as_array().unwrap() {
                                assert_eq!(r["status"], "accepted", "new ids are accepted: {r}");
                            }
                            seen.lock().unwrap().acked.extend(ids);
                        }
                        Some(Err(status)) => {
                            assert!(
                                status == 503 || status == 507,
                                "a failed request answers 503 or 507, not {status}"
                            );
                            seen.lock().unwrap().failed.push(ids);
                            stop.store(true, Ordering::Relaxed);
                        }
                        None => {
                            seen.lock().unwrap().unanswered.push(ids);
                            stop.store(true, Ordering::Relaxed);
                        }
                    }
                }
            })
        })
        .collect();
    for c in clients {
        c.join().unwrap();
    }
    Arc::try_unwrap(seen).ok().unwrap().into_inner().unwrap()
}

/// Retries batches on a healthy server: every id must come back accepted, or
/// duplicate when `may_be_stored` (a crash may have kept an unanswered call).
fn retry(server: &Server, batches: &[Vec<String>], may_be_stored: bool, acked: &mut HashSet<String>) {
    let http = reqwest::blocking::Client::new();
    for ids in batches {
        let v = post(&http, &server.url("/v1/events"), ids).expect("answered").expect("200");
        for (id, r) in ids.iter().zip(v["results"].as_array().unwrap()) {
            let status = r["status"].as_str().unwrap();
            let allowed = status == "accepted" || (may_be_stored && status == "duplicate");
            assert!(allowed, "retry of {id}: {status}");
            acked.insert(id.clone());
        }
    }
}

/// The store holds exactly `expected`, each once, and usage counts exactly them.
fn assert_exact(server: &Server, expected: &HashSet<String>) {
    let stored = server.stored_ids(ACCOUNT);
    let set: HashSet<&String> = stored.iter().collect();
    assert_eq!(set.len(), stored.len(), "a call is stored twice");
    for id in expected {
        assert!(set.contains(id), "{id} was acknowledged (or answered duplicate) and is not stored");
    }
    assert_eq!(stored.len(), expected.len(), "calls stored that were never acknowledged");
    let usage = server.usage(ACCOUNT, "current");
    assert_eq!(usage["calls"].as_u64().unwrap() as usize, expected.len(), "usage counts each call once");
}

fn failpoints(spec: &str) -> [(&str, &str); 1] {
    [("CALLMETER_FAILPOINTS", spec)]
}

/// A crash at `spec` under load; a restart; the retries; an exact count.
fn crash_at(spec: &str) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = harness::start_with(&data, "127.0.0.1:0", FAST_CHECKPOINTS, &failpoints(spec));
    let seen = load(&server, "c", Duration::from_secs(60));
    let status = server.wait_exit(Duration::from_secs(30));
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{spec}: the failpoint crashed the server");
    assert!(seen.failed.is_empty(), "{spec}: no request failed before the crash");
    assert!(!seen.acked.is_empty() || !seen.unanswered.is_empty(), "{spec}: load reached the server");
    let server = harness::start(&data, FAST_CHECKPOINTS);
    let mut expected = seen.acked;
    retry(&server, &seen.unanswered, true, &mut expected);
    assert_exact(&server, &expected);
    // And once more after a clean stop and a start that replays nothing.
    server.stop();
    let server = harness::start(&data, &[]);
    assert_eq!(server.metric("callmeter_store_open_replayed_calls"), 0, "a clean stop checkpoints");
    assert_exact(&server, &expected);
}

#[test]
fn a_crash_at_any_step_of_a_commit_loses_nothing_acknowledged() {
    for spec in ["commit.after_engine=5:crash", "sync.before=5:crash", "sync.after=5:crash"] {
        crash_at(spec);
    }
}

#[test]
fn a_crash_at_any_step_of_a_checkpoint_loses_nothing_and_leaves_no_false_duplicate() {
    for spec in [
        "checkpoint.keys_half_written=3:crash",
        "checkpoint.after_keys=3:crash",
        "checkpoint.before_commit=3:crash",
        "checkpoint.after_commit=3:crash",
    ] {
        crash_at(spec);
    }
}

/// A failing step under load: its request (and those sharing its commit or
/// sync) fails with 503 and nothing of it counts, before or after a restart
/// (by `restart`: a clean stop or a kill); their retries are accepted as new.
fn fail_at(spec: &str, restart: fn(Server)) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = harness::start_with(&data, "127.0.0.1:0", FAST_CHECKPOINTS, &failpoints(spec));
    let seen = load(&server, "f", Duration::from_secs(60));
    assert!(!seen.failed.is_empty(), "{spec}: a request failed");
    assert!(seen.unanswered.is_empty(), "{spec}: every request was answered");
    assert_exact(&server, &seen.acked);
    let (status, _) = server.post_events(ADMIN, &body(&["after-the-failure".to_owned()]));
    assert_eq!(status, 503, "{spec}: no writes until a restart");
    restart(server);
    let server = harness::start(&data, &[]);
    assert_exact(&server, &seen.acked);
    let mut expected = seen.acked;
    retry(&server, &seen.failed, false, &mut expected);
    assert_exact(&server, &expected);
}

#[test]
fn a_failed_sync_or_commit_counts_nothing_of_its_requests() {
    fail_at("sync=6:error", Server::stop);
    fail_at("sync=6:error", Server::kill);
    fail_at("commit=6:error", Server::stop);
}

/// The undo of a failed sync survives a crash while it is applied.
#[test]
fn a_crash_while_undoing_a_failed_sync_undoes_it_on_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = harness::start_with(&data, "127.0.0.1:0", FAST_CHECKPOINTS, &failpoints("sync=4:error"));
    let seen = load(&server, "u", Duration::from_secs(60));
    assert!(!seen.failed.is_empty());
    server.stop();
    let crashed = harness::try_start(&data, "127.0.0.1:0", &[], &failpoints("undo.before_sync=1:crash"));
    assert!(crashed.is_err(), "the start crashed while undoing");
    assert!(data.join("unacknowledged.undo").exists(), "the undo record stays until it is applied");
    let server = harness::start(&data, &[]);
    assert!(!data.join("unacknowledged.undo").exists(), "applied, then removed");
    assert_exact(&server, &seen.acked);
}

/// A failing checkpoint is retried; nothing is lost or doubled meanwhile.
#[test]
fn a_failed_checkpoint_is_retried_and_counts_stay_exact() {
    for spec in
        ["checkpoint.after_keys=2:error", "checkpoint.before_commit=2:error", "checkpoint.keys_half_written=2:error"]
    {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        let server = harness::start_with(&data, "127.0.0.1:0", FAST_CHECKPOINTS, &failpoints(spec));
        let seen = load(&server, "k", Duration::from_millis(2500));
        assert!(
            seen.failed.is_empty() && seen.unanswered.is_empty(),
            "{spec}: a checkpoint's failure fails no request"
        );
        assert_exact(&server, &seen.acked);
        server.kill();
        let server = harness::start(&data, &[]);
        assert_exact(&server, &seen.acked);
    }
}

/// A crash during the checkpoint that a start makes of the replayed calls.
#[test]
fn a_crash_while_recovering_is_recovered_from() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    // A long interval: the crash leaves calls in the block log.
    let server = harness::start_with(&data, "127.0.0.1:0", &[], &failpoints("sync.after=8:crash"));
    let seen = load(&server, "r", Duration::from_secs(60));
    server.wait_exit(Duration::from_secs(30));
    for spec in ["checkpoint.after_keys=1:crash", "checkpoint.after_commit=1:crash"] {
        let crashed = harness::try_start(&data, "127.0.0.1:0", &[], &failpoints(spec));
        assert!(crashed.is_err(), "{spec}: the start crashed in its recovery checkpoint");
    }
    let server = harness::start(&data, &[]);
    let mut expected = seen.acked;
    retry(&server, &seen.unanswered, true, &mut expected);
    assert_exact(&server, &expected);
}

/// A start that cannot checkpoint what it replayed (here its checkpoint
/// fails; under load, compaction is behind) serves anyway and says how many
/// calls wait; a crash before the next checkpoint replays them again, no
/// more, and counts stay exact.
#[test]
fn a_start_that_cannot_checkpoint_its_replay_leaves_it_for_the_next_start() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = harness::start_with(&data, "127.0.0.1:0", &[], &failpoints("sync.after=8:crash"));
    let seen = load(&server, "w", Duration::from_secs(60));
    server.wait_exit(Duration::from_secs(30));

    let server = harness::start_with(&data, "127.0.0.1:0", &[], &failpoints("checkpoint.after_keys=1:error"));
    let replayed = server.metric("callmeter_store_open_replayed_calls");
    assert!(replayed > 0, "the crash left calls to replay");
    assert_eq!(server.metric("callmeter_store_open_replayed_calls_waiting"), replayed);
    let mut expected = seen.acked;
    retry(&server, &seen.unanswered, true, &mut expected);
    assert_exact(&server, &expected);
    let retried: usize = seen.unanswered.iter().map(Vec::len).sum();
    server.kill();

    let server = harness::start(&data, &[]);
    let again = server.metric("callmeter_store_open_replayed_calls");
    assert!(again >= replayed, "the calls left waiting are replayed again: {again} of {replayed}");
    assert!(again <= replayed + retried as u64, "and only they and the retries: {again}");
    assert_eq!(server.metric("callmeter_store_open_replayed_calls_waiting"), 0);
    assert_exact(&server, &expected);
}

/// A store thread that panics (an assertion of the exactly-once path
/// broken) stops the store's writes: the commit in hand and every write
/// after it are refused, and `/readyz` says the server is not ready rather
/// than look healthy. A restart recovers as from a crash, counts exact.
#[test]
fn a_panic_in_the_writer_stops_writes_and_readiness_and_a_restart_recovers() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = harness::start_with(&data, "127.0.0.1:0", &[], &failpoints("commit.after_engine=3:panic"));
    let http = reqwest::blocking::Client::new();
    let url = server.url("/v1/events");
    let batch = |n: usize| -> Vec<String> { (0..BATCH).map(|i| format!("p{n}-{i}")).collect() };
    let mut expected = HashSet::new();
    let panicked = (0..10).find(|&n| match post(&http, &url, &batch(n)) {
        Some(Ok(_)) => {
            expected.extend(batch(n));
            false
        }
        _ => true,
    });
    let panicked = panicked.expect("the failpoint fired within ten commits");
    assert!(!expected.is_empty(), "commits before the failpoint were acknowledged");
    assert_eq!(post(&http, &url, &batch(99)).map(|r| r.err()), Some(Some(503)), "writes after it are refused");
    let ready = http.get(server.url("/readyz")).send().unwrap();
    assert_eq!(ready.status().as_u16(), 503, "the server says it is not ready");
    server.kill();

    let server = harness::start(&data, &[]);
    retry(&server, &[batch(panicked)], true, &mut expected);
    assert_exact(&server, &expected);
}
