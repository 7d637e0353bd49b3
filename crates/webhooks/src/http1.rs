//! One HTTP/1.1 exchange of a webhook attempt on a connection: the request
//! written whole (its head and body in one write), the answer's head parsed
//! (`httparse`), its body read by its framing (RFC 9112 §6.3: none,
//! `content-length`, `chunked`, or until the connection closes), at most a
//! given number of its bytes kept.
//!
//! hyper's client did the same through a request and a response type, a
//! header map each way, a body channel and a dispatcher's state machine:
//! about a tenth of a delivery's CPU, where an attempt needs a status, one
//! header (`retry-after`) and a bounded body (docs/adr/0002-delivery-path-cost.md).
//!
//! Bounded: an answer's heads (its interim 1xx ones, at most
//! [`MAX_INTERIM`], and its own) at most [`MAX_HEAD_BYTES`] together and
//! [`MAX_HEADERS`] lines each, a chunked body's trailers at most
//! [`MAX_HEAD_BYTES`], a chunk's size line at most [`MAX_LINE_BYTES`]; past
//! that the answer is refused, not buffered. What a failure quotes of the
//! answer is at most [`QUOTED_BYTES`] of it (a failure is stored with its attempt).

use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf};

/// Bytes of an answer's head at most.
pub(crate) const MAX_HEAD_BYTES: usize = 16 << 10;

/// Header lines of an answer's head at most.
const MAX_HEADERS: usize = 64;

/// Bytes of a chunk's size line at most (extensions included).
const MAX_LINE_BYTES: usize = 1 << 10;

/// Interim (1xx) answers before an answer at most.
const MAX_INTERIM: usize = 8;

/// Bytes of an answer a failure quotes at most.
const QUOTED_BYTES: usize = 32;

/// Bytes asked of the connection by one read.
const READ_BYTES: usize = 8 << 10;

/// Why an answer's connection closed before the answer.
pub(crate) const CLOSED: &str = "the connection closed before the answer";

/// Why reading an answer whose connection closed in its body stopped.
pub(crate) const CLOSED_IN_BODY: &str = "the connection closed during the answer";

/// Names [`post`] writes itself, which no header given may be.
const FRAMING: [&str; 4] = ["host", "content-length", "transfer-encoding", "connection"];

/// The request of an attempt: `POST path` to `host`, the headers given, a
/// `content-length`, and the body, into `out`. `None` when a name is no
/// token or one of [`FRAMING`], or a value, the path or the host has a byte
/// that cannot be in it (`check_headers` refuses these when a subscription
/// is made; this holds the request's form whatever it is given).
pub(crate) fn post<'h>(
    out: &mut Vec<u8>,
    path: &str,
    host: &str,
    headers: impl IntoIterator<Item = (&'h str, &'h str)>,
    body: &[u8],
) -> Option<()> {
    let visible = |s: &str| s.bytes().all(|b| (0x21..0x7f).contains(&b));
    let token =
        |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b));
    let value = |s: &str| s.bytes().all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
    if !visible(path) || !visible(host) {
        return None;
    }
    out.extend_from_slice(b"POST ");
    out.extend_from_slice(path.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    for (name, text) in headers {
        if !token(name) || FRAMING.iter().any(|f| f.eq_ignore_ascii_case(name)) || !value(text) {
            return None;
        }
        out.extend_from_slice(b"\r\n");
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(text.as_bytes());
    }
    out.extend_from_slice(b"\r\ncontent-length: ");
    out.extend_from_slice(body.len().to_string().as_bytes());
    out.extend_from_slice(b"\r\n\r\n");
    out.extend_from_slice(body);
    Some(())
}

/// How an answer's body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body (a 204, a 304, or `content-length: 0`).
    Empty,
    /// `content-length` bytes.
    Length(u64),
    /// `transfer-encoding: chunked`.
    Chunked,
    /// Up to the connection's close.
    UntilClose,
}

/// What an attempt reads of an answer's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Head {
    pub status: u16,
    pub retry_after: Option<String>,
    pub framing: Framing,
    /// The connection may take another request once the body is read
    /// (HTTP/1.1 or a 1.0 `keep-alive`, no `connection: close`, a body with an end).
    pub reusable: bool,
}

/// Why an exchange failed.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Failure {
    /// The connection closed, or was reset, before any byte of the answer:
    /// on a kept connection, the target closed it while it was idle.
    ClosedBefore(String),
    /// Anything else, said.
    Failed(String),
}

impl Failure {
    pub(crate) fn into_text(self) -> String {
        match self {
            Failure::ClosedBefore(why) | Failure::Failed(why) => why,
        }
    }
}

/// Whether an I/O error means the peer closed or reset the connection.
fn closed(e: &std::io::Error) -> bool {
    use std::io::ErrorKind::{BrokenPipe, ConnectionAborted, ConnectionReset, NotConnected, UnexpectedEof};
    matches!(e.kind(), BrokenPipe | ConnectionAborted | ConnectionReset | NotConnected | UnexpectedEof)
}

/// A connection and the bytes read from it that no answer has used yet.
pub(crate) struct Wire<S> {
    io: S,
    buf: Vec<u8>,
    /// Where the unused bytes of `buf` start.
    at: usize,
    /// Bytes came after the last answer.
    stray: bool,
}

/// What an idle connection was found to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Found {
    Open,
    Closed,
    /// It sent bytes nobody asked for: an answer late, or twice.
    Stray,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Wire<S> {
    pub(crate) fn new(io: S) -> Wire<S> {
        Wire { io, buf: Vec::new(), at: 0, stray: false }
    }

    fn unused(&self) -> &[u8] {
        &self.buf[self.at..]
    }

    fn consume(&mut self, n: usize) {
        self.at += n;
        debug_assert!(self.at <= self.buf.len());
        if self.at == self.buf.len() {
            self.buf.clear();
            self.at = 0;
        }
    }

    /// Reads more; how many bytes (0: the connection closed).
    async fn fill(&mut self) -> std::io::Result<usize> {
        if self.at > 0 {
            self.buf.drain(..self.at);
            self.at = 0;
        }
        // Into the spare room, which is not zeroed first.
        self.buf.reserve(READ_BYTES);
        self.io.read_buf(&mut self.buf).await
    }

    /// Whether the connection, idle, was closed by its peer, or sent
    /// something unasked: one look, no wait.
    pub(crate) fn look_while_idle(&mut self) -> Found {
        if !self.unused().is_empty() {
            return Found::Stray;
        }
        let mut cx = Context::from_waker(std::task::Waker::noop());
        let mut byte = [0u8; 1];
        let mut read = ReadBuf::new(&mut byte);
        let pending = {
            let (io, read) = (&mut self.io, &mut read);
            // Unconstrained: with the task's budget spent, a poll would say
            // "pending" without looking, and a closed connection pass for open.
            let look = std::future::poll_fn(|cx| Poll::Ready(Pin::new(&mut *io).poll_read(cx, read)));
            let look = std::pin::pin!(tokio::task::unconstrained(look));
            matches!(std::future::Future::poll(look, &mut cx), Poll::Ready(Poll::Pending))
        };
        match pending {
            true => Found::Open,
            false if !read.filled().is_empty() => Found::Stray,
            false => Found::Closed,
        }
    }

    /// Whether the last answer read was followed by bytes no request asked for.
    pub(crate) fn stray(&self) -> bool {
        self.stray
    }

    /// Writes `request` (made by [`post`]).
    pub(crate) async fn write(&mut self, request: &[u8]) -> Result<(), Failure> {
        if !self.unused().is_empty() {
            return Err(Failure::Failed("the connection sent bytes nobody asked for".into()));
        }
        let written = async {
            self.io.write_all(request).await?;
            self.io.flush().await
        };
        written.await.map_err(|e| {
            let why = format!("cannot send the request: {e}");
            if closed(&e) {
                Failure::ClosedBefore(why)
            } else {
                Failure::Failed(why)
            }
        })
    }

    /// Reads an answer's head, skipping interim (1xx) ones.
    pub(crate) async fn read_head(&mut self) -> Result<Head, Failure> {
        let mut answered = false;
        let (mut interim, mut head_bytes) = (0, 0);
        let too_long = || Failure::Failed(format!("an answer's head longer than {} KiB", MAX_HEAD_BYTES >> 10));
        loop {
            if let Some((head, n)) = parse_head(self.unused())? {
                head_bytes += n;
                if head_bytes > MAX_HEAD_BYTES {
                    return Err(too_long());
                }
                self.consume(n);
                answered = true;
                match head.status {
                    101 => return Err(Failure::Failed("the target switched protocols (101)".into())),
                    100..=199 if interim == MAX_INTERIM => {
                        return Err(Failure::Failed(format!("more than {MAX_INTERIM} interim (1xx) answers")))
                    }
                    100..=199 => interim += 1,
                    _ => return Ok(head),
                }
                continue;
            }
            if head_bytes + self.unused().len() >= MAX_HEAD_BYTES {
                return Err(too_long());
            }
            answered |= !self.unused().is_empty();
            match self.fill().await {
                Ok(0) if answered => {
                    return Err(Failure::Failed("the connection closed during the answer's head".into()))
                }
                Ok(0) => return Err(Failure::ClosedBefore(CLOSED.into())),
                Ok(_) => {}
                Err(e) if closed(&e) && !answered => {
                    return Err(Failure::ClosedBefore(format!("{CLOSED}: {e}")));
                }
                Err(e) => return Err(Failure::Failed(format!("cannot read the answer: {e}"))),
            }
        }
    }

    /// Reads the body `head` frames, keeping at most `max` bytes in `out`:
    /// why reading stopped short if it did, and whether the connection was
    /// left at the end of the answer, ready for another request.
    pub(crate) async fn read_body(&mut self, head: &Head, max: usize, out: &mut Vec<u8>) -> (Option<String>, bool) {
        let read = match head.framing {
            Framing::Empty => Ok(true),
            Framing::Length(n) => self.read_exact_kept(n, max, out).await,
            Framing::Chunked => self.read_chunked(max, out).await,
            Framing::UntilClose => self.read_to_close(max, out).await.map(|()| false),
        };
        match read {
            // Bytes past the answer: the connection is not what it should be.
            Ok(ended) if ended && head.reusable && self.unused().is_empty() => {
                // Kept idle, it holds no more than one read's room.
                if self.buf.capacity() > READ_BYTES {
                    self.buf = Vec::new();
                }
                (None, true)
            }
            Ok(ended) => {
                self.stray = ended && !self.unused().is_empty();
                (None, false)
            }
            Err(why) => (Some(why), false),
        }
    }

    /// Reads `n` body bytes into `out`, while it has room under `max`;
    /// whether all `n` were (none left out, however many came in one read:
    /// the outcome does not hang on how the bytes were split).
    async fn read_exact_kept(&mut self, mut n: u64, max: usize, out: &mut Vec<u8>) -> Result<bool, String> {
        loop {
            let here = self.unused().len().min(usize::try_from(n).unwrap_or(usize::MAX));
            let kept = here.min(max - out.len());
            out.extend_from_slice(&self.unused()[..kept]);
            self.consume(here);
            n -= here as u64;
            if kept < here {
                return Ok(false);
            }
            if n == 0 {
                return Ok(true);
            }
            if out.len() >= max {
                // The rest is not read: the connection cannot take another request.
                return Ok(false);
            }
            self.fill_body().await?;
        }
    }

    /// Reads until the connection closes, keeping at most `max` bytes.
    async fn read_to_close(&mut self, max: usize, out: &mut Vec<u8>) -> Result<(), String> {
        loop {
            let kept = self.unused().len().min(max - out.len());
            out.extend_from_slice(&self.unused()[..kept]);
            self.consume(self.unused().len());
            if out.len() >= max {
                return Ok(());
            }
            match self.fill().await {
                Ok(0) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("cannot read the answer's body: {e}")),
            }
        }
    }

    /// Reads a chunked body and its trailers.
    /// (Its lines, sizes with their extensions and trailers, count
    /// together against [`MAX_HEAD_BYTES`]: the body's bound counts data
    /// only, and a target could otherwise send lines a byte at a time until
    /// the deadline.)
    async fn read_chunked(&mut self, max: usize, out: &mut Vec<u8>) -> Result<bool, String> {
        let mut framing = 0;
        let mut line = async |wire: &mut Self| {
            let line = wire.line().await?;
            framing += line.len() + 2;
            match framing > MAX_HEAD_BYTES {
                true => Err(format!("an answer's chunk lines and trailers longer than {} KiB", MAX_HEAD_BYTES >> 10)),
                false => Ok(line),
            }
        };
        loop {
            let size = chunk_size(&line(self).await?)?;
            if size == 0 {
                while !line(self).await?.is_empty() {}
                return Ok(true);
            }
            if !self.read_exact_kept(size, max, out).await? {
                return Ok(false);
            }
            if !line(self).await?.is_empty() {
                return Err("a chunk longer than its size".into());
            }
        }
    }

    /// The next line of a chunked body, without its line end.
    async fn line(&mut self) -> Result<Vec<u8>, String> {
        loop {
            let found = self.unused().iter().take(MAX_LINE_BYTES + 2).position(|&b| b == b'\n');
            if let Some(end) = found {
                let mut line = self.unused()[..end].to_vec();
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                self.consume(end + 1);
                return Ok(line);
            }
            if self.unused().len() > MAX_LINE_BYTES {
                return Err(format!("a chunk line longer than {} KiB", MAX_LINE_BYTES >> 10));
            }
            self.fill_body().await?;
        }
    }

    /// Reads more of a body that has not ended.
    async fn fill_body(&mut self) -> Result<(), String> {
        match self.fill().await {
            Ok(0) => Err(CLOSED_IN_BODY.into()),
            Ok(_) => Ok(()),
            Err(e) => Err(format!("cannot read the answer's body: {e}")),
        }
    }
}

/// A chunk's size, from its line (`hex[;extensions]`).
fn chunk_size(line: &[u8]) -> Result<u64, String> {
    let digits = line.split(|&b| b == b';').next().unwrap_or_default().trim_ascii_end();
    if digits.is_empty() || digits.len() > 16 || !digits.iter().all(u8::is_ascii_hexdigit) {
        return Err(format!("a chunk size that is not a size: {}", quoted(digits)));
    }
    let text = std::str::from_utf8(digits).expect("hex digits are ASCII");
    Ok(u64::from_str_radix(text, 16).expect("at most 16 hex digits fit a u64"))
}

/// At most [`QUOTED_BYTES`] of an answer's bytes, quoted and escaped.
fn quoted(bytes: &[u8]) -> String {
    let shown = String::from_utf8_lossy(&bytes[..bytes.len().min(QUOTED_BYTES)]);
    let more = if bytes.len() > QUOTED_BYTES { "…" } else { "" };
    format!("{shown:?}{more}")
}

/// What an attempt reads of a parsed head.
/// The answer head at the start of `bytes` and its length, or `None` while
/// it is incomplete. Apart from [`Wire::read_head`] so that its header
/// slots (2 KiB) are on this call's stack, not held in the reading future
/// across its waits, which would make every future around it that much
/// bigger to move.
fn parse_head(bytes: &[u8]) -> Result<Option<(Head, usize)>, Failure> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut answer = httparse::Response::new(&mut headers);
    match answer.parse(bytes) {
        Ok(httparse::Status::Complete(n)) => Ok(Some((head_of(&answer)?, n))),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => {
            Err(Failure::Failed(format!("an answer with more than {MAX_HEADERS} header lines")))
        }
        Err(e) => Err(Failure::Failed(format!("not an HTTP/1.1 answer ({e})"))),
    }
}

fn head_of(answer: &httparse::Response) -> Result<Head, Failure> {
    let status = answer.code.expect("a complete head has a status");
    if status < 100 {
        return Err(Failure::Failed(format!("an answer with status {status:03}, which is none")));
    }
    let mut length: Option<u64> = None;
    let mut transfer_coded = false;
    let mut chunked = false;
    let (mut close, mut keep_alive) = (false, false);
    let mut retry_after = None;
    for h in answer.headers.iter() {
        // A list's elements, trimmed, empty ones left out (RFC 9110 §5.6.1); read as bytes.
        let elements = || h.value.split(|&b| b == b',').map(<[u8]>::trim_ascii).filter(|e| !e.is_empty());
        if h.name.eq_ignore_ascii_case("content-length") {
            let v = h.value.trim_ascii();
            let n = (!v.is_empty() && v.len() <= 19 && v.iter().all(u8::is_ascii_digit))
                .then(|| std::str::from_utf8(v).ok()?.parse::<u64>().ok())
                .flatten()
                .ok_or_else(|| {
                    Failure::Failed(format!("an answer whose content-length is not a length: {}", quoted(v)))
                })?;
            if length.is_some_and(|l| l != n) {
                return Err(Failure::Failed("an answer with two different content-lengths".into()));
            }
            length = Some(n);
        } else if h.name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked when the last coding of the last header is (RFC 9112 §6.3).
            transfer_coded = true;
            chunked = elements().next_back().is_some_and(|c| c.eq_ignore_ascii_case(b"chunked"));
        } else if h.name.eq_ignore_ascii_case("connection") {
            for token in elements() {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if h.name.eq_ignore_ascii_case("retry-after") {
            retry_after = std::str::from_utf8(h.value.trim_ascii()).ok().map(str::to_owned);
        }
    }
    let framing = match (status, transfer_coded, length) {
        (100..=199 | 204 | 304, _, _) => Framing::Empty,
        (_, true, _) if chunked => Framing::Chunked,
        (_, true, _) => Framing::UntilClose,
        (_, false, Some(0)) => Framing::Empty,
        (_, false, Some(n)) => Framing::Length(n),
        (_, false, None) => Framing::UntilClose,
    };
    // Both framings given: the answer is read by its coding, and the
    // connection closed after it; so too a coded 1.0 answer (RFC 9112 §6.1).
    let http11 = answer.version == Some(1);
    let reusable = !close
        && (http11 || keep_alive)
        && framing != Framing::UntilClose
        && !(transfer_coded && (length.is_some() || !http11));
    Ok(Head { status, retry_after, framing, reusable })
}

#[cfg(test)]
#[path = "http1_tests.rs"]
mod tests;
