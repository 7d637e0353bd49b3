use super::*;
use crate::input::Line;
use crate::sink::{Delivery, Sink};
use crate::source::{ReadOptions, SourceReader};
use crate::summary::Summary;
use callmeter_formats::{AccountRule, Classifier, Format};
use std::io::{BufReader, Cursor, Read};
use std::path::PathBuf;

fn options(format: Format, source_id: Option<&str>) -> ReadOptions {
    ReadOptions {
        format: Some(format),
        accounts: AccountRule::fixed("acme").unwrap(),
        timezone: chrono_tz::UTC,
        source_id: source_id.map(str::to_owned),
        classifier: Arc::new(Classifier::default()),
        strict: false,
        batch: 5,
    }
}

fn reader(format: Format, source_id: Option<&str>) -> SourceReader {
    let year = chrono::DateTime::parse_from_rfc3339("2026-06-01T00:00:00Z").unwrap().to_utc();
    SourceReader::new("test.log", format, &options(format, source_id), year)
}

/// Takes every call: the id of each, in order.
struct Collect(Vec<String>);

impl Sink for Collect {
    fn deliver(&mut self, events: &mut Vec<CallEvent>) -> crate::Result<Vec<Delivery>> {
        let n = events.len();
        self.0.extend(events.drain(..).map(|e| e.id));
        Ok(vec![Delivery::Accepted; n])
    }
}

/// What a read made of a source: the calls' ids, the summary, the unended last line.
type WhatWasRead = (Vec<String>, Summary, usize);

/// The serial path: every line through [`SourceReader::read`].
fn serial(data: &[u8], format: Format, max: usize, source_id: Option<&str>) -> WhatWasRead {
    let mut lines = crate::Lines::of_growing_file(BufReader::with_capacity(7, data), max);
    let mut reader = reader(format, source_id);
    let mut summary = Summary::default();
    let mut sink = Collect(Vec::new());
    while let Some(line) = lines.next_line().unwrap() {
        reader.read(line, &mut summary).unwrap();
        reader.deliver(Some(&mut sink), &mut summary).unwrap();
    }
    reader.finish(&mut summary);
    reader.deliver(Some(&mut sink), &mut summary).unwrap();
    (sink.0, summary, lines.unended_last_line())
}

fn parsing_for(reader: &SourceReader, workers: usize, apart: bool) -> Parsing {
    if apart {
        Parsing::Apart((0..workers).map(|_| reader.new_reading()).collect())
    } else {
        Parsing::InTurn(reader.new_reading(), workers)
    }
}

/// The workers' path, as `import_input` takes it: the lines parsed apart
/// (`Format::lines_stand_alone`) or at one reader in turn, as asked.
fn ahead(
    data: &[u8],
    format: Format,
    max: usize,
    source_id: Option<&str>,
    workers: usize,
    block: usize,
    apart: bool,
) -> WhatWasRead {
    let lines = crate::Lines::of_growing_file(BufReader::with_capacity(7, Cursor::new(data.to_vec())), max);
    let mut reader = reader(format, source_id);
    let parsing = parsing_for(&reader, workers, apart);
    let mut ahead = ParseAhead::with_block_lines(lines, LineKeys::new(source_id), parsing, true, block);
    let mut summary = Summary::default();
    let mut sink = Collect(Vec::new());
    while let Some(parsed) = ahead.next_block().unwrap() {
        assert!(parsed.outcomes.len() <= block);
        let mut calls = parsed.calls.into_iter();
        for line in parsed.outcomes {
            reader.count(line, calls.by_ref(), &mut summary).unwrap();
            reader.deliver(Some(&mut sink), &mut summary).unwrap();
        }
        assert!(calls.next().is_none());
    }
    reader.count_finished(ahead.finish(), &mut summary);
    reader.deliver(Some(&mut sink), &mut summary).unwrap();
    (sink.0, summary, ahead.unended_last_line())
}

fn combined_sample() -> Vec<u8> {
    // A byte order mark, repeats within and across blocks, blank, bad and too long lines, an unended last line.
    let line = |path: &str| {
        format!("10.0.0.1 - - [01/Jun/2026:10:00:00 +0000] \"GET /api/v1{path} HTTP/1.1\" 200 5 \"-\" \"curl/8\"\n")
    };
    let mut data = b"\xEF\xBB\xBF".to_vec();
    data.extend_from_slice(line("/a").as_bytes());
    for i in 0..60 {
        data.extend_from_slice(line(&format!("/{}", i % 7)).as_bytes());
        match i % 13 {
            0 => data.extend_from_slice(format!("{}\n", "x".repeat(300)).as_bytes()),
            5 => data.extend_from_slice(b"\n"),
            9 => data.extend_from_slice(b"not a log line\n"),
            _ => {}
        }
    }
    data.extend_from_slice(line("/unended").trim_end().as_bytes());
    data
}

#[test]
fn the_same_calls_ids_and_summary_as_the_serial_path() {
    let data = combined_sample();
    for source in [None, Some("server-1")] {
        let want = serial(&data, Format::Combined, 256, source);
        assert!(want.0.len() > 50 && want.2 > 0, "{want:?}");
        assert!(want.1.rejected_lines >= 5 && want.1.reasons.contains_key("line_too_long"), "{:?}", want.1);
        for workers in [1, 2, 3] {
            for block in [1, 2, 3, 7, 64, BLOCK_LINES] {
                let got = ahead(&data, Format::Combined, 256, source, workers, block, true);
                assert_eq!(got, want, "{workers} workers, blocks of {block}");
            }
        }
    }
}

#[test]
fn every_sample_of_real_logs_reads_alike_either_way() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../formats/tests/corpus");
    let mut read = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let data = std::fs::read(&path).unwrap();
        let head: Vec<&[u8]> = data.split(|b| *b == b'\n').take(64).collect();
        let Some(format) = callmeter_formats::detect(&head) else { continue };
        let want = serial(&data, format, crate::MAX_LINE_BYTES, None);
        for (workers, block) in [(1, 3), (2, 1), (2, 5), (3, 2), (2, BLOCK_LINES)] {
            // A format whose lines do not stand alone is read at one reader in turn; try both where they do.
            for apart in [format.lines_stand_alone(), false] {
                let got = ahead(&data, format, crate::MAX_LINE_BYTES, None, workers, block, apart);
                assert_eq!(got, want, "{}: {format}, {workers} workers, blocks of {block}", path.display());
            }
        }
        read += 1;
    }
    assert!(read >= 20, "the corpus is there");
}

#[test]
fn empty_and_marked_only_sources() {
    for data in [&b""[..], b"\n", b"\xEF\xBB\xBF\n", b"x"] {
        for workers in [1, 2] {
            assert_eq!(
                ahead(data, Format::Combined, 16, None, workers, 2, true),
                serial(data, Format::Combined, 16, None)
            );
        }
    }
}

/// The numbers of the lines read before the read stopped, and why it stopped.
fn lines_before_the_error(ahead: &mut ParseAhead) -> (Vec<u64>, std::io::Error) {
    let mut numbers = Vec::new();
    loop {
        match ahead.next_block() {
            Ok(Some(block)) => numbers.extend(block.outcomes.iter().map(|o| o.number)),
            Ok(None) => panic!("no error"),
            Err(e) => return (numbers, e),
        }
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
    for workers in [1, 2, 3] {
        let lines = crate::Lines::new(BufReader::with_capacity(5, FailsAfter(Cursor::new(data.clone()))), 100);
        let reader = reader(Format::Combined, None);
        let mut ahead =
            ParseAhead::with_block_lines(lines, LineKeys::new(None), parsing_for(&reader, workers, true), false, 3);
        let (numbers, error) = lines_before_the_error(&mut ahead);
        assert_eq!(numbers, (1..=10).collect::<Vec<u64>>());
        assert_eq!(error.to_string(), "disk on fire");
    }
}

#[test]
fn a_consumer_gone_early_stops_every_thread() {
    struct Held {
        data: Cursor<Vec<u8>>,
        _alive: Arc<()>,
    }
    impl Read for Held {
        fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
            self.data.read(buf)
        }
    }
    for apart in [true, false] {
        let alive = Arc::new(());
        let data: Vec<u8> = (0..100_000).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
        let lines = crate::Lines::new(BufReader::new(Held { data: Cursor::new(data), _alive: alive.clone() }), 100);
        let reader = reader(Format::Combined, None);
        let mut ahead =
            ParseAhead::with_block_lines(lines, LineKeys::new(None), parsing_for(&reader, 3, apart), true, 10);
        assert!(ahead.next_block().unwrap().is_some());
        // The threads, blocked on full queues or waiting for a turn, find the consumer gone and end.
        drop(ahead);
        let started = std::time::Instant::now();
        while Arc::strong_count(&alive) > 1 {
            assert!(started.elapsed() < std::time::Duration::from_secs(10), "a thread is still reading");
            std::thread::sleep(std::time::Duration::from_millis(1));
        }
    }
}

#[test]
fn serial_lines_and_keyed_lines_number_alike() {
    // `SourceReader::read` of a too long line and of text numbers them as the workers do.
    let mut reader = reader(Format::Combined, None);
    let mut summary = Summary::default();
    reader.read(Line::TooLong(500), &mut summary).unwrap();
    reader.read(Line::Text(b"nonsense"), &mut summary).unwrap();
    assert_eq!((reader.line_no(), summary.lines, summary.rejected_lines), (2, 2, 2));
}

#[test]
fn a_dry_run_counts_what_it_does_not_keep() {
    // Without a sink the workers drop the calls: the summary is the serial dry run's.
    let data = combined_sample();
    let mut serial_reader = reader(Format::Combined, None);
    let mut want = Summary::default();
    let mut lines = crate::Lines::of_growing_file(BufReader::new(&data[..]), 256);
    while let Some(line) = lines.next_line().unwrap() {
        serial_reader.read(line, &mut want).unwrap();
        serial_reader.deliver(None, &mut want).unwrap();
    }
    for workers in [1, 2] {
        let lines = crate::Lines::of_growing_file(BufReader::new(Cursor::new(data.clone())), 256);
        let mut reader = reader(Format::Combined, None);
        let parsing = parsing_for(&reader, workers, true);
        let mut ahead = ParseAhead::with_block_lines(lines, LineKeys::new(None), parsing, false, 4);
        let mut got = Summary::default();
        while let Some(parsed) = ahead.next_block().unwrap() {
            assert!(parsed.calls.is_empty(), "a dry run's calls stay with the worker");
            for line in parsed.outcomes {
                reader.count(line, std::iter::empty(), &mut got).unwrap();
                assert_eq!(reader.pending(), 0);
            }
        }
        assert!(got.calls > 50);
        assert_eq!(got, want);
    }
}

#[test]
fn a_reader_that_panics_stops_the_read_with_its_reason_in_order() {
    /// Reads every line as a call, and panics at one that says "boom".
    struct Fragile(callmeter_formats::Context);
    impl callmeter_formats::LineParser for Fragile {
        fn format(&self) -> Format {
            Format::Ndjson
        }
        fn line(
            &mut self,
            _at: callmeter_formats::SourceLine,
            line: &[u8],
            _out: &mut Vec<CallEvent>,
        ) -> callmeter_formats::Result<callmeter_formats::LineIs> {
            assert!(line != b"boom", "the reader broke on its line");
            Ok(callmeter_formats::LineIs::NonCall(callmeter_formats::NonCall::Housekeeping))
        }
        fn context_mut(&mut self) -> &mut callmeter_formats::Context {
            &mut self.0
        }
    }
    let mut data: Vec<u8> = (0..20).flat_map(|i| format!("line {i}\n").into_bytes()).collect();
    data.extend_from_slice(b"boom\nafter\n");
    for (workers, apart) in [(1, true), (2, true), (3, true), (2, false)] {
        let fragile = || {
            LineReading::with_parser(Box::new(Fragile(callmeter_formats::Context::new(
                AccountRule::fixed("acme").unwrap(),
            ))))
        };
        let parsing = if apart {
            Parsing::Apart((0..workers).map(|_| fragile()).collect())
        } else {
            Parsing::InTurn(fragile(), workers)
        };
        let lines = crate::Lines::new(BufReader::new(Cursor::new(data.clone())), 100);
        let mut ahead = ParseAhead::with_block_lines(lines, LineKeys::new(None), parsing, true, 4);
        let (numbers, error) = lines_before_the_error(&mut ahead);
        // The blocks before the one that broke, then its reason.
        assert_eq!(numbers, (1..=20).collect::<Vec<u64>>(), "{workers} workers, apart: {apart}");
        assert!(error.to_string().contains("the reader broke on its line"), "{error}");
    }
}
