//! A source's lines read and keyed on a thread of their own, ahead of the
//! thread that parses them.
//!
//! Copying a line out of the file's buffer and keying it (BLAKE3 of its
//! bytes, its count among identical lines) is a third of a dry run's work
//! and needs nothing from the parser, so an import does it on a second core.
//! One [`LineKeys`] keys every line in order, as the serial path does
//! ([`SourceReader::read`](crate::SourceReader::read)), so each line gets the
//! same number and key; blocks of lines go through a bounded channel, in order.
//!
//! Memory is bounded: [`QUEUE_BLOCKS`] blocks wait in the channel, one is
//! being filled and one read, plus as many spares; a block holds at most
//! [`BLOCK_BYTES`] and one more line (at most `max` bytes, the limit of
//! [`Lines`]).

use crate::input::{Line, Lines};
use callmeter_formats::{strip_bom, LineKeys, SourceLine};
use std::io::BufRead;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};

/// Lines per block: few enough that a slow stream's lines wait little,
/// enough that sending a block costs nothing per line.
pub const BLOCK_LINES: usize = 1024;
/// Bytes per block, past which it is sent whatever its number of lines.
pub const BLOCK_BYTES: usize = 256 << 10;
/// Blocks read ahead of the parser.
pub const QUEUE_BLOCKS: usize = 4;

/// One line read and keyed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyedLine<'a> {
    /// A line (the byte order mark a source may start with left out), with its number and key.
    Text(SourceLine, &'a [u8]),
    /// A line longer than the limit: its number, and its length in bytes.
    TooLong(u64, usize),
}

/// Consecutive lines of a source, their bytes back to back.
#[derive(Debug, Default)]
pub struct Block {
    bytes: Vec<u8>,
    lines: Vec<BlockLine>,
}

#[derive(Debug)]
enum BlockLine {
    /// A line, ending at this offset of the block's bytes.
    Text {
        end: usize,
        at: SourceLine,
    },
    TooLong {
        number: u64,
        bytes: usize,
    },
}

impl Block {
    /// The lines, in order.
    pub fn lines(&self) -> impl Iterator<Item = KeyedLine<'_>> {
        let mut start = 0;
        self.lines.iter().map(move |line| match *line {
            BlockLine::Text { end, at } => {
                let text = &self.bytes[start..end];
                start = end;
                KeyedLine::Text(at, text)
            }
            BlockLine::TooLong { number, bytes } => KeyedLine::TooLong(number, bytes),
        })
    }

    fn is_full(&self, max_lines: usize) -> bool {
        self.lines.len() >= max_lines || self.bytes.len() >= BLOCK_BYTES
    }
}

enum Message {
    Block(Block),
    /// The end, and the bytes of a last line held back for want of its `\n`.
    End(usize),
    Failed(std::io::Error),
}

/// The lines of a source, read and keyed on a thread of their own.
///
/// Dropped before the end (a `--strict` stop), it leaves the thread to
/// end at its next block, rather than waiting for a stream that may not end.
pub struct ReadAhead {
    blocks: Receiver<Message>,
    spares: SyncSender<Block>,
    unended: usize,
}

impl ReadAhead {
    /// Reads and keys `lines` from the first, on a new thread.
    pub fn spawn<R: BufRead + Send + 'static>(lines: Lines<R>, keys: LineKeys) -> ReadAhead {
        ReadAhead::with_block_lines(lines, keys, BLOCK_LINES)
    }

    /// [`ReadAhead::spawn`] with blocks of at most `block_lines` lines (tests use small ones).
    fn with_block_lines<R: BufRead + Send + 'static>(lines: Lines<R>, keys: LineKeys, block_lines: usize) -> ReadAhead {
        let (send_block, blocks) = sync_channel(QUEUE_BLOCKS);
        let (spares, spare_blocks) = sync_channel(QUEUE_BLOCKS);
        std::thread::Builder::new()
            .name("read-ahead".into())
            .spawn(move || read_ahead(lines, keys, block_lines.max(1), send_block, spare_blocks))
            .expect("a thread to read with");
        ReadAhead { blocks, spares, unended: 0 }
    }

    /// The next block of lines, `None` at the end, or the error that
    /// stopped reading (after the blocks read before it).
    pub fn next_block(&mut self) -> std::io::Result<Option<Block>> {
        match self.blocks.recv() {
            Ok(Message::Block(block)) => Ok(Some(block)),
            Ok(Message::End(unended)) => {
                self.unended = unended;
                Ok(None)
            }
            Ok(Message::Failed(e)) => Err(e),
            Err(_) => Err(std::io::Error::other("the thread reading ahead stopped")),
        }
    }

    /// Hands a block read back, so that its memory is used again.
    pub fn recycle(&self, block: Block) {
        let _ = self.spares.try_send(block);
    }

    /// Once the end is reached: the bytes of a last line held back for want of its `\n` (0 for none).
    pub fn unended_last_line(&self) -> usize {
        self.unended
    }
}

fn read_ahead<R: BufRead>(
    mut lines: Lines<R>,
    mut keys: LineKeys,
    block_lines: usize,
    blocks: SyncSender<Message>,
    spares: Receiver<Block>,
) {
    loop {
        let mut block = spares.try_recv().unwrap_or_default();
        block.bytes.clear();
        block.lines.clear();
        let end = loop {
            match lines.next_line() {
                Ok(Some(Line::Text(text))) => {
                    // As SourceReader::read: the mark is no part of the first line, nor of its id.
                    let text = if keys.lines() == 0 { strip_bom(text) } else { text };
                    let at = keys.next(text);
                    block.bytes.extend_from_slice(text);
                    block.lines.push(BlockLine::Text { end: block.bytes.len(), at });
                }
                Ok(Some(Line::TooLong(bytes))) => block.lines.push(BlockLine::TooLong { number: keys.skip(), bytes }),
                Ok(None) => break Some(Message::End(lines.unended_last_line())),
                Err(e) => break Some(Message::Failed(e)),
            }
            if block.is_full(block_lines) {
                break None;
            }
        };
        // A send fails only once the parser has gone: nothing is left to do.
        if !block.lines.is_empty() && blocks.send(Message::Block(block)).is_err() {
            return;
        }
        if let Some(end) = end {
            let _ = blocks.send(end);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{BufReader, Cursor, Read};

    /// What the serial path makes of the lines: (number, key, text) or (number, length).
    fn serial(data: &[u8], max: usize, source: Option<&str>) -> (Vec<String>, usize) {
        let mut lines = Lines::of_growing_file(BufReader::with_capacity(7, data), max);
        let mut keys = LineKeys::new(source);
        let mut out = Vec::new();
        while let Some(line) = lines.next_line().unwrap() {
            out.push(match line {
                Line::Text(text) => {
                    let text = if keys.lines() == 0 { strip_bom(text) } else { text };
                    let at = keys.next(text);
                    format!("{} {} {}", at.number, at.key, String::from_utf8_lossy(text))
                }
                Line::TooLong(n) => format!("{} too long {n}", keys.skip()),
            });
        }
        (out, lines.unended_last_line())
    }

    fn ahead(data: &[u8], max: usize, source: Option<&str>, block_lines: usize) -> (Vec<String>, usize) {
        let lines = Lines::of_growing_file(BufReader::with_capacity(7, Cursor::new(data.to_vec())), max);
        let mut ahead = ReadAhead::with_block_lines(lines, LineKeys::new(source), block_lines);
        let mut out = Vec::new();
        while let Some(block) = ahead.next_block().unwrap() {
            assert!(block.lines.len() <= block_lines);
            out.extend(block.lines().map(|line| match line {
                KeyedLine::Text(at, text) => format!("{} {} {}", at.number, at.key, String::from_utf8_lossy(text)),
                KeyedLine::TooLong(number, n) => format!("{number} too long {n}"),
            }));
            ahead.recycle(block);
        }
        (out, ahead.unended_last_line())
    }

    #[test]
    fn the_same_numbers_and_keys_as_the_serial_path() {
        // A byte order mark, repeats within and across blocks, blank and too long lines, an unended last line.
        let mut data = b"\xEF\xBB\xBFGET /a\nGET /b\n\nGET /a\r\nGET /a\n".to_vec();
        for i in 0..50 {
            data.extend_from_slice(format!("GET /{}\n", i % 7).as_bytes());
            if i % 13 == 0 {
                data.extend_from_slice(b"this line is far too long\n");
            }
        }
        data.extend_from_slice(b"GET /b\nGET /unended");
        for source in [None, Some("server-1")] {
            let want = serial(&data, 16, source);
            assert_eq!(want.0.len(), 60);
            assert!(want.0[0].ends_with(" GET /a") && want.1 == 12, "{want:?}");
            for block_lines in [1, 2, 3, 7, 64, BLOCK_LINES] {
                assert_eq!(ahead(&data, 16, source, block_lines), want, "blocks of {block_lines}");
            }
        }
    }

    #[test]
    fn empty_and_marked_only_sources() {
        for data in [&b""[..], b"\n", b"\xEF\xBB\xBF\n", b"x"] {
            assert_eq!(ahead(data, 16, None, 2), serial(data, 16, None), "{data:?}");
        }
    }

    #[test]
    fn a_read_error_comes_after_the_lines_before_it() {
        struct FailsAfter(Cursor<Vec<u8>>);
        impl Read for FailsAfter {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                match self.0.read(buf)? {
                    0 => Err(std::io::Error::other("disk on fire")),
                    n => Ok(n),
                }
            }
        }
        let data: Vec<u8> = (0..10).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let lines = Lines::new(BufReader::with_capacity(5, FailsAfter(Cursor::new(data))), 100);
        let mut ahead = ReadAhead::with_block_lines(lines, LineKeys::new(None), 3);
        let mut numbers = Vec::new();
        let error = loop {
            match ahead.next_block() {
                Ok(Some(block)) => numbers.extend(block.lines().map(|l| match l {
                    KeyedLine::Text(at, _) => at.number,
                    KeyedLine::TooLong(n, _) => n,
                })),
                Ok(None) => panic!("no error"),
                Err(e) => break e,
            }
        };
        assert_eq!(numbers, (1..=10).collect::<Vec<u64>>());
        assert_eq!(error.to_string(), "disk on fire");
    }

    #[test]
    fn a_reader_dropped_early_stops_the_thread() {
        use std::sync::Arc;
        struct Held {
            data: Cursor<Vec<u8>>,
            _alive: Arc<()>,
        }
        impl Read for Held {
            fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
                self.data.read(buf)
            }
        }
        let alive = Arc::new(());
        let data: Vec<u8> = (0..100_000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let lines = Lines::new(BufReader::new(Held { data: Cursor::new(data), _alive: alive.clone() }), 100);
        let mut ahead = ReadAhead::with_block_lines(lines, LineKeys::new(None), 10);
        assert!(ahead.next_block().unwrap().is_some());
        // The thread, blocked on a full queue, finds the parser gone and ends, dropping its reader.
        drop(ahead);
        let started = std::time::Instant::now();
        while Arc::strong_count(&alive) > 1 {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "the thread is still reading");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}
