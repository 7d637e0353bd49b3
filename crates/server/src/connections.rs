//! Accepting connections: at most `max_connections` open at once, each served
//! by hyper's HTTP/1 with the idle, header and write timeouts of
//! `connection_timeouts.rs`, and every one finished before the server stops.
//!
//! Pipelined requests are bounded by hyper itself: it answers a connection's
//! requests one at a time, and reads nothing more of it while an answer is
//! unfinished beyond its read buffer ([`MAX_HEAD_BYTES`]); hyper has no
//! count of requests to bound. A client that pipelines and never reads its
//! answers is closed by the write timeout.
//!
//! Past the limit, a connection is accepted, sent a short 503 (`busy`,
//! `Retry-After`) and closed at once, rather than left in the listen backlog.
//! Left there, it would still hold a kernel socket, its client would wait on
//! a handshake the kernel already completed, to be served whenever a slot
//! frees (perhaps long after it gave up, so that the slot then goes to a dead
//! connection), and nobody could count it. Closed at once, it holds nothing,
//! its client learns at once that it may retry, and `/metrics` counts it.

use crate::api::AppState;
use crate::connection_timeouts::{ClockedBody, ConnectionClock, TimedSocket};
use crate::metrics::Metrics;
use crate::unread_bodies::RequestBody;
use axum::http::{header, HeaderValue};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tower::ServiceExt;

/// The most bytes hyper buffers of a connection's reads: it bounds a
/// request's head (its line and headers), and so what a slow or hostile
/// client can make the server hold per connection.
pub const MAX_HEAD_BYTES: usize = 64 << 10;

/// What a connection past the limit is sent before it is closed.
const TOO_MANY_CONNECTIONS: &str = concat!(
    "HTTP/1.1 503 Service Unavailable\r\n",
    "content-type: application/json\r\n",
    "retry-after: 1\r\n",
    "connection: close\r\n",
    "content-length: 86\r\n\r\n",
    r#"{"error":{"code":"busy","message":"too many connections open: try again in a moment"}}"#
);

/// Serves `app` on `listener` until `stop` resolves; then stops accepting,
/// lets the requests in progress finish (idle connections close at once), and
/// returns once every connection is closed.
pub(crate) async fn serve(
    listener: TcpListener,
    app: Router,
    state: Arc<AppState>,
    stop: impl Future<Output = ()>,
) -> io::Result<()> {
    let limits = state.settings.limits.clone();
    let mut http = hyper::server::conn::http1::Builder::new();
    // The header timeout is `connection_timeouts.rs`'s (hyper's would share a clock with the idle one).
    http.header_read_timeout(None).max_buf_size(MAX_HEAD_BYTES).keep_alive(true);
    let graceful = GracefulShutdown::new();
    let mut stop = std::pin::pin!(stop);
    loop {
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _peer)) => stream,
                Err(e) => {
                    accept_failed(e).await;
                    continue;
                }
            },
            () = &mut stop => break,
        };
        let Ok(slot) = state.connection_slots.clone().try_acquire_owned() else {
            Metrics::add(&state.metrics.refused_connections, 1);
            refuse(stream);
            continue;
        };
        let clock = ConnectionClock::new(limits.idle_timeout, limits.header_timeout);
        let counted = state.clone();
        let on_timeout = move || Metrics::add(&counted.metrics.connection_timeouts, 1);
        let socket = TokioIo::new(TimedSocket::new(stream, clock.clone(), limits.write_timeout, on_timeout));
        let app = app.clone();
        let body_timeout = limits.body_timeout;
        let service = hyper::service::service_fn(move |request: hyper::Request<Incoming>| {
            clock.request_started();
            let (app, clock) = (app.clone(), clock.clone());
            let mut request = request.map(|body| RequestBody::new(body, clock.clone(), body_timeout));
            // For a body reader that gives up part-way to close the connection after its answer (`body.rs`).
            request.extensions_mut().insert(clock.clone());
            async move {
                let mut response = app.oneshot(request).await?;
                if clock.closing() {
                    response.headers_mut().insert(header::CONNECTION, HeaderValue::from_static("close"));
                }
                Ok::<_, Infallible>(response.map(|body| ClockedBody::new(body, clock)))
            }
        });
        let connection = graceful.watch(http.serve_connection(socket, service));
        let state = state.clone();
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!(error = %e, "connection ended");
            }
            // The state before the slot: once every slot is back, nothing of a connection holds the store.
            drop(state);
            drop(slot);
        });
    }
    drop(listener);
    graceful.shutdown().await;
    let every_slot = u32::try_from(limits.max_connections).unwrap_or(u32::MAX);
    let _all_closed = state.connection_slots.acquire_many(every_slot).await;
    Ok(())
}

/// Sends the canned 503 if the socket takes it at once, then closes it.
fn refuse(stream: TcpStream) {
    let _ = stream.try_write(TOO_MANY_CONNECTIONS.as_bytes());
    drop(stream);
}

/// A failed accept: a connection that went away before it was taken is no
/// matter. Out of descriptors (EMFILE, ENFILE), the connection waits in the
/// backlog while the loop pauses and retries (each connection that closes
/// frees one), rather than spin on an accept that fails at once; anything
/// else is logged and paused on too.
async fn accept_failed(e: io::Error) {
    if matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    ) {
        return;
    }
    if matches!(e.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)) {
        tracing::warn!(error = %e, "out of file descriptors: accepting again in a moment");
    } else {
        tracing::error!(error = %e, "cannot accept a connection");
    }
    tokio::time::sleep(ACCEPT_PAUSE).await;
}

/// How long the accept loop pauses after a failed accept.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_refusal_is_a_whole_answer_in_the_envelope() {
        let (head, body) = TOO_MANY_CONNECTIONS.split_once("\r\n\r\n").unwrap();
        let length: usize = head.lines().find_map(|l| l.strip_prefix("content-length: ")).unwrap().parse().unwrap();
        assert_eq!(length, body.len());
        let v: serde_json::Value = serde_json::from_str(body).unwrap();
        assert_eq!(v["error"]["code"], "busy");
    }
}
