//! Anthropic Messages (non-stream and SSE) and count tokens. Anthropic's `input_tokens`
//! excludes cache reads and cache writes, which are reported beside it.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::stream::{self, Step};
use crate::usage::{fault_of, reply, text_bytes, tokens_of, Fault};
use crate::MockState;

fn api_key(headers: &HeaderMap) -> Option<&str> {
    let header = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    header("x-api-key")
        .or_else(|| header("authorization").and_then(|value| value.strip_prefix("Bearer ")))
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_mock_error"});
    (status, Json(body)).into_response()
}

fn input_tokens(request: &Value) -> u64 {
    tokens_of(text_bytes(&request["messages"]) + text_bytes(&request["system"]))
}

/// What the real API rejects before any work: a bad key, a missing version header.
fn rejection(state: &MockState, headers: &HeaderMap) -> Option<Response> {
    if !state.admit(api_key(headers)) {
        return Some(error(
            StatusCode::UNAUTHORIZED,
            "authentication_error",
            "invalid x-api-key",
        ));
    }
    if !headers.contains_key("anthropic-version") {
        return Some(error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "anthropic-version: header is required",
        ));
    }
    None
}

pub(crate) async fn models(State(state): State<Arc<MockState>>, headers: HeaderMap) -> Response {
    if let Some(response) = rejection(&state, &headers) {
        return response;
    }
    Json(json!({"data": [{"type": "model", "id": "claude-sonnet-4-5", "display_name": "Claude Sonnet 4.5", "created_at": "2025-09-29T00:00:00Z"}],
        "has_more": false, "first_id": "claude-sonnet-4-5", "last_id": "claude-sonnet-4-5"}))
    .into_response()
}

pub(crate) async fn count_tokens(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    if let Some(response) = rejection(&state, &headers) {
        return response;
    }
    Json(json!({"input_tokens": input_tokens(&request)})).into_response()
}

pub(crate) async fn messages(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    if let Some(response) = rejection(&state, &headers) {
        return response;
    }
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::to_owned)
    };
    if let Ok(mut seen) = state.anthropic_headers.lock() {
        *seen = (header("anthropic-version"), header("anthropic-beta"));
    }
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let Some(max_tokens) = request["max_tokens"].as_u64() else {
        return error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            "max_tokens: Field required",
        );
    };
    let fault = fault_of(&model);
    if let Some(response) = fault_response(fault).await {
        return response;
    }
    let total_input = input_tokens(&request);
    let cache_read = if model == "mock-cached" {
        total_input / 2
    } else {
        0
    };
    let uncached_input = total_input - cache_read;
    let (words, cut) = reply(Some(max_tokens));
    let output_tokens = words.len() as u64;
    let stop_reason = if cut { "max_tokens" } else { "end_turn" };
    let sequence = state.next_id();
    let id = format!("msg_mock{sequence}");
    let request_id = HeaderValue::from_str(&format!("req_mock{sequence}"))
        .unwrap_or(HeaderValue::from_static("req_mock"));
    let usage = json!({"input_tokens": uncached_input, "cache_creation_input_tokens": 0, "cache_read_input_tokens": cache_read, "output_tokens": output_tokens});

    if request["stream"].as_bool() != Some(true) {
        let body = json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": words.concat()}],
            "stop_reason": stop_reason, "stop_sequence": null, "usage": usage,
        });
        let mut response = Json(body).into_response();
        response.headers_mut().insert("request-id", request_id);
        return response;
    }

    let steps = stream_steps(&id, &model, &words, stop_reason, &usage, fault);
    let mut response = stream::body(steps).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert("request-id", request_id);
    response
}

/// The answer a fault model gives instead of a message (`None`: answer normally, after the
/// stall if there is one).
async fn fault_response(fault: Fault) -> Option<Response> {
    match fault {
        Fault::Stall => {
            tokio::time::sleep(Duration::from_secs(60)).await;
            None
        }
        Fault::Status(429) => {
            let mut response = error(
                StatusCode::TOO_MANY_REQUESTS,
                "rate_limit_error",
                "Number of request tokens has exceeded your per-minute rate limit",
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            Some(response)
        }
        Fault::Status(529) => Some(error(
            StatusCode::from_u16(529).unwrap_or(StatusCode::SERVICE_UNAVAILABLE),
            "overloaded_error",
            "Overloaded",
        )),
        Fault::Status(_) => Some(error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            "Internal server error",
        )),
        Fault::Oversized => Some((StatusCode::OK, "x".repeat(20 * 1024 * 1024)).into_response()),
        _ => None,
    }
}

/// The SSE events of a streamed message, with the faults a model name asks for.
fn stream_steps(
    id: &str,
    model: &str,
    words: &[&str],
    stop_reason: &str,
    usage: &Value,
    fault: Fault,
) -> Vec<Step> {
    let output_tokens = words.len() as u64;
    let event = |name: &str, data: Value| format!("event: {name}\ndata: {data}\n\n");
    let pause = if fault == Fault::SlowStream {
        Duration::from_millis(200)
    } else {
        Duration::ZERO
    };
    let mut start_usage = usage.clone();
    start_usage["output_tokens"] = json!(1);
    let mut steps = vec![
        Step::send(
            event(
                "message_start",
                json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null, "usage": start_usage}}),
            ),
            Duration::ZERO,
        ),
        Step::send(
            event(
                "content_block_start",
                json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
            ),
            pause,
        ),
        Step::send(event("ping", json!({"type": "ping"})), pause),
    ];
    for (index, word) in words.iter().enumerate() {
        if fault == Fault::Drop && index == 2 {
            steps.push(Step::abort());
            break;
        }
        if fault == Fault::MalformedSse && index == 1 {
            steps.push(Step::send(
                "event: content_block_delta\ndata: {not json\n\n".to_owned(),
                pause,
            ));
        }
        steps.push(Step::send(event("content_block_delta", json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": word}})), pause));
    }
    steps.push(Step::send(
        event(
            "content_block_stop",
            json!({"type": "content_block_stop", "index": 0}),
        ),
        pause,
    ));
    steps.push(Step::send(event("message_delta", json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}, "usage": {"output_tokens": output_tokens}})), pause));
    steps.push(Step::send(
        event("message_stop", json!({"type": "message_stop"})),
        pause,
    ));
    steps
}
