//! Opening what is imported: a file (plain, gzip or zstd, told by its first
//! bytes, not its name) or standard input, with its first 4 KiB of content
//! read ahead for format detection.

use crate::error::{ImportError, Result};
use chrono::{DateTime, Utc};
use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

const GZIP_MAGIC: &[u8] = &[0x1f, 0x8b];
const ZSTD_MAGIC: &[u8] = &[0x28, 0xb5, 0x2f, 0xfd];
const READ_BUFFER: usize = 256 << 10;

/// How much of the start of the content is read ahead, for format detection.
pub const HEAD_BYTES: usize = 4096;

/// One source of lines.
pub struct Input {
    /// The path as given, or `-`.
    pub name: String,
    /// The decompressed content, from its first byte (the head included).
    pub reader: Box<dyn BufRead + Send>,
    /// The first [`HEAD_BYTES`] of the decompressed content (less if it is shorter).
    pub head: Vec<u8>,
    /// The size of the file on disk (compressed), when known: for progress.
    pub size: Option<u64>,
    /// Bytes of the file read so far (compressed): for progress.
    pub read: Arc<AtomicU64>,
    /// The file's modification time: syslog lines, which have no year, take it from here.
    pub modified: Option<DateTime<Utc>>,
    /// How the content was stored.
    pub compression: Compression,
    /// A plain file, which a server may still be writing: its last line is
    /// read only once it ends. A compressed file or a stream that has ended is
    /// whole, and a last line without `\n` is a line.
    pub may_grow: bool,
}

/// How a file's content is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Compression {
    /// As is.
    None,
    /// gzip (one or more members, as `cat a.gz b.gz` makes).
    Gzip,
    /// Zstandard.
    Zstd,
}

impl Input {
    /// Opens a file, or standard input for `-`.
    pub fn open(path: &Path) -> Result<Input> {
        if path == Path::new("-") {
            return Input::from_reader("-", Box::new(std::io::stdin()), None, None);
        }
        let name = path.display().to_string();
        let file = File::open(path).map_err(|e| ImportError::io(&name, e))?;
        let meta = file.metadata().map_err(|e| ImportError::io(&name, e))?;
        if meta.is_dir() {
            return Err(ImportError::io(&name, std::io::Error::other("is a folder")));
        }
        let modified = meta.modified().ok().map(DateTime::<Utc>::from);
        let mut input = Input::from_reader(&name, Box::new(file), Some(meta.len()), modified)?;
        input.may_grow = input.compression == Compression::None;
        Ok(input)
    }

    /// Reads from any byte stream (compressed or not).
    pub fn from_reader(
        name: &str,
        raw: Box<dyn Read + Send>,
        size: Option<u64>,
        modified: Option<DateTime<Utc>>,
    ) -> Result<Input> {
        let read = Arc::new(AtomicU64::new(0));
        let mut raw = BufReader::with_capacity(READ_BUFFER, Counting { inner: raw, read: read.clone() });
        let start = raw.fill_buf().map_err(|e| ImportError::io(name, e))?;
        let (compression, content): (Compression, Box<dyn Read + Send>) = if start.starts_with(GZIP_MAGIC) {
            (Compression::Gzip, Box::new(flate2::bufread::MultiGzDecoder::new(raw)))
        } else if start.starts_with(ZSTD_MAGIC) {
            let decoder = zstd::stream::read::Decoder::with_buffer(raw).map_err(|e| ImportError::io(name, e))?;
            (Compression::Zstd, Box::new(decoder))
        } else {
            (Compression::None, Box::new(raw))
        };
        let mut content = BufReader::with_capacity(READ_BUFFER, content);
        let mut head = Vec::with_capacity(HEAD_BYTES);
        (&mut content).take(HEAD_BYTES as u64).read_to_end(&mut head).map_err(|e| ImportError::io(name, e))?;
        let reader = Box::new(std::io::Cursor::new(head.clone()).chain(content));
        Ok(Input { name: name.to_owned(), reader, head, size, read, modified, compression, may_grow: false })
    }

    /// The first lines of the head, for format detection.
    pub fn head_lines(&self) -> Vec<&[u8]> {
        let mut lines: Vec<&[u8]> = self.head.split(|b| *b == b'\n').collect();
        if self.head.len() == HEAD_BYTES && lines.len() > 1 {
            lines.pop(); // cut off mid-line
        }
        lines
    }

    /// Whether the source holds no line to read: it is empty, or holds blank
    /// lines only (after logrotate, the live log is empty until the server
    /// writes to it). Its whole content is then in the head: it has no format
    /// to tell, and reading it is no error.
    pub fn holds_no_lines(&self) -> bool {
        self.head.len() < HEAD_BYTES && callmeter_formats::strip_bom(&self.head).iter().all(u8::is_ascii_whitespace)
    }

    /// The lines of a source that [holds none](Input::holds_no_lines) to
    /// read, all blank, and whether a last one is unended (a plain file's,
    /// left for a later read as any unended line is). Only the head is
    /// looked at: what a server writes meanwhile is read by a later import.
    pub fn blank_lines(&self) -> (u64, bool) {
        let newlines = self.head.iter().filter(|b| **b == b'\n').count() as u64;
        let last = self.head.rsplit(|b| *b == b'\n').next().unwrap_or(b"");
        match (last.is_empty(), self.may_grow) {
            (true, _) => (newlines, false),
            (false, true) => (newlines, true),
            (false, false) => (newlines + 1, false),
        }
    }

    /// Bytes read from the file so far.
    pub fn bytes_read(&self) -> u64 {
        self.read.load(Ordering::Relaxed)
    }
}

/// Counts the bytes read through it.
struct Counting {
    inner: Box<dyn Read + Send>,
    read: Arc<AtomicU64>,
}

impl Read for Counting {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.read.fetch_add(n as u64, Ordering::Relaxed);
        Ok(n)
    }
}

/// Splits a byte stream into lines, each at most `max` bytes.
///
/// A longer line is skipped through its end and reported as such rather than
/// held in memory: a binary file fed by mistake costs nothing.
///
/// A line's id is made of its bytes (DESIGN §5), and a line is final once its
/// newline is written: in a file a server may still be writing, a last line
/// without one is held back ([`Lines::unended_last_line`]), so that a
/// later import reads it whole rather than billing a part of it as well.
pub struct Lines<R> {
    reader: R,
    max: usize,
    buf: Vec<u8>,
    hold_back_unended: bool,
    held_back: usize,
}

/// One line, or the length of one that was too long.
pub enum Line<'a> {
    /// The line, without its `\n`.
    Text(&'a [u8]),
    /// A line longer than the limit, of this many bytes.
    TooLong(usize),
}

impl<R: BufRead> Lines<R> {
    /// Lines of `reader`, at most `max` bytes each.
    pub fn new(reader: R, max: usize) -> Lines<R> {
        Lines { reader, max, buf: Vec::new(), hold_back_unended: false, held_back: 0 }
    }

    /// Lines of a file that may still grow: a last line without `\n` is not read.
    pub fn of_growing_file(reader: R, max: usize) -> Lines<R> {
        Lines { hold_back_unended: true, ..Lines::new(reader, max) }
    }

    /// The bytes of a last line held back for want of its `\n` (0 for none).
    pub fn unended_last_line(&self) -> usize {
        self.held_back
    }

    /// The next line, or `None` at the end. A last line without `\n` is a
    /// line, unless this is a growing file's.
    pub fn next_line(&mut self) -> std::io::Result<Option<Line<'_>>> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let read = self.next_line_into(&mut buf);
        self.buf = buf;
        Ok(match read? {
            None => None,
            Some(Ok(_)) => Some(Line::Text(&self.buf)),
            Some(Err(n)) => Some(Line::TooLong(n)),
        })
    }

    /// [`Lines::next_line`] appending the line's bytes to `out` (a block of
    /// lines, read ahead: no copy in between): `Ok` with its length, or
    /// `Err` with the length of one too long to hold (`out` left as it was).
    pub fn next_line_into(&mut self, out: &mut Vec<u8>) -> std::io::Result<Option<Result<usize, usize>>> {
        let start = out.len();
        let mut skipped = 0usize;
        loop {
            let chunk = match self.reader.fill_buf() {
                Ok(c) => c,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(e) => {
                    out.truncate(start);
                    return Err(e);
                }
            };
            let held = out.len() - start;
            if chunk.is_empty() {
                if self.hold_back_unended {
                    self.held_back = held + skipped;
                    out.truncate(start);
                    return Ok(None);
                }
                return Ok(match (held, skipped) {
                    (0, 0) => None,
                    (_, 0) => Some(Ok(held)),
                    (_, n) => {
                        out.truncate(start);
                        Some(Err(n + held))
                    }
                });
            }
            let (take, done) = match memchr::memchr(b'\n', chunk) {
                Some(i) => (i, true),
                None => (chunk.len(), false),
            };
            if skipped > 0 || held + take > self.max {
                skipped += held + take;
                out.truncate(start);
            } else {
                out.extend_from_slice(&chunk[..take]);
            }
            self.reader.consume(take + done as usize);
            if done {
                return Ok(Some(if skipped > 0 { Err(skipped) } else { Ok(out.len() - start) }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn content(input: Input) -> Vec<u8> {
        let mut out = Vec::new();
        let mut r = input.reader;
        r.read_to_end(&mut out).unwrap();
        out
    }

    fn sample() -> Vec<u8> {
        (0..2000).flat_map(|i| format!("line {i}\n").into_bytes()).collect()
    }

    #[test]
    fn plain_gzip_and_zstd_read_alike() {
        let text = sample();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&text).unwrap();
        let gz = gz.finish().unwrap();
        let zst = zstd::encode_all(&text[..], 1).unwrap();
        for (bytes, kind) in [(text.clone(), Compression::None), (gz, Compression::Gzip), (zst, Compression::Zstd)] {
            let input = Input::from_reader("t", Box::new(std::io::Cursor::new(bytes)), None, None).unwrap();
            assert_eq!(input.compression, kind);
            assert_eq!(input.head, text[..HEAD_BYTES]);
            assert_eq!(content(input), text);
        }
    }

    #[test]
    fn concatenated_gzip_members_are_one_stream() {
        let mut all = Vec::new();
        for part in [&b"a\n"[..], b"b\n"] {
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            gz.write_all(part).unwrap();
            all.extend(gz.finish().unwrap());
        }
        let input = Input::from_reader("t", Box::new(std::io::Cursor::new(all)), None, None).unwrap();
        assert_eq!(content(input), b"a\nb\n");
    }

    #[test]
    fn short_and_empty_inputs() {
        let input = Input::from_reader("t", Box::new(std::io::Cursor::new(b"x".to_vec())), None, None).unwrap();
        assert_eq!(input.head, b"x");
        assert_eq!(input.head_lines(), vec![&b"x"[..]]);
        let input = Input::from_reader("t", Box::new(std::io::empty()), None, None).unwrap();
        assert!(input.head.is_empty());
    }

    #[test]
    fn sources_without_a_line_to_read() {
        let input = |bytes: &[u8], may_grow: bool| {
            let mut i = Input::from_reader("t", Box::new(std::io::Cursor::new(bytes.to_vec())), None, None).unwrap();
            i.may_grow = may_grow;
            i
        };
        for (bytes, may_grow, lines) in [
            (&b""[..], true, (0, false)),
            (b"\n\n", true, (2, false)),
            (b"\xEF\xBB\xBF", false, (1, false)),
            (b"\r\n \t\n  ", true, (2, true)),
            (b"\r\n \t\n  ", false, (3, false)),
        ] {
            let i = input(bytes, may_grow);
            assert!(i.holds_no_lines(), "{bytes:?}");
            assert_eq!(i.blank_lines(), lines, "{bytes:?}");
        }
        assert!(!input(b"\nx\n", true).holds_no_lines());
        // Blank for 4 KiB and more: what follows is not known from the head.
        assert!(!input(&[b'\n'; HEAD_BYTES + 1], true).holds_no_lines());
    }

    #[test]
    fn lines_split_and_skip_long_ones() {
        let data = b"one\n\nthree-is-long\nfour".to_vec();
        let mut lines = Lines::new(std::io::BufReader::with_capacity(4, &data[..]), 8);
        let mut seen = Vec::new();
        while let Some(l) = lines.next_line().unwrap() {
            seen.push(match l {
                Line::Text(t) => String::from_utf8(t.to_vec()).unwrap(),
                Line::TooLong(n) => format!("<{n}>"),
            });
        }
        assert_eq!(seen, ["one", "", "<13>", "four"]);
    }

    #[test]
    fn a_growing_file_holds_back_its_unended_last_line() {
        for (data, lines, held) in
            [(&b"one\ntw"[..], 1, 2), (b"one\ntwo\n", 2, 0), (b"", 0, 0), (b"three-is-long", 0, 13)]
        {
            let mut l = Lines::of_growing_file(std::io::BufReader::with_capacity(4, data), 8);
            let mut n = 0;
            while l.next_line().unwrap().is_some() {
                n += 1;
            }
            assert_eq!((n, l.unended_last_line()), (lines, held), "{:?}", String::from_utf8_lossy(data));
        }
    }

    #[test]
    fn plain_files_may_grow_and_compressed_ones_are_whole() {
        let dir = tempfile::tempdir().unwrap();
        let (plain, gz) = (dir.path().join("a.log"), dir.path().join("a.log.gz"));
        std::fs::write(&plain, b"a\nb").unwrap();
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(b"a\nb").unwrap();
        std::fs::write(&gz, e.finish().unwrap()).unwrap();
        assert!(Input::open(&plain).unwrap().may_grow);
        assert!(!Input::open(&gz).unwrap().may_grow);
    }
}
