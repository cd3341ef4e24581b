//! `/admin/v1/tenants/{tenant}/audit`: the tenant's entries of the hash-chained audit log;
//! `/admin/v1/audit/verify`: the whole chain checked (operator).

use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::Json;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::error_body::ErrorBody;
use super::params::tenant_scope;
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::views::AuditEntryView;
use crate::AppState;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct AuditParams {
    /// Entries per page, 1 to 1000 (default 100).
    limit: Option<u32>,
    /// `next_cursor` of the previous page (a sequence number).
    cursor: Option<String>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct AuditList {
    data: Vec<AuditEntryView>,
    next_cursor: Option<String>,
}

/// The tenant's audit entries, oldest first.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/audit", tag = "audit",
    params(("tenant" = String, Path, description = "tenant id"), AuditParams),
    responses((status = 200, body = AuditList), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    params: Result<Query<AuditParams>, QueryRejection>,
) -> Result<Json<AuditList>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let Query(params) = params
        .map_err(|_| ApiError::invalid("query", "query parameters are `limit` and `cursor`"))?;
    let limit = params.limit.unwrap_or(100);
    if !(1..=1000).contains(&limit) {
        return Err(ApiError::invalid(
            "limit",
            "limit must be between 1 and 1000",
        ));
    }
    let after = match params.cursor.as_deref() {
        None => 0,
        Some(cursor) => cursor.parse::<i64>().map_err(|_| {
            ApiError::invalid("cursor", "pass back the `next_cursor` of the previous page")
        })?,
    };
    let entries = state.keyward.audit_log(&scope, after, limit + 1).await?;
    let more = entries.len() > limit as usize;
    let data: Vec<AuditEntryView> = entries
        .into_iter()
        .take(limit as usize)
        .map(AuditEntryView::from)
        .collect();
    let next_cursor = more
        .then(|| data.last().map(|entry| entry.seq.to_string()))
        .flatten();
    Ok(Json(AuditList { data, next_cursor }))
}

/// The result of walking the whole audit chain.
#[derive(Serialize, ToSchema)]
pub(crate) struct AuditVerificationView {
    /// `true` when every entry's hash links to the one before it.
    intact: bool,
    /// Entries checked (up to the break, if any).
    entries: u64,
    /// The newest good entry's hash: record it elsewhere to detect a truncated tail later.
    head_hash: String,
    /// Where the chain breaks, and why; null when intact.
    broken_at_seq: Option<i64>,
    reason: Option<String>,
}

/// Walks the whole hash chain of the audit log, every tenant's entries (operator only).
#[utoipa::path(get, path = "/admin/v1/audit/verify", tag = "audit",
    responses((status = 200, body = AuditVerificationView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn verify(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
) -> Result<Json<AuditVerificationView>, ApiError> {
    let result = state.keyward.verify_audit_log(&actor).await?;
    Ok(Json(AuditVerificationView {
        intact: result.broken.is_none(),
        entries: result.entries,
        head_hash: result.head_hash,
        broken_at_seq: result.broken.as_ref().map(|broken| broken.seq),
        reason: result.broken.map(|broken| broken.reason.to_owned()),
    }))
}
