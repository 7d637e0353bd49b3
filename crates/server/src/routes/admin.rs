//! Admin operations: rotating the admin token, and backups.

use crate::api::{blocking, AppResult, St};
use crate::backup_target;
use crate::error::ApiError;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use axum::Json;
use callmeter_store::StoreError;
use serde::Deserialize;
use serde_json::json;
use std::io::ErrorKind;

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
    let report = blocking(move || {
        let target = backup_target::check(&dir, &state.settings.data)?;
        state.store.backup(&target).map_err(|e| match e {
            // The store's own refusal (a folder filled or moved since the check).
            StoreError::Io(io) if matches!(io.kind(), ErrorKind::InvalidInput | ErrorKind::AlreadyExists) => {
                ApiError::BadRequest(format!("dir: {io}"))
            }
            other => other.into(),
        })
    })
    .await?;
    tracing::info!(dir = %b.dir.display(), rows = report.rows, "backup written");
    Ok(Json(json!({ "dir": b.dir, "rows": report.rows, "bytes": report.bytes, "format_version": callmeter_store::FORMAT_VERSION })).into_response())
}
