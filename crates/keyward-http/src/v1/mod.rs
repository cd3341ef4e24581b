//! The client-facing model APIs: `POST /v1/chat/completions` and `/v1/embeddings` (OpenAI
//! shape) and
//! `POST /v1/messages` (Anthropic shape), authenticated by a `kw_` platform key in
//! `Authorization: Bearer` or `x-api-key`.
//!
//! Invariant: bodies pass through as router types (`PromptBody` in, `CompletionBody` /
//! `CompletionStream` out); this module never reads them. Errors decided before the call
//! (auth, model, credential) are plain HTTP errors, never a 200 stream that fails later.

mod knowledge;
mod tags;

use std::collections::BTreeMap;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use axum::{Json, Router};
use keyward_core::{ErrorCode, RequestId};
use keyward_domain::router::{ClientHeaders, PromptBody, Surface};
use keyward_domain::{CallContext, DomainError, InferenceReply, KnowledgeRequest};
use serde_json::json;

use crate::auth::presented_token;
use crate::error::ApiError;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/v1/chat/completions", post(chat_completions))
        .route("/v1/messages", post(messages))
        .route("/v1/messages/count_tokens", post(count_tokens))
        .route("/v1/embeddings", post(embeddings))
        .route("/v1/responses", post(responses))
        .route("/v1/models", axum::routing::get(models))
        .route(
            "/v1/knowledge-bases/{kb}/documents",
            post(knowledge::add_document).get(knowledge::list_documents),
        )
        .route(
            "/v1/knowledge-bases/{kb}/documents/{id}",
            axum::routing::get(knowledge::get_document).delete(knowledge::delete_document),
        )
        .route("/v1/knowledge-bases/{kb}/search", post(knowledge::search))
}

/// An error in the shape of the API that was called.
struct SurfaceError {
    surface: Surface,
    error: ApiError,
}

impl IntoResponse for SurfaceError {
    fn into_response(self) -> Response {
        match self.surface {
            Surface::ChatCompletions | Surface::Embeddings | Surface::Responses => {
                self.error.into_response()
            }
            Surface::Messages => {
                let code = self.error.code;
                let status = StatusCode::from_u16(code.http_status())
                    .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
                let body = json!({
                    "type": "error",
                    "error": {"type": code.anthropic_type(), "message": self.error.message, "code": code.as_str()},
                });
                crate::error::with_retry_after(
                    (status, Json(body)).into_response(),
                    self.error.retry_after,
                )
            }
        }
    }
}

async fn chat_completions(state: State<AppState>, request: Request) -> Response {
    handle(state, request, Surface::ChatCompletions).await
}

/// The models this platform key may call by name: OpenAI's list shape, or Anthropic's when
/// the client speaks Anthropic (`anthropic-version`).
async fn models(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let listed = async {
        let actor = authenticate(&state, &headers).await?;
        Ok::<_, ApiError>(state.keyward.callable_models(&actor).await?)
    };
    match listed.await {
        Ok(models) if headers.contains_key("anthropic-version") => {
            let data: Vec<serde_json::Value> = models
                .iter()
                .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "1970-01-01T00:00:00Z"}))
                .collect();
            Json(json!({
                "data": data,
                "has_more": false,
                "first_id": models.first(),
                "last_id": models.last(),
            }))
            .into_response()
        }
        Ok(models) => {
            let data: Vec<serde_json::Value> = models
                .into_iter()
                .map(|id| json!({"id": id, "object": "model", "created": 0, "owned_by": "keyward"}))
                .collect();
            Json(json!({"object": "list", "data": data})).into_response()
        }
        Err(error) => error.into_response(),
    }
}

async fn responses(state: State<AppState>, request: Request) -> Response {
    handle(state, request, Surface::Responses).await
}

async fn embeddings(state: State<AppState>, request: Request) -> Response {
    handle(state, request, Surface::Embeddings).await
}

async fn messages(state: State<AppState>, request: Request) -> Response {
    handle(state, request, Surface::Messages).await
}

/// Anthropic's token count of a Messages body, on an Anthropic credential.
async fn count_tokens(State(state): State<AppState>, request: Request) -> Response {
    match call(&state, request, Surface::Messages, true).await {
        Ok(response) => response,
        Err(error) => SurfaceError {
            surface: Surface::Messages,
            error,
        }
        .into_response(),
    }
}

async fn handle(State(state): State<AppState>, request: Request, surface: Surface) -> Response {
    match call(&state, request, surface, false).await {
        Ok(response) => response,
        Err(mut error) => {
            // On a model call, a database that cannot be reached means the call cannot be
            // recorded: SPEC's `ledger_unavailable`, whichever step noticed it first.
            if error.code == ErrorCode::ServiceUnavailable {
                error = ApiError::from(DomainError::LedgerUnavailable);
            }
            SurfaceError { surface, error }.into_response()
        }
    }
}

/// One model call (or, with `count`, a token count) from the request to its response.
async fn call(
    state: &AppState,
    request: Request,
    surface: Surface,
    count: bool,
) -> Result<Response, ApiError> {
    let (parts, body) = request.into_parts();
    let request_id = parts
        .extensions
        .get::<RequestId>()
        .copied()
        .unwrap_or_else(RequestId::generate);
    let actor = authenticate(state, &parts.headers).await?;
    let tags = tags::parse(&parts.headers)?;
    let read = PromptBody::read(body, state.max_body_bytes);
    let prompt = tokio::time::timeout(state.body_read_timeout, read)
        .await
        .map_err(|_| body_too_slow(state.body_read_timeout))?
        .map_err(|err| {
            let param = err.param();
            let mut error = ApiError::new(ErrorCode::InvalidRequest, err.to_string());
            error.param = param.map(str::to_owned);
            error
        })?;
    let context = CallContext {
        request_id,
        tags,
        client_headers: client_headers(state, &parts.headers),
        knowledge: knowledge_request(&parts.headers)?,
    };
    let reply = if count {
        state.keyward.count_tokens(&actor, prompt, context).await?
    } else {
        state
            .keyward
            .infer(&actor, surface, prompt, context)
            .await?
    };
    let served_by = reply.served_by().cloned();
    let citations = reply.citations().map(|citations| citations.header.clone());
    let mut response = respond(reply);
    if let Some(value) = citations.and_then(|value| HeaderValue::from_str(&value).ok()) {
        response.headers_mut().insert(CITATIONS_HEADER, value);
    }
    if let Some(served_by) = served_by {
        let headers = response.headers_mut();
        if let Ok(value) = HeaderValue::from_str(&served_by.target) {
            headers.insert(FALLBACK_HEADER, value);
        }
        if let Ok(value) = HeaderValue::from_str(&served_by.request_id.to_string()) {
            headers.insert(FALLBACK_REQUEST_HEADER, value);
        }
    }
    Ok(response)
}

/// Knowledge bases to search before the call (names or ids, comma-separated).
pub const KNOWLEDGE_BASE_HEADER: &str = "x-keyward-knowledge-base";
/// How many chunks the model is given (default 5).
pub const TOP_K_HEADER: &str = "x-keyward-top-k";
/// The sources given to the model, `DOCUMENT_ID#CHUNK_ID, …` in rank order.
pub const CITATIONS_HEADER: &str = "x-keyward-citations";

/// `x-keyward-knowledge-base` and `x-keyward-top-k`, when retrieval is asked for.
fn knowledge_request(headers: &HeaderMap) -> Result<Option<KnowledgeRequest>, ApiError> {
    let Some(value) = headers.get(KNOWLEDGE_BASE_HEADER) else {
        return Ok(None);
    };
    let names = value.to_str().map_err(|_| {
        ApiError::invalid(
            KNOWLEDGE_BASE_HEADER,
            "name knowledge bases in ASCII, separated by commas",
        )
    })?;
    let knowledge_bases: Vec<String> = names
        .split(',')
        .map(str::trim)
        .filter(|name| !name.is_empty())
        .map(str::to_owned)
        .collect();
    let top_k = match headers.get(TOP_K_HEADER) {
        None => 5,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|value| value.trim().parse().ok())
            .ok_or_else(|| ApiError::invalid(TOP_K_HEADER, "use a number from 1 to 50"))?,
    };
    Ok(Some(KnowledgeRequest {
        knowledge_bases,
        top_k,
    }))
}

/// Set when a configured fallback target answered: its `label/model`.
pub const FALLBACK_HEADER: &str = "x-keyward-fallback";
/// The ledger row of the fallback attempt that answered (`x-keyward-request-id` is the first).
pub const FALLBACK_REQUEST_HEADER: &str = "x-keyward-fallback-request-id";

/// The client headers a provider may see. The trace context passed upstream names this
/// request's span when traces are exported, else it is the client's own `traceparent`.
fn client_headers(state: &AppState, headers: &HeaderMap) -> ClientHeaders {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(ClientHeaders::accept)
    };
    let traceparent = match &state.traces {
        Some(traces) => traces.traceparent(&tracing::Span::current()),
        None => crate::request_id::incoming_traceparent(headers).map(str::to_owned),
    };
    ClientHeaders {
        anthropic_version: header("anthropic-version"),
        anthropic_beta: header("anthropic-beta"),
        traceparent,
    }
}

pub(super) async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<keyward_domain::Actor, ApiError> {
    let token = presented_token(headers).filter(|token| token.starts_with("kw_"));
    let Some(token) = token else {
        return Err(DomainError::InvalidPlatformKey.into());
    };
    Ok(state.keyward.authenticate_platform_key(token).await?)
}

fn respond(reply: InferenceReply) -> Response {
    match reply {
        InferenceReply::Complete {
            status,
            content_type,
            retry_after,
            body,
            ..
        } => {
            let mut response = Response::new(Body::new(body.into_http_body()));
            *response.status_mut() =
                StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
            let headers = response.headers_mut();
            let content_type = content_type.unwrap_or_else(|| "application/json".to_owned());
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            if let Some(value) = retry_after.and_then(|value| HeaderValue::from_str(&value).ok()) {
                headers.insert(header::RETRY_AFTER, value);
            }
            response
        }
        InferenceReply::Streaming {
            status,
            content_type,
            stream,
            ..
        } => {
            let mut response = Response::new(Body::from_stream(stream));
            *response.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::OK);
            let headers = response.headers_mut();
            let content_type = content_type.unwrap_or_else(|| "text/event-stream".to_owned());
            if let Ok(value) = HeaderValue::from_str(&content_type) {
                headers.insert(header::CONTENT_TYPE, value);
            }
            headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
            headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
            response
        }
    }
}

/// Tags as the ledger stores them.
pub(crate) type Tags = BTreeMap<String, String>;

/// A body that did not arrive within `server.body_read_timeout`: the client is too slow (or
/// holding the connection on purpose).
fn body_too_slow(timeout: std::time::Duration) -> ApiError {
    ApiError::new(
        ErrorCode::InvalidRequest,
        format!(
            "the request body did not arrive within {} s (server.body_read_timeout); send it at once",
            timeout.as_secs()
        ),
    )
}
