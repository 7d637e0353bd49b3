//! How the dashboard answers: HTML pages with strict security headers,
//! compressed when the browser takes gzip, and its errors as pages too.
//!
//! Every dashboard answer goes through [`harden_and_compress`]: a Content
//! Security Policy that allows only the server's own scripts, styles and
//! images (no inline script, no other origin: the dashboard needs no
//! network but its server), no framing, no referrer (a share link's token is
//! in its URL), and no caching of pages (they hold an account's data). Pages
//! and assets are gzipped, which keeps each page well under its weight
//! budget; streamed exports are left as they are.

use crate::error::ApiError;
use axum::body::Body;
use axum::extract::Request;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use maud::{html, Markup, DOCTYPE};
use std::io::Write;

/// The policy of every dashboard answer: the server's own resources only.
const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Bodies larger than this are not compressed: only the streamed exports are.
const MAX_COMPRESSED_BODY: usize = 8 << 20;

/// A whole HTML page.
pub fn html_page(markup: Markup) -> Response {
    ([(header::CONTENT_TYPE, "text/html; charset=utf-8")], markup.into_string()).into_response()
}

/// A page with a status other than 200.
pub fn html_page_with(status: StatusCode, markup: Markup) -> Response {
    (status, html_page(markup)).into_response()
}

/// Why a page cannot be shown.
#[derive(Debug)]
pub enum PageError {
    /// Nobody is signed in (or the session's token no longer holds): to the sign-in page.
    SignIn,
    /// The signed-in token may not see this.
    Forbidden(String),
    /// No such page or account.
    NotFound(String),
    /// The form came without its CSRF token, or with another session's.
    Csrf,
    /// What the API would have answered.
    Api(ApiError),
}

impl From<ApiError> for PageError {
    fn from(e: ApiError) -> PageError {
        PageError::Api(e)
    }
}

impl From<callmeter_store::StoreError> for PageError {
    fn from(e: callmeter_store::StoreError) -> PageError {
        PageError::Api(ApiError::from(e))
    }
}

impl IntoResponse for PageError {
    fn into_response(self) -> Response {
        let (status, title, message) = match self {
            PageError::SignIn => return Redirect::to("/sign-in").into_response(),
            PageError::Forbidden(m) => (StatusCode::FORBIDDEN, "Not yours to see", m),
            PageError::NotFound(m) => (StatusCode::NOT_FOUND, "Not found", m),
            PageError::Csrf => (
                StatusCode::FORBIDDEN,
                "Form refused",
                "The form did not carry this session's token. Reload the page and try again.".to_owned(),
            ),
            PageError::Api(e) => {
                let (_, status) = e.code_and_status();
                let title = if status.is_server_error() { "Not available" } else { "Cannot show this" };
                let mut response = html_page_with(status, error_markup(title, &e.to_string()));
                if let ApiError::Busy { retry_after_secs, .. } = e {
                    response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
                }
                return response;
            }
        };
        html_page_with(status, error_markup(title, &message))
    }
}

/// A bare page for errors: no navigation, since the session may be the problem.
fn error_markup(title: &str, message: &str) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · callmeter" }
                link rel="stylesheet" href=(super::assets::STYLESHEET);
                link rel="icon" href=(super::assets::ICON) type="image/svg+xml";
            }
            body {
                main id="main" class="narrow" {
                    h1 { (title) }
                    p class="error-message" { (message) }
                    p { a href="/" { "Back to the dashboard" } }
                }
            }
        }
    }
}

/// The security headers of every dashboard answer, and gzip where it helps.
pub async fn harden_and_compress(request: Request, next: Next) -> Response {
    let gzip_ok = accepts_gzip(request.headers());
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    let compressible = h
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|t| t.starts_with("text/html") || t.starts_with("text/css") || t.starts_with("text/javascript"));
    if !gzip_ok || !compressible || h.contains_key(header::CONTENT_ENCODING) {
        return response;
    }
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_COMPRESSED_BODY).await else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "page too large").into_response();
    };
    let mut gz = flate2::write::GzEncoder::new(Vec::with_capacity(bytes.len() / 4), flate2::Compression::new(6));
    if gz.write_all(&bytes).is_err() {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let Ok(compressed) = gz.finish() else {
        return Response::from_parts(parts, Body::from(bytes));
    };
    parts.headers.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    parts.headers.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    parts.headers.remove(header::CONTENT_LENGTH);
    Response::from_parts(parts, Body::from(compressed))
}

/// Whether the request takes gzip (and does not refuse it with `q=0`).
fn accepts_gzip(headers: &HeaderMap) -> bool {
    headers.get_all(header::ACCEPT_ENCODING).iter().filter_map(|v| v.to_str().ok()).flat_map(|v| v.split(',')).any(
        |part| {
            let mut it = part.split(';');
            let coding = it.next().unwrap_or("").trim();
            let refused = it.any(|p| matches!(p.trim(), "q=0" | "q=0.0" | "q=0.00" | "q=0.000"));
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(accept: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::ACCEPT_ENCODING, accept.parse().unwrap());
        h
    }

    #[test]
    fn gzip_is_used_only_when_taken() {
        assert!(accepts_gzip(&headers("gzip, deflate, br")));
        assert!(accepts_gzip(&headers("br;q=1.0, gzip;q=0.8")));
        assert!(accepts_gzip(&headers("*")));
        assert!(!accepts_gzip(&headers("gzip;q=0")));
        assert!(!accepts_gzip(&headers("br")));
        assert!(!accepts_gzip(&HeaderMap::new()));
    }

    #[test]
    fn errors_are_pages_with_their_status() {
        let r = PageError::Forbidden("no".into()).into_response();
        assert_eq!(r.status(), StatusCode::FORBIDDEN);
        assert!(r.headers()[header::CONTENT_TYPE].to_str().unwrap().starts_with("text/html"));
        let r = PageError::SignIn.into_response();
        assert_eq!(r.status(), StatusCode::SEE_OTHER);
        assert_eq!(r.headers()[header::LOCATION], "/sign-in");
        let busy = ApiError::Busy { message: "busy".into(), retry_after_secs: 5 };
        let r = PageError::Api(busy).into_response();
        assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(r.headers()[header::RETRY_AFTER], "5");
    }
}
