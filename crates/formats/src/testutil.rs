//! Helpers for the tests.

use crate::{AccountRule, Context, Format, LineIs, LineKey, LineKeys, LineParser, NonCall, SourceLine};
use callmeter_model::{parse_event, CallEvent, EventLimits, Interface, Operation};
use chrono::{DateTime, Utc};

pub fn utc(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

pub fn ctx() -> Context {
    Context::new(AccountRule::fixed("acme").unwrap()).with_year_reference(utc("2024-06-30T00:00:00Z"))
}

/// The id of a call that starts on line `line` (from 1) of `text`, read as [`run_with`] reads it.
pub fn id(text: &str, line: u64) -> String {
    let mut keys = LineKeys::new(None);
    let mut at = None;
    for l in text.lines().take(line as usize) {
        at = Some(keys.next(l.as_bytes()));
    }
    at.expect("the text has that line").key.id()
}

/// Line `n` with a made-up key, for the pieces below the readers.
pub fn at(n: u64) -> SourceLine {
    SourceLine { number: n, key: LineKey::from_bytes([n as u8; 16]) }
}

pub fn event() -> CallEvent {
    ctx().event(at(1), utc("2024-01-15T10:00:00Z"), Interface::Rest, Operation::Other, "acme".into())
}

/// Feeds the lines (numbered from 1), then finishes; every event is checked
/// to pass the model's own validation unchanged, and every line to be
/// accounted for: the lines that say they are calls are the events given.
pub fn run_with(p: &mut dyn LineParser, text: &str) -> (Vec<CallEvent>, Vec<crate::Error>) {
    let (out, errors, _) = run_kinds(p, text);
    (out, errors)
}

/// [`run_with`], and what each line said it was (`None` for an error).
pub fn run_kinds(p: &mut dyn LineParser, text: &str) -> (Vec<CallEvent>, Vec<crate::Error>, Vec<Option<LineIs>>) {
    let mut out = Vec::new();
    let mut errors = Vec::new();
    let mut kinds = Vec::new();
    let mut keys = LineKeys::new(None);
    let batched = p.batched();
    for line in text.lines() {
        match p.line(keys.next(line.as_bytes()), line.as_bytes(), &mut out) {
            Ok(is) => kinds.push(Some(is)),
            Err(e) => {
                errors.push(e);
                kinds.push(None);
            }
        }
    }
    p.finish(&mut out);
    for e in &out {
        assert_valid(e);
    }
    let call_lines = kinds.iter().filter(|k| **k == Some(LineIs::Call)).count() as u64;
    assert_eq!(call_lines + p.batched() - batched, out.len() as u64, "call lines and calls: {kinds:?}");
    (out, errors, kinds)
}

/// The kinds of the lines that are not calls, in order (`None` for a call or an error).
pub fn non_calls(format: Format, text: &str) -> Vec<Option<NonCall>> {
    let (_, _, kinds) = run_kinds(crate::parser(format, ctx()).as_mut(), text);
    kinds.into_iter().map(|k| if let Some(LineIs::NonCall(n)) = k { Some(n) } else { None }).collect()
}

pub fn run(format: Format, text: &str) -> Vec<CallEvent> {
    let (out, errors) = run_with(crate::parser(format, ctx()).as_mut(), text);
    assert!(errors.is_empty(), "{errors:?}");
    out
}

pub fn run_errors(format: Format, text: &str) -> (Vec<CallEvent>, Vec<crate::Error>) {
    run_with(crate::parser(format, ctx()).as_mut(), text)
}

pub fn one(format: Format, line: &str) -> CallEvent {
    let mut out = run(format, line);
    assert_eq!(out.len(), 1, "{out:?}");
    out.pop().unwrap()
}

/// The event as the server would read it back is the same event.
pub fn assert_valid(e: &CallEvent) {
    let json = serde_json::to_vec(e).unwrap();
    let back = parse_event(&json, DateTime::<Utc>::MAX_UTC, &EventLimits::default())
        .unwrap_or_else(|err| panic!("{err}: {}", String::from_utf8_lossy(&json)));
    // duration_ms may lose nothing either: the JSON number round-trips.
    assert_eq!(&back, e);
}

/// The (operation, path) pairs of events, for short assertions.
pub fn ops(events: &[CallEvent]) -> Vec<(Operation, Option<&str>)> {
    events.iter().map(|e| (e.operation, e.path.as_deref())).collect()
}
