//! Kept HTTP/1.1 connections to targets, each used by one attempt at a
//! time: no connection task, no pool task, no channel between an attempt
//! and its connection (`http1.rs` speaks on it). hyper's pooled client put a
//! task and a hand-off between the two at every request, which cost about a
//! tenth of a delivery's CPU (docs/adr/0002-delivery-path-cost.md).
//!
//! An attempt takes an idle connection to its target's origin (scheme,
//! host, port) or makes one through the guarded connector (the addresses a
//! name resolves to are checked, the connect timeout, TLS for https),
//! sends its request, reads the answer, and gives the connection back only
//! when the answer was read to its end and the connection takes another
//! request. A kept connection the target closed while it was idle (legal:
//! a server may close an idle connection at any time) is dropped when
//! found, or, closed under the request, the request is sent again once on a
//! new connection. Idle connections are bounded per origin and in all, and
//! closed once idle for [`IDLE_CONNECTION`].

use crate::http1::{Failure, Found, Wire};
use hyper::StatusCode;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use std::time::{Duration, Instant};
use tower::Service;

/// The connector every connection is made with.
pub(crate) type Connector = hyper_rustls::HttpsConnector<HttpConnector<crate::target::GuardedResolver>>;

/// A connection: TLS or not, read and written through tokio's traits. Boxed:
/// a TLS stream's state is kilobytes, which every take, give-back and
/// future holding a connection would otherwise copy at each move.
type Connection = Box<Wire<TokioIo<hyper_rustls::MaybeHttpsStream<TokioIo<tokio::net::TcpStream>>>>>;

/// How long a kept connection may stay idle.
pub(crate) const IDLE_CONNECTION: Duration = Duration::from_secs(60);

/// Idle connections kept at most, in all: each holds a socket.
const MAX_IDLE: usize = 1_024;

/// Origins whose connections are not kept at most: past it, all are forgotten.
const MAX_SPOILED: usize = 4_096;

/// How soon after a request is written a close of its kept connection is
/// taken for the target having closed it while idle (the request unread),
/// and the request sent again on a new connection.
const CLOSED_RACE: Duration = Duration::from_secs(1);

/// A failure, after the first try's if the request went again.
fn again(first: &Option<String>, why: String) -> String {
    match first {
        Some(first) => format!("{first}; sent again on a new connection: {why}"),
        None => why,
    }
}

/// How often, at most, idle connections past their time are looked for
/// among every origin's (a connection is looked at when its origin is used too).
const SWEEP_EVERY: Duration = Duration::from_secs(10);

/// What came back for a request.
pub(crate) struct Answer {
    pub status: StatusCode,
    /// Its `retry-after`, if it had one.
    pub retry_after: Option<String>,
    /// At most `max_body` bytes of the body.
    pub body: Vec<u8>,
    /// Why reading the body stopped short, if it did.
    pub read_error: Option<String>,
}

/// Idle connections by origin, each with when it was given back, and how many in all.
#[derive(Default)]
struct Idle {
    by_origin: hashbrown::HashMap<String, Vec<(Connection, Instant)>, foldhash::fast::RandomState>,
    total: usize,
    swept: Option<Instant>,
    /// Origins that sent bytes after an answer (a late or second answer):
    /// their connections are not kept, since a request on one could read
    /// such bytes as its answer. (Bytes that come after the next request
    /// is written no HTTP/1.1 client can tell from its answer; this ends
    /// it at the first found.)
    spoiled: hashbrown::HashSet<String, foldhash::fast::RandomState>,
}

impl Idle {
    /// `origin` sent bytes nobody asked for: none of its connections is kept.
    fn spoil(&mut self, origin: &str) {
        if self.spoiled.len() >= MAX_SPOILED {
            self.spoiled.clear();
        }
        if self.spoiled.insert(origin.to_owned()) {
            tracing::warn!(origin, "a webhook target sent bytes after an answer: its connections are no longer kept");
            if let Some(kept) = self.by_origin.remove(origin) {
                self.total -= kept.len();
            }
        }
    }
}

impl Idle {
    /// Closes the connections idle for [`IDLE_CONNECTION`] or more, of every origin.
    fn sweep(&mut self) {
        let mut total = 0;
        self.by_origin.retain(|_, kept| {
            kept.retain(|(_, since)| since.elapsed() < IDLE_CONNECTION);
            total += kept.len();
            !kept.is_empty()
        });
        self.total = total;
        self.swept = Some(Instant::now());
    }
}

/// Idle connections by origin.
pub(crate) struct KeptConnections {
    idle: parking_lot::Mutex<Idle>,
    per_origin: usize,
}

impl KeptConnections {
    /// Keeps at most `per_origin` idle connections to one origin.
    pub(crate) fn new(per_origin: usize) -> KeptConnections {
        KeptConnections { idle: Default::default(), per_origin: per_origin.max(1) }
    }

    /// The most recently used idle connection to `origin` still open, if any.
    fn take(&self, origin: &str) -> Option<Connection> {
        let mut idle = self.idle.lock();
        let Idle { by_origin, total, .. } = &mut *idle;
        let kept = by_origin.get_mut(origin)?;
        let before = kept.len();
        let mut found = None;
        let mut stray = false;
        while let Some((mut c, since)) = kept.pop() {
            // The most recent first: once one is too old, so are the rest.
            if since.elapsed() >= IDLE_CONNECTION {
                kept.clear();
                break;
            }
            match c.look_while_idle() {
                Found::Open => {
                    found = Some(c);
                    break;
                }
                Found::Closed => {}
                Found::Stray => {
                    stray = true;
                    break;
                }
            }
        }
        *total -= before - kept.len();
        if kept.is_empty() {
            by_origin.remove(origin);
        }
        if stray {
            idle.spoil(origin);
        }
        found
    }

    /// Keeps `c` for the next request to `origin`, if there is room.
    fn give_back(&self, origin: &str, c: Connection) {
        let mut idle = self.idle.lock();
        if idle.spoiled.contains(origin) {
            return;
        }
        if idle.total >= MAX_IDLE || idle.swept.is_none_or(|at| at.elapsed() >= SWEEP_EVERY) {
            idle.sweep();
        }
        let total = idle.total;
        let kept = idle.by_origin.entry_ref(origin).or_default();
        if kept.len() < self.per_origin && total < MAX_IDLE {
            kept.push((c, Instant::now()));
            idle.total += 1;
        }
    }

    /// Idle connections kept now (tests).
    #[cfg(test)]
    pub(crate) fn idle_count(&self) -> usize {
        let idle = self.idle.lock();
        assert_eq!(idle.total, idle.by_origin.values().map(Vec::len).sum::<usize>(), "the total is counted right");
        idle.total
    }

    /// Sends the request `make` builds (`http1::post`, to `target`'s
    /// path) to `target` (a checked URL), on a kept connection to its origin
    /// or a new one, and reads at most `max_body` bytes of the answer's body,
    /// all by `deadline` (past it: "timed out", or the answer so far).
    /// A kept connection closed under the request sends it again once, on
    /// a new connection: at most a repeat, with the same `webhook-id`, for
    /// a receiver that took it and then closed.
    pub(crate) async fn send(
        &self,
        connector: &Connector,
        target: &url::Url,
        max_body: usize,
        deadline: tokio::time::Instant,
        make: impl Fn() -> Result<Vec<u8>, String>,
    ) -> Result<Answer, String> {
        let timed_out = |waiting_for: &str| format!("timed out {waiting_for}");
        let origin = &target[..url::Position::BeforePath];
        let mut kept = self.take(origin);
        // The failure of the first try, when the request goes again.
        let mut first: Option<String> = None;
        loop {
            let reused = kept.is_some();
            let mut c = match kept.take() {
                Some(c) => c,
                None => tokio::time::timeout_at(deadline, connect(connector, origin))
                    .await
                    .map_err(|_| again(&first, timed_out("connecting")))?
                    .map_err(|e| again(&first, e))?,
            };
            let request = make()?;
            let written_at = Instant::now();
            let head = match tokio::time::timeout_at(deadline, c.write(&request)).await {
                Ok(Ok(())) => tokio::time::timeout_at(deadline, c.read_head())
                    .await
                    .map_err(|_| again(&first, timed_out("waiting for the answer")))?,
                Ok(Err(failure)) => Err(failure),
                Err(_) => return Err(again(&first, timed_out("sending the request"))),
            };
            let head = match head {
                Ok(head) => head,
                // The target closed the kept connection as the request came
                // (it had closed it idle): the request goes again, once. A
                // close later may follow the request's work: not sent again.
                Err(Failure::ClosedBefore(why)) if reused && written_at.elapsed() < CLOSED_RACE => {
                    first = Some(why);
                    continue;
                }
                Err(failure) => return Err(again(&first, failure.into_text())),
            };
            let status = StatusCode::from_u16(head.status).expect("http1 reads statuses of 100 to 999");
            let mut body = Vec::new();
            let (read_error, ready) = tokio::time::timeout_at(deadline, c.read_body(&head, max_body, &mut body))
                .await
                .unwrap_or_else(|_| (Some(timed_out("reading the answer's body")), false));
            // Kept only when the answer was read to its end and the
            // connection takes the next request (not closed by the target).
            if ready {
                self.give_back(origin, c);
            } else if c.stray() {
                self.idle.lock().spoil(origin);
            }
            return Ok(Answer { status, retry_after: head.retry_after, body, read_error });
        }
    }
}

/// A new connection to `origin` (`scheme://host:port`), through `connector`.
async fn connect(connector: &Connector, origin: &str) -> Result<Connection, String> {
    let uri: hyper::Uri = origin.parse().map_err(|e| format!("cannot connect to {origin}: {e}"))?;
    let mut connector = connector.clone();
    std::future::poll_fn(|cx| connector.poll_ready(cx)).await.map_err(|e| describe(&*e))?;
    let io = connector.call(uri).await.map_err(|e| describe(&*e))?;
    Ok(Box::new(Wire::new(TokioIo::new(io))))
}

/// An error with its causes, which say what failed (a refused address, a refused connection).
fn describe(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}
