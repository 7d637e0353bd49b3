//! Starting and talking to a real server process.

use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// The admin token every test server is started with.
pub const ADMIN: &str = "test-admin-token";

/// A running `callmeter serve`.
pub struct Server {
    pub child: Child,
    pub base: String,
    pub http: reqwest::blocking::Client,
}

/// Extra flags for a server.
pub fn start(data: &Path, extra: &[&str]) -> Server {
    start_on(data, "127.0.0.1:0", extra)
}

/// A server on a given address (to restart one where its clients expect it).
pub fn start_on(data: &Path, listen: &str, extra: &[&str]) -> Server {
    start_with(data, listen, extra, &[])
}

/// A server with extra environment variables (say `CALLMETER_FAILPOINTS`).
pub fn start_with(data: &Path, listen: &str, extra: &[&str], envs: &[(&str, &str)]) -> Server {
    try_start(data, listen, extra, envs).unwrap_or_else(|e| panic!("{e}"))
}

/// A server, or why it exited before listening.
pub fn try_start(data: &Path, listen: &str, extra: &[&str], envs: &[(&str, &str)]) -> Result<Server, String> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_callmeter"))
        .arg("serve")
        .arg("--listen")
        .arg(listen)
        .arg("--data")
        .arg(data)
        .args(extra)
        .env("CALLMETER_ADMIN_TOKEN", ADMIN)
        .env("CALLMETER_LOG", "warn")
        .env_remove("CALLMETER_CONFIG")
        .env_remove("CALLMETER_FAILPOINTS")
        .envs(envs.iter().copied())
        .current_dir(data.parent().unwrap_or(data))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start callmeter serve");
    let stdout = child.stdout.take().expect("stdout");
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        match lines.next() {
            Some(Ok(line)) => {
                if let Some(url) = line.strip_prefix("listening on ") {
                    break url.trim().to_owned();
                }
            }
            _ => return Err(format!("server exited before listening: {:?}", child.wait())),
        }
    };
    // Keep draining stdout so the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("client");
    Ok(Server { child, base, http })
}

impl Server {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// POSTs NDJSON events with a token; returns status and JSON body.
    pub fn post_events(&self, token: &str, ndjson: &str) -> (u16, Value) {
        self.send(
            self.http
                .post(self.url("/v1/events"))
                .bearer_auth(token)
                .header("content-type", "application/x-ndjson")
                .body(ndjson.to_owned()),
        )
    }

    pub fn get(&self, token: &str, path: &str) -> (u16, Value) {
        self.send(self.http.get(self.url(path)).bearer_auth(token))
    }

    pub fn send(&self, req: reqwest::blocking::RequestBuilder) -> (u16, Value) {
        let resp = req.send().expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().unwrap_or_default();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
    }

    /// Usage of an account for a period, as the admin.
    pub fn usage(&self, account: &str, period: &str) -> Value {
        let (status, v) = self.get(ADMIN, &format!("/v1/accounts/{account}/usage?period={period}"));
        assert_eq!(status, 200, "usage: {v}");
        v
    }

    /// Stops the server with SIGTERM and waits for it.
    pub fn stop(mut self) {
        unsafe { libc::kill(self.child.id() as i32, libc::SIGTERM) };
        let status = self.child.wait().expect("wait");
        assert!(status.success(), "server exited with {status}");
    }

    /// A gauge or counter from `/metrics`, read as the admin.
    pub fn metric(&self, name: &str) -> u64 {
        let text = self.http.get(self.url("/metrics")).bearer_auth(ADMIN).send().unwrap().text().unwrap();
        let line = text.lines().find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '));
        line.and_then(|l| l[name.len()..].trim().parse().ok()).unwrap_or_else(|| panic!("no metric {name}"))
    }

    /// Every call of an account in the request log, by id, as the admin.
    pub fn stored_ids(&self, account: &str) -> Vec<String> {
        let url = self.url(&format!("/v1/accounts/{account}/calls?format=ndjson"));
        let ndjson = self.http.get(url).bearer_auth(ADMIN).send().unwrap().text().unwrap();
        ndjson.lines().map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].as_str().unwrap().to_owned()).collect()
    }

    /// Waits for the process to end by itself (a failpoint crashed it).
    pub fn wait_exit(mut self, limit: Duration) -> std::process::ExitStatus {
        let start = std::time::Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                return status;
            }
            assert!(start.elapsed() < limit, "the server did not crash within {limit:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// A memory figure of the server from `/proc/PID/status`, in KiB: `VmRSS`
    /// (resident now) or `VmHWM` (the most it was resident at once).
    pub fn memory_kib(&self, field: &str) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).expect("process status");
        let line = status.lines().find(|l| l.starts_with(field)).unwrap_or_else(|| panic!("no {field}"));
        line[field.len() + 1..].trim().trim_end_matches("kB").trim().parse().expect("a number of kB")
    }

    /// How many file descriptors the server has open (`/proc/PID/fd`).
    pub fn open_descriptors(&self) -> usize {
        std::fs::read_dir(format!("/proc/{}/fd", self.pid())).expect("descriptors").count()
    }

    /// The host and port it listens on, for raw sockets.
    pub fn address(&self) -> String {
        self.base.trim_start_matches("http://").to_owned()
    }

    /// Kills the server with SIGKILL.
    pub fn kill(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A canonical call event line.
pub fn event(account: &str, id: &str, time: &str, interface: &str, extra: &str) -> String {
    format!(r#"{{"id":"{id}","account":"{account}","time":"{time}","interface":"{interface}"{extra}}}"#)
}

/// Now minus some seconds, RFC 3339.
pub fn ago(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds)).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Statuses of the results of an ingest answer, in order.
pub fn statuses(v: &Value) -> Vec<String> {
    v["results"].as_array().expect("results").iter().map(|r| r["status"].as_str().unwrap().to_owned()).collect()
}

/// A loopback address with a port that was free a moment ago.
pub fn free_address() -> String {
    let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    l.local_addr().expect("address").to_string()
}

/// Waits until `check` holds, up to `limit`; false if it never did.
pub fn wait_for(limit: Duration, mut check: impl FnMut() -> bool) -> bool {
    let start = std::time::Instant::now();
    while start.elapsed() < limit {
        if check() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    check()
}
