//! `/admin/v1/tenants/{tenant}/prices`: a tenant's negotiated rates, which price its calls
//! instead of the shipped price book (a Keyward extension of SPEC's "a tenant may override
//! with its negotiated rate"); `/admin/v1/prices`: the list prices in force (operator).

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

/// One entry of the price book in force: USD per million tokens, decimal strings.
#[derive(Serialize, ToSchema)]
pub(crate) struct BookEntryView {
    id: String,
    provider: String,
    model: String,
    /// `YYYY-MM-DD`: in force from this date until the model's next entry.
    effective: String,
    input: String,
    cached_input: Option<String>,
    cache_write: Option<String>,
    output: String,
    /// Where the rate was read.
    source: String,
}

/// The price book in force and where it was read from.
#[derive(Serialize, ToSchema)]
pub(crate) struct PriceBookView {
    /// `built-in`, or the path of the `prices.path` file.
    origin: String,
    data: Vec<BookEntryView>,
}

/// The list prices in force (operator): the built-in book or `prices.path`'s, as reloaded.
#[utoipa::path(get, path = "/admin/v1/prices", tag = "prices",
    responses((status = 200, body = PriceBookView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn book(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
) -> Result<Json<PriceBookView>, ApiError> {
    actor.require_operator()?;
    let book = state.keyward.price_book();
    let usd = |micro: u64| keyward_core::format_usd(i64::try_from(micro).unwrap_or(i64::MAX));
    let data = book
        .entries()
        .map(|(provider, model, price)| BookEntryView {
            id: price.id.clone(),
            provider: provider.to_owned(),
            model: model.to_owned(),
            effective: price.effective.clone(),
            input: usd(price.input),
            cached_input: price.cached_input.map(usd),
            cache_write: price.cache_write.map(usd),
            output: usd(price.output),
            source: price.source.clone(),
        })
        .collect();
    Ok(Json(PriceBookView {
        origin: book.origin().to_owned(),
        data,
    }))
}
