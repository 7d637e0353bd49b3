//! The query string and path parameters, read as axum reads them but refused
//! in the server's error envelope (axum answers its own refusals in plain
//! text, some as 422, a code the API does not have), and bounded: a query
//! string is at most [`MAX_QUERY_BYTES`], and free-form parameters at most
//! [`MAX_PARAM_BYTES`] each (no stored field is longer, so a longer filter
//! could match nothing).
//!
//! Handlers take these after their guard (`guard.rs`), so that a request
//! without a valid token is answered 401 whatever its query.

use crate::error::ApiError;
use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The longest query string taken.
pub const MAX_QUERY_BYTES: usize = 8 << 10;
/// The longest free-form query parameter (a path prefix, an api key, a user):
/// the longest field a call event may carry (`EventLimits::max_field_bytes`).
pub const MAX_PARAM_BYTES: usize = 4096;

/// The query string, deserialized; 400 when it cannot be.
pub(crate) struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let length = parts.uri.query().map_or(0, str::len);
        if length > MAX_QUERY_BYTES {
            return Err(ApiError::BadRequest(format!(
                "query: {length} bytes, more than the {MAX_QUERY_BYTES} a query may have"
            )));
        }
        axum::extract::Query::<T>::from_request_parts(parts, state)
            .await
            .map(|q| Query(q.0))
            .map_err(|e| ApiError::BadRequest(format!("query: {}", e.body_text())))
    }
}

/// The path parameters, deserialized; 400 when they cannot be.
pub(crate) struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|p| Path(p.0))
            .map_err(|e| ApiError::BadRequest(format!("path: {}", e.body_text())))
    }
}

/// A free-form parameter, or 400 naming it when longer than [`MAX_PARAM_BYTES`].
pub(crate) fn bounded<T: AsRef<str>>(name: &str, value: Option<T>) -> Result<Option<T>, ApiError> {
    match value {
        Some(v) if v.as_ref().len() > MAX_PARAM_BYTES => Err(ApiError::BadRequest(format!(
            "{name}: {} bytes, more than the {MAX_PARAM_BYTES} a parameter may have",
            v.as_ref().len()
        ))),
        v => Ok(v),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    #[derive(serde::Deserialize)]
    struct Params {
        #[allow(dead_code)]
        per_page: Option<usize>,
    }

    async fn query(uri: &str) -> Result<Query<Params>, ApiError> {
        let (mut parts, ()) = Request::get(uri).body(()).unwrap().into_parts();
        Query::<Params>::from_request_parts(&mut parts, &()).await
    }

    #[tokio::test]
    async fn bad_and_long_queries_are_bad_requests() {
        assert!(query("/x?per_page=5").await.is_ok());
        for uri in ["/x?per_page=-1", "/x?per_page=99999999999999999999999", "/x?per_page=1&per_page=2"] {
            let e = query(uri).await.err().unwrap();
            assert_eq!(e.code_and_status().1, 400, "{uri}: {e}");
            assert!(e.to_string().starts_with("query: "), "{e}");
        }
        let long = format!("/x?junk={}", "a".repeat(MAX_QUERY_BYTES));
        assert!(query(&long).await.err().unwrap().to_string().contains("more than the 8192"));
    }

    #[test]
    fn free_form_parameters_are_bounded() {
        assert_eq!(bounded("user", Some("u")).unwrap(), Some("u"));
        assert!(bounded::<String>("user", None).unwrap().is_none());
        let e = bounded("path_prefix", Some("/".repeat(MAX_PARAM_BYTES + 1))).unwrap_err();
        assert!(e.to_string().starts_with("path_prefix: 4097 bytes"), "{e}");
    }
}
