//! `/admin/v1/tenants/{tenant}/knowledge-bases`: create, list, read and delete a tenant's
//! knowledge bases (documents are added on the data plane, `/v1/knowledge-bases/…`).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::Json;
use keyward_domain::KnowledgeBaseInput;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::error_body::ErrorBody;
use super::params::tenant_scope;
use crate::auth::AdminActor;
use crate::error::ApiError;
use crate::json::ApiJson;
use crate::views::KnowledgeBaseView;
use crate::AppState;

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct EmbeddingTarget {
    /// Label or id of the tenant's credential that embeds (openai, azure-openai, mistral,
    /// openai-compatible).
    credential: String,
    /// The provider's embedding model, e.g. `text-embedding-3-small`.
    model: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(crate) struct CreateKnowledgeBase {
    name: String,
    /// The owning department's name or id.
    department: String,
    embedding: EmbeddingTarget,
    /// Chunk size in tokens of cl100k_base (32 to 8191; default 400).
    chunk_tokens: Option<u32>,
    /// Tokens shared by consecutive chunks (below half of `chunk_tokens`; default 60).
    chunk_overlap: Option<u32>,
}

#[derive(Serialize, ToSchema)]
pub(crate) struct KnowledgeBaseList {
    data: Vec<KnowledgeBaseView>,
}

/// Create a knowledge base owned by a department.
#[utoipa::path(post, path = "/admin/v1/tenants/{tenant}/knowledge-bases", tag = "knowledge bases",
    params(("tenant" = String, Path, description = "tenant id")), request_body = CreateKnowledgeBase,
    responses((status = 201, body = KnowledgeBaseView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn create(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
    ApiJson(body): ApiJson<CreateKnowledgeBase>,
) -> Result<(StatusCode, Json<KnowledgeBaseView>), ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let created = state
        .keyward
        .create_knowledge_base(
            &scope,
            KnowledgeBaseInput {
                name: body.name,
                department: body.department,
                credential: body.embedding.credential,
                model: body.embedding.model,
                chunk_tokens: body.chunk_tokens,
                chunk_overlap: body.chunk_overlap,
            },
        )
        .await?;
    Ok((StatusCode::CREATED, Json(created.into())))
}

/// List a tenant's knowledge bases.
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/knowledge-bases", tag = "knowledge bases",
    params(("tenant" = String, Path, description = "tenant id")),
    responses((status = 200, body = KnowledgeBaseList), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn list(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path(tenant): Path<String>,
) -> Result<Json<KnowledgeBaseList>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    let found = state.keyward.knowledge_bases(&scope).await?;
    Ok(Json(KnowledgeBaseList {
        data: found.into_iter().map(KnowledgeBaseView::from).collect(),
    }))
}

/// Read a knowledge base (by name or id).
#[utoipa::path(get, path = "/admin/v1/tenants/{tenant}/knowledge-bases/{kb}", tag = "knowledge bases",
    params(("tenant" = String, Path, description = "tenant id"), ("kb" = String, Path, description = "knowledge base name or id")),
    responses((status = 200, body = KnowledgeBaseView), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn get(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, kb)): Path<(String, String)>,
) -> Result<Json<KnowledgeBaseView>, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    Ok(Json(
        state.keyward.knowledge_base(&scope, &kb).await?.into(),
    ))
}

/// Delete a knowledge base: every document, chunk and vector at once.
#[utoipa::path(delete, path = "/admin/v1/tenants/{tenant}/knowledge-bases/{kb}", tag = "knowledge bases",
    params(("tenant" = String, Path, description = "tenant id"), ("kb" = String, Path, description = "knowledge base name or id")),
    responses((status = 204), (status = "4XX", body = ErrorBody)))]
pub(crate) async fn delete(
    State(state): State<AppState>,
    AdminActor(actor): AdminActor,
    Path((tenant, kb)): Path<(String, String)>,
) -> Result<StatusCode, ApiError> {
    let scope = tenant_scope(&state, &actor, &tenant).await?;
    state.keyward.delete_knowledge_base(&scope, &kb).await?;
    Ok(StatusCode::NO_CONTENT)
}
