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
    for (i, f) in fields.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        csv_field(out, f);
    }
    out.push(b'\n');
}

/// Writes one CSV field, quoted when it holds a comma, quote or line break.
pub(crate) fn csv_field(out: &mut Vec<u8>, f: &str) {
    if f.contains([',', '"', '\n', '\r']) {
        out.push(b'"');
        out.extend_from_slice(f.replace('"', "\"\"").as_bytes());
        out.push(b'"');
    } else {
        out.extend_from_slice(f.as_bytes());
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn csv_quoting() {
        let mut out = Vec::new();
        super::csv_field(&mut out, "a,\"b\"");
        super::csv_field(&mut out, "plain");
        assert_eq!(String::from_utf8(out).unwrap(), "\"a,\"\"b\"\"\"plain");
    }
}
