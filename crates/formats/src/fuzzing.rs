//! What the fuzz targets run (and the corpus replay test): every line of the
//! input through one reader, then `finish`. Any panic is a bug.

use crate::{detect, parser, AccountRule, Context, Format, LineKeys, LineParser};
use callmeter_model::CallEvent;

/// The fuzz target names, one per reader, and `detect`.
pub const TARGETS: [&str; 12] = [
    "clf",
    "vhost_combined",
    "nginx_json",
    "w3c",
    "xferlog",
    "vsftpd",
    "proftpd",
    "sftp",
    "syslog",
    "ndjson",
    "cloudevents",
    "detect",
];

/// The format a fuzz target reads (`None` for `detect`).
pub fn target_format(target: &str) -> Option<Format> {
    Some(match target {
        "clf" => Format::Combined,
        "vhost_combined" => Format::VhostCombined,
        "nginx_json" => Format::NginxJson,
        "w3c" => Format::W3c,
        "xferlog" => Format::Xferlog,
        "vsftpd" => Format::Vsftpd,
        "proftpd" => Format::Proftpd,
        "sftp" => Format::Sftp,
        "syslog" => Format::Syslog,
        "ndjson" => Format::Ndjson,
        "cloudevents" => Format::CloudEvents,
        _ => return None,
    })
}

/// Runs one input through a target; returns the events (for checks in tests).
pub fn run(target: &str, data: &[u8]) -> Vec<CallEvent> {
    let lines: Vec<&[u8]> = data.split(|c| *c == b'\n').collect();
    let Some(format) = target_format(target) else {
        let _ = detect(&lines);
        return Vec::new();
    };
    // Accounts from the user map when the input's first byte is odd: both
    // the fixed and the resolving paths get fuzzed.
    let accounts = if data.first().is_some_and(|b| b % 2 == 1) {
        AccountRule::UserMap([("alice".to_owned(), "fuzz".to_owned())].into())
    } else {
        AccountRule::Fixed("fuzz".into())
    };
    let ctx = Context::new(accounts)
        .with_timezone(chrono_tz::Tz::America__New_York)
        .with_year_reference(chrono::DateTime::from_timestamp(1_700_000_000, 0).unwrap_or_default());
    let mut p: Box<dyn LineParser> = parser(format, ctx);
    let mut out = Vec::new();
    let mut keys = LineKeys::new(None);
    for line in &lines {
        let _ = p.line(keys.next(line), line, &mut out);
    }
    p.finish(&mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::path::PathBuf;

    fn corpus(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz/corpus").join(target);
        let mut files: Vec<_> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|f| f.unwrap().path())
            .collect();
        files.sort();
        // A fuzzer running on this folder replaces inputs as it shrinks them:
        // one that vanished between the listing and the read is skipped.
        files
            .into_iter()
            .filter_map(|p| match std::fs::read(&p) {
                Ok(data) => Some((p, data)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
                Err(e) => panic!("{}: {e}", p.display()),
            })
            .collect()
    }

    #[test]
    fn every_corpus_file_replays_without_panic_and_gives_valid_events() {
        let mut replayed = 0;
        for target in TARGETS {
            let files = corpus(target);
            assert!(!files.is_empty(), "corpus/{target} has no seeds");
            let mut events = 0;
            for (path, data) in files {
                let out = run(target, &data);
                for e in &out {
                    crate::testutil::assert_valid(e);
                }
                events += out.len();
                replayed += 1;
                let _ = path;
            }
            if target != "detect" {
                assert!(events > 0, "the seeds of {target} give calls");
            }
        }
        assert!(replayed >= TARGETS.len());
    }

    #[test]
    fn every_target_has_a_fuzz_binary() {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("fuzz");
        let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        for target in TARGETS {
            let src = std::fs::read_to_string(dir.join(format!("fuzz_targets/{target}.rs"))).unwrap();
            assert!(src.contains(&format!("run(\"{target}\"")), "{target}");
            assert!(manifest.contains(&format!("name = \"{target}\"")), "{target}");
        }
    }

    /// Random edits of the seeds: a small, always-on stand-in for the fuzzer.
    fn mutate(seed: &[u8], edits: &[(usize, u8, u8)]) -> Vec<u8> {
        let mut v = seed.to_vec();
        for &(at, op, byte) in edits {
            let at = if v.is_empty() { 0 } else { at % (v.len() + 1) };
            match op % 4 {
                0 if at < v.len() => v[at] = byte,
                1 if at < v.len() => {
                    v.remove(at);
                }
                2 => v.truncate(at),
                _ => v.insert(at, byte),
            }
        }
        v
    }

    /// Bytes that mean something to some format, and any byte.
    fn interesting_byte() -> impl Strategy<Value = u8> {
        prop_oneof![proptest::sample::select(b"\" \n[]\\%/:{}+#?-".to_vec()), any::<u8>()]
    }

    proptest! {
        #[test]
        fn mutated_seeds_never_panic(
            target in 0usize..TARGETS.len(), pick in any::<usize>(),
            edits in proptest::collection::vec((any::<usize>(), any::<u8>(), interesting_byte()), 0..8),
        ) {
            let files = corpus(TARGETS[target]);
            let (_, seed) = &files[pick % files.len()];
            let data = mutate(seed, &edits);
            for e in run(TARGETS[target], &data) {
                crate::testutil::assert_valid(&e);
            }
        }
    }
}
