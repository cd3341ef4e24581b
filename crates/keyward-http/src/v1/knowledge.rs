//! `/v1/knowledge-bases/{kb}/…`: a platform key adds, lists and deletes documents of the
//! knowledge bases its department owns, and searches them.
//!
//! Invariant: document text, names, metadata and queries are read straight into `BodyText`;
//! errors name fields and sizes, never content. Only the search answer carries chunk text,
//! to the key that asked.

use axum::body::Body;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use keyward_core::{BodyText, DocumentId};
use keyward_domain::kb::{ContentKind, DocumentError, SearchAnswer};
use keyward_domain::{DocumentInput, DocumentSummary, KnowledgeAccess};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use super::authenticate;
use crate::error::ApiError;
use crate::json::decode;
use crate::AppState;

/// Metadata is a small JSON object.
const MAX_METADATA_BYTES: usize = 16 * 1024;

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DocumentJson {
    name: BodyText,
    text: BodyText,
    content_type: Option<String>,
    metadata: Option<Map<String, Value>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SearchJson {
    query: BodyText,
    top_k: Option<usize>,
}

async fn access(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<KnowledgeAccess, ApiError> {
    Ok(caller(state, headers).await?.0)
}

/// Who is calling, and whether through the web console: a tenant admin's console session
/// (with its CSRF token) reaches its tenant's knowledge bases too, but is never sent text.
async fn caller(
    state: &AppState,
    headers: &axum::http::HeaderMap,
) -> Result<(KnowledgeAccess, bool), ApiError> {
    let session = crate::auth::presented_token(headers)
        .is_none()
        .then(|| crate::console::session_cookie(headers))
        .flatten();
    let (actor, console) = match session {
        Some(session) => (
            crate::console::session_actor(state, headers, session).await?,
            true,
        ),
        None => (authenticate(state, headers).await?, false),
    };
    Ok((state.keyward.knowledge_access(&actor).await?, console))
}

fn document_id(text: &str) -> Result<DocumentId, ApiError> {
    crate::admin::path_id(text, "document")
}

/// The JSON a document is shown as: never its text.
fn document_json(summary: &DocumentSummary) -> Value {
    let record = &summary.record;
    let metadata: Value = if summary.metadata.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(summary.metadata.expose()).unwrap_or(Value::Null)
    };
    let progress = if record.chunks == 0 {
        0.0
    } else {
        record.embedded as f64 / record.chunks as f64
    };
    json!({
        "id": record.id,
        "object": "knowledge_base.document",
        "name": summary.name.expose(),
        "metadata": metadata,
        "content_type": record.content_type,
        "bytes": record.bytes,
        "chunks": record.chunks,
        "status": record.status.as_str(),
        "progress": progress,
        "error": record.error,
        "created_at": record.created_at.to_rfc3339(),
        "updated_at": record.updated_at.to_rfc3339(),
    })
}

/// `POST /v1/knowledge-bases/{kb}/documents`: JSON text or a multipart `file`.
pub(super) async fn add_document(
    State(state): State<AppState>,
    Path(kb): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let access = access(&state, request.headers()).await?;
    let multipart = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| {
            value
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    let input = if multipart {
        let form = Multipart::from_request(request, &state)
            .await
            .map_err(|_| {
                ApiError::invalid("body", "send multipart/form-data with a `file` part")
            })?;
        from_multipart(form).await?
    } else {
        let bytes = axum::body::Bytes::from_request(request, &state)
            .await
            .map_err(|_| too_large())?;
        from_json(decode::<DocumentJson>(&bytes)?)?
    };
    let summary = state.keyward.add_document(&access, &kb, input).await?;
    Ok((StatusCode::CREATED, Json(document_json(&summary))).into_response())
}

fn too_large() -> ApiError {
    ApiError::invalid(
        "body",
        "the document is larger than the server's limit (server.max_body_bytes) or could not be read; split it into smaller documents",
    )
}

fn metadata_text(metadata: Option<Map<String, Value>>) -> Result<BodyText, ApiError> {
    let Some(metadata) = metadata else {
        return Ok(BodyText::new(String::new()));
    };
    let text = Value::Object(metadata).to_string();
    if text.len() > MAX_METADATA_BYTES {
        return Err(ApiError::invalid(
            "metadata",
            "keep metadata under 16 KiB of JSON",
        ));
    }
    Ok(BodyText::new(text))
}

fn from_json(body: DocumentJson) -> Result<DocumentInput, ApiError> {
    let kind = match body.content_type.as_deref() {
        None => ContentKind::Plain,
        Some(declared) => ContentKind::from_media_type(declared)
            .ok_or_else(|| ApiError::invalid("content_type", "use text/plain or text/markdown"))?,
    };
    Ok(DocumentInput {
        name: body.name,
        text: body.text,
        kind,
        metadata: metadata_text(body.metadata)?,
    })
}

/// A multipart upload: a `file` part, optionally `name` (default: the file name) and
/// `metadata` (a JSON object).
async fn from_multipart(mut form: Multipart) -> Result<DocumentInput, ApiError> {
    let unreadable = |_| too_large();
    let (mut file, mut name, mut metadata) = (None, None, None);
    while let Some(field) = form.next_field().await.map_err(unreadable)? {
        match field.name().unwrap_or("") {
            "file" => {
                let file_name = field.file_name().map(str::to_owned);
                let declared = field.content_type().map(str::to_owned);
                let bytes = field.bytes().await.map_err(unreadable)?;
                let kind =
                    keyward_domain::kb::kind_of_upload(declared.as_deref(), file_name.as_deref())
                        .map_err(document_error)?;
                let (text, kind) =
                    keyward_domain::kb::decode(bytes.to_vec(), kind).map_err(document_error)?;
                file = Some((text, kind, file_name));
            }
            "name" => name = Some(BodyText::new(field.text().await.map_err(unreadable)?)),
            "metadata" => {
                let text = field.text().await.map_err(unreadable)?;
                let parsed: Map<String, Value> = serde_json::from_str(&text)
                    .map_err(|_| ApiError::invalid("metadata", "send a JSON object"))?;
                metadata = Some(parsed);
            }
            _ => {
                return Err(ApiError::invalid(
                    "body",
                    "multipart parts are `file`, `name` and `metadata`",
                ))
            }
        }
    }
    let Some((text, kind, file_name)) = file else {
        return Err(ApiError::invalid(
            "file",
            "a multipart upload needs a `file` part",
        ));
    };
    let name = name
        .or_else(|| file_name.map(BodyText::new))
        .ok_or_else(|| {
            ApiError::invalid("name", "name the document (a `name` part or a file name)")
        })?;
    Ok(DocumentInput {
        name,
        text,
        kind,
        metadata: metadata_text(metadata)?,
    })
}

fn document_error(error: DocumentError) -> ApiError {
    keyward_domain::DomainError::from(error).into()
}

/// `GET /v1/knowledge-bases/{kb}/documents`.
pub(super) async fn list_documents(
    State(state): State<AppState>,
    Path(kb): Path<String>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let access = access(&state, &headers).await?;
    let documents = state.keyward.documents(&access, &kb).await?;
    let data: Vec<Value> = documents.iter().map(document_json).collect();
    Ok(Json(json!({"object": "list", "data": data})))
}

/// `GET /v1/knowledge-bases/{kb}/documents/{id}`.
pub(super) async fn get_document(
    State(state): State<AppState>,
    Path((kb, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let access = access(&state, &headers).await?;
    let document = state
        .keyward
        .document(&access, &kb, document_id(&id)?)
        .await?;
    Ok(Json(document_json(&document)))
}

/// `DELETE /v1/knowledge-bases/{kb}/documents/{id}`.
pub(super) async fn delete_document(
    State(state): State<AppState>,
    Path((kb, id)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<StatusCode, ApiError> {
    let access = access(&state, &headers).await?;
    state
        .keyward
        .delete_document(&access, &kb, document_id(&id)?)
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `POST /v1/knowledge-bases/{kb}/search`.
pub(super) async fn search(
    State(state): State<AppState>,
    Path(kb): Path<String>,
    request: Request,
) -> Result<Response, ApiError> {
    let (access, console) = caller(&state, request.headers()).await?;
    let bytes = axum::body::Bytes::from_request(request, &state)
        .await
        .map_err(|_| too_large())?;
    let body = decode::<SearchJson>(&bytes)?;
    let found = state
        .keyward
        .search_knowledge(&access, &kb, body.query, body.top_k.unwrap_or(5))
        .await?;
    let answer = if console {
        SearchAnswer::to_json_without_text(&found)
    } else {
        SearchAnswer::to_json(&found)
    };
    let mut response = Response::new(Body::from(answer));
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Ok(response)
}
