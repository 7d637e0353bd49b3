//! Ingest benchmark: callmeter against PostgreSQL 15 on the same calls, in one run.
//!
//! `cargo bench --bench ingest` (CALLMETER_BENCH_CALLS, default 10,000,000;
//! CALLMETER_BENCH_CLIENTS, callmeter's clients, default 8, while PostgreSQL
//! always gets the 4; CALLMETER_BENCH_SKIP_PG=1 to skip PostgreSQL).
//!
//! 1. Generates the calls: 10 % of them repeat an earlier id (duplicates),
//!    spread over 200 accounts with a skew, as NDJSON batches of 1,000.
//! 2. callmeter: an empty data folder, a release `callmeter serve`, the
//!    clients post every batch over loopback HTTP. Reports calls/s, p50/p99
//!    acknowledgement latency, bytes on disk per stored call, peak RSS, and
//!    the latency of `GET …/usage` with everything stored.
//! 3. PostgreSQL 15, a throwaway cluster with fsync and synchronous_commit on:
//!    `INSERT … ON CONFLICT (account, id) DO NOTHING` in batches of 1,000 from
//!    4 clients (exactly once, like callmeter), and `COPY` in batches of
//!    1,000 with no dedup (its raw ceiling).

#[path = "shared/ingest_calls.rs"]
mod ingest_calls;

#[path = "shared/bench_server.rs"]
#[allow(dead_code)]
mod bench_server;

use bench_server::{cpu_model, dir_bytes, drive, ms, peak_rss_kib, percentile, BenchServer, Driven, TOKEN};
use ingest_calls::{call, serial_at, Call, BATCH};
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// PostgreSQL's clients, as the issue fixes them.
const PG_CLIENTS: usize = 4;

fn main() {
    let calls: u64 = std::env::var("CALLMETER_BENCH_CALLS").ok().and_then(|v| v.parse().ok()).unwrap_or(10_000_000);
    let clients: usize = std::env::var("CALLMETER_BENCH_CLIENTS").ok().and_then(|v| v.parse().ok()).unwrap_or(8);
    let skip_pg = std::env::var("CALLMETER_BENCH_SKIP_PG").is_ok();
    let batches = calls.div_ceil(BATCH as u64) as usize;
    let now = chrono::Utc::now();
    println!("machine: {} cores, {}", std::thread::available_parallelism().map_or(0, |n| n.get()), cpu_model());
    println!(
        "calls: {calls} ({} distinct), batches of {BATCH}, {clients} callmeter clients, {PG_CLIENTS} PostgreSQL clients",
        (0..calls).filter(|i| i % 10 != 9).count()
    );

    let t = Instant::now();
    let bodies = ingest_calls::bodies(calls, now);
    let body_bytes: usize = bodies.iter().map(|b| b.len()).sum();
    println!("generated {} MB of NDJSON in {:.1}s", body_bytes >> 20, t.elapsed().as_secs_f64());

    let ours = bench_callmeter(&bodies, clients, calls);
    drop(bodies);
    if skip_pg {
        return;
    }
    let pg = bench_postgres(calls, batches, PG_CLIENTS, now);
    println!();
    println!("| system | calls/s | p50 ack | p99 ack | ratio (callmeter / system) |");
    println!("|---|---|---|---|---|");
    println!(
        "| callmeter (exactly once, durable) | {:.0} | {:.1} ms | {:.1} ms | 1.00 |",
        ours.rate,
        ms(ours.p50),
        ms(ours.p99)
    );
    for r in &pg {
        println!(
            "| {} | {:.0} | {:.1} ms | {:.1} ms | {:.2} |",
            r.name,
            r.rate,
            ms(r.p50),
            ms(r.p99),
            ours.rate / r.rate
        );
    }
}

struct Result_ {
    name: String,
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn bench_callmeter(bodies: &[bytes::Bytes], clients: usize, calls: u64) -> Result_ {
    let dir = tempfile::tempdir_in(std::env::var("CALLMETER_BENCH_DIR").unwrap_or_else(|_| "target".into()))
        .expect("tempdir");
    let data = dir.path().join("data");
    let server = BenchServer::start(&data, None);
    let base = server.base.clone();
    let http = bench_server::clients(clients);
    let accepted = AtomicUsize::new(0);
    let driven = drive(bodies.len(), clients, None, |client, b| {
        accepted.fetch_add(bench_server::post_batch(&http[client], &base, &bodies[b]), Ordering::Relaxed);
    });
    let (wall, lat) = (driven.wall, driven.latencies);
    let accepted = accepted.into_inner();
    let expected = (0..calls).filter(|&i| ingest_calls::is_first(i)).count();
    assert_eq!(accepted, expected, "exactly the distinct calls are accepted");
    let rate = calls as f64 / wall.as_secs_f64();

    // Usage with everything stored: the busiest account.
    let mut usage_lat = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let r =
            http[0].get(format!("{base}/v1/accounts/acct0000/usage?period=current")).bearer_auth(TOKEN).send().unwrap();
        assert!(r.status().is_success());
        let _ = r.bytes();
        usage_lat.push(t.elapsed());
    }
    usage_lat.sort();
    let rss = peak_rss_kib(server.pid());
    server.stop();
    let disk = dir_bytes(&data);
    println!();
    println!(
        "callmeter: {calls} calls in {:.1}s = {rate:.0} calls/s; ack p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        wall.as_secs_f64(),
        ms(percentile(&lat, 0.5)),
        ms(percentile(&lat, 0.99)),
        ms(percentile(&lat, 1.0))
    );
    println!(
        "callmeter: {:.1} bytes on disk per stored call ({} MB), peak RSS {} MB",
        disk as f64 / accepted as f64,
        disk >> 20,
        rss >> 10
    );
    println!(
        "callmeter: GET usage p50 {:.2} ms, p99 {:.2} ms",
        ms(percentile(&usage_lat, 0.5)),
        ms(percentile(&usage_lat, 0.99))
    );
    Result_ { name: "callmeter".into(), rate, p50: percentile(&lat, 0.5), p99: percentile(&lat, 0.99) }
}

struct Cluster {
    dir: PathBuf,
    socket_dir: PathBuf,
    port: u16,
}

fn pg_bin(name: &str) -> PathBuf {
    let p = PathBuf::from(format!("/usr/lib/postgresql/15/bin/{name}"));
    if p.exists() {
        p
    } else {
        PathBuf::from(name)
    }
}

/// Runs a PostgreSQL binary, as the postgres user when we are root (initdb refuses root).
fn pg_command(name: &str) -> Command {
    if unsafe { libc::geteuid() } == 0 {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(pg_bin(name));
        c
    } else {
        Command::new(pg_bin(name))
    }
}

impl Cluster {
    fn start() -> Cluster {
        let dir = std::env::temp_dir().join(format!("callmeter-bench-pg-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        if unsafe { libc::geteuid() } == 0 {
            Command::new("chown").args(["-R", "postgres:postgres"]).arg(&dir).status().unwrap();
        }
        let data = dir.join("pgdata");
        let ok = pg_command("initdb")
            .args(["-U", "postgres", "--auth=trust", "-D"])
            .arg(&data)
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "initdb failed");
        let port = 25432;
        let opts = format!("-p {port} -k {} -c listen_addresses='' -c fsync=on -c synchronous_commit=on -c shared_buffers=2GB -c max_wal_size=16GB -c checkpoint_timeout=30min", dir.display());
        let ok = pg_command("pg_ctl")
            .args(["-D"])
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.join("log"))
            .args(["-w", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(ok.success(), "pg_ctl start failed");
        Cluster { socket_dir: dir.clone(), dir, port }
    }

    fn connect(&self) -> postgres::Client {
        postgres::Config::new()
            .host_path(&self.socket_dir)
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .connect(postgres::NoTls)
            .expect("connect to postgres")
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = pg_command("pg_ctl")
            .args(["-D"])
            .arg(self.dir.join("pgdata"))
            .args(["-m", "fast", "stop"])
            .stdout(Stdio::null())
            .status();
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

const COLUMNS: &str = "account text not null, id text not null, time timestamptz not null, interface text not null, operation text not null, method text, path text, status int, api_key text, usr text, client_ip text, user_agent text, bytes bigint, duration_ms double precision";

fn bench_postgres(calls: u64, batches: usize, clients: usize, now: chrono::DateTime<chrono::Utc>) -> Vec<Result_> {
    let cluster = Cluster::start();
    let mut admin = cluster.connect();
    admin
        .batch_execute(&format!(
            "create table calls_once ({COLUMNS}, primary key (account, id)); create table calls_copy ({COLUMNS});"
        ))
        .unwrap();
    let batch_calls = |b: usize| -> Vec<Call> {
        ((b * BATCH) as u64..((b + 1) * BATCH).min(calls as usize) as u64).map(|i| call(serial_at(i), now)).collect()
    };
    // Rows are built outside the timed loop, as the NDJSON bodies were for callmeter.
    // Sorted by key, as a team would: concurrent upserts then take their row
    // locks in one order and cannot deadlock.
    let rows: Vec<Vec<Call>> = (0..batches)
        .map(|b| {
            let mut r = batch_calls(b);
            r.sort_by(|x, y| (&x.account, &x.id).cmp(&(&y.account, &y.id)));
            r
        })
        .collect();
    let mut results = Vec::new();

    let conns: Vec<Mutex<postgres::Client>> = (0..clients).map(|_| Mutex::new(cluster.connect())).collect();
    let insert = "insert into calls_once select * from unnest($1::text[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[], $8::int[], $9::text[], $10::text[], $11::text[], $12::text[], $13::bigint[], $14::float8[]) on conflict (account, id) do nothing";
    let Driven { wall, latencies: lat, .. } = drive(batches, clients, None, |client, b| {
        let r = &rows[b];
        let col = |f: &dyn Fn(&Call) -> String| r.iter().map(f).collect::<Vec<String>>();
        let mut conn = conns[client].lock().unwrap();
        conn.execute(
            insert,
            &[
                &col(&|c| c.account.clone()),
                &col(&|c| c.id.clone()),
                &r.iter().map(|c| c.time).collect::<Vec<_>>(),
                &col(&|c| c.interface.to_owned()),
                &col(&|c| c.operation.to_owned()),
                &col(&|c| c.method.to_owned()),
                &col(&|c| c.path.clone()),
                &r.iter().map(|c| c.status).collect::<Vec<i32>>(),
                &col(&|c| c.api_key.clone()),
                &col(&|c| c.user.clone()),
                &col(&|c| c.client_ip.clone()),
                &col(&|c| c.user_agent.to_owned()),
                &r.iter().map(|c| c.bytes).collect::<Vec<i64>>(),
                &r.iter().map(|c| c.duration_ms).collect::<Vec<f64>>(),
            ],
        )
        .expect("insert");
    });
    let stored: i64 = admin.query_one("select count(*) from calls_once", &[]).unwrap().get(0);
    println!();
    println!(
        "postgres insert on conflict: {calls} calls in {:.1}s = {:.0} calls/s ({stored} stored)",
        wall.as_secs_f64(),
        calls as f64 / wall.as_secs_f64()
    );
    results.push(Result_ {
        name: "PostgreSQL 15 INSERT … ON CONFLICT DO NOTHING (exactly once)".into(),
        rate: calls as f64 / wall.as_secs_f64(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
    });

    let Driven { wall, latencies: lat, .. } = drive(batches, clients, None, |client, b| {
        let mut text = Vec::with_capacity(BATCH * 250);
        for c in &rows[b] {
            let _ = writeln!(
                text,
                "{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}\t{}",
                c.account,
                c.id,
                c.time.to_rfc3339(),
                c.interface,
                c.operation,
                c.method,
                c.path,
                c.status,
                c.api_key,
                c.user,
                c.client_ip,
                c.user_agent,
                c.bytes,
                c.duration_ms
            );
        }
        let mut conn = conns[client].lock().unwrap();
        let mut w = conn.copy_in("copy calls_copy from stdin").expect("copy");
        w.write_all(&text).unwrap();
        w.finish().expect("copy finish");
    });
    let size: i64 = admin.query_one("select pg_total_relation_size('calls_once')", &[]).unwrap().get(0);
    println!(
        "postgres copy (no dedup): {calls} calls in {:.1}s = {:.0} calls/s; insert table {:.1} bytes per call",
        wall.as_secs_f64(),
        calls as f64 / wall.as_secs_f64(),
        size as f64 / stored as f64
    );
    results.push(Result_ {
        name: "PostgreSQL 15 COPY (no dedup)".into(),
        rate: calls as f64 / wall.as_secs_f64(),
        p50: percentile(&lat, 0.5),
        p99: percentile(&lat, 0.99),
    });
    results
}
