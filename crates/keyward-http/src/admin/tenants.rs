//! `/admin/v1/tenants`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use super::params::{page, ListParams};
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::TenantView;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateTenant {
    /// Unique name: letters, digits, `-`, `_`, `.`.
    name: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct TenantList {
    data: Vec<TenantView>,
    next_cursor: Option<String>,
}

/// Create a tenant (operator only).
#[utoipa::path(post, path = "/admin/v1/tenants", tag = "tenants", request_body = CreateTenant,
    responses((status = 201, body = TenantView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    ApiJson(body): ApiJson<CreateTenant>,
) -> Result<(StatusCode, Json<TenantView>), ApiError> {
    let tenant = state.keyward.create_tenant(&actor, &body.name).await?;
    Ok((StatusCode::CREATED, Json(tenant.into())))
}

/// List tenants: all for the operator, its own for a tenant admin.
#[utoipa::path(get, path = "/admin/v1/tenants", tag = "tenants", params(ListParams),
    responses((status = 200, body = TenantList), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<TenantList>, ApiError> {
    let page = state.keyward.tenants(&actor, &page(params)?).await?;
    Ok(Json(TenantList {
        data: page.items.into_iter().map(TenantView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
