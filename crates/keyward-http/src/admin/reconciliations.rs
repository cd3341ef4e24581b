//! `/admin/v1/tenants/{tenant}/reconciliations`: the ledger beside the provider's own usage
//! export (OpenAI usage/costs pages, Anthropic usage/cost reports or Console CSVs, AWS Cost
//! and Usage Report lines for Bedrock), per UTC day and model, every difference listed.
//!
//! The exports travel in the request body, so their size is bounded by
//! `server.max_body_bytes`; `keyward reconcile` reads files of any size.

use std::collections::BTreeMap;
use std::str::FromStr;

use axum::extract::{Path, State};
use axum::Json;
use keyward_core::ProviderId;
use keyward_domain::ProviderStatement;
use serde::Deserialize;
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use super::params::tenant_scope;
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::ReconciliationView;
use crate::AppState;

/// More export documents than this in one request is refused.
const MAX_EXPORTS: usize = 64;
/// More model-map entries than this is refused.
const MAX_MODEL_MAP: usize = 1024;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct PostReconciliation {
    /// `openai`, `anthropic` or `bedrock`.
    provider: String,
    /// The provider's exports. Each is either a JSON document (a usage or cost page, or an
    /// array of pages) or a string holding a file's text (CSV, JSON, or one JSON page per
    /// line). Usage and cost exports of the same days may be given together.
    #[schema(value_type = Vec<Object>)]
    exports: Vec<serde_json::Value>,
    /// Names the provider bills under → the model id Keyward calls, for names that are not
    /// model ids (Bedrock usage types such as `Claude4.6Sonnet`, Marketplace product names).
    #[serde(default)]
    model_map: BTreeMap<String, String>,
}

/// Reconcile the tenant's ledger against a provider's usage export.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/reconciliations", tag = "usage",
    params(("tenant" = String, Path, description = "tenant id")),
    request_body = PostReconciliation,
    responses((status = 200, body = ReconciliationView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<PostReconciliation>,
) -> Result<Json<ReconciliationView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let provider = ProviderId::from_str(&body.provider)
        .map_err(|_| ApiError::invalid("provider", "use openai, anthropic or bedrock"))?;
    if body.exports.is_empty() || body.exports.len() > MAX_EXPORTS {
        return Err(ApiError::invalid(
            "exports",
            format!("give between 1 and {MAX_EXPORTS} export documents"),
        ));
    }
    if body.model_map.len() > MAX_MODEL_MAP {
        return Err(ApiError::invalid(
            "model_map",
            format!("at most {MAX_MODEL_MAP} entries"),
        ));
    }
    let mut statement = ProviderStatement::new(provider, body.model_map)
        .map_err(|err| ApiError::invalid("provider", err.to_string()))?;
    for (index, export) in body.exports.iter().enumerate() {
        let name = format!("exports[{index}]");
        match export {
            serde_json::Value::String(text) => statement.read(&name, text.as_bytes()),
            document => statement.read_json(&name, document),
        }
        .map_err(|err| ApiError::invalid(name.clone(), err.to_string()))?;
    }
    let report = state.keyward.reconcile(&scope, statement).await?;
    Ok(Json(report.into()))
}
