//! Webhook delivery benchmark (issue 14, DESIGN §7): deliveries to a local
//! receiver while ingest runs at half its top rate, in one run.
//!
//! `cargo bench --bench webhooks` (CALLMETER_BENCH_CALLS, calls per run,
//! default 2,000,000; CALLMETER_BENCH_CLIENTS, ingest clients, default 8;
//! CALLMETER_BENCH_EVENTS_PER_S, the event rate the subscriptions are chosen
//! to make at half rate, default 6,000, 0 for every account;
//! CALLMETER_BENCH_TARGETS, the receiver's ports, default 8;
//! CALLMETER_BENCH_DRAIN_S, how long to wait for the last delivery, default 60;
//! CALLMETER_BENCH_ROUNDS, rounds of off then on, default 3).
//!
//! 1. Generates the calls of `benches/ingest.rs` (10 % duplicates, 200
//!    accounts with a skew, 10 % of them uploads, 2 % of those failing).
//! 2. Top rate: a fresh release `callmeter serve`, the clients post every
//!    batch of 1,000 as fast as it answers, no subscriptions.
//! 3. Rounds, each of two runs back to back, so that both see the machine
//!    in the same state (this VM's speed moves by 2× from minute to minute):
//!    - webhooks off: a fresh server, the same calls at half the top rate
//!      (batch `b` is posted `b / rate` seconds after the start), no
//!      subscriptions; the server's CPU (user + system, `/proc/PID/stat`)
//!      over the run;
//!    - webhooks on: a fresh server (`[webhooks] allow_private_targets`), a
//!      folder subscription per chosen account (its whole folder, the
//!      default actions) to a fresh receiver (`shared/counting_receiver.rs`),
//!      the same calls at the same rate; then waits for every expected
//!      event. Each successful first upload of a subscribed account is one
//!      event.
//!
//! Reports, per round and as the rounds' median: deliveries/s received
//! while ingest ran (target ≥ 5,000), CPU per ingested call on vs off
//! (target: within 10 %), p50/p99 from the acknowledgement of a call's
//! batch to its event's first attempt at the receiver (target p99 < 2 s),
//! and events delivered vs expected (equal, every round); and per round the
//! webhooks' server CPU per delivery (on − off), beside what the CPU target
//! leaves per delivery, its part in the kernel (system time: on loopback a
//! send also runs the receiver's side of TCP, which a remote receiver would
//! not charge here), and each thread's CPU (by name) off and on; last,
//! the webhooks' CPU per delivery by thread, the rounds' median (steadier
//! than the ratio: the figure to judge a change to one part by).

#[path = "shared/ingest_calls.rs"]
#[allow(dead_code)]
mod ingest_calls;

#[path = "shared/bench_server.rs"]
#[allow(dead_code)]
mod bench_server;

#[path = "shared/counting_receiver.rs"]
mod counting_receiver;

use bench_server::{cpu_model, cpu_split, cpu_time, drive, ms, percentile, BenchServer, Driven, TOKEN};
use counting_receiver::CountingReceiver;
use ingest_calls::{call, serial_at, BATCH};
use serde_json::json;
use std::path::Path;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

const DELIVERIES_TARGET: f64 = 5_000.0;
const CPU_TARGET: f64 = 0.10;
const P99_TARGET: Duration = Duration::from_secs(2);
/// After ingest, how long the server's CPU is still counted when webhooks are off
/// (and at least, when they are on): its background work after the last call.
const SETTLE: Duration = Duration::from_secs(2);

fn env_u64(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// The events the calls make: per account, the serials of its successful first uploads.
fn events_by_account(calls: u64, now: chrono::DateTime<chrono::Utc>) -> Vec<Vec<u64>> {
    let mut by_account = vec![Vec::new(); ingest_calls::ACCOUNTS as usize];
    for i in (0..calls).filter(|&i| ingest_calls::is_first(i)) {
        let serial = serial_at(i);
        let c = call(serial, now);
        if c.operation == "write" && c.status < 400 {
            let account: usize = c.account.trim_start_matches("acct").parse().unwrap();
            by_account[account].push(serial);
        }
    }
    by_account
}

/// Makes every account, its periods anchored 40 days back (no call of the run is late).
fn make_accounts(http: &reqwest::blocking::Client, base: &str) {
    let anchor = (chrono::Utc::now() - chrono::Duration::days(40)).date_naive();
    for a in 0..ingest_calls::ACCOUNTS {
        let r = http
            .put(format!("{base}/v1/accounts/acct{a:04}"))
            .bearer_auth(TOKEN)
            .json(&json!({"period_anchor": anchor, "timezone": "UTC"}))
            .send()
            .expect("make account");
        assert!(r.status().is_success(), "account: {}", r.status());
    }
}

/// What one run at a fixed rate measured.
struct Run {
    driven: Driven,
    /// The server's CPU from the first call until [`SETTLE`] after the last (or the last delivery).
    cpu: Duration,
    /// The server's CPU while the calls were posted.
    cpu_ingest: Duration,
    /// The part of [`cpu`](Self::cpu) spent in the kernel (system time).
    kernel: Duration,
    /// The server's CPU by thread name, at the end of [`cpu`](Self::cpu).
    threads: std::collections::BTreeMap<String, Duration>,
}

/// Posts every batch at `per_second` batches a second (or as fast as it goes), counting the server's CPU.
fn ingest(
    server: &BenchServer,
    bodies: &[bytes::Bytes],
    clients: usize,
    per_second: Option<f64>,
    mut until_done: impl FnMut() -> bool,
) -> Run {
    let http = bench_server::clients(clients);
    let accepted = AtomicUsize::new(0);
    let (user_before, kernel_before) = cpu_split(server.pid());
    let cpu_before = user_before + kernel_before;
    let driven = drive(bodies.len(), clients, per_second, |client, b| {
        accepted.fetch_add(bench_server::post_batch(&http[client], &server.base, &bodies[b]), Ordering::Relaxed);
    });
    let cpu_ingest = cpu_time(server.pid()) - cpu_before;
    let ended = Instant::now();
    while !until_done() || ended.elapsed() < SETTLE {
        std::thread::sleep(Duration::from_millis(10));
    }
    let (user, kernel) = cpu_split(server.pid());
    let (cpu, kernel) = (user + kernel - cpu_before, kernel - kernel_before);
    let threads = bench_server::cpu_by_thread(server.pid());
    Run { driven, cpu, cpu_ingest, kernel, threads }
}

fn data_dir(root: &Path, name: &str) -> std::path::PathBuf {
    let d = root.join(name);
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn main() {
    let calls = env_u64("CALLMETER_BENCH_CALLS", 2_000_000);
    let clients = env_u64("CALLMETER_BENCH_CLIENTS", 8) as usize;
    let events_per_s = env_u64("CALLMETER_BENCH_EVENTS_PER_S", 6_000) as f64;
    let targets = env_u64("CALLMETER_BENCH_TARGETS", 8) as usize;
    let drain = Duration::from_secs(env_u64("CALLMETER_BENCH_DRAIN_S", 60));
    let rounds = env_u64("CALLMETER_BENCH_ROUNDS", 3).max(1) as usize;
    let root = tempfile::tempdir_in(
        std::env::var("CALLMETER_BENCH_DIR").unwrap_or_else(|_| env!("CARGO_TARGET_TMPDIR").into()),
    )
    .expect("tempdir");
    let now = chrono::Utc::now();
    println!("machine: {} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), cpu_model());

    let t = Instant::now();
    let bodies = ingest_calls::bodies(calls, now);
    let by_account = events_by_account(calls, now);
    let uploads: usize = by_account.iter().map(Vec::len).sum();
    println!(
        "calls: {calls} per run, batches of {BATCH}, {clients} clients; {uploads} successful first uploads; generated in {:.1}s",
        t.elapsed().as_secs_f64()
    );

    // 1. Ingest's top rate, no webhooks.
    let top = {
        let server = BenchServer::start(&data_dir(root.path(), "top"), None);
        make_accounts(&bench_server::clients(1)[0], &server.base);
        let run = ingest(&server, &bodies, clients, None, || true);
        server.stop();
        calls as f64 / run.driven.wall.as_secs_f64()
    };
    let half = top / 2.0;
    let per_second = half / BATCH as f64;
    let seconds = calls as f64 / half;
    println!("top rate: {top:.0} calls/s; the runs below post at {half:.0} calls/s, {seconds:.1}s each");

    // 3. The subscriptions: of the least busy accounts first, until their
    // uploads make `events_per_s` at half rate (every account with 0).
    let mut order: Vec<usize> = (0..by_account.len()).collect();
    order.sort_by_key(|&a| by_account[a].len());
    let mut chosen = Vec::new();
    let mut expected: Vec<u64> = Vec::new();
    for a in order {
        if events_per_s > 0.0 && expected.len() as f64 / seconds >= events_per_s {
            break;
        }
        chosen.push(a);
        expected.extend(&by_account[a]);
    }
    println!(
        "webhooks on: {} folder subscriptions over {targets} receiver ports, {} events expected ({:.0}/s at half rate); {rounds} rounds of off then on",
        chosen.len(),
        expected.len(),
        expected.len() as f64 / seconds
    );
    let setup = Setup { root: root.path(), bodies: &bodies, clients, per_second, seconds, calls, targets, drain };
    let rounds: Vec<Round> = (0..rounds).map(|r| round(&setup, r, &chosen, &expected)).collect();
    report(&rounds, calls, (half, top), expected.len());
}

/// What every round shares.
struct Setup<'a> {
    root: &'a Path,
    bodies: &'a [bytes::Bytes],
    clients: usize,
    /// Batches a second.
    per_second: f64,
    /// How long a run posts.
    seconds: f64,
    calls: u64,
    targets: usize,
    drain: Duration,
}

/// One round: webhooks off, then on, each on a fresh server, at the same rate.
struct Round {
    off: Run,
    on: Run,
    /// Deliveries received a second while the on-run's calls were posted.
    while_ingesting: f64,
    delivered: usize,
    missing: usize,
    /// Acknowledgement of a call's batch to its event's first attempt, sorted.
    latencies: Vec<Duration>,
}

impl Round {
    /// Server CPU per call, off and on.
    fn cpu_per_call(&self, calls: u64) -> (f64, f64) {
        (self.off.cpu.as_secs_f64() / calls as f64, self.on.cpu.as_secs_f64() / calls as f64)
    }

    /// The webhooks' kernel (system) CPU per event delivered, on − off.
    fn kernel_per_delivery(&self) -> f64 {
        (self.on.kernel.as_secs_f64() - self.off.kernel.as_secs_f64()) / self.delivered.max(1) as f64
    }
}

fn round(setup: &Setup, r: usize, chosen: &[usize], expected: &[u64]) -> Round {
    let Setup { root, bodies, clients, per_second, seconds, calls, targets, drain } = *setup;
    // Webhooks off: no subscriptions.
    let off = {
        let server = BenchServer::start(&data_dir(root, "off"), None);
        make_accounts(&bench_server::clients(1)[0], &server.base);
        let run = ingest(&server, bodies, clients, Some(per_second), || true);
        server.stop();
        run
    };
    // Webhooks on: a fresh receiver, so that its counts are this round's.
    let receiver = CountingReceiver::start(targets, calls);
    let config = root.join("webhooks.toml");
    std::fs::write(&config, "[webhooks]\nallow_private_targets = true\n").unwrap();
    let server = BenchServer::start(&data_dir(root, "on"), Some(&config));
    let http = bench_server::clients(1).remove(0);
    make_accounts(&http, &server.base);
    for (i, &a) in chosen.iter().enumerate() {
        let r = http
            .post(format!("{}/v1/accounts/acct{a:04}/webhooks", server.base))
            .bearer_auth(TOKEN)
            .json(&json!({"url": receiver.urls[i % receiver.urls.len()], "folder": ingest_calls::account_folder(a as u64)}))
            .send()
            .expect("subscribe");
        assert!(r.status().is_success(), "subscribe: {}", r.status());
    }
    let arrivals = receiver.arrivals.clone();
    let received_before = arrivals.deliveries.load(Ordering::Relaxed);
    let mut received_while_ingesting = None;
    let mut drained_at = None;
    let started = Instant::now();
    let on = ingest(&server, bodies, clients, Some(per_second), || {
        let delivered = arrivals.deliveries.load(Ordering::Relaxed);
        received_while_ingesting.get_or_insert(delivered - received_before);
        let all = arrivals.distinct.load(Ordering::Relaxed) as usize >= expected.len();
        if all {
            drained_at.get_or_insert_with(Instant::now);
        }
        all || started.elapsed() > on_deadline(seconds, drain)
    });
    // Late repeats, if any, arrive in this second.
    std::thread::sleep(Duration::from_secs(1));
    server.stop();

    // Latency: from the answer to a call's batch to its event's first attempt.
    let mut latencies = Vec::with_capacity(expected.len());
    let mut missing = 0usize;
    for &serial in expected {
        match arrivals.first(serial) {
            Some(at) => {
                let acked = on.driven.answered[serial as usize / BATCH];
                latencies.push(at.saturating_duration_since(acked));
            }
            None => missing += 1,
        }
    }
    latencies.sort();
    let delivered = arrivals.distinct.load(Ordering::Relaxed) as usize;
    let attempts = arrivals.deliveries.load(Ordering::Relaxed) - received_before;
    let unreadable = arrivals.unreadable.load(Ordering::Relaxed);
    let while_ingesting = received_while_ingesting.unwrap_or(0) as f64 / on.driven.wall.as_secs_f64();
    let drain_s = drained_at.map(|d| (d - started).as_secs_f64() - on.driven.wall.as_secs_f64());
    let round = Round { off, on, while_ingesting, delivered, missing, latencies };
    println!();
    println!("round {}:", r + 1);
    for (name, run) in [("off", &round.off), ("on", &round.on)] {
        println!(
            "  webhooks {name}: {:.0} calls/s achieved in {:.1}s, ack p50 {:.1} ms p99 {:.1} ms; server CPU {:.1}s while posting, {:.1}s with the tail",
            calls as f64 / run.driven.wall.as_secs_f64(),
            run.driven.wall.as_secs_f64(),
            ms(percentile(&run.driven.latencies, 0.5)),
            ms(percentile(&run.driven.latencies, 0.99)),
            run.cpu_ingest.as_secs_f64(),
            run.cpu.as_secs_f64(),
        );
    }
    println!(
        "  deliveries: {attempts} attempts received, {delivered} distinct events, {} repeats, {unreadable} unreadable; last event {}",
        attempts.saturating_sub(delivered as u64 + unreadable),
        match drain_s {
            Some(s) => format!("{s:.1}s after the last call was answered"),
            None => format!("never: {missing} missing after {}s", drain.as_secs()),
        }
    );
    // What the webhooks cost the server per event delivered, and what the
    // CPU target leaves them: a figure that says how far the target is.
    let (cpu_off, cpu_on) = round.cpu_per_call(calls);
    let per_delivery = (round.on.cpu.as_secs_f64() - round.off.cpu.as_secs_f64()) / delivered.max(1) as f64;
    let budget = round.off.cpu.as_secs_f64() * CPU_TARGET / expected.len().max(1) as f64;
    println!(
        "  server CPU per call {:.2} → {:.2} µs ({:+.1} %); webhooks' server CPU per delivery {:.1} µs (on − off), the CPU target leaves {:.1} µs",
        cpu_off * 1e6,
        cpu_on * 1e6,
        (cpu_on / cpu_off - 1.0) * 100.0,
        per_delivery * 1e6,
        budget * 1e6
    );
    println!(
        "  of which in the kernel (system time; on loopback a send also runs the receiver's TCP): {:.1} µs a delivery, in user space {:.1} µs",
        round.kernel_per_delivery() * 1e6,
        (per_delivery - round.kernel_per_delivery()) * 1e6
    );
    println!("  server CPU by thread, off → on (whole life, threads that ended not counted): {}", by_thread(&round));
    round
}

/// Every thread name of the rounds' servers, once each.
fn thread_names(rounds: &[Round]) -> Vec<&String> {
    let mut names: Vec<&String> = rounds.iter().flat_map(|r| r.off.threads.keys().chain(r.on.threads.keys())).collect();
    names.sort();
    names.dedup();
    names
}

/// A thread name's CPU in seconds (0 when the server had no such thread).
fn secs(threads: &std::collections::BTreeMap<String, Duration>, name: &str) -> f64 {
    threads.get(name).map_or(0.0, |d| d.as_secs_f64())
}

/// Each thread name's CPU in the off and on servers, largest change first.
fn by_thread(round: &Round) -> String {
    let (off, on) = (&round.off.threads, &round.on.threads);
    let mut names = thread_names(std::slice::from_ref(round));
    names.sort_by(|a, b| (secs(on, b) - secs(off, b)).abs().total_cmp(&(secs(on, a) - secs(off, a)).abs()));
    let shown: Vec<String> = names
        .iter()
        .filter(|n| secs(off, n) + secs(on, n) >= 0.05)
        .map(|n| format!("{n} {:.2} → {:.2} s", secs(off, n), secs(on, n)))
        .collect();
    shown.join(", ")
}

/// The median of `values`.
fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// The table: each figure the median of the rounds' (the VM's speed moves
/// from minute to minute; each round runs off and on back to back, so
/// that both see the same machine), the rounds' range beside it.
fn report(rounds: &[Round], calls: u64, (half, top): (f64, f64), expected: usize) {
    let range = |values: Vec<f64>, scale: f64, decimals: usize| {
        let (lo, hi) = values.iter().fold((f64::MAX, f64::MIN), |(lo, hi), &v| (lo.min(v), hi.max(v)));
        (median(values) * scale, format!("{:.*} to {:.*}", decimals, lo * scale, decimals, hi * scale))
    };
    let (while_ingesting, while_range) = range(rounds.iter().map(|r| r.while_ingesting).collect(), 1.0, 0);
    let (cpu_off, _) = range(rounds.iter().map(|r| r.cpu_per_call(calls).0).collect(), 1e6, 2);
    let (cpu_on, _) = range(rounds.iter().map(|r| r.cpu_per_call(calls).1).collect(), 1e6, 2);
    let ratios: Vec<f64> = rounds
        .iter()
        .map(|r| {
            let (off, on) = r.cpu_per_call(calls);
            on / off - 1.0
        })
        .collect();
    let (ratio, ratio_range) = range(ratios, 100.0, 1);
    let (p99, p99_range) = range(rounds.iter().map(|r| ms(percentile(&r.latencies, 0.99))).collect(), 1.0, 0);
    let p50 = median(rounds.iter().map(|r| ms(percentile(&r.latencies, 0.5))).collect());
    let all_delivered = rounds.iter().all(|r| r.delivered == expected && r.missing == 0);
    let delivered: Vec<String> = rounds.iter().map(|r| r.delivered.to_string()).collect();
    println!();
    let verdict = |ok: bool| if ok { "yes" } else { "**no**" };
    println!(
        "| measure (ingest at {half:.0} calls/s, half of {top:.0}; median of {} rounds, their range) | value | target | met |",
        rounds.len()
    );
    println!("|---|---|---|---|");
    println!(
        "| deliveries/s received while ingest ran | {while_ingesting:.0} ({while_range}) | ≥ {DELIVERIES_TARGET:.0} | {} |",
        verdict(while_ingesting >= DELIVERIES_TARGET)
    );
    println!(
        "| server CPU per call, webhooks off → on | {cpu_off:.2} → {cpu_on:.2} µs ({ratio:+.1} %; {ratio_range} %) | within {:.0} % | {} |",
        CPU_TARGET * 100.0,
        verdict(ratio <= CPU_TARGET * 100.0)
    );
    println!(
        "| acknowledgement → first attempt, p50 / p99 | {p50:.0} / {p99:.0} ms (p99 {p99_range}) | p99 < {} ms | {} |",
        P99_TARGET.as_millis(),
        verdict(p99 < P99_TARGET.as_secs_f64() * 1e3 && all_delivered)
    );
    println!(
        "| events delivered / expected, each round | {} / {expected} | equal | {} |",
        delivered.join(", "),
        verdict(all_delivered)
    );
    // Steadier than the ratio above (a thread's ticks move by about 2 of
    // its 300 between runs): what a change to one part costs or saves.
    let budget = median(rounds.iter().map(|r| r.off.cpu.as_secs_f64() * CPU_TARGET / expected.max(1) as f64).collect());
    println!();
    println!(
        "webhooks' server CPU per delivery by thread (on − off, median of the rounds), against {:.1} µs the CPU target leaves: {}",
        budget * 1e6,
        per_delivery_by_thread(rounds)
    );
    let kernel = median(rounds.iter().map(Round::kernel_per_delivery).collect());
    println!("of which in the kernel (median of the rounds): {:.1} µs", kernel * 1e6);
}

/// Each thread name's CPU, on − off, per event delivered: the rounds' median, largest first.
fn per_delivery_by_thread(rounds: &[Round]) -> String {
    let mut rows: Vec<(&String, f64)> = thread_names(rounds)
        .into_iter()
        .map(|n| {
            let each =
                rounds.iter().map(|r| (secs(&r.on.threads, n) - secs(&r.off.threads, n)) / r.delivered.max(1) as f64);
            (n, median(each.collect()) * 1e6)
        })
        .filter(|(_, us)| us.abs() >= 0.5)
        .collect();
    rows.sort_by(|a, b| b.1.abs().total_cmp(&a.1.abs()));
    rows.iter().map(|(n, us)| format!("{n} {us:+.1} µs")).collect::<Vec<_>>().join(", ")
}

/// How long the webhooks-on run may take in all: the ingest and the drain.
fn on_deadline(seconds: f64, drain: Duration) -> Duration {
    Duration::from_secs_f64(seconds) + drain
}
