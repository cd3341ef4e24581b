//! `/admin/v1/tenants/{tenant}/usage` (the ledger, per call or grouped, as JSON or CSV) and
//! `/admin/v1/tenants/{tenant}/platform-invoice` (Keyward's own billable units).
//!
//! Invariant: the per-call export is streamed page by page (`USAGE_PAGE` rows at a time), so
//! its memory does not grow with the number of rows; a store failure mid-export aborts the
//! response rather than ending it as if complete.

use std::collections::HashMap;

use axum::body::Body;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::Timestamp;
use keyward_domain::{usage_range, GroupBy, Keyward, TenantScope, USAGE_PAGE};
use serde::Deserialize;
use utoipa::IntoParams;

use super::common::{tenant_scope, ErrorBody};
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::views::{
    InvoiceDayView, PlatformInvoiceView, UsageGroupView, UsageRowView, USAGE_GROUP_COLUMNS,
    USAGE_ROW_COLUMNS,
};
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

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Json,
    Csv,
}

/// Where a streamed per-call export stands.
struct Export {
    keyward: Keyward,
    scope: TenantScope,
    range: (Timestamp, Timestamp),
    format: Format,
    departments: HashMap<String, String>,
    after: Option<String>,
    first_row: bool,
    stage: Stage,
}

enum Stage {
    Start,
    Rows,
    Done,
}

impl Export {
    /// The next chunk of the body, or `None` at the end.
    async fn next_chunk(&mut self) -> Option<Result<String, std::io::Error>> {
        match self.stage {
            Stage::Start => {
                self.stage = Stage::Rows;
                Some(Ok(match self.format {
                    Format::Json => "{\"data\":[".to_owned(),
                    Format::Csv => format!("{}\n", USAGE_ROW_COLUMNS.join(",")),
                }))
            }
            Stage::Rows => {
                let page = match self
                    .keyward
                    .usage_page(&self.scope, self.range, self.after.as_deref())
                    .await
                {
                    Ok(page) => page,
                    Err(err) => {
                        tracing::error!(error = %err, "usage export failed mid-stream; response aborted");
                        self.stage = Stage::Done;
                        return Some(Err(std::io::Error::other("usage export failed")));
                    }
                };
                if page.len() < USAGE_PAGE as usize {
                    self.stage = Stage::Done;
                }
                self.after = page.last().map(|call| call.request_id.clone());
                let mut chunk = String::with_capacity(page.len() * 512);
                for call in page {
                    let department = call
                        .department_id
                        .as_ref()
                        .and_then(|id| self.departments.get(id))
                        .cloned();
                    let row = UsageRowView::new(call, department);
                    match self.format {
                        Format::Csv => chunk.push_str(&row.csv_line()),
                        Format::Json => {
                            if !std::mem::take(&mut self.first_row) {
                                chunk.push(',');
                            }
                            chunk.push_str(&serde_json::to_string(&row).unwrap_or_default());
                        }
                    }
                }
                if matches!(self.stage, Stage::Done) && self.format == Format::Json {
                    chunk.push_str("],\"next_cursor\":null}");
                }
                Some(Ok(chunk))
            }
            Stage::Done => None,
        }
    }
}

fn content_type(format: Format) -> &'static str {
    match format {
        Format::Json => "application/json",
        Format::Csv => "text/csv; charset=utf-8",
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
        None | Some("json") => Format::Json,
        Some("csv") => Format::Csv,
        Some(_) => return Err(ApiError::invalid("format", "`json` or `csv`")),
    };
    if let Some(group_by) = params.group_by.as_deref() {
        let by = GroupBy::parse(group_by).ok_or_else(|| {
            ApiError::invalid(
                "group_by",
                "`day`, `model`, `key`, `credential`, `department` or `tag:NAME`",
            )
        })?;
        let groups: Vec<UsageGroupView> = state
            .keyward
            .usage_grouped(&scope, range, by)
            .await?
            .into_iter()
            .map(UsageGroupView::from)
            .collect();
        let body = match format {
            Format::Json => serde_json::json!({"data": groups, "next_cursor": null}).to_string(),
            Format::Csv => {
                let mut body = format!("{}\n", USAGE_GROUP_COLUMNS.join(","));
                for group in &groups {
                    body.push_str(&group.csv_line());
                }
                body
            }
        };
        return Ok(([(header::CONTENT_TYPE, content_type(format))], body).into_response());
    }
    let export = Export {
        departments: state.keyward.department_names(&scope).await?,
        keyward: state.keyward.clone(),
        scope,
        range,
        format,
        after: None,
        first_row: true,
        stage: Stage::Start,
    };
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
}

/// Keyward's own billable units per day (requests routed): no tokens, no inference dollars.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/platform-invoice", tag = "usage",
    params(("tenant" = String, Path, description = "tenant id"), InvoiceParams),
    responses((status = 200, body = PlatformInvoiceView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn platform_invoice(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    params: Result<Query<InvoiceParams>, QueryRejection>,
) -> Result<Json<PlatformInvoiceView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let Query(params) =
        params.map_err(|_| ApiError::invalid("query", "query parameters are `from` and `to`"))?;
    let range = parse_range(params.from.as_deref(), params.to.as_deref())?;
    let days = state.keyward.platform_invoice(&scope, range).await?;
    Ok(Json(PlatformInvoiceView {
        tenant_id: scope.tenant().to_string(),
        from: range.0.to_rfc3339(),
        to: range.1.to_rfc3339(),
        total_requests_routed: days.iter().map(|day| day.requests_routed).sum(),
        days: days
            .into_iter()
            .map(|day| InvoiceDayView {
                date: day.date,
                requests_routed: day.requests_routed,
            })
            .collect(),
    }))
}
