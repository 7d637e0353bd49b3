//! The ids of a log's calls are the same however the log is read (DESIGN §5):
//! whole, in two parts as it grew, gzipped, and by `tail` restarted from its
//! checkpoint, with identical lines on both sides of the resume point and a
//! session open across it.

use callmeter_formats::{AccountRule, Classifier, Format};
use callmeter_import::{import_input, Delivery, Input, ReadOptions, Sink, Summary, TailOptions, Tailer};
use callmeter_model::CallEvent;
use std::io::Write;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Keeps the id of every call delivered to it.
#[derive(Clone, Default)]
struct Ids(Arc<Mutex<Vec<String>>>);

impl Sink for Ids {
    fn deliver(&mut self, events: &mut Vec<CallEvent>) -> callmeter_import::Result<Vec<Delivery>> {
        let mut ids = self.0.lock().unwrap();
        ids.extend(events.iter().map(|e| e.id.clone()));
        Ok(vec![Delivery::Accepted; events.len()])
    }
}

impl Ids {
    /// The ids delivered, sorted (tail and import may give pending calls in another order).
    fn sorted(&self) -> Vec<String> {
        let mut ids = self.0.lock().unwrap().clone();
        ids.sort();
        ids
    }
}

fn options(format: Format) -> ReadOptions {
    ReadOptions {
        format: Some(format),
        accounts: AccountRule::fixed("acme").unwrap(),
        timezone: chrono_tz::UTC,
        source_id: None,
        classifier: Arc::new(Classifier::default()),
        strict: true,
        batch: 3,
    }
}

fn import(path: &Path, format: Format) -> Vec<String> {
    let ids = Ids::default();
    let mut sink = ids.clone();
    let mut summary = Summary::default();
    let input = Input::open(path).unwrap();
    import_input(input, &options(format), Some(&mut sink), &mut summary, &indicatif::ProgressBar::hidden()).unwrap();
    assert_eq!(summary.rejected, 0, "{summary}");
    ids.sorted()
}

fn tail_once(dir: &Path, file: &Path, format: Format, ids: &Ids) {
    let options = TailOptions {
        read: options(format),
        checkpoint: dir.join("tail.json"),
        poll: Duration::from_millis(1),
        rotate_grace: Duration::from_secs(60),
    };
    let mut t = Tailer::new(vec![file.to_owned()], options, Box::new(ids.clone())).unwrap();
    t.poll().unwrap();
}

fn append(path: &Path, text: &str) {
    std::fs::OpenOptions::new().create(true).append(true).open(path).unwrap().write_all(text.as_bytes()).unwrap();
}

/// Reads `first` then `second` (appended) every way, and checks every way gives the whole file's ids.
fn same_ids_every_way(format: Format, first: &str, second: &str, calls: usize) {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("a.log");
    append(&log, first);
    let before_growth = import(&log, format);
    append(&log, second);
    let whole = import(&log, format);
    assert_eq!(whole.len(), calls, "{whole:?}");
    assert_eq!(whole.iter().collect::<std::collections::HashSet<_>>().len(), calls, "every call its own id");

    // Grown: the ids read before it grew are among the whole file's.
    assert!(before_growth.iter().all(|id| whole.contains(id)), "{before_growth:?}");

    // Gzipped.
    let gz = dir.path().join("a.log.gz");
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    e.write_all(&std::fs::read(&log).unwrap()).unwrap();
    std::fs::write(&gz, e.finish().unwrap()).unwrap();
    assert_eq!(import(&gz, format), whole);

    // Tail: the first part, a restart from the checkpoint, then the second part.
    let tailed = dir.path().join("t.log");
    let ids = Ids::default();
    append(&tailed, first);
    tail_once(dir.path(), &tailed, format, &ids);
    append(&tailed, second);
    tail_once(dir.path(), &tailed, format, &ids);
    // A rotation ends the file: the calls still waiting for a later line come now.
    std::fs::rename(&tailed, dir.path().join("t.log.1")).unwrap();
    let options = TailOptions {
        read: options(format),
        checkpoint: dir.path().join("tail.json"),
        poll: Duration::from_millis(1),
        rotate_grace: Duration::ZERO,
    };
    let mut t = Tailer::new(vec![tailed.clone()], options, Box::new(ids.clone())).unwrap();
    t.poll().unwrap();
    let mut tail_ids = ids.sorted();
    tail_ids.dedup(); // a call waiting at the restart is sent again, as a duplicate: its id is what matters
    assert_eq!(tail_ids, whole);
}

#[test]
fn combined_identical_lines_on_both_sides_of_the_resume_point() {
    let line = |path: &str| {
        format!("192.0.2.1 - - [15/Jan/2024:10:00:01 +0000] \"GET /api/rest/v1/folders/{path} HTTP/1.1\" 200 10 \"-\" \"curl/8\"\n")
    };
    let x = line("x");
    let first = format!("{x}{}{x}{x}", line("y"));
    let second = format!("{x}{}{x}", line("z"));
    same_ids_every_way(Format::Combined, &first, &second, 7);
}

#[test]
fn vsftpd_sessions_open_across_the_resume_point() {
    let l = |what: &str| format!("Mon Jan 15 10:00:05 2024 [pid 3] [alice] {what}\n");
    let c = "Client \"192.168.1.10\"";
    let first = [
        l(&format!("FTP command: {c}, \"PASS <password>\"")),
        l(&format!("FTP response: {c}, \"230 Login successful.\"")),
        l(&format!("FTP command: {c}, \"LIST\"")),
        l(&format!("FTP response: {c}, \"226 Directory send OK.\"")),
        l(&format!("FTP command: {c}, \"LIST\"")),
        l(&format!("FTP command: {c}, \"STOR a.csv\"")),
        l(&format!("FTP command: {c}, \"RNFR a.csv\"")),
    ]
    .concat();
    let second = [
        l(&format!("FTP response: {c}, \"350 Ready for RNTO.\"")),
        l(&format!("FTP command: {c}, \"RNTO /done/a.csv\"")),
        l(&format!("FTP response: {c}, \"250 Rename successful.\"")),
        l(&format!("FTP command: {c}, \"LIST\"")),
        l(&format!("FTP command: {c}, \"QUIT\"")),
    ]
    .concat();
    // Login, three identical LISTs (two before the resume point), the upload, the move.
    same_ids_every_way(Format::Vsftpd, &first, &second, 6);
}

#[test]
fn a_byte_order_mark_is_no_part_of_the_first_line() {
    let iis = |n: u32| format!("2024-01-15 10:00:0{n} GET /api/rest/v1/files/in/{n}.csv 200\r\n");
    let head = "#Software: Microsoft Internet Information Services 10.0\r\n#Fields: date time cs-method cs-uri-stem sc-status\r\n";
    let plain = format!("{head}{}{}", iis(1), iis(2));
    // Imported, grown, gzipped and tailed, with the mark: every line read, the same ids every way.
    same_ids_every_way(Format::W3c, &format!("\u{feff}{plain}"), &iis(3), 3);

    // With and without the mark, the format told from the content: the same calls, the same ids.
    let dir = tempfile::tempdir().unwrap();
    let auto = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).unwrap();
        let ids = Ids::default();
        let mut summary = Summary::default();
        let options = ReadOptions { format: None, ..options(Format::W3c) };
        let input = Input::open(&path).unwrap();
        import_input(input, &options, Some(&mut ids.clone()), &mut summary, &indicatif::ProgressBar::hidden()).unwrap();
        assert_eq!((summary.calls, summary.rejected), (2, 0), "{summary}");
        ids.sorted()
    };
    assert_eq!(auto("bom.log", &format!("\u{feff}{plain}")), auto("plain.log", &plain));
    let ndjson =
        "{\"account\":\"acme\",\"time\":\"2024-01-15T10:00:01Z\",\"interface\":\"rest\",\"operation\":\"list\"}\n"
            .repeat(2);
    assert_eq!(auto("bom.ndjson", &format!("\u{feff}{ndjson}")), auto("plain.ndjson", &ndjson));
}
