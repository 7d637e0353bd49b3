//! The dashboard's stylesheet, script and icon, compiled into the binary:
//! the dashboard needs no network and no files beside the binary.
//!
//! Their URLs carry the crate's version, so that a browser may keep them a
//! day and still never mixes the assets of two builds.

use axum::extract::Path;
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};

/// The stylesheet's URL.
pub const STYLESHEET: &str = concat!("/assets/", env!("CARGO_PKG_VERSION"), "/dashboard.css");
/// The script's URL.
pub const SCRIPT: &str = concat!("/assets/", env!("CARGO_PKG_VERSION"), "/dashboard.js");
/// The icon's URL.
pub const ICON: &str = concat!("/assets/", env!("CARGO_PKG_VERSION"), "/favicon.svg");

/// `GET /assets/{version}/{file}`.
pub async fn serve(Path((version, file)): Path<(String, String)>) -> Response {
    if version != env!("CARGO_PKG_VERSION") {
        return (StatusCode::NOT_FOUND, "no such asset").into_response();
    }
    let (content_type, body) = match file.as_str() {
        "dashboard.css" => ("text/css; charset=utf-8", include_str!("assets/dashboard.css")),
        "dashboard.js" => ("text/javascript; charset=utf-8", include_str!("assets/dashboard.js")),
        "favicon.svg" => ("image/svg+xml", include_str!("assets/favicon.svg")),
        _ => return (StatusCode::NOT_FOUND, "no such asset").into_response(),
    };
    ([(header::CONTENT_TYPE, content_type), (header::CACHE_CONTROL, "public, max-age=86400")], body).into_response()
}
