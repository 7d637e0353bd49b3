//! Under a steady stream of changes the engine claims at most once, and
//! records completions at most once, per 25 ms (`GATHER` in `engine.rs`):
//! claiming for each change as it became durable, and writing each attempt
//! as it ended, once cost a thread hand-off and a store scan or commit per
//! handful of rows, more CPU than sending them (the webhooks bench).

mod harness;

use harness::*;

/// Uploads from 32 threads, one call per ingest, for about a second: the
/// store syncs them hundreds of times a second (a sync serves the uploads
/// of every thread waiting: with many threads, even a slow disk makes
/// enough of them), each sync a batch of the change processor and a
/// wake-up of the engine. Every event is delivered,
/// with no more claims and completion writes than one per `GATHER` (and a few),
/// and lane workers that last from burst to burst.
#[test]
fn claims_and_completion_writes_are_gathered_under_a_stream_of_changes() {
    let s = setup();
    let receiver = Receiver::answering(Reply::Status(200, String::new()), vec![]);
    subscribe(&s.store, "wh_stream", &receiver.url, &signing::new_secret());
    let started = std::time::Instant::now();
    let uploads = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..32)
            .map(|t| {
                let store = &s.store;
                scope.spawn(move || {
                    let mut n = 0;
                    while started.elapsed() < ms(1_000) {
                        upload(store, &format!("t{t}-{n}"));
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).sum::<usize>()
    });
    wait_until("every upload's delivery", || receiver.count() == uploads);
    let elapsed = started.elapsed().as_millis();
    let (stats, get) = (s.engine.stats(), callmeter_webhooks::DeliveryStats::get);
    let (claims, writes) = (get(&stats.claims), get(&stats.completion_writes));
    let workers = get(&stats.workers_started);
    println!(
        "{uploads} uploads in {elapsed} ms: {claims} claims, {writes} completion writes, {workers} workers started"
    );
    let most = elapsed / callmeter_webhooks::GATHER.as_millis() + 5;
    assert!(uploads > 2 * most as usize, "{uploads} uploads in {elapsed} ms: too few for the test to tell");
    assert!(claims as u128 <= most, "{claims} claims for {uploads} rows in {elapsed} ms (at most {most})");
    assert!(writes as u128 <= most, "{writes} completion writes for {uploads} rows in {elapsed} ms (at most {most})");
    // A worker waits for its lane's next rows (LINGER) rather than end with
    // each burst: a task spawned a claim's burst was about one a claim per
    // worker slot (962 here without the wait, 16 with it).
    assert!(workers as u128 <= most / 4, "{workers} lane workers started for {uploads} rows in {elapsed} ms");
}
