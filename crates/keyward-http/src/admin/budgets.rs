//! `/admin/v1/tenants/{tenant}/budgets`: hard and soft spending caps and their current spend.

use axum::extract::{Path, State};
use axum::Json;
use keyward_domain::BudgetInput;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use super::params::tenant_scope;
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::BudgetView;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutBudget {
    /// `tenant`, `department:NAME` or `key:ID`.
    scope: String,
    /// `day` (UTC), `month` (UTC) or `total`.
    period: String,
    /// Decimal USD string, e.g. `"25.00"`: calls whose worst-case cost does not fit are
    /// refused with `budget_exceeded`. Omit for no hard limit.
    hard_limit_usd: Option<String>,
    /// Decimal USD string: crossing it raises an alert (audit entry, optional webhook).
    soft_limit_usd: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct BudgetList {
    data: Vec<BudgetView>,
    next_cursor: Option<String>,
}

/// Create or update the budget of a scope and period.
#[utoipa::path(put, path = "/admin/v1/tenants/{tenant}/budgets", tag = "budgets",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body = PutBudget,
    responses((status = 200, body = BudgetView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn put(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<PutBudget>,
) -> Result<Json<BudgetView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let status = state
        .keyward
        .set_budget(
            &scope,
            BudgetInput {
                scope: body.scope,
                period: body.period,
                hard_limit_usd: body.hard_limit_usd,
                soft_limit_usd: body.soft_limit_usd,
            },
        )
        .await?;
    Ok(Json(status.into()))
}

/// List budgets with the current window's spend and reservations.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/budgets", tag = "budgets",
    params(("tenant" = String, Path, description = "tenant id")),
    responses((status = 200, body = BudgetList), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
) -> Result<Json<BudgetList>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let budgets = state.keyward.budgets(&scope).await?;
    Ok(Json(BudgetList {
        data: budgets.into_iter().map(BudgetView::from).collect(),
        next_cursor: None,
    }))
}
