//! `/admin/v1/masterkey`: versions with row counts, and starting a rotation (operator only).

use axum::extract::State;
use axum::http::StatusCode;
use axum::Json;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::MasterKeyView;
use crate::AppState;

/// The body of a rotation request: `{}`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateMasterKey {}

/// Master-key versions and re-wrap progress (operator only).
#[utoipa::path(get, path = "/admin/v1/masterkey", tag = "masterkey",
    responses((status = 200, body = MasterKeyView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn status(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
) -> Result<Json<MasterKeyView>, ApiError> {
    Ok(Json(state.keyward.master_key_status(&actor).await?.into()))
}

/// Rotate: a new version becomes primary and the online re-wrap starts (operator only).
#[utoipa::path(post, path = "/admin/v1/masterkey/rotate", tag = "masterkey",
    request_body = RotateMasterKey,
    responses((status = 202, body = MasterKeyView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiJson(_body): ApiJson<RotateMasterKey>,
) -> Result<(StatusCode, Json<MasterKeyView>), ApiError> {
    let status = state.keyward.rotate_master_key(&actor).await?;
    Ok((StatusCode::ACCEPTED, Json(status.into())))
}
