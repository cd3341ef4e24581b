//! `/admin/v1/tenants/{tenant}/departments`.

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use axum::Json;
use keyward_domain::DepartmentInput;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use super::params::{page, tenant_scope, ListParams};
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::DepartmentView;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateDepartment {
    name: String,
    /// Model allow-list; omit to allow every model the tenant can reach.
    models: Option<Vec<String>>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct DepartmentList {
    data: Vec<DepartmentView>,
    next_cursor: Option<String>,
}

/// Create a department.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/departments", tag = "departments",
    params(("tenant" = String, Path, description = "tenant id")), request_body = CreateDepartment,
    responses((status = 201, body = DepartmentView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<CreateDepartment>,
) -> Result<(StatusCode, Json<DepartmentView>), ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let department = state
        .keyward
        .create_department(
            &scope,
            DepartmentInput {
                name: body.name,
                models: body.models,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(department.into())))
}

/// List departments.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/departments", tag = "departments",
    params(("tenant" = String, Path, description = "tenant id"), ListParams),
    responses((status = 200, body = DepartmentList), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<DepartmentList>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let page = state.keyward.departments(&scope, &page(params)?).await?;
    Ok(Json(DepartmentList {
        data: page.items.into_iter().map(DepartmentView::from).collect(),
        next_cursor: page.next_cursor,
    }))
}
