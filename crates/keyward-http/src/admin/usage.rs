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
use keyward_domain::{usage_range, GroupBy};
use serde::Deserialize;
use utoipa::IntoParams;

use super::error_body::ErrorBody;
use super::params::tenant_scope;
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::export::{render_groups, ExportFormat, UsageExport};
use crate::views::{InvoiceDayView, PlatformInvoiceView};
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct UsageParams {
    /// Start, inclusive: RFC 3339 or `YYYY-MM-DD` (UTC midnight). Default: the beginning.
    from: Option<String>,
    /// End: RFC 3339 (exclusive) or `YYYY-MM-DD` (that whole day included). Default: now.
    to: Option<String>,
    /// `day`, `model`, `key`, `credential`, `department` or `tag:NAME`. Without it, one row
    /// per call.
    group_by: Option<String>,
    /// `json` (default) or `csv`.
    format: Option<String>,
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
        (status = 200, description = "`{\"data\": [usage rows or groups], \"next_cursor\": null}` as JSON, or CSV with the same columns"),
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
            "query parameters are `from`, `to`, `group_by` and `format`",
        )
    })?;
    let range = parse_range(params.from.as_deref(), params.to.as_deref())?;
    let format = match params.format.as_deref() {
        None | Some("json") => ExportFormat::Json,
        Some("csv") => ExportFormat::Csv,
        Some(_) => return Err(ApiError::invalid("format", "`json` or `csv`")),
    };
    if let Some(group_by) = params.group_by.as_deref() {
        let by = GroupBy::parse(group_by).ok_or_else(|| {
            ApiError::invalid(
                "group_by",
                "`day`, `model`, `key`, `credential`, `department` or `tag:NAME`",
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
