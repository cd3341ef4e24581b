//! What admin routes read from the URL: list paging (`?limit=&cursor=`), ids in the path, and
//! the tenant scope a path names. A malformed id is simply not found, like a missing one.

use std::str::FromStr;

use axum::extract::rejection::QueryRejection;
use axum::extract::Query;
use keyward_core::ErrorCode;
use keyward_domain::PageRequest;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::error::ApiError;

/// `?limit=&cursor=` of every list.
#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ListParams {
    /// Items per page, 1 to 500 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page.
    cursor: Option<String>,
}

pub(crate) fn page(
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<PageRequest, ApiError> {
    let Query(params) = params.map_err(|_| {
        ApiError::invalid(
            "query",
            "query parameters are `limit` (1 to 500) and `cursor`",
        )
    })?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 500",
        ));
    }
    if params
        .cursor
        .as_ref()
        .is_some_and(|cursor| cursor.len() > 64)
    {
        return Err(ApiError::invalid(
            "cursor",
            "pass back the `next_cursor` of the previous page",
        ));
    }
    Ok(PageRequest {
        after: params.cursor,
        limit,
    })
}

/// Parses an id from the path; a malformed id is simply not found.
pub(crate) fn path_id<T: FromStr>(text: &str, what: &'static str) -> Result<T, ApiError> {
    text.parse()
        .map_err(|_| ApiError::new(ErrorCode::NotFound, format!("{what} not found")))
}

/// The caller's scope on the tenant named in the path (a malformed id is simply not found).
pub(crate) async fn tenant_scope(
    state: &crate::AppState,
    actor: &keyward_domain::Actor,
    tenant: &str,
) -> Result<keyward_domain::TenantScope, ApiError> {
    Ok(state
        .keyward
        .scope(actor, path_id(tenant, "tenant")?)
        .await?)
}
