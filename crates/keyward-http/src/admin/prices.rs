//! `/admin/v1/tenants/{tenant}/prices`: a tenant's negotiated rates, which price its calls
//! instead of the shipped price book (a Keyward extension of SPEC's "a tenant may override
//! with its negotiated rate").

use axum::extract::{Path, State};
use axum::Json;
use keyward_domain::TenantPriceInput;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use super::params::tenant_scope;
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::TenantPriceView;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PutPrice {
    /// Provider id, e.g. `openai`.
    provider: String,
    /// The provider's model name, as sent upstream.
    model: String,
    /// `YYYY-MM-DD` from which the rate applies (UTC); today when omitted.
    effective: Option<String>,
    /// USD per million tokens, decimal strings.
    input: String,
    cached_input: Option<String>,
    cache_write: Option<String>,
    output: String,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct PriceList {
    data: Vec<TenantPriceView>,
    next_cursor: Option<String>,
}

/// Set a negotiated rate for a provider's model.
#[utoipa::path(put, path = "/admin/v1/tenants/{tenant}/prices", tag = "prices",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body = PutPrice,
    responses((status = 200, body = TenantPriceView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn put(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<PutPrice>,
) -> Result<Json<TenantPriceView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let record = state
        .keyward
        .set_tenant_price(
            &scope,
            TenantPriceInput {
                provider: body.provider,
                model: body.model,
                effective: body.effective,
                input: body.input,
                cached_input: body.cached_input,
                cache_write: body.cache_write,
                output: body.output,
            },
        )
        .await?;
    Ok(Json(record.into()))
}

/// List the tenant's negotiated rates.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/prices", tag = "prices",
    params(("tenant" = String, Path, description = "tenant id")),
    responses((status = 200, body = PriceList), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
) -> Result<Json<PriceList>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let prices = state.keyward.tenant_prices(&scope).await?;
    Ok(Json(PriceList {
        data: prices.into_iter().map(TenantPriceView::from).collect(),
        next_cursor: None,
    }))
}
