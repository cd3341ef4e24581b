//! `/admin/v1/tenants/{tenant}/usage` (the ledger, per call or grouped, as JSON or CSV) and
//! `/admin/v1/tenants/{tenant}/platform-invoice` (Keyward's own billable units).
//!
//! Invariant: the per-call export is streamed page by page ([`UsageExport`]), so its memory
//! does not grow with the number of rows; a store failure mid-export aborts the response
//! rather than ending it as if complete.

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::Timestamp;
use keyward_domain::{usage_range, CallFilter, CallStatus, GroupBy};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error_body::ErrorBody;
use super::params::tenant_scope;
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::export::{render_groups, ExportFormat, UsageExport};
use crate::views::{InvoiceDayView, PlatformInvoiceView, UsageRowView};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsageParams {
    /// Start, inclusive: RFC 3339 or `YYYY-MM-DD` (UTC midnight). Default: the beginning.
    from: Option<String>,
    /// End: RFC 3339 (exclusive) or `YYYY-MM-DD` (that whole day included). Default: now.
    to: Option<String>,
    /// `day`, `model`, `key`, `credential`, `department`, `status` or `tag:NAME`. Without it,
    /// one row per call.
    group_by: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
    /// One page of at most this many calls (1–500), newest first, as JSON with `next_cursor`;
    /// needed by `cursor` and the filters below. Without it, every call in the range, oldest
    /// first.
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    cursor: Option<String>,
    /// Only calls that requested, or were served by, this model.
    model: Option<String>,
    /// Only calls made with this platform key.
    key_id: Option<String>,
    /// Only calls served by this credential.
    credential_id: Option<String>,
    /// Only calls that ended with this status.
    status: Option<String>,
}

impl UsageParams {
    fn filter(&self) -> Result<CallFilter, ApiError> {
        let status = match self.status.as_deref() {
            None | Some("") => None,
            Some(text) => Some(CallStatus::parse(text).ok_or_else(|| {
                ApiError::invalid(
                    "status",
                    "`pending`, `ok`, `provider_error`, `client_cancelled`, `timeout`, `unreachable`, `egress_blocked` or `interrupted`",
                )
            })?),
        };
        let text = |value: &Option<String>| value.clone().filter(|value| !value.is_empty());
        Ok(CallFilter {
            model: text(&self.model),
            key_id: text(&self.key_id),
            credential_id: text(&self.credential_id),
            status,
        })
    }

    fn pages(&self) -> bool {
        self.limit.is_some()
            || self.cursor.is_some()
            || self.model.is_some()
            || self.key_id.is_some()
            || self.credential_id.is_some()
            || self.status.is_some()
    }
}

/// Largest `limit` of one usage page.
const MAX_PAGE: u32 = 500;

/// One page of calls, newest first, filtered.
async fn newest_page(
    state: &AppState,
    scope: &keyward_domain::TenantScope,
    range: (Timestamp, Timestamp),
    params: &UsageParams,
) -> Result<Response, ApiError> {
    let limit = match params.limit {
        Some(limit @ 1..=MAX_PAGE) => limit,
        Some(_) => return Err(ApiError::invalid("limit", "`limit` is 1 to 500")),
        None => {
            return Err(ApiError::invalid(
                "limit",
                "`cursor` and the filters page the calls: add `limit` (1 to 500)",
            ))
        }
    };
    if params.group_by.is_some() || matches!(params.format.as_deref(), Some("csv")) {
        return Err(ApiError::invalid(
            "limit",
            "pages are JSON rows: drop `group_by` and `format=csv`, or drop `limit`",
        ));
    }
    let filter = params.filter()?;
    let calls = state
        .keyward
        .usage_newest(scope, range, &filter, params.cursor.as_deref(), limit)
        .await?;
    let next_cursor = (calls.len() == limit as usize)
        .then(|| calls.last().map(|call| call.request_id.clone()))
        .flatten();
    let departments = state.keyward.department_names(scope).await?;
    let data: Vec<UsageRowView> = calls
        .into_iter()
        .map(|call| crate::export::usage_row(call, &departments))
        .collect();
    Ok(Json(serde_json::json!({ "data": data, "next_cursor": next_cursor })).into_response())
}

/// `from`/`to` as a half-open range.
fn parse_range(from: Option<&str>, to: Option<&str>) -> Result<(Timestamp, Timestamp), ApiError> {
    Ok(usage_range(from, to)?)
}

fn content_type(format: ExportFormat) -> &'static str {
    match format {
        ExportFormat::Json => "application/json",
        ExportFormat::Csv => "text/csv; charset=utf-8",
    }
}

/// Usage of a tenant: one row per call (streamed), or totals per group.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/usage", tag = "usage",
    params(("tenant" = String, Path, description = "tenant id"), UsageParams),
    responses(
        (status = 200, description = "`{\"data\": [usage rows or groups], \"next_cursor\": null}` as JSON, or CSV with the same columns; with `limit`, one page of calls newest first and the `next_cursor` of the next page"),
        (status = "4XX", body = ErrorBody)))]
pub(crate) async fn usage(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    params: Result<Query<UsageParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let Query(params) = params.map_err(|_| {
        ApiError::invalid(
            "query",
            "query parameters are `from`, `to`, `group_by`, `format`, `limit`, `cursor`, `model`, `key_id`, `credential_id` and `status`",
        )
    })?;
    let range = parse_range(params.from.as_deref(), params.to.as_deref())?;
    if params.pages() {
        return newest_page(&state, &scope, range, &params).await;
    }
    let format = match params.format.as_deref() {
        None | Some("json") => ExportFormat::Json,
        Some("csv") => ExportFormat::Csv,
        Some(_) => return Err(ApiError::invalid("format", "`json` or `csv`")),
    };
    if let Some(group_by) = params.group_by.as_deref() {
        let by = GroupBy::parse(group_by).ok_or_else(|| {
            ApiError::invalid(
                "group_by",
                "`day`, `model`, `key`, `credential`, `department`, `status` or `tag:NAME`",
            )
        })?;
        let groups = state.keyward.usage_grouped(&scope, range, by).await?;
        let body = render_groups(groups, format);
        return Ok(([(header::CONTENT_TYPE, content_type(format))], body).into_response());
    }
    let export = UsageExport::new(state.keyward.clone(), scope, range, format).await?;
    let stream = futures_util::stream::unfold(export, |mut export| async move {
        export.next_chunk().await.map(|chunk| (chunk, export))
    });
    Ok((
        [(header::CONTENT_TYPE, content_type(format))],
        Body::from_stream(stream),
    )
        .into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct InvoiceParams {
    /// Start: RFC 3339 or `YYYY-MM-DD`. Default: the beginning.
    from: Option<String>,
    /// End: RFC 3339 (exclusive) or `YYYY-MM-DD` (included). Default: now.
    to: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
}

/// Keyward's own billable units per day (requests routed, documents stored, retrievals
/// issued): no tokens, no inference dollars.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/platform-invoice", tag = "usage",
    params(("tenant" = String, Path, description = "tenant id"), InvoiceParams),
    responses((status = 200, body = PlatformInvoiceView, description = "JSON, or CSV with `format=csv`"), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn platform_invoice(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    params: Result<Query<InvoiceParams>, QueryRejection>,
) -> Result<Response, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let Query(params) = params.map_err(|_| {
        ApiError::invalid("query", "query parameters are `from`, `to` and `format`")
    })?;
    let range = parse_range(params.from.as_deref(), params.to.as_deref())?;
    let days = state.keyward.platform_invoice(&scope, range).await?;
    let days: Vec<InvoiceDayView> = days
        .into_iter()
        .map(|day| InvoiceDayView {
            date: day.date,
            requests_routed: day.requests_routed,
            documents_stored: day.documents_stored,
            retrievals_issued: day.retrievals_issued,
        })
        .collect();
    match params.format.as_deref() {
        None | Some("json") => Ok(Json(PlatformInvoiceView {
            tenant_id: scope.tenant().to_string(),
            from: range.0.to_rfc3339(),
            to: range.1.to_rfc3339(),
            total_requests_routed: days.iter().map(|day| day.requests_routed).sum(),
            total_retrievals_issued: days.iter().map(|day| day.retrievals_issued).sum(),
            days,
        })
        .into_response()),
        Some("csv") => {
            let mut csv = String::from("date,requests_routed,documents_stored,retrievals_issued\n");
            for day in &days {
                csv.push_str(&format!(
                    "{},{},{},{}\n",
                    day.date, day.requests_routed, day.documents_stored, day.retrievals_issued
                ));
            }
            Ok((
                [(header::CONTENT_TYPE, content_type(ExportFormat::Csv))],
                csv,
            )
                .into_response())
        }
        Some(_) => Err(ApiError::invalid("format", "`json` or `csv`")),
    }
}
