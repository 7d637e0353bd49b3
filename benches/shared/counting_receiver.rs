//! The webhook benchmark's receiver: an HTTP/1.1 server on loopback (axum,
//! on its own runtime in the bench process) that answers 200 at once,
//! counts deliveries, and keeps the arrival time of each event's first
//! attempt. It listens on several ports: each is a target of its own to the
//! server (scheme, host, port), whose per-target limit stays as configured.
//!
//! An event is known by its body's `call_id`: the benchmark's calls have ids
//! that are their serial number in hex, so an arrival is a slot in an array,
//! with no lock and no map on the receiving side.

use std::future::IntoFuture;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// What the receiver has seen.
pub struct Arrivals {
    epoch: Instant,
    /// By call serial: nanoseconds after `epoch` of the first attempt, plus one (0: none yet).
    first: Vec<AtomicU64>,
    /// Every POST received.
    pub deliveries: AtomicU64,
    /// Events received for the first time.
    pub distinct: AtomicU64,
    /// Bodies with no call id the receiver could read, or one out of range.
    pub unreadable: AtomicU64,
}

impl Arrivals {
    /// When the event of call `serial` first arrived, if it did.
    pub fn first(&self, serial: u64) -> Option<Instant> {
        match self.first.get(serial as usize)?.load(Ordering::Acquire) {
            0 => None,
            ns => Some(self.epoch + Duration::from_nanos(ns - 1)),
        }
    }

    fn record(&self, body: &[u8]) {
        self.deliveries.fetch_add(1, Ordering::Relaxed);
        let Some(slot) = call_serial(body).and_then(|s| self.first.get(s as usize)) else {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
            return;
        };
        let at = self.epoch.elapsed().as_nanos() as u64 + 1;
        if slot.compare_exchange(0, at, Ordering::AcqRel, Ordering::Acquire).is_ok() {
            self.distinct.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// The serial in a delivery body's `"call_id":"…"` (hex).
fn call_serial(body: &[u8]) -> Option<u64> {
    const FIELD: &[u8] = b"\"call_id\":\"";
    let start = body.windows(FIELD.len()).position(|w| w == FIELD)? + FIELD.len();
    let len = body[start..].iter().position(|&b| b == b'"')?;
    u64::from_str_radix(std::str::from_utf8(&body[start..start + len]).ok()?, 16).ok()
}

/// The receiver; it runs until the bench process ends.
pub struct CountingReceiver {
    /// One URL per port.
    pub urls: Vec<String>,
    pub arrivals: Arc<Arrivals>,
}

impl CountingReceiver {
    /// Listens on `ports` loopback ports, for events of calls with serials below `serials`.
    pub fn start(ports: usize, serials: u64) -> CountingReceiver {
        let arrivals = Arc::new(Arrivals {
            epoch: Instant::now(),
            first: (0..serials).map(|_| AtomicU64::new(0)).collect(),
            deliveries: AtomicU64::new(0),
            distinct: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
        });
        let listeners: Vec<std::net::TcpListener> =
            (0..ports.max(1)).map(|_| std::net::TcpListener::bind("127.0.0.1:0").expect("bind")).collect();
        let urls = listeners.iter().map(|l| format!("http://{}/hook", l.local_addr().unwrap())).collect();
        let seen = arrivals.clone();
        std::thread::Builder::new()
            .name("bench-receiver".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .enable_all()
                    .build()
                    .expect("receiver runtime");
                runtime.block_on(async move {
                    let app = axum::Router::new().fallback(move |body: bytes::Bytes| {
                        let seen = seen.clone();
                        async move {
                            seen.record(&body);
                            "ok"
                        }
                    });
                    let mut served = Vec::new();
                    for listener in listeners {
                        listener.set_nonblocking(true).unwrap();
                        let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                        served.push(tokio::spawn(axum::serve(listener, app.clone()).into_future()));
                    }
                    for s in served {
                        let _ = s.await;
                    }
                });
            })
            .expect("receiver thread");
        CountingReceiver { urls, arrivals }
    }
}
