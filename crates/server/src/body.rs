//! Request bodies: read only after the caller is known (the guards of
//! `guard.rs` run first), each at most [`MAX_BODY_BYTES`], whole within the
//! body timeout, and only while every body in flight fits the budget.
//!
//! The budget counts bytes of bodies being read or worked on, over all
//! requests (`bodies_in_flight_mb`). A body takes its bytes from it as they
//! arrive, and holds them until its request is answered: the events parsed
//! from it live about as long and weigh about as much. A body is refused
//! with 503 and `Retry-After` rather than queued: at once when it declares
//! more than is free, or when its next bytes do not fit (its rest is then
//! read and thrown away after the answer, `unread_bodies.rs`, so that the
//! client reads the 503). 50 concurrent 16 MiB posts once took the server to
//! 1.24 GB (issue 12).
//!
//! Bytes that arrive, not bytes declared: a body once took its declared
//! length (16 MiB without one) before a byte was read, and 16 bodies trickled
//! a byte a second held the whole default budget, and every ingest with it
//! (the second review, issue 12). Now a trickle holds what it sent.
//!
//! A body not received whole within the body timeout is refused (400), and
//! its connection closes after the answer: it is not drained for another
//! timeout.
//!
//! The work is per request (one reservation, one deadline), never per event.

use crate::api::AppState;
use crate::connection_timeouts::ConnectionClock;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::options::MAX_BODY_BYTES;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use http_body::Body as _;
use http_body_util::BodyExt;
use serde::de::DeserializeOwned;
use std::sync::Arc;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Seconds a client refused for a full budget is asked to wait.
const RETRY_AFTER_SECS: u32 = 1;

/// The bytes of bodies that may be in flight at once.
pub struct BodyBudget {
    free: Arc<Semaphore>,
    total: usize,
}

impl BodyBudget {
    /// A budget of `total` bytes.
    pub fn new(total: usize) -> BodyBudget {
        BodyBudget { free: Arc::new(Semaphore::new(total)), total }
    }

    /// Bytes reserved now.
    pub fn in_flight(&self) -> usize {
        self.total - self.free.available_permits()
    }

    /// Bytes free now.
    fn free(&self) -> usize {
        self.free.available_permits()
    }

    /// Takes `bytes` from the budget, or `None` when they do not fit now.
    #[cfg(test)]
    fn reserve(&self, bytes: usize) -> Option<Reservation> {
        let mut reservation = Reservation(None);
        self.grow(&mut reservation, bytes).then_some(reservation)
    }

    /// Adds `bytes` to a reservation; false (and nothing taken) when they do not fit now.
    fn grow(&self, reservation: &mut Reservation, bytes: usize) -> bool {
        if bytes == 0 {
            return true;
        }
        let Ok(permits) = u32::try_from(bytes) else { return false };
        let Ok(more) = self.free.clone().try_acquire_many_owned(permits) else { return false };
        match &mut reservation.0 {
            Some(held) => held.merge(more),
            None => reservation.0 = Some(more),
        }
        true
    }
}

/// Bytes of the budget held while a body is worked on; given back when dropped.
pub(crate) struct Reservation(Option<OwnedSemaphorePermit>);

impl Reservation {
    /// Bytes held.
    #[cfg(test)]
    fn held(&self) -> usize {
        self.0.as_ref().map_or(0, OwnedSemaphorePermit::num_permits)
    }
}

/// The first buffer of a body: bodies of a known length get no more until
/// their bytes come, so that a length declared and never sent costs nothing.
const FIRST_BUFFER_BYTES: usize = 64 << 10;

/// A whole body, read under the limits, and its reservation: hold the
/// reservation until the request is answered.
pub(crate) struct ReadBody {
    /// The body.
    pub bytes: Bytes,
    /// Its share of the budget.
    pub reservation: Reservation,
}

impl FromRequest<Arc<AppState>> for ReadBody {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        let connection = req.extensions().get::<Arc<ConnectionClock>>().cloned();
        let mut body = req.into_body();
        // hyper knows the length a request declared (and refused one that lies about it).
        let declared = body.size_hint().exact().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(too_large());
        }
        // Not a reservation, a check: a body that could not fit now is refused before it is sent.
        if declared.is_some_and(|n| n > state.bodies.free()) {
            return Err(budget_full(state));
        }
        let timeout = state.settings.limits.body_timeout;
        let mut reservation = Reservation(None);
        let mut buf = Vec::with_capacity(declared.unwrap_or(0).min(FIRST_BUFFER_BYTES));
        // One timer for the whole body, not one per chunk.
        let mut deadline = std::pin::pin!(tokio::time::sleep(timeout));
        loop {
            let next = tokio::select! {
                biased;
                next = body.frame() => next,
                () = &mut deadline => {
                    Metrics::add(&state.metrics.body_timeouts, 1);
                    // Its rest is not drained: the connection closes after the 400.
                    if let Some(connection) = &connection {
                        connection.close_after_answer();
                    }
                    return Err(ApiError::BadRequest(format!(
                        "body: not received whole within {} ms",
                        timeout.as_millis()
                    )));
                }
            };
            let frame = match next {
                None => break,
                Some(Err(e)) => return Err(ApiError::BadRequest(format!("body: {e}"))),
                Some(Ok(frame)) => frame,
            };
            if let Ok(data) = frame.into_data() {
                if buf.len() + data.len() > MAX_BODY_BYTES {
                    return Err(too_large());
                }
                if !state.bodies.grow(&mut reservation, data.len()) {
                    return Err(budget_full(state));
                }
                buf.extend_from_slice(&data);
            }
        }
        Ok(ReadBody { bytes: Bytes::from(buf), reservation })
    }
}

/// 503: the budget cannot take this body now (counted).
fn budget_full(state: &AppState) -> ApiError {
    Metrics::add(&state.metrics.refused_bodies_in_flight, 1);
    ApiError::Busy {
        message: "too many request bodies in flight: try again shortly".into(),
        retry_after_secs: RETRY_AFTER_SECS,
    }
}

fn too_large() -> ApiError {
    ApiError::TooLarge(format!("a request body carries at most {MAX_BODY_BYTES} bytes"))
}

/// A JSON body (content type absent or JSON), parsed; an empty body reads as
/// `null`, so that `JsonBody<Option<T>>` takes one.
pub(crate) struct JsonBody<T>(pub T);

impl<T: DeserializeOwned> FromRequest<Arc<AppState>> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &Arc<AppState>) -> Result<Self, ApiError> {
        require_json(req.headers())?;
        let body = ReadBody::from_request(req, state).await?;
        parse_json(&body.bytes).map(JsonBody)
    }
}

/// 415 unless the content type is absent or JSON (`application/json`, or any `+json`).
fn require_json(headers: &HeaderMap) -> Result<(), ApiError> {
    let Some(value) = headers.get(header::CONTENT_TYPE) else { return Ok(()) };
    let essence = value.to_str().unwrap_or("").split(';').next().unwrap_or("").trim().to_ascii_lowercase();
    if essence == "application/json" || essence.ends_with("+json") {
        Ok(())
    } else {
        Err(ApiError::UnsupportedMediaType(format!(
            "content-type: {:?} is not JSON: send application/json",
            String::from_utf8_lossy(value.as_bytes())
        )))
    }
}

fn parse_json<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return serde_json::from_slice(b"null")
            .map_err(|_| ApiError::BadRequest("body: empty, and this route needs a JSON object".into()));
    }
    // Every route's body is a JSON object; serde would read a struct from an
    // array too, by position (`["admin"]` as `{"scope": "admin"}`).
    if bytes.trim_ascii_start().starts_with(b"[") {
        return Err(ApiError::BadRequest("body: a JSON array, and this route needs a JSON object".into()));
    }
    serde_json::from_slice(bytes).map_err(|e| ApiError::BadRequest(format!("body: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn the_budget_refuses_what_does_not_fit_and_takes_back_what_is_given() {
        let budget = BodyBudget::new(100);
        let mut a = budget.reserve(60).unwrap();
        assert_eq!(budget.in_flight(), 60);
        assert!(budget.reserve(41).is_none(), "over the budget");
        let b = budget.reserve(30).unwrap();
        assert!(!budget.grow(&mut a, 11), "a reservation grows only into what is free");
        assert_eq!((a.held(), budget.free()), (60, 10), "a refused growth takes nothing");
        assert!(budget.grow(&mut a, 10));
        assert_eq!((a.held(), budget.in_flight()), (70, 100));
        drop((a, b));
        assert_eq!(budget.in_flight(), 0);
        assert!(budget.reserve(0).is_some() && budget.reserve(101).is_none());
        let mut empty = budget.reserve(0).unwrap();
        assert!(budget.grow(&mut empty, 5) && empty.held() == 5, "an empty reservation grows too");
    }

    #[test]
    fn json_content_types() {
        let with = |ct: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_str(ct).unwrap());
            require_json(&h)
        };
        assert!(require_json(&HeaderMap::new()).is_ok());
        assert!(with("application/json; charset=utf-8").is_ok());
        assert!(with("application/merge-patch+json").is_ok());
        let e = with("text/plain").unwrap_err();
        assert_eq!(e.code_and_status().1, 415, "{e}");
    }

    #[test]
    fn json_bodies() {
        #[derive(serde::Deserialize, Debug)]
        struct Adjust {
            #[allow(dead_code)]
            calls: i64,
        }
        assert!(parse_json::<Option<Adjust>>(b"").unwrap().is_none());
        assert!(parse_json::<Adjust>(b" ").unwrap_err().to_string().contains("empty"));
        // A number past i64 is a 400 naming the body, not a 422.
        let e = parse_json::<Adjust>(br#"{"calls": 99999999999999999999999}"#).unwrap_err();
        assert_eq!(e.code_and_status().1, 400, "{e}");
        assert!(parse_json::<Adjust>(b"{").unwrap_err().to_string().starts_with("body: "));
        // Not a struct read by position from an array.
        for array in [&b"[]"[..], b" [5]"] {
            let e = parse_json::<Option<Adjust>>(array).unwrap_err();
            assert!(e.to_string().contains("needs a JSON object"), "{e}");
        }
    }
}
