//! Where imported calls go: a running server over HTTP, or straight into a
//! data folder. Both answer one [`Delivery`] per event, in order; both are
//! safe to repeat, since a call's id makes a second delivery a duplicate.

use crate::error::{ImportError, Result};
use callmeter_model::{check_event, CallEvent, EventLimits};
use callmeter_store::{EmbeddedStore, Outcome, Store, StoreOptions};
use serde::Deserialize;
use std::path::Path;
use std::time::{Duration, Instant};

/// What became of one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Delivery {
    /// Stored and counted.
    Accepted,
    /// Its id was seen before: not counted again.
    Duplicate,
    /// Refused, with the reason code (`unknown_account`, `oversize`, …) and a message.
    Rejected {
        /// The reason code.
        reason: String,
        /// What is wrong, for people.
        message: String,
    },
}

/// A place that takes batches of call events.
pub trait Sink {
    /// Delivers a batch: one answer per event, in order, once every accepted
    /// event is durable. An error means none of the batch is known to be
    /// stored. The sink may take the events out of `events` (saving a copy);
    /// the caller clears whatever is left.
    fn deliver(&mut self, events: &mut Vec<CallEvent>) -> Result<Vec<Delivery>>;
}

/// Bytes of NDJSON per request, under the server's 16 MiB limit.
const MAX_REQUEST_BYTES: usize = 15 << 20;
/// Events per request, the server's limit.
const MAX_REQUEST_EVENTS: usize = 10_000;

/// A running server: `POST /v1/events` with an `ingest` (or admin) token.
///
/// While the server is unreachable or answers 502, 503, 504 or 507, the
/// same request is sent again after a pause that doubles up to 30 s, for at
/// most `give_up_after` (forever when `None`).
pub struct ServerSink {
    http: reqwest::blocking::Client,
    url: String,
    token: String,
    give_up_after: Option<Duration>,
    body: Vec<u8>,
}

#[derive(Deserialize)]
struct Answer {
    results: Vec<AnswerItem>,
}

#[derive(Deserialize)]
struct AnswerItem {
    status: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    error: Option<String>,
}

impl ServerSink {
    /// A sink that posts to `server` (its base URL) with `token`.
    pub fn new(server: &str, token: &str, give_up_after: Option<Duration>) -> Result<ServerSink> {
        let http = reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(300))
            .build()
            .map_err(|e| ImportError::Unreachable { url: server.to_owned(), seconds: 0, why: e.to_string() })?;
        Ok(ServerSink {
            http,
            url: format!("{}/v1/events", server.trim_end_matches('/')),
            token: token.to_owned(),
            give_up_after,
            body: Vec::new(),
        })
    }

    fn post(&mut self, events: &[CallEvent]) -> Result<Vec<Delivery>> {
        self.body.clear();
        for e in events {
            serde_json::to_writer(&mut self.body, e).expect("events serialize");
            self.body.push(b'\n');
        }
        let started = Instant::now();
        let mut pause = Duration::from_millis(250);
        loop {
            let sent = self
                .http
                .post(&self.url)
                .bearer_auth(&self.token)
                .header("content-type", "application/x-ndjson")
                .body(self.body.clone())
                .send();
            let why = match sent {
                Ok(resp) if resp.status().is_success() => {
                    let answer: Answer = resp.json().map_err(|e| ImportError::Refused {
                        status: 200,
                        message: format!("unreadable answer: {e}"),
                    })?;
                    return deliveries(answer, events.len());
                }
                Ok(resp) if matches!(resp.status().as_u16(), 502 | 503 | 504 | 507) => {
                    format!("{}: {}", resp.status(), resp.text().unwrap_or_default())
                }
                Ok(resp) => {
                    let status = resp.status().as_u16();
                    return Err(ImportError::Refused { status, message: resp.text().unwrap_or_default() });
                }
                Err(e) if e.is_connect() || e.is_timeout() || e.is_request() => e.to_string(),
                Err(e) => return Err(ImportError::Refused { status: 0, message: e.to_string() }),
            };
            if self.give_up_after.is_some_and(|limit| started.elapsed() + pause > limit) {
                let seconds = started.elapsed().as_secs();
                return Err(ImportError::Unreachable { url: self.url.clone(), seconds, why });
            }
            tracing::warn!(url = %self.url, error = %why, retry_in_ms = pause.as_millis() as u64, "server unavailable; retrying");
            std::thread::sleep(pause);
            pause = (pause * 2).min(Duration::from_secs(30));
        }
    }
}

fn deliveries(answer: Answer, expected: usize) -> Result<Vec<Delivery>> {
    if answer.results.len() != expected {
        return Err(ImportError::Refused {
            status: 200,
            message: format!("the answer has {} results for {expected} events", answer.results.len()),
        });
    }
    Ok(answer
        .results
        .into_iter()
        .map(|r| match r.status.as_str() {
            "accepted" => Delivery::Accepted,
            "duplicate" => Delivery::Duplicate,
            _ => {
                let reason = r.reason.unwrap_or_else(|| "rejected".into());
                Delivery::Rejected { message: r.error.unwrap_or_else(|| reason.clone()), reason }
            }
        })
        .collect())
}

impl Sink for ServerSink {
    fn deliver(&mut self, events: &mut Vec<CallEvent>) -> Result<Vec<Delivery>> {
        // Requests within the server's limits: by count, then by size.
        let mut out = Vec::with_capacity(events.len());
        let mut start = 0;
        while start < events.len() {
            let mut end = start;
            let mut bytes = 0;
            while end < events.len() && end - start < MAX_REQUEST_EVENTS {
                // An estimate that errs large: a serialized event is under 200 bytes plus its strings, escaped.
                let size = 200 + 6 * string_bytes(&events[end]);
                if end > start && bytes + size > MAX_REQUEST_BYTES {
                    break;
                }
                bytes += size;
                end += 1;
            }
            out.extend(self.post(&events[start..end])?);
            start = end;
        }
        Ok(out)
    }
}

fn string_bytes(e: &CallEvent) -> usize {
    let opt = |s: &Option<String>| s.as_ref().map_or(0, String::len);
    e.id.len()
        + e.account.len()
        + opt(&e.method)
        + opt(&e.path)
        + opt(&e.destination)
        + opt(&e.api_key)
        + opt(&e.user)
        + opt(&e.client_ip)
        + opt(&e.user_agent)
        + opt(&e.integration)
        + opt(&e.cursor)
}

/// A data folder, opened by this process (no server may hold it).
pub struct StoreSink {
    store: EmbeddedStore,
    limits: EventLimits,
}

impl StoreSink {
    /// Opens the store in `data` with the server's settings.
    pub fn open(data: &Path, options: StoreOptions) -> Result<StoreSink> {
        let store = EmbeddedStore::open(data, options)?;
        Ok(StoreSink { store, limits: EventLimits::default() })
    }

    /// Closes the store after everything delivered is synced.
    pub fn close(self) {
        self.store.shutdown();
    }
}

impl Sink for StoreSink {
    fn deliver(&mut self, events: &mut Vec<CallEvent>) -> Result<Vec<Delivery>> {
        let now = chrono::Utc::now();
        let mut answers: Vec<Option<Delivery>> = Vec::with_capacity(events.len());
        let mut valid = Vec::with_capacity(events.len());
        for e in events.drain(..) {
            match check_event(&e, now, &self.limits) {
                Ok(()) => {
                    answers.push(None);
                    valid.push(e);
                }
                Err(err) => answers.push(Some(Delivery::Rejected {
                    reason: err.reason.as_str().to_owned(),
                    message: err.to_string(),
                })),
            }
        }
        let mut outcomes = self.store.ingest(valid).wait_blocking()?.into_iter();
        Ok(answers
            .into_iter()
            .map(|a| {
                a.unwrap_or_else(|| match outcomes.next() {
                    Some(Outcome::Accepted) => Delivery::Accepted,
                    Some(Outcome::Duplicate) => Delivery::Duplicate,
                    Some(Outcome::Rejected(r)) => {
                        Delivery::Rejected { reason: r.as_str().to_owned(), message: r.as_str().replace('_', " ") }
                    }
                    None => {
                        Delivery::Rejected { reason: "internal".into(), message: "no outcome from the store".into() }
                    }
                })
            })
            .collect())
    }
}
