//! A source's lines read on a thread of their own, in blocks, ahead of the
//! threads that key and parse them (`parse_ahead.rs`).
//!
//! Blocks go out in turn to each of the parse workers' queues (block `i` to
//! queue `i % n`), and the end (or the error that stopped reading) to the
//! queue the next block would have gone to, so that whoever takes the
//! workers' results in the same turn meets them in the source's order.
//!
//! Memory is bounded: each queue holds at most its capacity in blocks, one
//! is being filled, and as many spares come back; a block holds at most
//! [`BLOCK_BYTES`] and one more line (at most `max` bytes, the limit of
//! [`Lines`]).

use crate::input::Lines;
use callmeter_formats::strip_bom;
use std::io::BufRead;
use std::sync::mpsc::{Receiver, SyncSender};

/// Lines per block: few enough that a slow stream's lines wait little,
/// enough that sending a block costs nothing per line.
pub const BLOCK_LINES: usize = 1024;
/// Bytes per block, past which it is sent whatever its number of lines.
pub const BLOCK_BYTES: usize = 256 << 10;

/// One line as read: its bytes (the byte order mark a source may start with
/// left out), or the length of one too long to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RawLine<'a> {
    /// A line's bytes.
    Text(&'a [u8]),
    /// A line longer than the limit: its length in bytes.
    TooLong(usize),
}

/// Consecutive lines of a source, their bytes back to back.
#[derive(Debug, Default)]
pub struct Block {
    bytes: Vec<u8>,
    /// Where each line ends in `bytes`, or `Err` with the length of a line too long to hold.
    lines: Vec<Result<usize, usize>>,
}

impl Block {
    /// The lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = RawLine<'_>> {
        let mut start = 0;
        self.lines.iter().map(move |line| match *line {
            Ok(end) => {
                let text = &self.bytes[start..end];
                start = end;
                RawLine::Text(text)
            }
            Err(bytes) => RawLine::TooLong(bytes),
        })
    }

    /// The number of lines.
    pub fn len(&self) -> usize {
        self.lines.len()
    }

    /// Whether it holds no line.
    pub fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    fn is_full(&self, max_lines: usize) -> bool {
        self.lines.len() >= max_lines || self.bytes.len() >= BLOCK_BYTES
    }
}

/// What the reading thread sends.
#[derive(Debug)]
pub enum Message {
    /// The next block.
    Block(Block),
    /// The end, and the bytes of a last line held back for want of its `\n`.
    End(usize),
    /// The error that stopped reading.
    Failed(std::io::Error),
}

/// Reads `lines` from the first, on a new thread, sending blocks of at most
/// `block_lines` lines to `queues` in turn (and taking spent blocks back
/// from `spares`). The thread ends at the end of the source, at a read
/// error, or once a queue's receiver has gone.
pub fn spawn<R: BufRead + Send + 'static>(
    lines: Lines<R>,
    block_lines: usize,
    queues: Vec<SyncSender<Message>>,
    spares: Receiver<Block>,
) -> std::io::Result<std::thread::JoinHandle<()>> {
    assert!(!queues.is_empty(), "blocks need a queue to go to");
    std::thread::Builder::new()
        .name("read-ahead".into())
        .spawn(move || read_ahead(lines, block_lines.max(1), queues, spares))
}

fn read_ahead<R: BufRead>(
    mut lines: Lines<R>,
    block_lines: usize,
    queues: Vec<SyncSender<Message>>,
    spares: Receiver<Block>,
) {
    let mut first = true;
    for turn in (0..queues.len()).cycle() {
        let mut block = spares.try_recv().unwrap_or_default();
        block.bytes.clear();
        block.lines.clear();
        let end = loop {
            let line_start = block.bytes.len();
            match lines.next_line_into(&mut block.bytes) {
                Ok(Some(Ok(_))) => {
                    // As SourceReader::read: the mark is no part of the first line, nor of its id.
                    if first {
                        let line = &block.bytes[line_start..];
                        let mark = line.len() - strip_bom(line).len();
                        block.bytes.drain(line_start..line_start + mark);
                    }
                    block.lines.push(Ok(block.bytes.len()));
                }
                Ok(Some(Err(bytes))) => block.lines.push(Err(bytes)),
                Ok(None) => break Some(Message::End(lines.unended_last_line())),
                Err(e) => break Some(Message::Failed(e)),
            }
            first = false;
            if block.is_full(block_lines) {
                break None;
            }
        };
        let queue = &queues[turn];
        if block.is_empty() {
            // The end takes the turn of the block that was not.
            let _ = queue.send(end.expect("a block is sent once it has a line, or at the end"));
            return;
        }
        // A send fails only once the workers have gone: nothing is left to do.
        if queue.send(Message::Block(block)).is_err() {
            return;
        }
        if let Some(end) = end {
            let _ = queues[(turn + 1) % queues.len()].send(end);
            return;
        }
    }
}
