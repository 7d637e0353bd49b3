//! `kill -9` at random moments loses no acknowledged call and counts none twice.
//!
//! Each round starts the server with checkpoints every 50–400 ms, so that
//! kills land before, during and after checkpoints, and checks that the
//! start replayed no more than the calls since the last checkpoint: those
//! sent since the previous start, and those that start replayed but could
//! not checkpoint (its engine's compaction behind, as under heavy load). A
//! crash loop does not make starts slower. `CALLMETER_CRASH_ROUNDS` sets the
//! number of rounds (20 by default; the README's torture run uses 1,000).

use crate::harness::{self, ADMIN};
use rand::{Rng, SeedableRng};
use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const ROUNDS: usize = 20;
const BATCH: usize = 200;

fn rounds() -> usize {
    std::env::var("CALLMETER_CRASH_ROUNDS").ok().and_then(|v| v.parse().ok()).unwrap_or(ROUNDS)
}
const CLIENTS: usize = 3;

fn batch_body(ids: &[String], time: &str) -> String {
    let mut s = String::with_capacity(ids.len() * 120);
    for id in ids {
        s += &format!(
            r#"{{"id":"{id}","account":"crash","time":"{time}","interface":"rest","method":"GET","path":"/f"}}"#
        );
        s.push('\n');
    }
    s
}

#[test]
fn kill_dash_nine_loses_nothing_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xC0FFEE);
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    // Each client's batch that was sent but not answered: a real client retries it.
    let unanswered: Arc<Mutex<Vec<Vec<String>>>> = Arc::default();
    let time = harness::ago(30);
    let next_ids = Arc::new(Mutex::new(0u64));
    let rounds = rounds();
    // Calls sent in the round before (answered or not) and those the start before
    // replayed but could not checkpoint: a start replays at most those.
    let (mut sent_before, mut waiting_before) = (0u64, 0u64);
    let mut starts_that_waited = 0;
    let (mut open_ms, mut replayed) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        let interval = rng.gen_range(50..400).to_string();
        let server = harness::start(&data, &["--checkpoint-interval-ms", &interval]);
        let replay = server.metric("callmeter_store_open_replayed_calls");
        let bound = sent_before + waiting_before;
        assert!(
            replay <= bound,
            "round {round}: the start replayed {replay} calls, more than the {sent_before} sent since the previous \
             start and the {waiting_before} it left to checkpoint"
        );
        waiting_before = server.metric("callmeter_store_open_replayed_calls_waiting");
        assert!(waiting_before <= replay);
        starts_that_waited += usize::from(waiting_before > 0);
        replayed.push(replay);
        if round % 100 == 99 {
            // A long run's progress (CALLMETER_CRASH_ROUNDS=1000): what its starts replayed and took.
            let open = server.metric("callmeter_store_open_milliseconds");
            println!("round {}: this start replayed {replay} calls in {open} ms; {starts_that_waited} starts so far left their replay to the next checkpoint", round + 1);
        }
        open_ms.push(server.metric("callmeter_store_open_milliseconds"));
        let sent = Arc::new(std::sync::atomic::AtomicU64::new(0));
        let url = server.url("/v1/events");
        let stop = Arc::new(AtomicBool::new(false));
        let mut clients = Vec::new();
        for c in 0..CLIENTS {
            let (url, stop, acked, unanswered, next_ids, time, sent_calls) = (
                url.clone(),
                stop.clone(),
                acked.clone(),
                unanswered.clone(),
                next_ids.clone(),
                time.clone(),
                sent.clone(),
            );
            clients.push(std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();
                let mut pending: Option<Vec<String>> = unanswered.lock().unwrap().pop();
                let mut sent = 0usize;
                loop {
                    let ids = pending.take().unwrap_or_else(|| {
                        let mut n = next_ids.lock().unwrap();
                        let ids = (0..BATCH).map(|i| format!("r{round}-c{c}-{}", *n + i as u64)).collect();
                        *n += BATCH as u64;
                        ids
                    });
                    // Every few batches, resend ids that were already acknowledged: they must come back duplicate.
                    let mut body_ids = ids.clone();
                    if sent % 5 == 4 {
                        let a = acked.lock().unwrap();
                        body_ids.extend(a.iter().take(10).cloned());
                    }
                    sent_calls.fetch_add(body_ids.len() as u64, Ordering::Relaxed);
                    let resp = http
                        .post(&url)
                        .bearer_auth(ADMIN)
                        .header("content-type", "application/x-ndjson")
                        .body(batch_body(&body_ids, &time))
                        .send();
                    match resp.and_then(|r| r.error_for_status()).and_then(|r| r.json::<serde_json::Value>()) {
                        Ok(v) => {
                            let results = v["results"].as_array().unwrap();
                            let mut a = acked.lock().unwrap();
                            for (i, id) in body_ids.iter().enumerate() {
                                let status = results[i]["status"].as_str().unwrap();
                                assert!(status == "accepted" || status == "duplicate", "{id}: {status}");
                                if i >= ids.len() {
                                    assert_eq!(status, "duplicate", "{id} was acknowledged before");
                                }
                                a.insert(id.clone());
                            }
                            sent += 1;
                        }
                        Err(_) => {
                            unanswered.lock().unwrap().push(ids);
                            return;
                        }
                    }
                    if stop.load(Ordering::Relaxed) {
                        return;
                    }
                }
            }));
        }
        std::thread::sleep(Duration::from_millis(rng.gen_range(100..700)));
        server.kill();
        stop.store(true, Ordering::Relaxed);
        for c in clients {
            c.join().unwrap();
        }
        sent_before = sent.load(Ordering::Relaxed);
    }
    let last = open_ms.len() - 1;
    println!(
        "{rounds} kill -9 rounds: store open {} ms after the first, {} ms after the last (max {} ms, median {} ms); \
         replayed calls max {}, last {}; {starts_that_waited} starts left their replay to the next checkpoint",
        open_ms[0],
        open_ms[last],
        open_ms.iter().max().unwrap(),
        {
            let mut sorted = open_ms.clone();
            sorted.sort_unstable();
            sorted[sorted.len() / 2]
        },
        replayed.iter().max().unwrap(),
        replayed[last]
    );
    // Final round: resend what was never answered, then count.
    let server = harness::start(&data, &[]);
    for ids in unanswered.lock().unwrap().drain(..) {
        let (status, v) = server.post_events(ADMIN, &batch_body(&ids, &time));
        assert_eq!(status, 200, "{v}");
        acked.lock().unwrap().extend(ids);
    }
    let acked = acked.lock().unwrap();
    assert!(acked.len() > rounds * BATCH, "the clients got {} calls through", acked.len());
    let usage = server.usage("crash", "current");
    assert_eq!(usage["calls"].as_u64().unwrap() as usize, acked.len(), "usage equals distinct acknowledged ids");
    // A torture run's export is millions of calls: read it as a stream, with
    // no deadline but the suite's (the harness's client gives up after a minute).
    let export = reqwest::blocking::Client::builder().timeout(None).build().unwrap();
    let response = export.get(server.url("/v1/accounts/crash/calls?format=ndjson")).bearer_auth(ADMIN).send().unwrap();
    assert_eq!(response.status(), 200);
    let mut seen = HashSet::new();
    for line in std::io::BufRead::lines(std::io::BufReader::new(response)) {
        let v: serde_json::Value = serde_json::from_str(&line.unwrap()).unwrap();
        let id = v["id"].as_str().unwrap().to_owned();
        assert!(acked.contains(&id), "{id} stored but never sent");
        assert!(seen.insert(id.clone()), "{id} stored twice");
    }
    assert_eq!(seen.len(), acked.len(), "every acknowledged id is in the request log once");
}
