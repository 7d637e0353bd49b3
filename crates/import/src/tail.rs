//! `callmeter tail`: follows growing logs like `tail -F` and delivers their
//! calls as they are written.
//!
//! A followed path is read through its open file; when the path comes to
//! name another file (rotation by rename), the old one is read to its end
//! for a short grace (servers write to it until they reopen) and then left,
//! and the new one is read from its start. A file that shrinks was truncated
//! (`copytruncate`) and is read again from its start.
//!
//! After every delivery the position in each file is written to a
//! [`Checkpoint`], so a restart resumes where the last delivery ended; a
//! rotation that happened while tail was stopped is found by looking for the
//! old inode next to the path. Calls delivered again after a crash are
//! duplicates to the store: nothing is lost and nothing counted twice. To
//! resume, the lines before the position are read again without sending
//! their calls, so that sessions and the counts of identical lines are
//! where they were.
//!
//! A line's id is made of its bytes and its occurrence number (DESIGN §5),
//! so a line is final once its newline is written and is sent at once; an
//! import of the file's grown, rotated or gzipped copy finds the same ids. A
//! line not yet ended waits for its newline (or, in a rotated file, for the
//! end of the grace).

use crate::checkpoint::{fingerprint, Checkpoint, FilePosition, FINGERPRINT_BYTES};
use crate::error::{ImportError, Result};
use crate::input::{Line, HEAD_BYTES};
use crate::sink::Sink;
use crate::source::{ReadOptions, SourceReader, MAX_LINE_BYTES};
use crate::summary::Summary;
use callmeter_formats::live_year_reference;
use std::collections::BTreeMap;
use std::fs::File;
use std::os::unix::fs::{FileExt, MetadataExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How `tail` follows.
#[derive(Debug, Clone)]
pub struct TailOptions {
    /// How lines become calls.
    pub read: ReadOptions,
    /// Where positions are kept between runs.
    pub checkpoint: PathBuf,
    /// How often the files are looked at.
    pub poll: Duration,
    /// How long a rotated file is still read after it was last seen to grow.
    pub rotate_grace: Duration,
}

fn file_key(meta: &std::fs::Metadata) -> String {
    format!("{}:{}", meta.dev(), meta.ino())
}

/// One open file being read.
struct Open {
    path: PathBuf,
    file: File,
    key: String,
    /// Bytes through the last complete line read.
    offset: u64,
    /// Bytes after it, of a line not yet ended.
    partial: Vec<u8>,
    /// The file's first min(`offset`, 4 KiB) bytes: its fingerprint.
    head: Vec<u8>,
    /// `None` until a line has ended (and the format is known).
    reader: Option<SourceReader>,
    /// Resume after this many lines (from the checkpoint), once the reader exists.
    resume: Option<FilePosition>,
    /// Rotated away: read to the end, then finished.
    rotated: bool,
    last_growth: Instant,
}

impl Open {
    /// Whether the file still starts with the bytes read from it (its
    /// fingerprint's bytes, at most 4 KiB: one small read a poll).
    fn starts_as_read(&self) -> bool {
        if self.head.is_empty() {
            return true;
        }
        let mut now = vec![0u8; self.head.len()];
        match read_full_at(&self.file, &mut now, 0) {
            Ok(n) => n == self.head.len() && now == self.head,
            Err(_) => true, // unreadable now: the next poll looks again
        }
    }
}

/// Follows files and delivers their calls.
pub struct Tailer {
    options: TailOptions,
    sink: Box<dyn Sink>,
    paths: Vec<PathBuf>,
    current: BTreeMap<PathBuf, Open>,
    rotated: Vec<Open>,
    checkpoint: Checkpoint,
    summary: Summary,
}

impl Tailer {
    /// Follows `paths`, resuming from the checkpoint. Files rotated away while
    /// tail was stopped are found next to their path and read to their end first.
    pub fn new(paths: Vec<PathBuf>, options: TailOptions, sink: Box<dyn Sink>) -> Result<Tailer> {
        let checkpoint = Checkpoint::load(&options.checkpoint)?;
        let mut t = Tailer {
            options,
            sink,
            paths,
            current: BTreeMap::new(),
            rotated: Vec::new(),
            checkpoint,
            summary: Summary::default(),
        };
        t.find_rotated_while_stopped();
        Ok(t)
    }

    /// What has been read and delivered so far.
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// Follows until `stop` is set, looking every `poll`.
    pub fn run(&mut self, stop: &std::sync::atomic::AtomicBool) -> Result<()> {
        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
            self.poll()?;
            std::thread::sleep(self.options.poll);
        }
        Ok(())
    }

    /// Looks at every file once: reads what was added, follows rotations and
    /// truncations, delivers, and writes the checkpoint.
    pub fn poll(&mut self) -> Result<()> {
        for path in self.paths.clone() {
            self.poll_path(&path)?;
        }
        let mut i = 0;
        while i < self.rotated.len() {
            let grew = self.read_new(Where::Rotated(i))?;
            let open = &mut self.rotated[i];
            if grew {
                open.last_growth = Instant::now();
            }
            if open.last_growth.elapsed() >= self.options.rotate_grace {
                let mut open = self.rotated.remove(i);
                self.finish(&mut open)?;
            } else {
                i += 1;
            }
        }
        Ok(())
    }

    fn poll_path(&mut self, path: &Path) -> Result<()> {
        let meta = std::fs::metadata(path).ok();
        let now_key = meta.as_ref().map(file_key);
        if let Some(open) = self.current.get(path) {
            if now_key.as_deref() != Some(open.key.as_str()) {
                // Renamed away (or deleted): read it to its end for a while longer.
                let mut open = self.current.remove(path).expect("present");
                tracing::info!(path = %path.display(), "rotated; reading the old file to its end");
                open.rotated = true;
                open.last_growth = Instant::now();
                self.rotated.push(open);
            } else if open.file.metadata().map(|m| m.len()).unwrap_or(0) < open.offset || !open.starts_as_read() {
                // Shorter than what was read, or (copytruncate, then more
                // written than before within one poll) no longer starting
                // with what was read: a new file under the same inode.
                tracing::info!(path = %path.display(), "truncated; reading from the start");
                let open = self.current.get_mut(path).expect("present");
                open.offset = 0;
                open.partial.clear();
                open.head.clear();
                open.reader = None;
                open.resume = None;
                self.checkpoint.files.remove(&open.key);
            }
        }
        if !self.current.contains_key(path) {
            let Some(meta) = meta else { return Ok(()) };
            let file = match File::open(path) {
                Ok(f) => f,
                Err(_) => return Ok(()), // gone between stat and open: next poll
            };
            let key = file_key(&meta);
            let resume = self.checkpoint.files.get(&key).cloned();
            self.current.insert(path.to_owned(), Open::new(path, file, key, resume));
        }
        self.read_new(Where::Current(path.to_owned()))?;
        Ok(())
    }

    /// Reads the lines added to a file and delivers their calls; true if it grew.
    fn read_new(&mut self, at: Where) -> Result<bool> {
        let open = match &at {
            Where::Current(p) => self.current.get_mut(p).expect("present"),
            Where::Rotated(i) => &mut self.rotated[*i],
        };
        if open.reader.is_none() && !open.start_reader(&self.options.read)? {
            return Ok(false);
        }
        let len = open.file.metadata().map_err(|e| ImportError::io(open.path.display(), e))?.len();
        if len <= open.offset + open.partial.len() as u64 {
            return Ok(false);
        }
        let mut grew = false;
        // Syslog lines take their year from now (plus the skew a clock may have), and now moves on.
        open.reader.as_mut().expect("started").set_year_reference(live_year_reference());
        let mut buf = vec![0u8; 256 << 10];
        loop {
            let at = open.offset + open.partial.len() as u64;
            let n = open.file.read_at(&mut buf, at).map_err(|e| ImportError::io(open.path.display(), e))?;
            if n == 0 {
                break;
            }
            grew = true;
            open.partial.extend_from_slice(&buf[..n]);
            let reader = open.reader.as_mut().expect("started");
            let mut start = 0;
            while let Some(i) = memchr::memchr(b'\n', &open.partial[start..]) {
                let line = &open.partial[start..start + i];
                let line = if line.len() > MAX_LINE_BYTES { Line::TooLong(line.len()) } else { Line::Text(line) };
                reader.read(line, &mut self.summary)?;
                start += i + 1;
            }
            let into_head = start.min(FINGERPRINT_BYTES - open.head.len());
            open.head.extend_from_slice(&open.partial[..into_head]);
            open.partial.drain(..start);
            open.offset += start as u64;
            if reader.pending() >= self.options.read.batch {
                Self::deliver(
                    &mut *self.sink,
                    open,
                    &mut self.checkpoint,
                    &mut self.summary,
                    &self.options.checkpoint,
                )?;
            }
        }
        if grew {
            Self::deliver(&mut *self.sink, open, &mut self.checkpoint, &mut self.summary, &self.options.checkpoint)?;
        }
        Ok(grew)
    }

    /// Delivers a file's pending calls, then records its position.
    fn deliver(
        sink: &mut dyn Sink,
        open: &mut Open,
        checkpoint: &mut Checkpoint,
        summary: &mut Summary,
        checkpoint_path: &Path,
    ) -> Result<()> {
        let reader = open.reader.as_mut().expect("started");
        reader.deliver(Some(sink), summary)?;
        let position = FilePosition {
            path: open.path.clone(),
            fingerprint: fingerprint(&open.head),
            offset: open.offset,
            line: reader.line_no(),
        };
        if checkpoint.files.get(&open.key) != Some(&position) {
            checkpoint.files.insert(open.key.clone(), position);
            checkpoint.save(checkpoint_path)?;
        }
        Ok(())
    }

    /// The end of a rotated file: its last unended line, the calls its reader
    /// still holds; then its checkpoint entry goes.
    fn finish(&mut self, open: &mut Open) -> Result<()> {
        if open.reader.is_none() && !open.start_reader(&self.options.read)? {
            return Ok(()); // empty
        }
        let reader = open.reader.as_mut().expect("started");
        if !open.partial.is_empty() {
            let line = std::mem::take(&mut open.partial);
            reader.read(Line::Text(&line), &mut self.summary)?;
            open.offset += line.len() as u64;
        }
        reader.finish(&mut self.summary);
        reader.deliver(Some(&mut *self.sink), &mut self.summary)?;
        self.summary.files += 1;
        if self.checkpoint.files.remove(&open.key).is_some() {
            self.checkpoint.save(&self.options.checkpoint)?;
        }
        tracing::info!(path = %open.path.display(), lines = reader.line_no(), "finished rotated file");
        Ok(())
    }

    /// Checkpointed files no longer at their path: look for them beside it.
    fn find_rotated_while_stopped(&mut self) {
        let at_paths: Vec<String> =
            self.paths.iter().filter_map(|p| std::fs::metadata(p).ok()).map(|m| file_key(&m)).collect();
        let lost: Vec<(String, FilePosition)> = self
            .checkpoint
            .files
            .iter()
            .filter(|(k, _)| !at_paths.contains(k))
            .map(|(k, p)| (k.clone(), p.clone()))
            .collect();
        for (key, position) in lost {
            let dir = position.path.parent().filter(|d| !d.as_os_str().is_empty()).unwrap_or(Path::new("."));
            let found = std::fs::read_dir(dir).into_iter().flatten().flatten().find_map(|entry| {
                let meta = entry.metadata().ok()?;
                (meta.is_file() && file_key(&meta) == key).then(|| entry.path())
            });
            match found.and_then(|p| File::open(&p).ok().map(|f| (p, f))) {
                Some((path, file)) => {
                    tracing::info!(path = %path.display(), was = %position.path.display(), "rotated while stopped; reading it to its end");
                    let mut open = Open::new(&path, file, key, Some(position));
                    open.rotated = true;
                    self.rotated.push(open);
                }
                None => {
                    tracing::warn!(path = %position.path.display(), offset = position.offset, "a followed file was rotated away while tail was stopped and is gone; if it had lines after the checkpoint, import its rotated copy (nothing is counted twice)");
                    self.checkpoint.files.remove(&key);
                }
            }
        }
    }
}

enum Where {
    Current(PathBuf),
    Rotated(usize),
}

impl Open {
    fn new(path: &Path, file: File, key: String, resume: Option<FilePosition>) -> Open {
        Open {
            path: path.to_owned(),
            file,
            key,
            offset: 0,
            partial: Vec::new(),
            head: Vec::new(),
            reader: None,
            resume,
            rotated: false,
            last_growth: Instant::now(),
        }
    }

    /// Makes the reader once a line has ended and the format is known, and
    /// replays the lines delivered before a restart. False while waiting.
    fn start_reader(&mut self, options: &ReadOptions) -> Result<bool> {
        let name = self.path.display().to_string();
        let mut head = vec![0u8; HEAD_BYTES];
        let n = read_full_at(&self.file, &mut head, 0).map_err(|e| ImportError::io(&name, e))?;
        head.truncate(n);
        // The format is told from ended lines; a rotated file is written no more, so all of it.
        let ended = match memchr::memrchr(b'\n', &head) {
            Some(i) => &head[..i + 1],
            None if self.rotated && n > 0 => &head[..],
            None => return Ok(false),
        };
        let format = match options.format {
            Some(f) => f,
            None => {
                let lines: Vec<&[u8]> = ended.split(|b| *b == b'\n').collect();
                match callmeter_formats::detect(&lines) {
                    Some(f) => f,
                    // Lines of no known shape yet: wait for more, up to 4 KiB of them.
                    None if n < HEAD_BYTES && !self.rotated => return Ok(false),
                    None => return Err(ImportError::UnknownFormat { path: name }),
                }
            }
        };
        let mut reader = SourceReader::new(&name, format, options, live_year_reference());
        let resume = self.resume.take().filter(|r| {
            let same = n >= r.fingerprinted() && fingerprint(&head[..r.fingerprinted()]) == r.fingerprint;
            if !same {
                tracing::info!(path = %name, "not the file of the checkpoint (it starts otherwise); reading it from its start");
            }
            same
        });
        if let Some(r) = &resume {
            // Feed the delivered lines again, dropping their calls, so that sessions and line counts pick up where they were.
            let mut partial = Vec::new();
            let mut buf = vec![0u8; 1 << 20];
            let mut at = 0u64;
            while at < r.offset {
                let want = buf.len().min((r.offset - at) as usize);
                let got = self.file.read_at(&mut buf[..want], at).map_err(|e| ImportError::io(&name, e))?;
                if got == 0 {
                    break;
                }
                at += got as u64;
                partial.extend_from_slice(&buf[..got]);
                let mut start = 0;
                while let Some(i) = memchr::memchr(b'\n', &partial[start..]) {
                    let line = &partial[start..start + i];
                    reader.replay(if line.len() > MAX_LINE_BYTES {
                        Line::TooLong(line.len())
                    } else {
                        Line::Text(line)
                    });
                    start += i + 1;
                }
                partial.drain(..start);
            }
            self.offset = at - partial.len() as u64;
            tracing::info!(path = %name, line = reader.line_no(), offset = self.offset, "resuming");
        }
        self.head = head[..(self.offset as usize).min(FINGERPRINT_BYTES).min(n)].to_vec();
        self.reader = Some(reader);
        Ok(true)
    }
}

fn read_full_at(file: &File, buf: &mut [u8], at: u64) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        let got = file.read_at(&mut buf[n..], at + n as u64)?;
        if got == 0 {
            break;
        }
        n += got;
    }
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sink::Delivery;
    use callmeter_formats::{AccountRule, Classifier, Format};
    use callmeter_model::CallEvent;
    use chrono::Timelike;
    use std::io::Write;
    use std::sync::{Arc, Mutex};

    /// Keeps every delivered event; a second delivery of an id is a duplicate, as in a store.
    #[derive(Clone, Default)]
    struct Kept(Arc<Mutex<Vec<CallEvent>>>);

    impl Sink for Kept {
        fn deliver(&mut self, events: &mut Vec<CallEvent>) -> Result<Vec<Delivery>> {
            let mut kept = self.0.lock().unwrap();
            Ok(events
                .iter()
                .map(|e| {
                    if kept.iter().any(|k| k.id == e.id) {
                        Delivery::Duplicate
                    } else {
                        kept.push(e.clone());
                        Delivery::Accepted
                    }
                })
                .collect())
        }
    }

    fn line(i: usize) -> String {
        let t = chrono::Utc::now() - chrono::Duration::seconds(600 - i as i64);
        format!(
            "192.0.2.1 - - [{}] \"GET /api/rest/v1/folders/f{i} HTTP/1.1\" 200 10 \"-\" \"curl/8.5.0 padding-padding-padding\"\n",
            t.format("%d/%b/%Y:%H:%M:%S +0000")
        )
    }

    fn lines(r: std::ops::Range<usize>) -> String {
        r.map(line).collect()
    }

    fn tailer(dir: &Path, file: &Path, kept: &Kept) -> Tailer {
        let options = TailOptions {
            read: ReadOptions {
                format: Some(Format::Combined),
                accounts: AccountRule::fixed("acme").unwrap(),
                timezone: chrono_tz::UTC,
                source_id: None,
                classifier: Arc::new(Classifier::default()),
                strict: false,
                batch: 7,
            },
            checkpoint: dir.join("tail.json"),
            poll: Duration::from_millis(1),
            rotate_grace: Duration::ZERO,
        };
        Tailer::new(vec![file.to_owned()], options, Box::new(kept.clone())).unwrap()
    }

    fn paths(kept: &Kept) -> Vec<String> {
        kept.0.lock().unwrap().iter().map(|e| e.path.clone().unwrap()).collect()
    }

    #[test]
    fn sends_each_line_once_it_ends_and_resumes_from_the_checkpoint() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.log");
        let kept = Kept::default();
        let mut t = tailer(dir.path(), &file, &kept);
        t.poll().unwrap(); // no file yet
        std::fs::write(&file, b"192.0.2.1 - - [").unwrap();
        t.poll().unwrap();
        assert!(paths(&kept).is_empty(), "a line not yet ended waits");
        std::fs::write(&file, line(0)).unwrap();
        t.poll().unwrap();
        assert_eq!(paths(&kept), ["/f0"], "one short line is sent at once");
        std::fs::write(&file, lines(0..3)).unwrap();
        // And a line not yet ended waits.
        std::fs::OpenOptions::new().append(true).open(&file).unwrap().write_all(b"192.0.2.1 - - [").unwrap();
        t.poll().unwrap();
        assert_eq!(paths(&kept), ["/f0", "/f1", "/f2"]);
        drop(t);

        // A new tailer resumes after line 3: nothing again, the rest of the line then completes it.
        let mut t = tailer(dir.path(), &file, &kept);
        let rest = line(3);
        std::fs::OpenOptions::new().append(true).open(&file).unwrap().write_all(&rest.as_bytes()[15..]).unwrap();
        t.poll().unwrap();
        assert_eq!(paths(&kept).len(), 4);
        assert_eq!(t.summary().duplicates, 0, "resumed exactly after the last delivered line");
        let saved = Checkpoint::load(&dir.path().join("tail.json")).unwrap();
        let position = saved.files.values().next().unwrap();
        assert_eq!((position.line, position.offset), (4, std::fs::metadata(&file).unwrap().len()));
        assert_eq!(position.fingerprint, fingerprint(&std::fs::read(&file).unwrap()));
    }

    #[test]
    fn a_reused_inode_that_starts_otherwise_is_read_from_its_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.log");
        let kept = Kept::default();
        std::fs::write(&file, lines(0..2)).unwrap();
        tailer(dir.path(), &file, &kept).poll().unwrap();
        // Rewritten in place while tail is stopped (same inode), longer than before.
        std::fs::write(&file, lines(10..15)).unwrap();
        tailer(dir.path(), &file, &kept).poll().unwrap();
        assert_eq!(paths(&kept), ["/f0", "/f1", "/f10", "/f11", "/f12", "/f13", "/f14"]);
    }

    #[test]
    fn syslog_lines_a_little_ahead_of_this_clock_keep_this_year() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("sftp.log");
        let kept = Kept::default();
        let mut t = tailer(dir.path(), &file, &kept);
        t.options.read.format = Some(Format::Sftp);
        let ahead = chrono::Utc::now() + chrono::Duration::seconds(90);
        std::fs::write(&file, format!("{} h sftp-server[7]: opendir \"/in\"\n", ahead.format("%b %e %H:%M:%S")))
            .unwrap();
        t.poll().unwrap();
        let kept = kept.0.lock().unwrap();
        assert_eq!(kept[0].time, ahead.with_nanosecond(0).unwrap(), "not moved back a year");
    }

    #[test]
    fn truncation_starts_again_as_a_new_source() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.log");
        let kept = Kept::default();
        let mut t = tailer(dir.path(), &file, &kept);
        std::fs::write(&file, lines(0..40)).unwrap();
        t.poll().unwrap();
        std::fs::write(&file, lines(100..135)).unwrap(); // copytruncate, then new lines (under the old size)
        t.poll().unwrap();
        let p = paths(&kept);
        assert_eq!(p.len(), 75);
        assert_eq!(p[40], "/f100");
        let ids: std::collections::HashSet<String> = kept.0.lock().unwrap().iter().map(|e| e.id.clone()).collect();
        assert_eq!(ids.len(), 75, "the new content has its own ids");
    }

    /// copytruncate, then more written than was read before, all within one
    /// poll: the file never looks shorter, but it no longer starts as it did.
    #[test]
    fn truncation_followed_by_more_than_was_read_is_seen_by_the_files_start() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.log");
        let kept = Kept::default();
        let mut t = tailer(dir.path(), &file, &kept);
        std::fs::write(&file, lines(0..40)).unwrap();
        t.poll().unwrap();
        std::fs::write(&file, lines(100..160)).unwrap(); // longer than the 40 lines read
        t.poll().unwrap();
        let p = paths(&kept);
        assert_eq!(p.len(), 100, "40 lines, then all 60 of the new file");
        assert_eq!(p[40], "/f100");
    }

    #[test]
    fn a_rotated_file_is_read_to_its_end_even_when_short() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.log");
        let kept = Kept::default();
        let mut t = tailer(dir.path(), &file, &kept);
        std::fs::write(&file, lines(0..3)).unwrap();
        t.poll().unwrap();
        std::fs::rename(&file, dir.path().join("a.log.1")).unwrap();
        t.poll().unwrap(); // seen rotated
        t.poll().unwrap(); // grace over: finished
        assert_eq!(paths(&kept), vec!["/f0", "/f1", "/f2"]);
        assert!(Checkpoint::load(&dir.path().join("tail.json")).unwrap().files.is_empty());
    }
}
