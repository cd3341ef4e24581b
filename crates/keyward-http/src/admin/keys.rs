//! `/admin/v1/tenants/{tenant}/keys`: platform keys. The key itself is in the issue response
//! only; lists show its prefix.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use keyward_domain::PlatformKeyInput;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use super::params::{page, path_id, tenant_scope, ListParams};
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::{IssuedKeyView, KeyView};
use crate::AppState;

#[derive(Deserialize, ToSchema, Default)]
#[serde(deny_unknown_fields)]
pub(crate) struct IssueKey {
    name: Option<String>,
    /// `admin` (manages this tenant) or `member` (calls models only; the default).
    role: Option<String>,
    /// Model allow-list; omit to allow every model the tenant can reach.
    models: Option<Vec<String>>,
    /// Department name.
    department: Option<String>,
    /// RFC 3339 expiry.
    expires_at: Option<String>,
    /// Requests per minute this key may make (extension; omit for no limit). Over it, calls
    /// get 429 `rate_limited` with `retry-after`.
    rpm_limit: Option<u64>,
    /// Tokens (input + output) per minute (extension; omit for no limit).
    tpm_limit: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct KeyLimits {
    /// Requests per minute; `null` or absent: unlimited.
    rpm_limit: Option<u64>,
    /// Tokens (input + output) per minute; `null` or absent: unlimited.
    tpm_limit: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct KeyList {
    data: Vec<KeyView>,
    next_cursor: Option<String>,
}

/// Issue a platform key (the response is the only time the key is shown).
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/keys", tag = "keys",
    params(("tenant" = String, Path, description = "tenant id")), request_body = IssueKey,
    responses((status = 201, body = IssuedKeyView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn issue(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<IssueKey>,
) -> Result<(StatusCode, Json<IssuedKeyView>), ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let input = PlatformKeyInput {
        name: body.name,
        role: body.role,
        models: body.models,
        department: body.department,
        expires_at: body.expires_at,
        rpm_limit: body.rpm_limit,
        tpm_limit: body.tpm_limit,
    };
    let issued = state.keyward.issue_platform_key(&scope, input).await?;
    Ok((StatusCode::CREATED, Json(IssuedKeyView::from(issued))))
}

/// List platform keys (prefixes only).
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/keys", tag = "keys",
    params(("tenant" = String, Path, description = "tenant id"), ListParams),
    responses((status = 200, body = KeyList), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<KeyList>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let page = state.keyward.platform_keys(&scope, &page(params)?).await?;
    Ok(Json(KeyList {
        data: page.items.into_iter().map(KeyView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// Revoke a platform key; it stops working at once.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/keys/{id}/revoke", tag = "keys",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "platform key id")),
    responses((status = 200, body = KeyView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn revoke(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<KeyView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let key = state
        .keyward
        .revoke_platform_key(&scope, path_id(&id, "platform key")?)
        .await?;
    Ok(Json(key.into()))
}

/// Set or clear a key's requests- and tokens-per-minute limits (extension); they apply from
/// the key's next call.
#[utoipa::path(put, path = "/admin/v1/tenants/{tenant}/keys/{id}/limits", tag = "keys",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "platform key id")),
    request_body = KeyLimits,
    responses((status = 200, body = KeyView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn set_limits(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<KeyLimits>,
) -> Result<Json<KeyView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let key = state
        .keyward
        .set_platform_key_limits(
            &scope,
            path_id(&id, "platform key")?,
            body.rpm_limit,
            body.tpm_limit,
        )
        .await?;
    Ok(Json(key.into()))
}
