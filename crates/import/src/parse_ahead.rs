//! A source's lines keyed and parsed on worker threads, ahead of the thread
//! that counts and delivers their calls, each line as the serial path
//! ([`SourceReader::read`](crate::SourceReader::read)) reads it.
//!
//! The reading thread (`read_ahead.rs`) deals blocks of lines to the
//! workers in turn. A worker then, for each of its blocks:
//!
//! 1. hashes every line's bytes (the costly half of its key, which needs
//!    nothing of the lines before: workers do it at once);
//! 2. waits for the block's turn at the source's one [`LineKeys`], and numbers
//!    and keys its lines there in order (repeats are counted over every line
//!    before, so this half is in line order);
//! 3. parses the lines: with a reader of its own when the format's lines
//!    stand alone ([`Format::lines_stand_alone`]), else at the source's one
//!    reader, again in the block's turn (sessions span lines);
//! 4. sends the calls and each line's [`LineOutcome`] to its results queue.
//!
//! The consumer takes results from the workers' queues in the same turn as
//! the blocks were dealt, so it meets every line in the source's order.
//!
//! A worker that stops early (its results no longer wanted, or a panic)
//! closes the turns, so that no other waits for a turn that will not come.
//! Memory is bounded by the queues: [`QUEUE_BLOCKS`] blocks wait at each
//! worker and as many results after it.

use crate::input::Lines;
use crate::read_ahead::{self, Block, Message, RawLine, BLOCK_LINES};
use crate::source::{KeyedLine, LineOutcome, LineReading};
use callmeter_formats::LineKeys;
use callmeter_model::CallEvent;
use std::io::BufRead;
use std::sync::mpsc::{sync_channel, Receiver, SyncSender};
use std::sync::{Arc, Condvar, Mutex};

/// Blocks queued at each worker, and results after it.
pub const QUEUE_BLOCKS: usize = 2;
/// Workers at most, whatever the number of cores.
pub const MAX_WORKERS: usize = 4;

/// The calls of a block of lines and what each line was, in order.
#[derive(Debug, Default)]
pub struct ParsedBlock {
    /// The calls, in the order of their lines (none if they were not kept).
    pub calls: Vec<CallEvent>,
    /// Each line's outcome; the first `outcomes[0].calls` of `calls` are the first line's, and so on.
    pub outcomes: Vec<LineOutcome>,
}

/// How a source's lines are parsed.
pub enum Parsing {
    /// Each worker with a reader of its own (formats whose lines stand alone).
    Apart(Vec<LineReading>),
    /// Every line at one reader, in order (the number of workers apart).
    InTurn(LineReading, usize),
}

/// The keyed and parsed blocks of a source, in order.
pub struct ParseAhead {
    results: Vec<Receiver<Parsed>>,
    next: usize,
    unended: usize,
    reader: Option<Arc<Turn<LineReading>>>,
    keys: Arc<Turn<LineKeys>>,
}

enum Parsed {
    Block(ParsedBlock),
    End(usize),
    Failed(std::io::Error),
}

impl ParseAhead {
    /// Reads, keys (with `keys`, fed every line from the first) and parses
    /// `lines` on threads of their own. Without `keep_calls` (a dry run),
    /// the workers drop the calls they read and send only the lines'
    /// outcomes: the memory of a call is then freed by the thread that took
    /// it, which costs a fraction of freeing it on another.
    pub fn spawn<R: BufRead + Send + 'static>(
        lines: Lines<R>,
        keys: LineKeys,
        parsing: Parsing,
        keep_calls: bool,
    ) -> ParseAhead {
        ParseAhead::with_block_lines(lines, keys, parsing, keep_calls, BLOCK_LINES)
    }

    /// [`ParseAhead::spawn`] with blocks of at most `block_lines` lines (tests use small ones).
    pub(crate) fn with_block_lines<R: BufRead + Send + 'static>(
        lines: Lines<R>,
        keys: LineKeys,
        parsing: Parsing,
        keep_calls: bool,
        block_lines: usize,
    ) -> ParseAhead {
        let hasher = keys.hasher();
        let keys = Arc::new(Turn::new(keys));
        // Each worker's own reader, or none (then the shared one, in turn).
        let (own, shared): (Vec<Option<LineReading>>, _) = match parsing {
            Parsing::Apart(readers) => (readers.into_iter().map(Some).collect(), None),
            Parsing::InTurn(reader, workers) => {
                ((0..workers.max(1)).map(|_| None).collect(), Some(Arc::new(Turn::new(reader))))
            }
        };
        let workers = own.len();
        assert!(workers > 0, "lines need a worker to parse them");
        let (spare_tx, spare_rx) = sync_channel(workers * (2 * QUEUE_BLOCKS + 1));
        let mut queues = Vec::with_capacity(workers);
        let mut results = Vec::with_capacity(workers);
        for (w, reading) in own.into_iter().enumerate() {
            let (queue_tx, queue_rx) = sync_channel(QUEUE_BLOCKS);
            let (result_tx, result_rx) = sync_channel(QUEUE_BLOCKS);
            queues.push(queue_tx);
            results.push(result_rx);
            let worker = Worker {
                queue: queue_rx,
                results: result_tx,
                spares: spare_tx.clone(),
                hasher: hasher.clone(),
                keys: keys.clone(),
                reading: match reading {
                    Some(own) => Reading::Own(own),
                    None => Reading::InTurn(shared.clone().expect("a shared reader when workers have none")),
                },
                seq: w as u64,
                stride: workers as u64,
                keep_calls,
            };
            let spawned = std::thread::Builder::new().name(format!("parse-{w}")).spawn(move || worker.run());
            if let Err(e) = spawned {
                // The consumer reads this worker's results queue as closed: an error, not a hang.
                tracing::error!(error = %e, "no thread to parse with");
            }
        }
        if let Err(e) = read_ahead::spawn(lines, block_lines, queues, spare_rx) {
            tracing::error!(error = %e, "no thread to read with");
        }
        ParseAhead { results, next: 0, unended: 0, reader: shared, keys }
    }

    /// The next block's calls and outcomes, `None` at the end, or the error
    /// that stopped reading (after the blocks read before it).
    pub fn next_block(&mut self) -> std::io::Result<Option<ParsedBlock>> {
        let turn = self.next;
        self.next = (self.next + 1) % self.results.len();
        match self.results[turn].recv() {
            Ok(Parsed::Block(block)) => Ok(Some(block)),
            Ok(Parsed::End(unended)) => {
                self.unended = unended;
                Ok(None)
            }
            Ok(Parsed::Failed(e)) => Err(e),
            Err(_) => Err(std::io::Error::other("a thread reading the lines stopped")),
        }
    }

    /// Once the end is reached: the bytes of a last line held back for want of its `\n` (0 for none).
    pub fn unended_last_line(&self) -> usize {
        self.unended
    }

    /// Once the end is reached: the calls the source's reader still held
    /// for a later line (none when each worker had its own: their lines
    /// stand alone).
    pub fn finish(&self) -> Vec<CallEvent> {
        let mut calls = Vec::new();
        if let Some(reader) = &self.reader {
            reader.with(|r| r.finish(&mut calls));
        }
        calls
    }
}

impl Drop for ParseAhead {
    /// Dropped before the end (a `--strict` stop): workers waiting for a
    /// turn give up; the others stop at their next send.
    fn drop(&mut self) {
        self.keys.close();
        if let Some(reader) = &self.reader {
            reader.close();
        }
    }
}

enum Reading {
    Own(LineReading),
    InTurn(Arc<Turn<LineReading>>),
}

struct Worker {
    queue: Receiver<Message>,
    results: SyncSender<Parsed>,
    spares: SyncSender<Block>,
    hasher: callmeter_formats::LineHasher,
    keys: Arc<Turn<LineKeys>>,
    reading: Reading,
    /// The block this worker takes next, in the source's order.
    seq: u64,
    stride: u64,
    keep_calls: bool,
}

/// Closes the turns when a worker stops before its blocks are done.
struct CloseTurns<'a>(&'a Arc<Turn<LineKeys>>, Option<&'a Arc<Turn<LineReading>>>, bool);

impl Drop for CloseTurns<'_> {
    fn drop(&mut self) {
        if self.2 || std::thread::panicking() {
            self.0.close();
            if let Some(r) = self.1 {
                r.close();
            }
        }
    }
}

impl Worker {
    fn run(mut self) {
        let keys = self.keys.clone();
        let shared = match &self.reading {
            Reading::InTurn(r) => Some(r.clone()),
            Reading::Own(_) => None,
        };
        let mut close = CloseTurns(&keys, shared.as_ref(), true);
        while let Ok(message) = self.queue.recv() {
            let parsed = match message {
                Message::Block(block) => {
                    match std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.parse(&block))) {
                        Ok(Some(parsed)) => {
                            let _ = self.spares.try_send(block);
                            Parsed::Block(parsed)
                        }
                        // A turn was closed: the consumer has gone.
                        Ok(None) => return,
                        Err(panic) => {
                            // Said in the block's place, so the consumer stops there with
                            // the reason; the turns close as this worker ends.
                            let why = panic
                                .downcast_ref::<&str>()
                                .map(|s| s.to_string())
                                .or_else(|| panic.downcast_ref::<String>().cloned())
                                .unwrap_or_else(|| "a panic".to_owned());
                            let error = std::io::Error::other(format!("reading a block of lines failed: {why}"));
                            let _ = self.results.send(Parsed::Failed(error));
                            return;
                        }
                    }
                }
                Message::End(unended) => Parsed::End(unended),
                Message::Failed(e) => Parsed::Failed(e),
            };
            let last = !matches!(parsed, Parsed::Block(_));
            if self.results.send(parsed).is_err() {
                return;
            }
            if last {
                break;
            }
        }
        // Every block dealt to this worker is done: no turn waits on it.
        close.2 = false;
    }

    /// Keys and parses a block in its turn; `None` if a turn was closed.
    fn parse(&mut self, block: &Block) -> Option<ParsedBlock> {
        let seq = self.seq;
        self.seq += self.stride;
        let texts: Vec<&[u8]> = block
            .lines()
            .filter_map(|line| match line {
                RawLine::Text(text) => Some(text),
                RawLine::TooLong(_) => None,
            })
            .collect();
        let mut hashes = Vec::with_capacity(texts.len());
        self.hasher.hash_all(&texts, &mut hashes);
        let keyed = self.keys.take(seq, |keys| {
            let mut hashes = hashes.iter();
            block
                .lines()
                .map(|line| match line {
                    RawLine::Text(_) => Ok(keys.key(hashes.next().expect("a hash for every text line"))),
                    RawLine::TooLong(_) => Err(keys.skip()),
                })
                .collect::<Vec<_>>()
        })?;
        let keep_calls = self.keep_calls;
        let calls = Vec::with_capacity(if keep_calls { block.len() } else { 4 });
        let mut parsed = ParsedBlock { calls, outcomes: Vec::with_capacity(block.len()) };
        let mut parse_all = |reading: &mut LineReading| {
            for (line, at) in block.lines().zip(&keyed) {
                let line = match (line, *at) {
                    (RawLine::Text(text), Ok(at)) => KeyedLine::Text(at, text),
                    (RawLine::TooLong(n), Err(number)) => KeyedLine::TooLong(number, n),
                    _ => unreachable!("a line keyed as what it is"),
                };
                parsed.outcomes.push(reading.parse(line, &mut parsed.calls));
                if !keep_calls {
                    // Dropped at once, a call's memory is the next one's, still in cache.
                    parsed.calls.clear();
                }
            }
        };
        match &mut self.reading {
            Reading::Own(reading) => parse_all(reading),
            Reading::InTurn(shared) => shared.take(seq, parse_all)?,
        }
        Some(parsed)
    }
}

/// A value that blocks take in their order: block `seq` waits until every
/// block before it has had its turn.
struct Turn<T> {
    state: Mutex<TurnState<T>>,
    changed: Condvar,
}

struct TurnState<T> {
    next: u64,
    closed: bool,
    value: T,
}

impl<T> Turn<T> {
    fn new(value: T) -> Turn<T> {
        Turn { state: Mutex::new(TurnState { next: 0, closed: false, value }), changed: Condvar::new() }
    }

    /// Runs `f` in block `seq`'s turn; `None` if the turns were closed first.
    fn take<R>(&self, seq: u64, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut state = self.state.lock().ok()?;
        while state.next != seq && !state.closed {
            state = self.changed.wait(state).ok()?;
        }
        if state.closed {
            return None;
        }
        debug_assert_eq!(state.next, seq, "a block takes its turn once");
        let out = f(&mut state.value);
        state.next += 1;
        drop(state);
        self.changed.notify_all();
        Some(out)
    }

    /// Runs `f` whatever the turn (once every block is done).
    fn with<R>(&self, f: impl FnOnce(&mut T) -> R) -> Option<R> {
        let mut state = self.state.lock().ok()?;
        Some(f(&mut state.value))
    }

    fn close(&self) {
        if let Ok(mut state) = self.state.lock() {
            state.closed = true;
        }
        self.changed.notify_all();
    }
}

#[cfg(test)]
#[path = "parse_ahead_tests.rs"]
mod tests;
