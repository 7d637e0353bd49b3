//! A release `callmeter serve` on an empty data folder, the clients that post
//! NDJSON batches to it, and what the benchmarks read of the process
//! (`/proc`). Shared by `benches/ingest.rs` and `benches/webhooks.rs`.

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The admin token the benchmarks' servers are started with.
pub const TOKEN: &str = "bench";

/// A running `callmeter serve`; stopped (SIGTERM, waited for) on drop.
pub struct BenchServer {
    pub child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
}

impl BenchServer {
    /// Starts `callmeter serve` on `data` with `config` (a TOML file) if given.
    pub fn start(data: &Path, config: Option<&Path>) -> BenchServer {
        let mut command = Command::new(env!("CARGO_BIN_EXE_callmeter"));
        command.args(["serve", "--listen", "127.0.0.1:0", "--data"]).arg(data);
        if let Some(config) = config {
            command.arg("--config").arg(config);
        }
        let mut child = command
            .env("CALLMETER_ADMIN_TOKEN", TOKEN)
            .env("CALLMETER_LOG", "warn")
            .env_remove("CALLMETER_CONFIG")
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
        BenchServer { child, base }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the server and waits for it.
    pub fn stop(mut self) {
        self.terminate();
    }

    fn terminate(&mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let _ = self.child.wait();
    }
}

impl Drop for BenchServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.terminate();
        }
    }
}

/// One HTTP client per benchmark client (each keeps its connection).
pub fn clients(n: usize) -> Vec<reqwest::blocking::Client> {
    (0..n).map(|_| reqwest::blocking::Client::builder().timeout(Duration::from_secs(120)).build().unwrap()).collect()
}

/// Posts one NDJSON batch to `POST /v1/events`; how many calls were accepted.
pub fn post_batch(http: &reqwest::blocking::Client, base: &str, body: &bytes::Bytes) -> usize {
    /// The totals of an answer; the per-event list is skipped, not built.
    #[derive(serde::Deserialize)]
    struct Answer {
        accepted: usize,
    }
    let resp = http
        .post(format!("{base}/v1/events"))
        .bearer_auth(TOKEN)
        .header("content-type", "application/x-ndjson")
        .body(body.clone())
        .send()
        .expect("post");
    assert!(resp.status().is_success(), "{}", resp.status());
    let answer: Answer = serde_json::from_slice(&resp.bytes().expect("answer")).expect("json");
    answer.accepted
}

/// What [`drive`] measured.
pub struct Driven {
    pub wall: Duration,
    /// Each batch's latency, sorted.
    pub latencies: Vec<Duration>,
    /// When each batch's answer came, by batch index.
    pub answered: Vec<Instant>,
}

/// Runs `work(client, batch_index)` on `clients` threads over all batches.
/// With `per_second`, batch `b` starts no earlier than `b / per_second`
/// seconds after the start (a fixed rate; a batch already late starts at once).
pub fn drive(batches: usize, clients: usize, per_second: Option<f64>, work: impl Fn(usize, usize) + Sync) -> Driven {
    let next = AtomicUsize::new(0);
    let done = Mutex::new(Vec::with_capacity(batches));
    let started = Instant::now();
    std::thread::scope(|s| {
        for client in 0..clients {
            let (next, done, work) = (&next, &done, &work);
            s.spawn(move || {
                let mut mine = Vec::new();
                loop {
                    let b = next.fetch_add(1, Ordering::Relaxed);
                    if b >= batches {
                        break;
                    }
                    if let Some(rate) = per_second {
                        let due = started + Duration::from_secs_f64(b as f64 / rate);
                        if let Some(wait) = due.checked_duration_since(Instant::now()) {
                            std::thread::sleep(wait);
                        }
                    }
                    let t = Instant::now();
                    work(client, b);
                    let end = Instant::now();
                    mine.push((b, end - t, end));
                }
                done.lock().unwrap().extend(mine);
            });
        }
    });
    let wall = started.elapsed();
    let mut done = done.into_inner().unwrap();
    done.sort_by_key(|(b, _, _)| *b);
    let answered = done.iter().map(|(_, _, at)| *at).collect();
    let mut latencies: Vec<Duration> = done.iter().map(|(_, l, _)| *l).collect();
    latencies.sort();
    Driven { wall, latencies, answered }
}

pub fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    sorted[((sorted.len() - 1) as f64 * p).round() as usize]
}

pub fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

pub fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("model name").map(|m| m.trim_start_matches([' ', '\t', ':']).to_owned()))
        .unwrap_or_default()
}

pub fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
        .unwrap_or(0)
}

/// The user + system CPU time a process has used so far, all its threads.
pub fn cpu_time(pid: u32) -> Duration {
    let (user, system) = cpu_split(pid);
    user + system
}

/// The user and the system (kernel) CPU of a process, apart.
pub fn cpu_split(pid: u32) -> (Duration, Duration) {
    stat_split(&std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default())
}

/// The user + system CPU of a `/proc/…/stat` line (a process's or a thread's).
fn stat_cpu(stat: &str) -> Duration {
    let (user, system) = stat_split(stat);
    user + system
}

/// The user and the system CPU of a `/proc/…/stat` line.
fn stat_split(stat: &str) -> (Duration, Duration) {
    // The fields after the command name (which may hold spaces) in parentheses.
    let fields: Vec<&str> = stat.rsplit_once(')').map_or("", |(_, rest)| rest).split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line; 3 is the first after the name.
    let ticks = |i: usize| fields.get(i - 3).and_then(|v| v.parse::<u64>().ok()).unwrap_or(0);
    let per_second = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let time = |i: usize| Duration::from_secs_f64(ticks(i) as f64 / per_second);
    (time(14), time(15))
}

/// The CPU time (user + system) of each of a process's threads now,
/// summed by thread name: where a run's CPU went. Threads that ended are
/// not counted.
pub fn cpu_by_thread(pid: u32) -> std::collections::BTreeMap<String, Duration> {
    let mut by_name = std::collections::BTreeMap::new();
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else { return by_name };
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("stat")).unwrap_or_default();
        let Some((head, _)) = stat.rsplit_once(')') else { continue };
        let name = head.split_once('(').map_or("?", |(_, n)| n).to_owned();
        *by_name.entry(name).or_insert(Duration::ZERO) += stat_cpu(&stat);
    }
    by_name
}

pub fn dir_bytes(p: &Path) -> u64 {
    let out = Command::new("du").args(["-sb"]).arg(p).output().expect("du");
    String::from_utf8_lossy(&out.stdout).split_whitespace().next().and_then(|s| s.parse().ok()).unwrap_or(0)
}
