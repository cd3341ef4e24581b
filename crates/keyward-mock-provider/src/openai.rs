//! OpenAI (and Azure OpenAI) chat completions, embeddings and models.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::Engine;
use serde_json::{json, Value};

use crate::stream::{self, Step};
use crate::usage::{fault_of, reply, text_bytes, tokens_of, unix_now, Fault};
use crate::MockState;

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

fn error(status: StatusCode, message: &str, kind: &str, code: Option<&str>) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": null, "code": code}});
    (status, Json(body)).into_response()
}

fn invalid_key(key: Option<&str>) -> Response {
    let message = match key {
        None => "You didn't provide an API key. You need to provide your API key in an Authorization header using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).".to_owned(),
        Some(key) => {
            let tail = key.get(key.len().saturating_sub(4)..).unwrap_or_default();
            format!("Incorrect API key provided: {}***{tail}. You can find your API key at https://platform.openai.com/account/api-keys.", key.get(..3).unwrap_or_default())
        }
    };
    error(
        StatusCode::UNAUTHORIZED,
        &message,
        "invalid_request_error",
        key.map(|_| "invalid_api_key"),
    )
}

fn fault_response(fault: Fault) -> Option<Response> {
    match fault {
        Fault::Status(429) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "Rate limit reached for requests per min. Please try again in 1s.",
                "requests",
                Some("rate_limit_exceeded"),
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            Some(response)
        }
        Fault::Status(status) => Some(error(
            StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
            "The server had an error while processing your request. Sorry about that!",
            "server_error",
            None,
        )),
        Fault::Oversized => Some((StatusCode::OK, "x".repeat(20 * 1024 * 1024)).into_response()),
        _ => None,
    }
}

pub(crate) async fn chat_completions(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let key = bearer(&headers);
    if !state.admit(key) {
        return invalid_key(key);
    }
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    complete(&state, &request, &model, Flavor::OpenAi).await
}

#[derive(serde::Deserialize)]
pub(crate) struct AzureQuery {
    #[serde(rename = "api-version")]
    api_version: Option<String>,
}

pub(crate) async fn azure_chat_completions(
    State(state): State<Arc<MockState>>,
    Path(deployment): Path<String>,
    Query(query): Query<AzureQuery>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    if query.api_version.is_none() {
        let body = json!({"error": {"code": "404", "message": "Resource not found"}});
        return (StatusCode::NOT_FOUND, Json(body)).into_response();
    }
    let key = headers.get("api-key").and_then(|value| value.to_str().ok());
    if !state.admit(key) {
        let body = json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    complete(&state, &request, &deployment, Flavor::OpenAi).await
}

/// Where OpenAI-compatible providers differ from OpenAI.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Flavor {
    OpenAi,
    /// Mistral: usage on the final stream chunk by default; `stream_options` is refused.
    Mistral,
}

/// Mistral's chat completions (`/mistral/v1/chat/completions`).
pub(crate) async fn mistral_chat_completions(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let key = bearer(&headers);
    if !state.admit(key) {
        let body = json!({"message": "Unauthorized", "request_id": "mock"});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    if request.get("stream_options").is_some() {
        let body = json!({"object": "error", "message": "Extra inputs are not permitted: stream_options", "type": "invalid_request_error", "param": null, "code": null});
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(body)).into_response();
    }
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    complete(&state, &request, &model, Flavor::Mistral).await
}

/// One mock completion: what the whole answer and the stream both render.
struct Completion<'a> {
    id: String,
    created: u64,
    model: &'a str,
    words: Vec<&'static str>,
    finish_reason: &'static str,
    usage: Value,
}

impl<'a> Completion<'a> {
    fn new(sequence: u64, request: &Value, model: &'a str) -> Self {
        let prompt_tokens = tokens_of(text_bytes(&request["messages"]));
        let max_tokens = request["max_completion_tokens"]
            .as_u64()
            .or_else(|| request["max_tokens"].as_u64());
        let (words, cut) = reply(max_tokens);
        let completion_tokens = words.len() as u64;
        let cached_tokens = if model == "mock-cached" {
            prompt_tokens / 2
        } else {
            0
        };
        let reasoning_tokens = if model == "mock-reasoning" { 3 } else { 0 };
        let usage = json!({
            "prompt_tokens": prompt_tokens,
            "completion_tokens": completion_tokens + reasoning_tokens,
            "total_tokens": prompt_tokens + completion_tokens + reasoning_tokens,
            "prompt_tokens_details": {"cached_tokens": cached_tokens, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": reasoning_tokens, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0},
        });
        Self {
            id: format!("chatcmpl-mock{sequence}"),
            created: unix_now(),
            model,
            words,
            finish_reason: if cut { "length" } else { "stop" },
            usage,
        }
    }

    fn whole(&self) -> Value {
        json!({
            "id": self.id, "object": "chat.completion", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": self.words.concat(), "refusal": null}, "logprobs": null, "finish_reason": self.finish_reason}],
            "usage": self.usage, "system_fingerprint": "fp_mock", "service_tier": "default",
        })
    }

    /// One `data:` chunk; `usage: null` on every chunk when the client asked for usage.
    fn chunk(&self, delta: Value, finish: Option<&str>, include_usage: bool) -> String {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "system_fingerprint": "fp_mock",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if include_usage {
            chunk["usage"] = Value::Null;
        }
        format!("data: {chunk}\n\n")
    }

    /// The SSE events, with the faults a model name asks for and each flavor's usage.
    fn stream_steps(&self, include_usage: bool, fault: Fault, flavor: Flavor) -> Vec<Step> {
        let pause = if fault == Fault::SlowStream {
            Duration::from_millis(200)
        } else {
            Duration::ZERO
        };
        let first = json!({"role": "assistant", "content": "", "refusal": null});
        let mut steps = vec![Step::send(
            self.chunk(first, None, include_usage),
            Duration::ZERO,
        )];
        for (index, word) in self.words.iter().enumerate() {
            if fault == Fault::Drop && index == 2 {
                steps.push(Step::abort());
                break;
            }
            if fault == Fault::MalformedSse && index == 1 {
                steps.push(Step::send(
                    "data: {\"id\": oops not json\n\n".to_owned(),
                    pause,
                ));
            }
            let delta = self.chunk(json!({"content": word}), None, include_usage);
            steps.push(Step::send(delta, pause));
            if fault == Fault::StallStream {
                steps.push(Step::send(String::new(), Duration::from_secs(60)));
            }
        }
        let mut finish = self.chunk(json!({}), Some(self.finish_reason), include_usage);
        if flavor == Flavor::Mistral {
            let mut last: Value = serde_json::from_str(finish.trim_start_matches("data: ").trim())
                .unwrap_or(Value::Null);
            last["usage"] = self.usage.clone();
            finish = format!("data: {last}\n\n");
        }
        steps.push(Step::send(finish, pause));
        if include_usage {
            let usage_chunk = json!({
                "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                "system_fingerprint": "fp_mock", "choices": [], "usage": self.usage,
            });
            steps.push(Step::send(format!("data: {usage_chunk}\n\n"), pause));
        }
        steps.push(Step::send("data: [DONE]\n\n".to_owned(), Duration::ZERO));
        steps
    }
}

async fn complete(state: &MockState, request: &Value, model: &str, flavor: Flavor) -> Response {
    let fault = fault_of(model);
    match fault {
        Fault::Stall => tokio::time::sleep(Duration::from_secs(60)).await,
        Fault::SlowResponse => tokio::time::sleep(Duration::from_secs(1)).await,
        _ => {}
    }
    if let Some(response) = fault_response(fault) {
        return response;
    }
    let sequence = state.next_id();
    let completion = Completion::new(sequence, request, model);
    let request_id = HeaderValue::from_str(&format!("req_mock{sequence}"))
        .unwrap_or(HeaderValue::from_static("req_mock"));
    if request["stream"].as_bool() != Some(true) {
        let mut response = Json(completion.whole()).into_response();
        response.headers_mut().insert("x-request-id", request_id);
        return response;
    }
    let include_usage = request["stream_options"]["include_usage"].as_bool() == Some(true);
    let body = if fault == Fault::Endless {
        stream::endless(completion.chunk(json!({"content": "."}), None, include_usage))
    } else {
        stream::body(completion.stream_steps(include_usage, fault, flavor))
    };
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert("x-request-id", request_id);
    response
}

pub(crate) async fn embeddings(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let key = bearer(&headers);
    if !state.admit(key) {
        return invalid_key(key);
    }
    embed(&request)
}

/// Azure's embeddings on a deployment (`api-key` header).
pub(crate) async fn azure_embeddings(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let key = headers.get("api-key").and_then(|value| value.to_str().ok());
    if !state.admit(key) {
        return invalid_key(key);
    }
    embed(&request)
}

fn embed(request: &Value) -> Response {
    let inputs: Vec<String> = match &request["input"] {
        Value::String(text) => vec![text.clone()],
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().unwrap_or_default().to_owned())
            .collect(),
        _ => {
            return error(
                StatusCode::BAD_REQUEST,
                "'input' must be a string or an array of strings",
                "invalid_request_error",
                None,
            )
        }
    };
    if inputs.iter().any(|input| input.contains("MOCK_FAIL_EMBED")) {
        return error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "the embedding service failed",
            "server_error",
            None,
        );
    }
    let model = request["model"].as_str().unwrap_or_default();
    let words = model == "mock-embed-words";
    let default_dimensions = if words { 256 } else { 8 };
    let dimensions = request["dimensions"]
        .as_u64()
        .unwrap_or(default_dimensions)
        .clamp(1, 4096) as usize;
    let base64 = request["encoding_format"].as_str() == Some("base64");
    let returned = match model {
        "mock-embed-short" => inputs.len().saturating_sub(1),
        _ => inputs.len(),
    };
    let data: Vec<Value> = inputs
        .iter()
        .take(returned)
        .enumerate()
        .map(|(index, input)| {
            let size = if model == "mock-embed-ragged" && index == 1 {
                dimensions + 1
            } else {
                dimensions
            };
            let vector: Vec<f32> = if words {
                word_vector(input, size)
            } else {
                (0..size)
                    .map(|i| ((input.len() + i) % 17) as f32 / 16.0)
                    .collect()
            };
            let embedding = if base64 {
                let bytes: Vec<u8> = vector
                    .iter()
                    .flat_map(|value| value.to_le_bytes())
                    .collect();
                Value::from(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                Value::from(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let prompt_tokens: u64 = inputs.iter().map(|input| tokens_of(input.len())).sum();
    Json(json!({
        "object": "list", "data": data, "model": request["model"],
        "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
    }))
    .into_response()
}

/// A bag of words: each lower-cased alphanumeric word (of 3 letters or more) adds 1 to the
/// bucket its FNV-1a hash picks.
fn word_vector(text: &str, dimensions: usize) -> Vec<f32> {
    let mut vector = vec![0.0f32; dimensions];
    for word in text
        .split(|c: char| !c.is_alphanumeric())
        .filter(|word| word.chars().count() >= 3)
    {
        let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
        for byte in word.to_lowercase().bytes() {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
        vector[(hash % dimensions as u64) as usize] += 1.0;
    }
    if vector.iter().all(|value| *value == 0.0) {
        vector[0] = 1.0;
    }
    vector
}

pub(crate) async fn models(State(state): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    let key = bearer(&headers);
    if !state.admit(key) {
        return invalid_key(key);
    }
    let ids = ["gpt-4o-mini", "gpt-4o", "text-embedding-3-small"];
    let data: Vec<Value> = ids
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_700_000_000, "owned_by": "system"}))
        .collect();
    Json(json!({"object": "list", "data": data})).into_response()
}

pub(crate) async fn azure_models(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
) -> Response {
    let key = headers.get("api-key").and_then(|value| value.to_str().ok());
    if !state.admit(key) {
        let body = json!({"error": {"code": "401", "message": "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a valid key for an active subscription and use a correct regional API endpoint for your resource."}});
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    Json(json!({"object": "list", "data": [{"id": "gpt-4o", "object": "model"}]})).into_response()
}
