//! The idle, header and write timeouts of one connection.
//!
//! A connection is always in one of three phases: **idle** (new, or kept
//! alive after an answer, no byte of a request yet), **head** (a request's
//! first byte came, its headers have not ended) or **in request** (from the
//! end of its headers until both its answer and its body have ended: a body
//! left unread is drained after the answer, `unread_bodies.rs`). Idle and head each have a
//! deadline, `idle_timeout` from the start of the wait and `header_timeout`
//! from the first byte; a read that would wait past it fails instead, and
//! hyper closes the connection. A request in progress has none here: its
//! body has its own deadline (`body.rs`), and its handler is the server's.
//!
//! hyper has a header timeout, but it runs from the moment it waits for a
//! request, so an idle keep-alive connection and a slow head would share one
//! clock; these are two settings. A review held 11,555 connections open,
//! idle, half-sent or one byte a second, for minutes (issue 12).
//!
//! Writes have a deadline of their own, in every phase: a write that takes
//! nothing for `write_timeout` fails, and hyper closes the connection. An
//! answer's size is not bounded (a CSV export streams any size), its progress
//! is: a client that pipelines requests and never reads the answers, or
//! starts an export and stops reading, once held its connection slot for as
//! long as it kept the socket open (the second review, issue 12).
//!
//! A request may also ask that its connection close after its answer
//! ([`ConnectionClock::close_after_answer`]): a body given up part-way (too
//! slow) is then dropped, not drained, and the answer says `connection: close`.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

/// Where a connection is, and since when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Waiting for a request's first byte, since then.
    Idle(Instant),
    /// A request's first byte came then; its headers have not ended.
    Head(Instant),
    /// Between the end of a request's headers and the end of both its answer
    /// and its body; how many of those two are still open.
    InRequest(u8),
}

/// One connection's phase, shared by its socket (which reads) and its
/// service (which sees requests begin and answers end).
pub(crate) struct ConnectionClock {
    state: Mutex<ClockState>,
    idle_timeout: Duration,
    header_timeout: Duration,
    /// Raised by a request whose body was given up part-way.
    closing: AtomicBool,
}

struct ClockState {
    phase: Phase,
    /// The task of the last read that waited: woken when the connection
    /// turns idle, so that the read sets its deadline. hyper reads again on
    /// its own only when bytes come, and a kept-alive connection may get none.
    waiting_reader: Option<Waker>,
}

impl ConnectionClock {
    /// A new connection: idle from now.
    pub fn new(idle_timeout: Duration, header_timeout: Duration) -> Arc<ConnectionClock> {
        let state = ClockState { phase: Phase::Idle(Instant::now()), waiting_reader: None };
        Arc::new(ConnectionClock {
            state: Mutex::new(state),
            idle_timeout,
            header_timeout,
            closing: AtomicBool::new(false),
        })
    }

    /// The connection closes after the answer in progress: its request's body
    /// is not drained (`unread_bodies.rs`) and the answer says so.
    pub fn close_after_answer(&self) {
        self.closing.store(true, Ordering::Relaxed);
    }

    /// Whether the connection closes after the answer in progress.
    pub fn closing(&self) -> bool {
        self.closing.load(Ordering::Relaxed)
    }

    /// A request's headers ended: no connection deadline until its answer
    /// and its body have both ended ([`ConnectionClock::part_ended`]).
    pub fn request_started(&self) {
        self.state.lock().expect("lock").phase = Phase::InRequest(2);
    }

    /// A request's answer, or its body, ended (sent or read, or given up);
    /// once both have, the connection is idle from now.
    pub fn part_ended(&self) {
        let mut state = self.state.lock().expect("lock");
        match state.phase {
            Phase::InRequest(open) if open > 1 => state.phase = Phase::InRequest(open - 1),
            Phase::InRequest(_) => {
                state.phase = Phase::Idle(Instant::now());
                let reader = state.waiting_reader.take();
                drop(state);
                if let Some(reader) = reader {
                    reader.wake();
                }
            }
            Phase::Idle(_) | Phase::Head(_) => {}
        }
    }

    /// Bytes were read: an idle connection's request has begun.
    fn bytes_arrived(&self) {
        let mut state = self.state.lock().expect("lock");
        if let Phase::Idle(_) = state.phase {
            state.phase = Phase::Head(Instant::now());
        }
    }

    /// A read waits: when it must give up, and why. Its task is kept, to be
    /// woken if the connection turns idle meanwhile.
    fn read_waits(&self, reader: &Waker) -> Option<(Instant, &'static str)> {
        let mut state = self.state.lock().expect("lock");
        if !state.waiting_reader.as_ref().is_some_and(|w| w.will_wake(reader)) {
            state.waiting_reader = Some(reader.clone());
        }
        match state.phase {
            Phase::Idle(since) => Some((since + self.idle_timeout, "no request began within the idle timeout")),
            Phase::Head(since) => {
                Some((since + self.header_timeout, "the headers did not end within the header timeout"))
            }
            Phase::InRequest(_) => None,
        }
    }
}

/// A socket whose reads fail once its connection's deadline passes, and
/// whose writes fail once they have taken nothing for the write timeout.
pub(crate) struct TimedSocket<S> {
    socket: S,
    clock: Arc<ConnectionClock>,
    timer: Pin<Box<Sleep>>,
    timer_set_for: Option<Instant>,
    write_timeout: Duration,
    /// Its own timer: a read and a write may wait at once (hyper reads, to
    /// see a client go away, while it writes an answer).
    write_timer: Pin<Box<Sleep>>,
    /// Since when writes have waited with nothing taken; `None` while they progress.
    write_stalled_since: Option<Instant>,
    on_timeout: Box<dyn Fn() + Send + Sync>,
}

impl<S> TimedSocket<S> {
    /// Wraps a socket. A read past the deadline, or a write that took nothing
    /// for `write_timeout`, fails with [`io::ErrorKind::TimedOut`], and calls
    /// `on_timeout` (hyper ends an idle connection's failed read quietly).
    pub fn new(
        socket: S,
        clock: Arc<ConnectionClock>,
        write_timeout: Duration,
        on_timeout: impl Fn() + Send + Sync + 'static,
    ) -> Self {
        TimedSocket {
            socket,
            clock,
            timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            timer_set_for: None,
            write_timeout,
            write_timer: Box::pin(tokio::time::sleep(Duration::ZERO)),
            write_stalled_since: None,
            on_timeout: Box::new(on_timeout),
        }
    }

    /// A write's outcome, with the write deadline applied: one that waits
    /// starts (or continues) a stall, one that returns ends it; a stall that
    /// outlasts the write timeout fails the write.
    fn watch_write<T>(&mut self, cx: &mut Context<'_>, polled: Poll<io::Result<T>>) -> Poll<io::Result<T>> {
        if polled.is_ready() {
            self.write_stalled_since = None;
            return polled;
        }
        let since = *self.write_stalled_since.get_or_insert_with(Instant::now);
        let deadline = since + self.write_timeout;
        if self.write_timer.deadline() != deadline {
            self.write_timer.as_mut().reset(deadline);
        }
        if self.write_timer.as_mut().poll(cx).is_ready() {
            (self.on_timeout)();
            let why = "the client took nothing of the answer within the write timeout";
            return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
        }
        Poll::Pending
    }
}

impl<S: AsyncRead + Unpin> AsyncRead for TimedSocket<S> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let before = buf.filled().len();
        match Pin::new(&mut this.socket).poll_read(cx, buf) {
            Poll::Ready(Ok(())) => {
                if buf.filled().len() > before {
                    this.clock.bytes_arrived();
                }
                Poll::Ready(Ok(()))
            }
            Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
            Poll::Pending => {
                let Some((deadline, why)) = this.clock.read_waits(cx.waker()) else { return Poll::Pending };
                if this.timer_set_for != Some(deadline) {
                    this.timer.as_mut().reset(deadline);
                    this.timer_set_for = Some(deadline);
                }
                if this.timer.as_mut().poll(cx).is_ready() {
                    (this.on_timeout)();
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::TimedOut, why)));
                }
                Poll::Pending
            }
        }
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for TimedSocket<S> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, data: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.socket).poll_write(cx, data);
        this.watch_write(cx, polled)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.socket).poll_write_vectored(cx, bufs);
        this.watch_write(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.socket.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.socket).poll_flush(cx);
        this.watch_write(cx, polled)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let polled = Pin::new(&mut this.socket).poll_shutdown(cx);
        this.watch_write(cx, polled)
    }
}

/// An answer's body that tells the connection's clock when it ends: when
/// hyper drops it, sent or given up.
pub(crate) struct ClockedBody {
    body: axum::body::Body,
    clock: Arc<ConnectionClock>,
}

impl ClockedBody {
    /// Wraps an answer's body.
    pub fn new(body: axum::body::Body, clock: Arc<ConnectionClock>) -> ClockedBody {
        ClockedBody { body, clock }
    }
}

impl Drop for ClockedBody {
    fn drop(&mut self) {
        self.clock.part_ended();
    }
}

impl http_body::Body for ClockedBody {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        Pin::new(&mut self.get_mut().body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.body.size_hint()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn socket(
        idle: u64,
        header: u64,
    ) -> (TimedSocket<tokio::io::DuplexStream>, tokio::io::DuplexStream, Arc<ConnectionClock>) {
        let (server, client) = tokio::io::duplex(1024);
        let clock = ConnectionClock::new(Duration::from_millis(idle), Duration::from_millis(header));
        (TimedSocket::new(server, clock.clone(), Duration::from_secs(60), || {}), client, clock)
    }

    #[tokio::test]
    async fn an_idle_connection_times_out() {
        let (mut server, _client, _) = socket(50, 10_000);
        let started = Instant::now();
        let e = server.read(&mut [0; 16]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(started.elapsed() >= Duration::from_millis(50));
    }

    #[tokio::test]
    async fn a_slow_head_times_out_on_its_own_clock() {
        let (mut server, mut client, _) = socket(10_000, 80);
        client.write_all(b"G").await.unwrap();
        assert_eq!(server.read(&mut [0; 16]).await.unwrap(), 1);
        let started = Instant::now();
        let e = server.read(&mut [0; 16]).await.unwrap_err();
        assert!(e.to_string().contains("header timeout"), "{e}");
        assert!(started.elapsed() < Duration::from_secs(5), "the header clock, not the idle one");
    }

    #[tokio::test]
    async fn a_request_in_progress_has_no_deadline_and_its_end_wakes_the_waiting_read() {
        let (mut server, mut client, clock) = socket(60, 60);
        clock.request_started();
        // A read that waits in a request (hyper's, between two requests) sets no deadline...
        let read = tokio::spawn(async move {
            let result = server.read(&mut [0; 16]).await;
            (result.map_err(|e| e.to_string()), Instant::now())
        });
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!read.is_finished(), "still waiting after both timeouts: no deadline in a request");
        drop(ClockedBody::new(axum::body::Body::empty(), clock.clone()));
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert!(!read.is_finished(), "the answer ended, not yet the request's body");
        // ...and is woken when the connection turns idle, to time out on the idle clock.
        let idle_from = Instant::now();
        clock.part_ended();
        let (result, at) = read.await.unwrap();
        assert!(result.unwrap_err().contains("idle timeout"));
        assert!(at - idle_from >= Duration::from_millis(60) && at - idle_from < Duration::from_secs(5));
        client.write_all(b"x").await.unwrap_err();
    }

    #[tokio::test]
    async fn a_write_that_takes_nothing_times_out_and_one_that_progresses_does_not() {
        let (server, mut client) = tokio::io::duplex(64);
        let clock = ConnectionClock::new(Duration::from_secs(60), Duration::from_secs(60));
        let mut server = TimedSocket::new(server, clock, Duration::from_millis(150), || {});
        // A reader that takes a little every 50 ms: slow, but never stalled for 150 ms.
        let sent = 64 + 16 * 15;
        let reader = tokio::spawn(async move {
            let mut got = 0;
            while got < sent {
                tokio::time::sleep(Duration::from_millis(50)).await;
                got += client.read(&mut [0; 16]).await.unwrap();
            }
            client
        });
        let started = Instant::now();
        server.write_all(&vec![b'x'; sent]).await.unwrap();
        assert!(started.elapsed() >= Duration::from_millis(500), "the reader was slow: the writes waited");
        let client = reader.await.unwrap();
        // Then the reader stops reading: the next writes fill the pipe and wait.
        let started = Instant::now();
        let e = server.write_all(&[b'y'; 1024]).await.unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut);
        assert!(e.to_string().contains("write timeout"), "{e}");
        let waited = started.elapsed();
        assert!(waited >= Duration::from_millis(150) && waited < Duration::from_secs(5), "{waited:?}");
        drop(client);
    }
}
