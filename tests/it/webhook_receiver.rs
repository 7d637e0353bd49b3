//! A webhook receiver for the tests: a small HTTP/1.1 server on loopback
//! that records each delivery and answers from a script, and the signature
//! check of the README (the same code: a test holds the README to it).

use std::collections::{HashMap, VecDeque};
use std::io::{Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

// README: verify (the README's receiver snippet is this block, verbatim)
use base64::{engine::general_purpose::STANDARD, Engine};
use hmac::{Hmac, KeyInit, Mac};

/// Whether a delivery is signed with `secret` (`whsec_…`): its `webhook-id`,
/// `webhook-timestamp` and `webhook-signature` headers and its raw body.
/// (Refuse too a timestamp more than 5 minutes from your clock: a replay.)
pub fn verify(secret: &str, id: &str, timestamp: &str, body: &[u8], signatures: &str) -> bool {
    let Some(key) = secret.strip_prefix("whsec_").and_then(|k| STANDARD.decode(k).ok()) else { return false };
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&key).expect("any key length");
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .filter_map(|s| STANDARD.decode(s).ok())
        .any(|sig| mac.clone().verify_slice(&sig).is_ok())
}
// README: end

/// How the receiver answers a request.
#[derive(Clone, Debug)]
pub enum Reply {
    /// A status, with extra header lines (`name: value\r\n`).
    Status(u16, String),
    /// 200, only after this long (past a sender's timeout, say). This and
    /// `Slow` serve the engine's tests (`crates/webhooks/tests`).
    #[allow(dead_code)]
    Hang(Duration),
    /// This status, after this long.
    #[allow(dead_code)]
    Slow(Duration, u16),
}

/// One delivery as received.
#[derive(Clone, Debug)]
pub struct Received {
    /// The request target (`/hook`).
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: Vec<u8>,
    /// When its body was read.
    pub at: std::time::Instant,
}

impl Received {
    pub fn header(&self, name: &str) -> &str {
        self.headers.get(name).map(String::as_str).unwrap_or("")
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("a JSON body")
    }

    /// Whether it is signed with `secret`.
    pub fn signed_with(&self, secret: &str) -> bool {
        verify(
            secret,
            self.header("webhook-id"),
            self.header("webhook-timestamp"),
            &self.body,
            self.header("webhook-signature"),
        )
    }

    /// `(action, path, destination)` of its body.
    pub fn change(&self) -> (String, String, Option<String>) {
        let v = self.json();
        let d = &v["data"];
        (
            d["action"].as_str().unwrap().to_owned(),
            d["path"].as_str().unwrap().to_owned(),
            d["destination"].as_str().map(str::to_owned),
        )
    }
}

/// The receiver; it stops with the test process.
pub struct Receiver {
    pub url: String,
    received: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Reply>>>,
}

impl Receiver {
    /// Answers 200 to everything.
    pub fn start() -> Receiver {
        Receiver::scripted(vec![])
    }

    /// Answers from `script`, then 200.
    pub fn scripted(script: Vec<Reply>) -> Receiver {
        Receiver::answering(Reply::Status(200, String::new()), script)
    }

    /// Answers from `script`, then with `default`.
    pub fn answering(default: Reply, script: Vec<Reply>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        let received: Arc<Mutex<Vec<Received>>> = Arc::default();
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let (r, s) = (received.clone(), script.clone());
        std::thread::spawn(move || {
            for stream in listener.incoming() {
                let Ok(mut stream) = stream else { return };
                let (r, s, default) = (r.clone(), s.clone(), default.clone());
                std::thread::spawn(move || {
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let Some(req) = read_request(&mut stream) else { return };
                    // A path of its own that the script does not apply to: another account's webhook at the host.
                    let reply = match req.path.ends_with(ALWAYS_OK) {
                        true => Reply::Status(200, String::new()),
                        false => s.lock().unwrap().pop_front().unwrap_or(default),
                    };
                    r.lock().unwrap().push(req);
                    let (status, extra) = match reply {
                        Reply::Status(status, extra) => (status, extra),
                        Reply::Hang(d) => {
                            std::thread::sleep(d);
                            (200, String::new())
                        }
                        Reply::Slow(d, status) => {
                            std::thread::sleep(d);
                            (status, String::new())
                        }
                    };
                    let answer =
                        format!("HTTP/1.1 {status} X\r\ncontent-length: 2\r\nconnection: close\r\n{extra}\r\nok");
                    let _ = stream.write_all(answer.as_bytes());
                });
            }
        });
        Receiver { url, received, script }
    }

    pub fn all(&self) -> Vec<Received> {
        self.received.lock().unwrap().clone()
    }

    pub fn count(&self) -> usize {
        self.received.lock().unwrap().len()
    }

    /// Waits until `n` deliveries came (up to `limit`); all of them.
    pub fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let start = std::time::Instant::now();
        while self.count() < n && start.elapsed() < limit {
            std::thread::sleep(Duration::from_millis(20));
        }
        self.all()
    }

    /// Replies still to come from the script.
    pub fn script_left(&self) -> usize {
        self.script.lock().unwrap().len()
    }
}

/// A request to a path ending so is answered 200 at once, whatever the script.
pub const ALWAYS_OK: &str = "/always-ok";

fn read_request(stream: &mut std::net::TcpStream) -> Option<Received> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(at) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break at + 4;
        }
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_string();
    let path = head.split(' ').nth(1).unwrap_or_default().to_owned();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers.get("content-length").and_then(|l| l.parse().ok()).unwrap_or(0);
    while buf.len() < head_end + length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some(Received { path, headers, body: buf[head_end..].to_vec(), at: std::time::Instant::now() })
}
