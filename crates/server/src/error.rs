//! The one error type of the server, and the table from error to code and HTTP status.

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
            ApiError::TooLarge(_) => ("too_large", StatusCode::PAYLOAD_TOO_LARGE),
            ApiError::DiskFull(_) => ("disk_full", StatusCode::INSUFFICIENT_STORAGE),
            ApiError::Unavailable(_) => ("unavailable", StatusCode::SERVICE_UNAVAILABLE),
            ApiError::Internal(_) => ("internal", StatusCode::INTERNAL_SERVER_ERROR),
        }
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
            other => ApiError::Internal(other.to_string()),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (code, status) = self.code_and_status();
        if status.is_server_error() {
            tracing::warn!(code, error = %self, "request failed");
        }
        let body = serde_json::json!({ "error": { "code": code, "message": self.to_string() } });
        (status, axum::Json(body)).into_response()
    }
}
