//! A request body that its handler left unread (a 401 or 403 answered from
//! the headers, a 404, a route that takes no body) is read to its end and
//! thrown away after the answer, a chunk at a time: at most
//! [`MAX_BODY_BYTES`] and within the body timeout; past either (or declared
//! longer), the connection is closed instead.
//!
//! Closed at once, with the body still coming, the socket would reset, and
//! most clients (reqwest, as found in the flood test) then report a broken
//! pipe instead of reading the 401 the server sent. Drained, the client
//! reads its answer, and the connection may be kept alive. The drain holds
//! one chunk at a time (hyper's read buffer, `MAX_HEAD_BYTES`), never the
//! body: memory stays flat however many bodies are refused.
//!
//! A body its reader gave up on part-way for being too slow is not drained:
//! its connection closes after the answer (`ConnectionClock::close_after_answer`);
//! drained, a trickle would hold the connection for another body timeout.

use crate::connection_timeouts::ConnectionClock;
use crate::options::MAX_BODY_BYTES;
use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

/// A request's body, as its handler sees it; drained when dropped unread.
pub(crate) struct RequestBody {
    /// `None` once handed to the drain.
    body: Option<Incoming>,
    ended: bool,
    clock: Arc<ConnectionClock>,
    timeout: Duration,
}

impl RequestBody {
    /// Wraps a request's body; `timeout` bounds its drain.
    pub fn new(body: Incoming, clock: Arc<ConnectionClock>, timeout: Duration) -> RequestBody {
        RequestBody { body: Some(body), ended: false, clock, timeout }
    }
}

impl Body for RequestBody {
    type Data = Bytes;
    type Error = hyper::Error;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, hyper::Error>>> {
        let this = self.get_mut();
        let Some(body) = this.body.as_mut() else { return Poll::Ready(None) };
        let polled = Pin::new(body).poll_frame(cx);
        if let Poll::Ready(None) = polled {
            this.ended = true;
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.ended || self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body.as_ref().map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}

impl Drop for RequestBody {
    fn drop(&mut self) {
        let clock = self.clock.clone();
        // A body declared longer than any request may carry would be given up anyway: not drained.
        let drainable = |b: &Incoming| b.size_hint().upper().is_none_or(|n| n <= MAX_BODY_BYTES as u64);
        let body = self.body.take().filter(|b| !self.ended && !b.is_end_stream() && drainable(b) && !clock.closing());
        let (Some(body), Ok(runtime)) = (body, tokio::runtime::Handle::try_current()) else {
            clock.part_ended();
            return;
        };
        let timeout = self.timeout;
        runtime.spawn(async move {
            let _ = tokio::time::timeout(timeout, drain(body)).await;
            // Dropped unfinished (too long, too slow, or broken), the body makes hyper close the connection.
            clock.part_ended();
        });
    }
}

/// Reads a body to its end, keeping nothing; gives up past [`MAX_BODY_BYTES`].
async fn drain(mut body: Incoming) {
    let mut read = 0usize;
    while let Some(Ok(frame)) = body.frame().await {
        read += frame.data_ref().map_or(0, Bytes::len);
        if read > MAX_BODY_BYTES {
            return;
        }
    }
}
