//! `/admin/v1/tenants/{tenant}/routes[/{model}]`: bare model names and their ordered targets
//! (the first serves; the rest are fallbacks, tried in order).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use keyward_domain::{RouteRecord, RouteTargetInput};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use super::params::{page, tenant_scope, ListParams};
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutRoute {
    /// First choice first; later targets are fallbacks.
    targets: Vec<TargetInput>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetInput {
    /// A credential label or id of this tenant.
    credential: String,
    /// The provider's name of the model.
    model: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RouteView {
    /// The bare name clients send.
    model: String,
    targets: Vec<TargetView>,
    updated_at: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TargetView {
    /// Credential id.
    credential: String,
    model: String,
}

impl From<RouteRecord> for RouteView {
    fn from(route: RouteRecord) -> Self {
        Self {
            model: route.model,
            targets: route
                .targets
                .into_iter()
                .map(|target| TargetView {
                    credential: target.credential_id.to_string(),
                    model: target.model,
                })
                .collect(),
            updated_at: route.updated_at.to_rfc3339(),
        }
    }
}

#[derive(Serialize, ToSchema)]
pub(crate) struct RouteList {
    data: Vec<RouteView>,
    next_cursor: Option<String>,
}

/// Create or replace the route of a bare model name.
#[utoipa::path(put, path = "/admin/v1/tenants/{tenant}/routes/{model}", tag = "routes",
    params(("tenant" = String, Path, description = "tenant id"), ("model" = String, Path, description = "bare model name")),
    request_body = PutRoute,
    responses((status = 200, body = RouteView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn put(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, model)): Path<(String, String)>,
    ApiJson(body): ApiJson<PutRoute>,
) -> Result<Json<RouteView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let targets = body
        .targets
        .into_iter()
        .map(|target| RouteTargetInput {
            credential: target.credential,
            model: target.model,
        })
        .collect();
    let route = state.keyward.put_route(&scope, &model, targets).await?;
    Ok(Json(route.into()))
}

/// List routes.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/routes", tag = "routes",
    params(("tenant" = String, Path, description = "tenant id"), ListParams),
    responses((status = 200, body = RouteList), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<RouteList>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let page = state.keyward.routes(&scope, &page(params)?).await?;
    Ok(Json(RouteList {
        data: page.items.into_iter().map(RouteView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
