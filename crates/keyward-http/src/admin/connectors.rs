//! `/admin/v1/tenants/{tenant}/connectors` and `…/departments/{department}/members`: a
//! tenant's chat connectors and who belongs to which department.

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use keyward_core::{ConnectorId, DepartmentId};
use keyward_domain::ConnectorInput;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use super::params::{path_id, tenant_scope};
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::ConnectorView;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateConnector {
    /// `teams` or `google-chat`.
    kind: String,
    name: String,
    /// The model answers come from, as a client addresses it (`label/model` or a route).
    model: String,
    /// A knowledge base (name or id) to search when the user's department owns it; otherwise
    /// all of the department's.
    knowledge_base: Option<String>,
    /// Teams: the bot's Microsoft app id; Google Chat: the Cloud project number its requests
    /// are addressed to.
    app_id: String,
    /// Teams: the app password, sealed and never shown again.
    app_secret: Option<String>,
    /// Teams, instead of `app_secret`: where the app password is held (`vault://…`,
    /// `aws-sm://…`, `azure-kv://…`), fetched when a Bot Connector token is needed; as for a
    /// credential's `secret_ref`, a tenant admin only under `secrets.tenant_reference_prefixes`.
    app_secret_ref: Option<String>,
    /// Teams, single-tenant bot: its Entra tenant id (GUID or primary domain); omit for a
    /// multi-tenant bot.
    app_tenant_id: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct ConnectorList {
    data: Vec<ConnectorView>,
}

#[derive(Deserialize, Serialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct Members {
    /// `aad:TENANT_ID/OBJECT_ID`, `email:NAME@DOMAIN` or `domain:NAME`.
    identities: Vec<String>,
}

/// Create a chat connector.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/connectors", tag = "connectors",
    params(("tenant" = String, Path, description = "tenant id")), request_body = CreateConnector,
    responses((status = 201, body = ConnectorView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<CreateConnector>,
) -> Result<(StatusCode, Json<ConnectorView>), ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let input = ConnectorInput {
        kind: body.kind,
        name: body.name,
        model: body.model,
        knowledge_base: body.knowledge_base,
        app_id: body.app_id,
        app_tenant_id: body.app_tenant_id,
        app_secret: body
            .app_secret
            .map(keyward_core::secret::ProviderSecret::new),
        app_secret_ref: body.app_secret_ref,
    };
    let created = state.keyward.create_connector(&scope, input).await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// List a tenant's connectors.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/connectors", tag = "connectors",
    params(("tenant" = String, Path, description = "tenant id")),
    responses((status = 200, body = ConnectorList), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
) -> Result<Json<ConnectorList>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let found = state.keyward.connectors(&scope).await?;
    Ok(Json(ConnectorList {
        data: found.into_iter().map(ConnectorView::from).collect(),
    }))
}

/// Read a connector.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/connectors/{id}", tag = "connectors",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "connector id")),
    responses((status = 200, body = ConnectorView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<ConnectorView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let id: ConnectorId = path_id(&id, "connector")?;
    Ok(Json(state.keyward.connector(&scope, id).await?.into()))
}

/// Delete a connector.
#[utoipa::path(delete, path = "/admin/v1/tenants/{tenant}/connectors/{id}", tag = "connectors",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "connector id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let id: ConnectorId = path_id(&id, "connector")?;
    state.keyward.delete_connector(&scope, id).await?;
    Ok(StatusCode::NO_CONTENT)
}

async fn set_active(
    state: AppState,
    actor: keyward_domain::Actor,
    tenant: String,
    id: String,
    active: bool,
) -> Result<Json<ConnectorView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let id: ConnectorId = path_id(&id, "connector")?;
    Ok(Json(
        state
            .keyward
            .set_connector_active(&scope, id, active)
            .await?
            .into(),
    ))
}

/// Disable a connector: its requests are refused with no model call.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/connectors/{id}/disable", tag = "connectors",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "connector id")),
    responses((status = 200, body = ConnectorView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn disable(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<ConnectorView>, ApiError> {
    set_active(state, actor, tenant, id, false).await
}

/// Enable a connector.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/connectors/{id}/enable", tag = "connectors",
    params(("tenant" = String, Path, description = "tenant id"), ("id" = String, Path, description = "connector id")),
    responses((status = 200, body = ConnectorView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn enable(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, id)): Path<(String, String)>,
) -> Result<Json<ConnectorView>, ApiError> {
    set_active(state, actor, tenant, id, true).await
}

/// Replace a department's members (who a chat connector answers for that department).
#[utoipa::path(put, path = "/admin/v1/tenants/{tenant}/departments/{department}/members", tag = "departments",
    params(("tenant" = String, Path, description = "tenant id"), ("department" = String, Path, description = "department id")),
    request_body = Members,
    responses((status = 200, body = Members), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn put_members(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, department)): Path<(String, String)>,
    ApiJson(body): ApiJson<Members>,
) -> Result<Json<Members>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let department: DepartmentId = path_id(&department, "department")?;
    let identities = state
        .keyward
        .set_department_members(&scope, department, body.identities)
        .await?;
    Ok(Json(Members { identities }))
}

/// A department's members.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/departments/{department}/members", tag = "departments",
    params(("tenant" = String, Path, description = "tenant id"), ("department" = String, Path, description = "department id")),
    responses((status = 200, body = Members), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn get_members(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, department)): Path<(String, String)>,
) -> Result<Json<Members>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let department: DepartmentId = path_id(&department, "department")?;
    let identities = state.keyward.department_members(&scope, department).await?;
    Ok(Json(Members { identities }))
}
