//! Admin operations: rotating the admin token, and backups.

use crate::api::{blocking, AppResult, St};
use crate::body::JsonBody;
use crate::guard::AdminOnly;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Deserialize;
use serde_json::json;

/// Replace the admin token without a restart; the new one holds across restarts.
///
/// Scopes: admin. The new secret is kept in DATA/admin-token. A configured
/// admin token (config or environment) that seeded the data folder does not
/// come back at the next start; a different configured token overrides the rotation.
#[utoipa::path(post, path = "/v1/admin/rotate-token", tag = "admin",
    responses((status = 200, description = "The new admin token, shown once", body = crate::openapi::RotatedToken)),
    security(("bearer" = [])))]
pub(crate) async fn rotate_admin(State(s): St, _: AdminOnly) -> AppResult<Response> {
    let state = s.clone();
    let secret = blocking(move || state.auth.rotate_admin()).await?;
    tracing::info!("admin token rotated");
    Ok(Json(json!({ "secret": secret })).into_response())
}

/// Where to write a backup.
#[derive(Deserialize, utoipa::ToSchema)]
pub(crate) struct BackupPost {
    /// An absolute path of an empty or absent folder on the server's machine,
    /// outside the data folder and not containing it (judged after symlinks and `..` are resolved).
    #[schema(value_type = String)]
    dir: std::path::PathBuf,
}

/// Write a consistent copy of the store into an empty folder on the server.
///
/// Scopes: admin.
#[utoipa::path(post, path = "/v1/admin/backup", tag = "admin",
    request_body = BackupPost,
    responses(
        (status = 200, description = "The backup written", body = crate::openapi::BackupAnswer),
        (status = 507, response = crate::openapi::responses::DiskFull),
    ),
    security(("bearer" = [])))]
pub(crate) async fn backup(State(s): St, _: AdminOnly, JsonBody(b): JsonBody<BackupPost>) -> AppResult<Response> {
    let state = s.clone();
    let dir = b.dir.clone();
    // The store judges the folder (`StoreError::BackupTarget`: a 400 naming the rule and the path).
    let report = blocking(move || Ok(state.store.backup(&dir)?)).await?;
    tracing::info!(dir = %b.dir.display(), rows = report.rows, "backup written");
    Ok(Json(json!({ "dir": b.dir, "rows": report.rows, "bytes": report.bytes, "format_version": callmeter_store::FORMAT_VERSION })).into_response())
}
