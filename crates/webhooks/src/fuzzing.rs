//! What the fuzz target of the HTTP/1.1 answer reader runs (`fuzz/`), and
//! the corpus replay test: an answer given in pieces to one exchange
//! (`http1.rs`), two answers on a kept connection. Any panic, or a body
//! kept past its bound, is a bug.

use crate::http1::{Found, Wire};
use std::collections::VecDeque;
use std::pin::Pin;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

/// A connection whose peer's bytes come in the pieces given, then end
/// (closed); what is written to it is kept.
#[derive(Default)]
pub(crate) struct Scripted {
    pub pieces: VecDeque<Vec<u8>>,
    pub written: Vec<u8>,
}

impl AsyncRead for Scripted {
    fn poll_read(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        if let Some(mut piece) = self.pieces.pop_front() {
            let n = piece.len().min(buf.remaining());
            buf.put_slice(&piece[..n]);
            if n < piece.len() {
                self.pieces.push_front(piece.split_off(n));
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl AsyncWrite for Scripted {
    fn poll_write(mut self: Pin<&mut Self>, _: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        self.written.extend_from_slice(buf);
        Poll::Ready(Ok(buf.len()))
    }
    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
    fn poll_shutdown(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// Runs `data` as a target's answer: its first byte sets the size of the
/// pieces it comes in (0: whole) and the body's bound, the rest is what the
/// target sends. Two requests on the connection, while it is kept. Panics
/// on a bug: a body kept past its bound.
pub fn run(data: &[u8]) {
    let Some((&shape, answer)) = data.split_first() else { return };
    let piece = usize::from(shape & 0x0f);
    let max = [0, 1, 64, 64 << 10][usize::from(shape >> 4) % 4];
    let pieces: VecDeque<Vec<u8>> = match piece {
        0 => VecDeque::from([answer.to_vec()]),
        n => answer.chunks(n).map(<[u8]>::to_vec).collect(),
    };
    let rt = tokio::runtime::Builder::new_current_thread().build().expect("a runtime");
    rt.block_on(async {
        let mut wire = Wire::new(Scripted { pieces, written: Vec::new() });
        for _ in 0..2 {
            if wire.write(b"POST / HTTP/1.1\r\n\r\n").await.is_err() {
                return;
            }
            let Ok(head) = wire.read_head().await else { return };
            let mut body = Vec::new();
            let (_, ready) = wire.read_body(&head, max, &mut body).await;
            assert!(body.len() <= max, "{} bytes kept of a body bound to {max}", body.len());
            if !ready || wire.look_while_idle() != Found::Open {
                return;
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    /// The seeds and every input a fuzzer found (`fuzz/corpus/http1_answer`), on each `cargo test`.
    #[test]
    fn every_corpus_file_replays_without_panic() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus/http1_answer");
        let mut replayed = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            super::run(&std::fs::read(entry.unwrap().path()).unwrap());
            replayed += 1;
        }
        assert!(replayed >= 5, "{} holds {replayed} seeds", dir.display());
    }

    #[test]
    fn the_fuzz_target_runs_this() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let target = std::fs::read_to_string(dir.join("fuzz_targets/http1_answer.rs")).unwrap();
        assert!(target.contains("callmeter_webhooks::fuzzing::run(data)"));
    }
}
