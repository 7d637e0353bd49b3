//! `callmeter import` and `callmeter tail`: the logs servers already write,
//! read with the log readers of `callmeter-formats` and delivered as call
//! events to a server or a data folder, each call once (DESIGN §4, §5).
//!
//! Every line gets an id from its source's identity and its line number, so
//! a file imported twice, a rotated copy, or a gzipped one adds nothing the
//! second time: the store answers duplicate.
//!
//! # Layout
//!
//! - [`input`]: opening a file or stdin, plain, gzip or zstd; splitting lines.
//! - [`source`]: one source's reader, its line number and its calls not yet delivered.
//! - [`sink`]: where calls go: [`ServerSink`] over HTTP or [`StoreSink`] into a data folder.
//! - [`summary`]: lines read, calls imported, duplicates, refusals by reason.
//! - [`tail`]: following growing logs through rotation, with a checkpoint.
//! - [`error`]: the crate's error.

#![warn(missing_docs)]

pub mod error;
pub mod input;
pub mod sink;
pub mod source;
pub mod summary;
pub mod tail;

pub use error::{ImportError, Result};
pub use input::{Compression, Input, Line, Lines};
pub use sink::{Delivery, ServerSink, Sink, StoreSink};
pub use source::{ReadOptions, SourceReader, MAX_LINE_BYTES};
pub use summary::{Rejections, Summary};
pub use tail::{Checkpoint, TailOptions, Tailer};

use indicatif::ProgressBar;
use std::time::Instant;

/// Lines between two updates of the progress bar.
const PROGRESS_EVERY: u64 = 1 << 14;

/// Reads one input to its end and delivers its calls in batches (with no
/// sink, a dry run: lines are read and classified, and nothing is delivered).
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
    let format = options.format_for(&input.name, &input.head_lines())?;
    let source = options.source_for(&input.head);
    let year_reference = input.modified.unwrap_or_else(chrono::Utc::now);
    tracing::info!(file = %input.name, format = %format, compression = ?input.compression, source = %source.to_hex(), "importing");
    let mut reader = SourceReader::new(&input.name, format, source, options, year_reference);
    summary.files += 1;
    if let Some(size) = input.size {
        bar.set_length(size);
    }
    bar.set_position(0);
    let started = Instant::now();
    let read = input.read.clone();
    let name = input.name.clone();
    let mut lines = Lines::new(input.reader, MAX_LINE_BYTES);
    let outcome = (|| {
        while let Some(line) = lines.next_line().map_err(|e| ImportError::io(&name, e))? {
            reader.read(line, summary)?;
            if reader.pending() >= options.batch {
                reader.deliver(sink.as_deref_mut(), summary)?;
            }
            if reader.line_no().is_multiple_of(PROGRESS_EVERY) {
                let rate = reader.line_no() as f64 / started.elapsed().as_secs_f64().max(1e-3);
                bar.set_position(read.load(std::sync::atomic::Ordering::Relaxed));
                bar.set_message(format!("{name}: {} lines, {rate:.0} lines/s", reader.line_no()));
            }
        }
        reader.finish(summary);
        Ok(())
    })();
    // What was read before a failure (a --strict stop) is delivered all the same.
    let delivered = reader.deliver(sink, summary);
    outcome.and(delivered)
}
