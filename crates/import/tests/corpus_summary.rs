//! Every sample of real servers' logs (`crates/formats/tests/corpus/`),
//! imported as `callmeter import --format auto --dry-run` would: the summary
//! accounts for every line read (DESIGN §5: nothing read is dropped
//! silently), `lines = calls - batched + non-calls + rejected lines`, in its
//! text and in its JSON.

use callmeter_formats::{AccountRule, Classifier, NonCall};
use callmeter_import::{import_input, ImportError, Input, ReadOptions, Summary};
use std::path::{Path, PathBuf};
use std::sync::Arc;

fn options() -> ReadOptions {
    ReadOptions {
        format: None,
        accounts: AccountRule::fixed("acme").unwrap(),
        timezone: chrono_tz::UTC,
        source_id: None,
        classifier: Arc::new(Classifier::default()),
        strict: false,
        batch: 1000,
    }
}

fn samples() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../formats/tests/corpus");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| {
            let name = p.file_name().unwrap().to_string_lossy();
            name != "README.md" && !name.starts_with("LICENSE")
        })
        .collect();
    files.sort();
    files
}

fn import(path: &Path) -> callmeter_import::Result<Summary> {
    let mut summary = Summary::default();
    let input = Input::open(path).unwrap();
    import_input(input, &options(), None, &mut summary, &indicatif::ProgressBar::hidden())?;
    Ok(summary)
}

#[test]
fn every_sample_adds_up() {
    let files = samples();
    assert!(files.len() >= 20, "the corpus is there: {files:?}");
    let mut total = Summary::default();
    for path in &files {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let summary = match import(path) {
            Ok(s) => s,
            Err(ImportError::UnknownFormat { .. }) if name == "plaso-firewall.log" => continue,
            Err(e) => panic!("{name}: {e}"),
        };
        assert!(summary.adds_up(), "{name}:\n{summary}");
        let non_calls: u64 = summary.non_calls.values().sum();
        let text = summary.to_string();
        let identity = format!(
            "lines read:   {} = {} calls + {non_calls} non-calls + {} rejected\n",
            summary.lines, summary.calls, summary.rejected_lines
        );
        assert!(text.contains(&identity), "{name}:\n{text}");
        let json = serde_json::to_value(&summary).unwrap();
        let json_non_calls: u64 = json["non_calls"].as_object().unwrap().values().map(|v| v.as_u64().unwrap()).sum();
        assert_eq!(
            json["lines"].as_u64().unwrap(),
            json["calls"].as_u64().unwrap() - json["batched"].as_u64().unwrap()
                + json_non_calls
                + json["rejected_lines"].as_u64().unwrap(),
            "{name}: {json}"
        );
        total.lines += summary.lines;
        total.calls += summary.calls;
        total.unended += summary.unended;
        for (k, n) in summary.non_calls {
            *total.non_calls.entry(k).or_default() += n;
        }
    }
    // The samples hold every kind of non-call but the CloudEvents batch's.
    for kind in NonCall::ALL {
        assert!(total.non_calls.contains_key(&kind), "no {kind} line in the corpus: {total:?}");
    }
    // One sample ends without a newline: a plain file's unended last line is left for later.
    assert_eq!(total.unended, 1);
}
