//! Admin operations: rotating the admin token, and backups.

use crate::api::{blocking, AppResult, St};
use crate::body::JsonBody;
use crate::guard::AdminOnly;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

pub(crate) async fn rotate_admin(State(s): St, _: AdminOnly) -> AppResult<Response> {
    let state = s.clone();
    let secret = blocking(move || state.auth.rotate_admin()).await?;
    tracing::info!("admin token rotated");
    Ok(Json(json!({ "secret": secret })).into_response())
}

#[derive(Deserialize)]
pub(crate) struct BackupPost {
    dir: std::path::PathBuf,
}

pub(crate) async fn backup(State(s): St, _: AdminOnly, JsonBody(b): JsonBody<BackupPost>) -> AppResult<Response> {
    let state = s.clone();
    let dir = b.dir.clone();
    // The store judges the folder (`StoreError::BackupTarget`: a 400 naming the rule and the path).
    let report = blocking(move || Ok(state.store.backup(&dir)?)).await?;
    tracing::info!(dir = %b.dir.display(), rows = report.rows, "backup written");
    Ok(Json(json!({ "dir": b.dir, "rows": report.rows, "bytes": report.bytes, "format_version": callmeter_store::FORMAT_VERSION })).into_response())
}
