//! Ingest benchmark: callmeter against PostgreSQL 15 on the same calls, in one run.
//!
//! `cargo bench --bench ingest` (CALLMETER_BENCH_CALLS, default 10,000,000;
//! CALLMETER_BENCH_CLIENTS, callmeter's clients, default 8, while PostgreSQL
//! always gets the issue's 4; CALLMETER_BENCH_SKIP_PG=1 to skip PostgreSQL).
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

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const BATCH: usize = 1000;

/// PostgreSQL's clients, as the issue fixes them.
const PG_CLIENTS: usize = 4;
const ACCOUNTS: u64 = 200;

struct Call {
    account: String,
    id: String,
    time: chrono::DateTime<chrono::Utc>,
    interface: &'static str,
    operation: &'static str,
    method: &'static str,
    path: String,
    status: i32,
    api_key: String,
    user: String,
    client_ip: String,
    user_agent: &'static str,
    bytes: i64,
    duration_ms: f64,
}

fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51afd7ed558ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ceb9fe1a85ec53);
    x ^ (x >> 33)
}

/// Call number `n`; `serial` is its id's number (an earlier one for a duplicate).
fn call(serial: u64, now: chrono::DateTime<chrono::Utc>) -> Call {
    let h = mix(serial);
    let r = (h % 10_000) as f64 / 10_000.0;
    let account = (r * r * ACCOUNTS as f64) as u64;
    let (interface, operation, method) = match (h >> 16) % 20 {
        0..=7 => ("rest", "list", "GET"),
        8..=9 => ("rest", "write", "POST"),
        10 => ("rest", "read", "GET"),
        11..=13 => ("sftp", "stat", "lstat"),
        14..=15 => ("ftp", "read", "RETR"),
        16 => ("webdav", "list", "PROPFIND"),
        17..=18 => ("web", "read", "GET"),
        _ => ("mount", "list", "PROPFIND"),
    };
    Call {
        account: format!("acct{account:04}"),
        id: format!("{serial:016x}"),
        time: now - chrono::Duration::milliseconds(((h >> 24) % 3_600_000) as i64),
        interface,
        operation,
        method,
        path: format!("/api/rest/v1/folders/customers/c{}/inbox/{}", account, (h >> 40) % 50),
        status: if (h >> 8).is_multiple_of(50) { 404 } else { 200 },
        api_key: format!("key{}", (h >> 44) % 4),
        user: format!("user{}", (h >> 48) % 10),
        client_ip: format!("203.0.113.{}", (h >> 52) % 250),
        user_agent: "python-requests/2.31",
        bytes: ((h >> 20) % 100_000) as i64,
        duration_ms: ((h >> 30) % 5000) as f64 / 10.0,
    }
}

/// The serial of the call at position `i`: every tenth repeats an earlier id.
fn serial_at(i: u64) -> u64 {
    if i % 10 == 9 {
        let earlier = mix(i) % i; // some earlier position, which may be in another batch
        serial_at_unique(earlier)
    } else {
        serial_at_unique(i)
    }
}

fn serial_at_unique(i: u64) -> u64 {
    if i % 10 == 9 {
        i - 1
    } else {
        i
    }
}

fn ndjson(c: &Call, out: &mut Vec<u8>) {
    let _ = writeln!(
        out,
        r#"{{"id":"{}","account":"{}","time":"{}","interface":"{}","operation":"{}","method":"{}","path":"{}","status":{},"api_key":"{}","user":"{}","client_ip":"{}","user_agent":"{}","bytes":{},"duration_ms":{}}}"#,
        c.id,
        c.account,
        c.time.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
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

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

fn dir_bytes(p: &Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(p).output().expect("du");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0)
}

fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// Runs `work(batch_index)` on `clients` threads over all batches; returns wall time and per-batch latencies.
fn drive(batches: usize, clients: usize, work: impl Fn(usize, usize) + Sync) -> (Duration, Vec<Duration>) {
    let next = AtomicUsize::new(0);
    let latencies = Mutex::new(Vec::with_capacity(batches));
    let started = Instant::now();
    std::thread::scope(|s| {
        for client in 0..clients {
            let (next, latencies, work) = (&next, &latencies, &work);
            s.spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    let t = Instant::now();
                    work(client, b);
                    mine.push(t.elapsed());
                }
                latencies.lock().unwrap().extend(mine);
            });
        }
    });
    let wall = started.elapsed();
    let mut l = latencies.into_inner().unwrap();
    l.sort();
    (wall, l)
}

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
    // Shared bodies: a client sends a batch without copying it.
    let bodies: Vec<bytes::Bytes> = (0..batches)
        .map(|b| {
            let mut out = Vec::with_capacity(BATCH * 330);
            for i in (b * BATCH) as u64..((b + 1) * BATCH).min(calls as usize) as u64 {
                ndjson(&call(serial_at(i), now), &mut out);
            }
            bytes::Bytes::from(out)
        })
        .collect();
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

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_default()
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
    let mut child = Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .args(["serve", "--listen", "127.0.0.1:0", "--data"])
        .arg(&data)
        .env("CALLMETER_ADMIN_TOKEN", "bench")
        .env("CALLMETER_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start callmeter");
    let base = {
        use std::io::BufRead;
        let mut lines = std::io::BufReader::new(child.stdout.take().unwrap()).lines();
        let base = lines.find_map(|l| l.ok()?.strip_prefix("listening on ").map(str::to_owned)).expect("listening");
        std::thread::spawn(move || for _ in lines {});
        base
    };
    let http: Vec<reqwest::blocking::Client> = (0..clients)
        .map(|_| reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap())
        .collect();
    let accepted = AtomicUsize::new(0);
    let url = format!("{base}/v1/events");
    /// The totals of an answer; the per-event list is skipped, not built.
    #[derive(serde::Deserialize)]
    struct Answer {
        accepted: usize,
    }
    let (wall, lat) = drive(bodies.len(), clients, |client, b| {
        let resp = http[client]
            .post(&url)
            .bearer_auth("bench")
            .header("content-type", "application/x-ndjson")
            .body(bodies[b].clone())
            .send()
            .expect("post");
        assert!(resp.status().is_success(), "{}", resp.status());
        let answer: Answer = serde_json::from_slice(&resp.bytes().expect("answer")).expect("json");
        accepted.fetch_add(answer.accepted, Ordering::Relaxed);
    });
    let accepted = accepted.into_inner();
    let expected = (0..calls).filter(|i| i % 10 != 9).count();
    assert_eq!(accepted, expected, "exactly the distinct calls are accepted");
    let rate = calls as f64 / wall.as_secs_f64();

    // Usage with everything stored: the busiest account.
    let mut usage_lat = Vec::new();
    for _ in 0..200 {
        let t = Instant::now();
        let r = http[0]
            .get(format!("{base}/v1/accounts/acct0000/usage?period=current"))
            .bearer_auth("bench")
            .send()
            .unwrap();
        assert!(r.status().is_success());
        let _ = r.bytes();
        usage_lat.push(t.elapsed());
    }
    usage_lat.sort();
    let rss = peak_rss_kib(child.id());
    unsafe { libc::kill(child.id() as i32, libc::SIGTERM) };
    let _ = child.wait();
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
    let (wall, lat) = drive(batches, clients, |client, b| {
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

    let (wall, lat) = drive(batches, clients, |client, b| {
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
