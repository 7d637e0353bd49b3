//! The one error type of the server, and the table from error to code and HTTP status.
//!
//! Every error answers `{"error": {"code", "message"}}`:
//!
//! | code           | status | when |
//! |----------------|--------|------|
//! | `unauthorized` | 401 | no token, or one that is not known |
//! | `forbidden`    | 403 | the token's scope does not cover the request |
//! | `not_found`    | 404 | no such account, token or route |
//! | `method_not_allowed` | 405 | the route exists, not with this method (`Allow` lists those it has) |
//! | `bad_request`  | 400 | a parameter, query or body that cannot be used (syntax, types, ranges, lengths) |
//! | `unknown_plan` | 409 | the account's plan for the period is no longer configured: its usage cannot be priced until the plan is back in `[[plans]]` |
//! | `conflict`     | 409 | the request is well formed but what it names is not in a state to take it (a disabled webhook to redeliver or replay, an account at its limit of webhooks) |
//! | `too_large`    | 413 | more events or bytes than one request may carry |
//! | `unsupported_media_type` | 415 | a body whose content type the route does not read |
//! | `disk_full`    | 507 | too little free space: nothing of the request was stored |
//! | `unavailable`  | 503 | the store takes no writes now, or the server is stopping |
//! | `busy`         | 503 | too much in flight (bodies, queued events, live audits, connections): nothing of the request was taken; try again after `Retry-After` seconds |
//! | `internal`     | 500 | anything else |
//!
//! The framework's own refusals (an unknown route, a wrong method, a body
//! the extractors cannot read) answer the same envelope:
//! [`envelope_every_error`] rewrites any error answer that is not one.

use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use callmeter_store::StoreError;
use thiserror::Error;

/// Everything a request can fail with.
#[derive(Debug, Error)]
pub enum ApiError {
    /// No token, or one that is not known.
    #[error("missing or unknown token")]
    Unauthorized,
    /// A known token whose scope does not cover the request.
    #[error("this token may not {0}")]
    Forbidden(&'static str),
    /// No such account, token or route.
    #[error("{0}")]
    NotFound(String),
    /// A parameter or body that cannot be used.
    #[error("{0}")]
    BadRequest(String),
    /// The account's plan is not in the configuration (it was removed after
    /// the account was put on it): its usage cannot be priced. A conflict
    /// between the stored account and the configuration, not a bad request.
    #[error(
        "account {account:?} is on plan {plan:?}, which is not configured: add it back to [[plans]] to report this usage"
    )]
    UnknownPlan {
        /// The account.
        account: String,
        /// Its plan's name.
        plan: String,
    },
    /// Well formed, but what the request names is not in a state to take it.
    #[error("{0}")]
    Conflict(String),
    /// The route exists, not with this method.
    #[error("this route does not take this method")]
    MethodNotAllowed,
    /// More events or bytes than one request may carry.
    #[error("{0}")]
    TooLarge(String),
    /// A body whose content type the route does not read.
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too much in flight to take this request now; nothing of it was taken.
    #[error("{message}")]
    Busy {
        /// What is full.
        message: String,
        /// Seconds after which a retry is likely to be taken (`Retry-After`).
        retry_after_secs: u32,
    },
    /// The disk is full: nothing of the request was stored.
    #[error("{0}")]
    DiskFull(String),
    /// The store cannot take writes now: nothing of the request was acknowledged.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Internal(String),
}

impl ApiError {
    /// The stable error code and the HTTP status of each kind of error.
    pub fn code_and_status(&self) -> (&'static str, StatusCode) {
        match self {
            ApiError::Unauthorized => ("unauthorized", StatusCode::UNAUTHORIZED),
            ApiError::Forbidden(_) => ("forbidden", StatusCode::FORBIDDEN),
            ApiError::NotFound(_) => ("not_found", StatusCode::NOT_FOUND),
            ApiError::BadRequest(_) => ("bad_request", StatusCode::BAD_REQUEST),
            ApiError::UnknownPlan { .. } => ("unknown_plan", StatusCode::CONFLICT),
            ApiError::Conflict(_) => ("conflict", StatusCode::CONFLICT),
            ApiError::MethodNotAllowed => ("method_not_allowed", StatusCode::METHOD_NOT_ALLOWED),
            ApiError::TooLarge(_) => ("too_large", StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::UnsupportedMediaType(_) => ("unsupported_media_type", StatusCode::UNSUPPORTED_MEDIA_TYPE),
            ApiError::Busy { .. } => ("busy", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::DiskFull(_) => ("disk_full", StatusCode::INSUFFICIENT_STORAGE),
            ApiError::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

impl ApiError {
    /// Every code of the table above, in its order (the API's description lists them).
    pub const CODES: [&'static str; 13] = [
        "unauthorized",
        "forbidden",
        "not_found",
        "method_not_allowed",
        "bad_request",
        "unknown_plan",
        "conflict",
        "too_large",
        "unsupported_media_type",
        "disk_full",
        "unavailable",
        "busy",
        "internal",
    ];
}

crate::openapi::schema_types! {
    /// An error's code (the table above).
    ErrorCode => serde_json::json!({"type": "string", "enum": ApiError::CODES});
}

/// The `error` object of an answer, also carried per account by `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// The stable code.
    #[schema(value_type = ErrorCode, inline)]
    pub code: &'static str,
    /// What went wrong, for people.
    pub message: String,
}

impl ApiError {
    /// The `error` object of this error.
    pub fn body(&self) -> ErrorBody {
        ErrorBody { code: self.code_and_status().0, message: self.to_string() }
    }
}

/// Whether a store error's text says the process ran out of file descriptors
/// (EMFILE, ENFILE): the engine's errors reach the server as text only.
/// A failed write that left the store unavailable stays `unavailable`: it
/// needs a restart, not a retry.
fn out_of_descriptors(e: &StoreError) -> bool {
    match e {
        StoreError::Io(io) => matches!(io.raw_os_error(), Some(libc::EMFILE) | Some(libc::ENFILE)),
        StoreError::Engine(text) => {
            [libc::EMFILE, libc::ENFILE].iter().any(|code| text.contains(&format!("(os error {code})")))
        }
        _ => false,
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        // Out of descriptors is load, not a fault: a 503 to retry, its text in the log only.
        if out_of_descriptors(&e) {
            tracing::warn!(error = %e, "the store is out of file descriptors");
            return ApiError::Busy {
                message: "the server has too many files open: try again shortly".into(),
                retry_after_secs: 1,
            };
        }
        match e {
            StoreError::DiskFull(m) => ApiError::DiskFull(format!("disk full: {m}")),
            StoreError::Busy(_) => ApiError::Busy { message: e.to_string(), retry_after_secs: 1 },
            StoreError::Unavailable(_) | StoreError::ShuttingDown => ApiError::Unavailable(e.to_string()),
            StoreError::UnknownAccount(_) | StoreError::UnknownSubscription(_) => ApiError::NotFound(e.to_string()),
            StoreError::Conflict(m) => ApiError::Conflict(m),
            StoreError::UnknownPlan(_) | StoreError::InvalidCursor => ApiError::BadRequest(e.to_string()),
            StoreError::BackupTarget(m) => ApiError::BadRequest(format!("dir: {m}")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        // Server errors, and a configuration that lost a plan, are the operator's to fix. A
        // refusal for load is not: under a flood it would flood the log; `/metrics` counts it.
        let shed = matches!(self, ApiError::Busy { .. });
        if (status.is_server_error() && !shed) || matches!(self, ApiError::UnknownPlan { .. }) {
            tracing::warn!(code, error = %self, "request failed");
        }
        let mut response = (status, axum::Json(serde_json::json!({ "error": self.body() }))).into_response();
        if let ApiError::Busy { retry_after_secs, .. } = self {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        response
    }
}

/// The longest framework message carried into an envelope: they are a line.
const FRAMEWORK_MESSAGE_BYTES: usize = 1024;

/// Answers every error in the envelope: an error answer that is not JSON
/// (axum's own refusals, in plain text or empty) gets the code of its status
/// and its text as the message; a 422 (a body of the right syntax and the
/// wrong shape) is a 400, the code the table has for it. The handlers' own
/// errors are JSON already and pass as they are.
pub(crate) async fn envelope_every_error(response: Response) -> Response {
    let status = response.status();
    let is_json =
        response.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, FRAMEWORK_MESSAGE_BYTES).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if message.is_empty() { status.canonical_reason().unwrap_or("error").to_owned() } else { message };
    let error = match status {
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized,
        StatusCode::NOT_FOUND => ApiError::NotFound(message),
        StatusCode::METHOD_NOT_ALLOWED => ApiError::MethodNotAllowed,
        StatusCode::PAYLOAD_TOO_LARGE => ApiError::TooLarge(message),
        StatusCode::UNSUPPORTED_MEDIA_TYPE => ApiError::UnsupportedMediaType(message),
        StatusCode::SERVICE_UNAVAILABLE => ApiError::Unavailable(message),
        s if s.is_client_error() => ApiError::BadRequest(message),
        _ => ApiError::Internal(message),
    };
    let mut rewritten = error.into_response();
    // Keep what the framework said beside the body (`Allow` on a 405).
    for (name, value) in
        parts.headers.iter().filter(|(n, _)| *n != header::CONTENT_TYPE && *n != header::CONTENT_LENGTH)
    {
        rewritten.headers_mut().append(name, value.clone());
    }
    rewritten
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn json_of(response: Response) -> serde_json::Value {
        let bytes = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
        serde_json::from_slice(&bytes).unwrap()
    }

    #[test]
    fn every_code_is_listed() {
        // One of each kind: a new kind does not compile here until it is added (and its code to CODES).
        let every = |e: &ApiError| match e {
            ApiError::Unauthorized
            | ApiError::Forbidden(_)
            | ApiError::NotFound(_)
            | ApiError::BadRequest(_)
            | ApiError::UnknownPlan { .. }
            | ApiError::Conflict(_)
            | ApiError::MethodNotAllowed
            | ApiError::TooLarge(_)
            | ApiError::UnsupportedMediaType(_)
            | ApiError::Busy { .. }
            | ApiError::DiskFull(_)
            | ApiError::Unavailable(_)
            | ApiError::Internal(_) => e.code_and_status().0,
        };
        let kinds = [
            ApiError::Unauthorized,
            ApiError::Forbidden("x"),
            ApiError::NotFound(String::new()),
            ApiError::MethodNotAllowed,
            ApiError::BadRequest(String::new()),
            ApiError::UnknownPlan { account: String::new(), plan: String::new() },
            ApiError::Conflict(String::new()),
            ApiError::TooLarge(String::new()),
            ApiError::UnsupportedMediaType(String::new()),
            ApiError::DiskFull(String::new()),
            ApiError::Unavailable(String::new()),
            ApiError::Busy { message: String::new(), retry_after_secs: 1 },
            ApiError::Internal(String::new()),
        ];
        let codes: Vec<&str> = kinds.iter().map(every).collect();
        assert_eq!(codes, ApiError::CODES);
    }

    #[tokio::test]
    async fn busy_says_when_to_retry() {
        let r = ApiError::Busy { message: "full".into(), retry_after_secs: 3 }.into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "3");
        assert_eq!(json_of(r).await["error"]["code"], "busy");
        let store_busy = ApiError::from(StoreError::Busy("queue".into()));
        assert_eq!(store_busy.code_and_status(), ("busy", StatusCode::SERVICE_UNAVAILABLE));
        assert!(store_busy.into_response().headers().contains_key(header::RETRY_AFTER));
    }

    #[test]
    fn out_of_descriptors_in_the_store_is_busy_without_the_engine_text() {
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        let from_engine = StoreError::Engine(format!("segment /data/x/42: {emfile}"));
        for e in [from_engine, StoreError::Io(std::io::Error::from_raw_os_error(libc::ENFILE))] {
            let api = ApiError::from(e);
            assert_eq!(api.code_and_status(), ("busy", StatusCode::SERVICE_UNAVAILABLE), "{api}");
            assert!(!api.to_string().contains("os error") && !api.to_string().contains("/data"), "{api}");
        }
        // Any other engine error is still a 500.
        let other = ApiError::from(StoreError::Engine("checksum mismatch".into()));
        assert_eq!(other.code_and_status().0, "internal");
    }

    #[tokio::test]
    async fn framework_refusals_are_put_in_the_envelope() {
        let plain = |status: StatusCode, text: &'static str| {
            let mut r = (status, text).into_response();
            r.headers_mut().insert(header::ALLOW, HeaderValue::from_static("GET,HEAD"));
            r
        };
        for (status, text, code, becomes) in [
            (StatusCode::UNPROCESSABLE_ENTITY, "Failed to deserialize: calls: number too large", "bad_request", 400),
            (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "Expected request with `Content-Type: application/json`",
                "unsupported_media_type",
                415,
            ),
            (StatusCode::METHOD_NOT_ALLOWED, "", "method_not_allowed", 405),
            (StatusCode::PAYLOAD_TOO_LARGE, "length limit exceeded", "too_large", 413),
            (StatusCode::NOT_FOUND, "", "not_found", 404),
        ] {
            let r = envelope_every_error(plain(status, text)).await;
            assert_eq!(r.status().as_u16(), becomes, "{status}");
            assert_eq!(r.headers()[header::CONTENT_TYPE], "application/json");
            assert_eq!(r.headers()[header::ALLOW], "GET,HEAD", "the framework's headers are kept");
            let v = json_of(r).await;
            assert_eq!(v["error"]["code"], code, "{status}");
            if !text.is_empty() && code != "method_not_allowed" {
                assert_eq!(v["error"]["message"], text, "{status}");
            }
        }
        // Answers that are not errors, and the server's own errors, pass as they are.
        let ok = envelope_every_error((StatusCode::OK, "fine").into_response()).await;
        assert_eq!(axum::body::to_bytes(ok.into_body(), 64).await.unwrap(), "fine");
        let own = envelope_every_error(ApiError::Forbidden("x").into_response()).await;
        assert_eq!(json_of(own).await["error"]["message"], "this token may not x");
    }
}
