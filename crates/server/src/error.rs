//! The one error type of the server, and the table from error to code and HTTP status.
//!
//! Every error answers `{"error": {"code", "message"}}`:
//!
//! | code           | status | when |
//! |----------------|--------|------|
//! | `unauthorized` | 401 | no token, or one that is not known |
//! | `forbidden`    | 403 | the token's scope does not cover the request |
//! | `not_found`    | 404 | no such account, token or route |
//! | `bad_request`  | 400 | a parameter or body that cannot be used |
//! | `unknown_plan` | 409 | the account's plan for the period is no longer configured: its usage cannot be priced until the plan is back in `[[plans]]` |
//! | `too_large`    | 413 | more events or bytes than one request may carry |
//! | `disk_full`    | 507 | too little free space: nothing of the request was stored |
//! | `unavailable`  | 503 | the store takes no writes now, or the server is stopping |
//! | `internal`     | 500 | anything else |

use axum::http::StatusCode;
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
    /// More events or bytes than one request may carry.
    #[error("{0}")]
    TooLarge(String),
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
            ApiError::TooLarge(_) => ("too_large", StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::DiskFull(_) => ("disk_full", StatusCode::INSUFFICIENT_STORAGE),
            ApiError::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
    }
}

/// The `error` object of an answer, also carried per account by `GET /v1/usage`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ErrorBody {
    /// The stable code.
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

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::DiskFull(m) => ApiError::DiskFull(format!("disk full: {m}")),
            StoreError::Unavailable(_) | StoreError::ShuttingDown | StoreError::Busy(_) => {
                ApiError::Unavailable(e.to_string())
            }
            StoreError::UnknownAccount(_) => ApiError::NotFound(e.to_string()),
            StoreError::UnknownPlan(_) | StoreError::InvalidCursor => ApiError::BadRequest(e.to_string()),
            StoreError::BackupTarget(m) => ApiError::BadRequest(format!("dir: {m}")),
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        // Server errors, and a configuration that lost a plan, are the operator's to fix.
        if status.is_server_error() || matches!(self, ApiError::UnknownPlan { .. }) {
            tracing::warn!(code, error = %self, "request failed");
        }
        (status, axum::Json(serde_json::json!({ "error": self.body() }))).into_response()
    }
}
