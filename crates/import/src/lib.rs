//! `callmeter import` and `callmeter tail`: the logs servers already write,
//! read with the log readers of `callmeter-formats` and delivered as call
//! events to a server or a data folder, each call once (DESIGN §4, §5).
//!
//! Every call read from a line gets a content-addressed id (DESIGN §5): a
//! hash of the line's bytes and of its occurrence number among identical
//! lines of its source (and of the `--source-id` name, when one is given).
//! So a file imported twice, a grown, rotated or gzipped copy, or the lines
//! `tail` already sent add nothing the second time, however small the file
//! was when first read: the store answers duplicate.
//!
//! # Layout
//!
//! - [`input`]: opening a file or stdin, plain, gzip or zstd; splitting lines.
//! - [`read_ahead`]: lines read in blocks on a thread of their own, ahead of their parsing.
//! - [`parse_ahead`]: blocks of lines keyed and parsed on worker threads, met in order.
//! - [`source`]: one source's reader, its line keys and its calls not yet delivered.
//! - [`sink`]: where calls go: [`ServerSink`] over HTTP or [`StoreSink`] into a data folder.
//! - [`summary`]: lines read, calls imported, duplicates, refusals by reason.
//! - [`tail`]: following growing logs through rotation, sending each line once it ends.
//! - [`checkpoint`]: where `tail` is in each file, and how a reused inode is told apart.
//! - [`error`]: the crate's error.

#![warn(missing_docs)]

pub mod checkpoint;
pub mod error;
pub mod input;
pub mod parse_ahead;
pub mod read_ahead;
pub mod sink;
pub mod source;
pub mod summary;
pub mod tail;

pub use checkpoint::{Checkpoint, FilePosition};
pub use error::{ImportError, Result};
pub use input::{Compression, Input, Line, Lines};
pub use parse_ahead::{ParseAhead, ParsedBlock, Parsing};
pub use sink::{Delivery, ServerSink, Sink, StoreSink};
pub use source::{KeyedLine, LineOutcome, LineReading, ReadOptions, SourceReader, MAX_LINE_BYTES};
pub use summary::{RefusedFile, Rejections, Summary};
pub use tail::{TailOptions, Tailer};

use indicatif::ProgressBar;
use std::time::Instant;

/// A source's lines read, keyed (with the reader's own keys) and parsed on
/// worker threads, in order, for `reader` to count
/// ([`SourceReader::count`]); `keep_calls` false drops the calls (a dry run:
/// only the lines' outcomes are counted).
pub fn parse_ahead<R: std::io::BufRead + Send + 'static>(
    reader: &mut SourceReader,
    lines: Lines<R>,
    keep_calls: bool,
) -> ParseAhead {
    let parsing = parsing(reader);
    ParseAhead::spawn(lines, reader.take_keys(), parsing, keep_calls)
}

/// How a source's lines are parsed on the workers: each with a reader of
/// its own when its format's lines stand alone, else at one reader in turn.
/// One worker a core (hashing is done at once either way), at most
/// [`parse_ahead::MAX_WORKERS`].
fn parsing(reader: &SourceReader) -> Parsing {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, parse_ahead::MAX_WORKERS);
    if reader.format().lines_stand_alone() {
        Parsing::Apart((0..workers).map(|_| reader.new_reading()).collect())
    } else {
        Parsing::InTurn(reader.new_reading(), workers)
    }
}

/// Lines between two updates of the progress bar.
const PROGRESS_EVERY: u64 = 1 << 14;

/// Reads one input to its end and delivers its calls in batches (with no
/// sink, a dry run: lines are read and classified, and nothing is delivered).
/// An input with no line to read (empty, or blank lines only) is read as
/// such, whatever its format; one whose format cannot be told is an
/// [`ImportError::UnknownFormat`], before anything of it is counted.
///
/// `bar` shows the bytes read of the file (for its ETA) and lines per second;
/// give a hidden bar for none.
pub fn import_input<'s>(
    input: Input,
    options: &ReadOptions,
    mut sink: Option<&mut (dyn Sink + 's)>,
    summary: &mut Summary,
    bar: &ProgressBar,
) -> Result<()> {
    if input.holds_no_lines() {
        let (lines, unended) = input.blank_lines();
        tracing::info!(file = %input.name, lines, "no line to read: the file is empty");
        summary.empty_file(&input.name, lines, unended);
        return Ok(());
    }
    let format = options.format_for(&input.name, &input.head_lines())?;
    // Standard input is being written now: its lines may be a little ahead of this clock.
    let year_reference = input.modified.unwrap_or_else(callmeter_formats::live_year_reference);
    tracing::info!(file = %input.name, format = %format, compression = ?input.compression, "importing");
    let mut reader = SourceReader::new(&input.name, format, options, year_reference);
    summary.files += 1;
    if let Some(size) = input.size {
        bar.set_length(size);
    }
    bar.set_position(0);
    let started = Instant::now();
    let read = input.read.clone();
    let name = input.name.clone();
    let lines = if input.may_grow {
        Lines::of_growing_file(input.reader, MAX_LINE_BYTES)
    } else {
        Lines::new(input.reader, MAX_LINE_BYTES)
    };
    let mut ahead = parse_ahead(&mut reader, lines, sink.is_some());
    let outcome = (|| {
        while let Some(block) = ahead.next_block().map_err(|e| ImportError::io(&name, e))? {
            let mut calls = block.calls.into_iter();
            for line in block.outcomes {
                reader.count(line, calls.by_ref(), summary)?;
                if reader.pending() >= options.batch {
                    reader.deliver(sink.as_deref_mut(), summary)?;
                }
                if reader.line_no().is_multiple_of(PROGRESS_EVERY) {
                    let rate = reader.line_no() as f64 / started.elapsed().as_secs_f64().max(1e-3);
                    bar.set_position(read.load(std::sync::atomic::Ordering::Relaxed));
                    bar.set_message(format!("{name}: {} lines, {rate:.0} lines/s", reader.line_no()));
                }
            }
            assert!(calls.next().is_none(), "every call of a block belongs to one of its lines");
        }
        if ahead.unended_last_line() > 0 {
            summary.unended += 1;
            tracing::info!(file = %name, line = reader.line_no() + 1, bytes = ahead.unended_last_line(), "the last line has no newline yet: left for a later import");
        }
        reader.count_finished(ahead.finish(), summary);
        Ok(())
    })();
    // The workers stop reading ahead (a --strict stop leaves blocks behind)…
    drop(ahead);
    // …and what was read before a failure is delivered all the same.
    let delivered = reader.deliver(sink, summary);
    outcome.and(delivered)
}
