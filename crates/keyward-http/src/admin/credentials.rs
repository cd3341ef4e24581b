//! `/admin/v1/tenants/{tenant}/credentials[/{id}[/rotate|disable|enable]]`. Secrets are
//! accepted in request bodies only and never returned: responses carry a fingerprint.

use std::collections::BTreeMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use keyward_core::secret::ProviderSecret;
use keyward_domain::CredentialInput;
use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use super::params::{page, path_id, tenant_scope, ListParams};
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::CredentialView;
use crate::AppState;

/// A secret as it arrives in JSON, moved straight into a zeroizing [`ProviderSecret`].
pub(crate) struct SecretInput(ProviderSecret);

impl<'de> Deserialize<'de> for SecretInput {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self(ProviderSecret::new(text)))
    }
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConnectCredential {
    /// `openai`, `azure-openai`, `anthropic`, `bedrock`, `mistral`, `groq` or `openai-compatible`.
    provider: String,
    /// Unique per tenant; used in model addresses `label/model`.
    label: String,
    /// The provider API key (Bedrock: `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`).
    /// Stored sealed; never returned.
    #[schema(value_type = Option<String>, format = Password)]
    secret: Option<SecretInput>,
    /// Instead of `secret`: where the secret is held — `vault://MOUNT/PATH#FIELD` (Vault /
    /// OpenBao KV v2), `aws-sm://SECRET_ID[#JSON_FIELD]` (AWS Secrets Manager) or
    /// `azure-kv://VAULT/NAME` (Azure Key Vault). Fetched at call time, never stored.
    secret_ref: Option<String>,
    /// Custom endpoint, e.g. `https://api.openai.com/v1` or `http://gpu-box:11434/v1`.
    base_url: Option<String>,
    /// Provider options: `organization`, `project` (openai); `resource`, `api_version`,
    /// `deployments` as `model=deployment,…` (azure-openai); `region` (bedrock);
    /// `anthropic_version` (anthropic).
    #[serde(default)]
    options: BTreeMap<String, String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct RotateCredential {
    /// The new provider API key.
    #[schema(value_type = String, format = Password)]
    secret: SecretInput,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct CredentialList {
    data: Vec<CredentialView>,
    next_cursor: Option<String>,
}

/// Connect a provider credential.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/credentials", tag = "credentials",
    params(("tenant" = String, Path, description = "tenant id")), request_body = ConnectCredential,
    responses((status = 201, body = CredentialView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn connect(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<ConnectCredential>,
) -> Result<(StatusCode, Json<CredentialView>), ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let input = CredentialInput {
        provider: body.provider,
        label: body.label,
        secret: body.secret.map(|secret| secret.0),
        secret_ref: body.secret_ref,
        base_url: body.base_url,
        options: body.options,
    };
    let credential = state.keyward.connect_credential(&scope, input).await?;
    Ok((StatusCode::CREATED, Json(credential.into())))
}

/// List credentials (fingerprints and status only).
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/credentials", tag = "credentials",
    params(("tenant" = String, Path, description = "tenant id"), ListParams),
    responses((status = 200, body = CredentialList), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<CredentialList>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let page = state.keyward.credentials(&scope, &page(params)?).await?;
    Ok(Json(CredentialList {
        data: page.items.into_iter().map(CredentialView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}

/// One credential.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/credentials/{id}", tag = "credentials",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "credential id")),
    responses((status = 200, body = CredentialView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<CredentialView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let credential = state
        .keyward
        .credential(&scope, path_id(&id, "credential")?)
        .await?;
    Ok(Json(credential.into()))
}

/// Delete a credential and its sealed secret.
#[utoipa::path(delete, path = "/admin/v1/tenants/{tenant}/credentials/{id}", tag = "credentials",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "credential id")),
    responses((status = 204, description = "deleted"), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    state
        .keyward
        .delete_credential(&scope, path_id(&id, "credential")?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Replace the secret; the next call uses it. A provider-rejected credential becomes active.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/credentials/{id}/rotate", tag = "credentials",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "credential id")),
    request_body = RotateCredential,
    responses((status = 200, body = CredentialView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn rotate(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
    ApiJson(body): ApiJson<RotateCredential>,
) -> Result<Json<CredentialView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let credential = state
        .keyward
        .rotate_credential(&scope, path_id(&id, "credential")?, body.secret.0)
        .await?;
    Ok(Json(credential.into()))
}

/// Stop routing calls to this credential.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/credentials/{id}/disable", tag = "credentials",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "credential id")),
    responses((status = 200, body = CredentialView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn disable(
    state: State<AppState>,
    actor: AdminActor,
    path: Path<(String, String)>,
) -> Result<Json<CredentialView>, ApiError> {
    set_enabled(state, actor, path, false).await
}

/// Route calls to this credential again (a provider rejection stays until rotate or verify).
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/credentials/{id}/enable", tag = "credentials",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "credential id")),
    responses((status = 200, body = CredentialView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn enable(
    state: State<AppState>,
    actor: AdminActor,
    path: Path<(String, String)>,
) -> Result<Json<CredentialView>, ApiError> {
    set_enabled(state, actor, path, true).await
}

async fn set_enabled(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
    enabled: bool,
) -> Result<Json<CredentialView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let credential = state
        .keyward
        .set_credential_enabled(&scope, path_id(&id, "credential")?, enabled)
        .await?;
    Ok(Json(credential.into()))
}

/// Verify the credential with a cheap real call to the provider; clears or sets
/// `rejected_by_provider`.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/credentials/{id}/verify", tag = "credentials",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "credential id")),
    responses((status = 200, body = CredentialView), (status = "4XX", body = ErrorBody), (status = "5XX", body = ErrorBody)))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<CredentialView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let credential = state
        .keyward
        .verify_credential(&scope, path_id(&id, "credential")?)
        .await?;
    Ok(Json(credential.into()))
}
