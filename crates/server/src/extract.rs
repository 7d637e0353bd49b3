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

/// An integer, also as JSON writes some (`-324.0`): a number with no
/// fraction is an integer to JSON and to the API's description; a fraction,
/// or a number beyond `i64`, is refused.
pub(crate) fn whole_number<'de, D: serde::Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
    use serde::Deserialize;
    let n = serde_json::Number::deserialize(d)?;
    if let Some(i) = n.as_i64() {
        return Ok(i);
    }
    match n.as_f64() {
        Some(f) if f.fract() == 0.0 && f >= i64::MIN as f64 && f < i64::MAX as f64 => Ok(f as i64),
        Some(f) if f.fract() == 0.0 => Err(serde::de::Error::custom(format!("{n} is out of range"))),
        _ => Err(serde::de::Error::custom(format!("{n} is not a whole number"))),
    }
}

/// An optional non-negative [`whole_number`].
pub(crate) fn optional_count<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    use serde::Deserialize;
    match Option::<serde_json::Number>::deserialize(d)? {
        None => Ok(None),
        Some(n) => {
            let i = whole_number(n).map_err(serde::de::Error::custom)?;
            u64::try_from(i).map(Some).map_err(|_| serde::de::Error::custom(format!("{i} is negative")))
        }
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

    /// A whole number beyond `i64` is out of range, a fraction is no whole number.
    #[test]
    fn whole_numbers_say_why_not() {
        let read = |json: &str| whole_number(&mut serde_json::Deserializer::from_str(json)).map_err(|e| e.to_string());
        assert_eq!(read("-324.0"), Ok(-324));
        assert_eq!(read("18446744073709551616"), Err("1.8446744073709552e+19 is out of range".into()));
        assert_eq!(read("1.5"), Err("1.5 is not a whole number".into()));
    }
}
