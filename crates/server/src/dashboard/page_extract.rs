//! The query string, path parameters and form bodies of pages, read as the
//! API reads them (`crate::extract`: bounded, refusals named) but refused as
//! an HTML error page: axum's own refusals are plain text (`?before=abc`, a
//! form over 16 KiB), and a browser should not show those.

use super::page::PageError;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::request::Parts;
use serde::de::DeserializeOwned;

/// The query string, deserialized; an error page when it cannot be.
pub struct Query<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequestParts<S> for Query<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        let crate::extract::Query(q) = crate::extract::Query::from_request_parts(parts, state).await?;
        Ok(Query(q))
    }
}

/// The path parameters, deserialized; an error page when they cannot be.
pub struct Path<T>(pub T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Path<T> {
    type Rejection = PageError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, PageError> {
        let crate::extract::Path(p) = crate::extract::Path::from_request_parts(parts, state).await?;
        Ok(Path(p))
    }
}

/// A form body (`application/x-www-form-urlencoded`), deserialized; an error
/// page when it cannot be (too large, another content type, bad fields). A
/// byte sequence that is not UTF-8 (`%ff`) is refused, as the API refuses it,
/// rather than read as U+FFFD.
pub struct Form<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Form<T> {
    type Rejection = PageError;

    async fn from_request(req: Request, state: &S) -> Result<Self, PageError> {
        let bytes = axum::body::Bytes::from_request(req, state).await.map_err(|e| {
            let text = format!("form: {}", e.body_text());
            match e.status() {
                axum::http::StatusCode::PAYLOAD_TOO_LARGE => crate::error::ApiError::TooLarge(text),
                _ => crate::error::ApiError::BadRequest(text),
            }
        })?;
        if !form_is_utf8(&bytes) {
            return Err(crate::error::ApiError::BadRequest("form: a field is not UTF-8 text".into()).into());
        }
        serde_urlencoded::from_bytes(&bytes)
            .map(Form)
            .map_err(|e| crate::error::ApiError::BadRequest(format!("form: {e}")).into())
    }
}

/// Whether every percent-decoded name and value of a form is UTF-8.
fn form_is_utf8(body: &[u8]) -> bool {
    body.split(|&b| b == b'&').flat_map(|pair| pair.splitn(2, |&b| b == b'=')).all(|part| {
        let plus_as_space: Vec<u8> = part.iter().map(|&b| if b == b'+' { b' ' } else { b }).collect();
        percent_encoding::percent_decode(&plus_as_space).decode_utf8().is_ok()
    })
}

#[cfg(test)]
mod tests {
    use super::form_is_utf8;

    #[test]
    fn a_form_field_that_is_not_utf8_is_told_apart() {
        assert!(form_is_utf8(b"csrf=abc&url=http%3A%2F%2Fx.example%2F%C3%A9&folder=%2Fin+out"));
        assert!(!form_is_utf8(b"csrf=abc&folder=%2Fin%ff"));
        assert!(!form_is_utf8(b"%ff=1"));
        assert!(form_is_utf8(b""));
    }
}
