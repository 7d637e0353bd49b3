//! Request bodies: read only after the caller is known (the guards of
//! `guard.rs` run first), each at most [`MAX_BODY_BYTES`], whole within the
//! body timeout, and only while every body in flight fits the budget.
//!
//! The budget counts bytes of bodies being read or worked on, over all
//! requests (`bodies_in_flight_mb`). A body takes its declared length from it
//! before a byte is read (a body without a length takes the most one may
//! carry, and gives back what it did not use), and holds it until its
//! request is answered: the events parsed from it live about as long and
//! weigh about as much. A body that does not fit is refused at once with 503
//! and `Retry-After` rather than queued: 50 concurrent 16 MiB posts once
//! took the server to 1.24 GB (issue 12).
//!
//! The work is per request (one reservation, one deadline), never per event.

use crate::api::AppState;
use crate::error::ApiError;
use crate::metrics::Metrics;
use crate::options::MAX_BODY_BYTES;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::{header, HeaderMap};
use bytes::BytesMut;
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

    /// Takes `bytes` from the budget, or `None` when they do not fit now.
    fn reserve(&self, bytes: usize) -> Option<Reservation> {
        if bytes == 0 {
            return Some(Reservation(None));
        }
        let permits = u32::try_from(bytes).ok()?;
        self.free.clone().try_acquire_many_owned(permits).ok().map(|p| Reservation(Some(p)))
    }
}

/// Bytes of the budget held while a body is worked on; given back when dropped.
pub(crate) struct Reservation(Option<OwnedSemaphorePermit>);

impl Reservation {
    /// Gives back what is held beyond `bytes`.
    fn shrink_to(&mut self, bytes: usize) {
        if let Some(permit) = &mut self.0 {
            let extra = permit.num_permits().saturating_sub(bytes);
            if extra > 0 {
                drop(permit.split(extra));
            }
        }
    }
}

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
        let body = req.into_body();
        // hyper knows the length a request declared (and refused one that lies about it).
        let declared = body.size_hint().exact().map(|n| usize::try_from(n).unwrap_or(usize::MAX));
        if declared.is_some_and(|n| n > MAX_BODY_BYTES) {
            return Err(too_large());
        }
        let mut reservation = state.bodies.reserve(declared.unwrap_or(MAX_BODY_BYTES)).ok_or_else(|| {
            Metrics::add(&state.metrics.refused_bodies_in_flight, 1);
            ApiError::Busy {
                message: "too many request bodies in flight: try again shortly".into(),
                retry_after_secs: RETRY_AFTER_SECS,
            }
        })?;
        let timeout = state.settings.limits.body_timeout;
        let mut buf = BytesMut::with_capacity(declared.unwrap_or(0));
        let mut body = body;
        // One timer for the whole body, not one per chunk.
        let mut deadline = std::pin::pin!(tokio::time::sleep(timeout));
        loop {
            let next = tokio::select! {
                biased;
                next = body.frame() => next,
                () = &mut deadline => {
                    Metrics::add(&state.metrics.body_timeouts, 1);
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
                buf.extend_from_slice(&data);
            }
        }
        reservation.shrink_to(buf.len());
        Ok(ReadBody { bytes: buf.freeze(), reservation })
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
        let b = budget.reserve(40).unwrap();
        a.shrink_to(10);
        assert_eq!(budget.in_flight(), 50);
        drop((a, b));
        assert_eq!(budget.in_flight(), 0);
        assert!(budget.reserve(0).is_some() && budget.reserve(101).is_none());
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
