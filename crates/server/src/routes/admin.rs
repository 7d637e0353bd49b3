//! Admin operations: rotating the admin token, and backups.

use crate::api::{blocking, AppResult, St};
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

pub(crate) async fn rotate_admin(State(s): St, headers: HeaderMap) -> AppResult<Response> {
    s.auth.caller(&headers)?.require_admin("rotate the admin token")?;
    let state = s.clone();
    let secret = blocking(move || state.auth.rotate_admin()).await?;
    tracing::info!("admin token rotated");
    Ok(Json(json!({ "secret": secret })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct BackupPost {
    dir: std::path::PathBuf,
}

pub(crate) async fn backup(State(s): St, headers: HeaderMap, Json(b): Json<BackupPost>) -> AppResult<Response> {
    s.auth.caller(&headers)?.require_admin("take backups")?;
    let state = s.clone();
    let dir = b.dir.clone();
    // The store judges the folder (`StoreError::BackupTarget`: a 400 naming the rule and the path).
    let report = blocking(move || Ok(state.store.backup(&dir)?)).await?;
    tracing::info!(dir = %b.dir.display(), rows = report.rows, "backup written");
    Ok(Json(json!({ "dir": b.dir, "rows": report.rows, "bytes": report.bytes, "format_version": callmeter_store::FORMAT_VERSION })).into_response())
}
