//! OpenAI Responses API (`POST /v1/responses`): non-stream and the typed SSE event stream
//! (`response.created`, `response.output_text.delta`, …, `response.completed` with usage).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use crate::stream::{self, Step};
use crate::usage::{reply, text_bytes, tokens_of, unix_now};
use crate::MockState;

pub(crate) async fn responses(
    State(state): State<Arc<MockState>>,
    headers: HeaderMap,
    Json(request): Json<Value>,
) -> Response {
    let key = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if !state.admit(key) {
        let body = json!({"error": {"message": "Incorrect API key provided.", "type": "invalid_request_error", "param": null, "code": "invalid_api_key"}});
        return (axum::http::StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    let model = request["model"].as_str().unwrap_or_default().to_owned();
    let input_tokens =
        tokens_of(text_bytes(&request["input"]) + text_bytes(&request["instructions"]));
    let (words, _) = reply(request["max_output_tokens"].as_u64());
    let output_tokens = words.len() as u64;
    let sequence = state.next_id();
    let id = format!("resp_mock{sequence}");
    let item_id = format!("msg_mock{sequence}");
    let usage = json!({"input_tokens": input_tokens, "input_tokens_details": {"cached_tokens": 0},
        "output_tokens": output_tokens, "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": input_tokens + output_tokens});
    let completed = json!({
        "id": id, "object": "response", "created_at": unix_now(), "status": "completed", "model": model,
        "output": [{"type": "message", "id": item_id, "status": "completed", "role": "assistant",
                    "content": [{"type": "output_text", "text": words.concat(), "annotations": []}]}],
        "usage": usage,
    });
    let request_id = HeaderValue::from_str(&format!("req_mock{sequence}"))
        .unwrap_or(HeaderValue::from_static("req_mock"));
    if request["stream"].as_bool() != Some(true) {
        let mut response = Json(completed).into_response();
        response.headers_mut().insert("x-request-id", request_id);
        return response;
    }
    let mut in_progress = completed.clone();
    in_progress["status"] = json!("in_progress");
    in_progress["output"] = json!([]);
    in_progress["usage"] = Value::Null;
    let event = |name: &str, number: usize, mut data: Value| {
        data["type"] = json!(name);
        data["sequence_number"] = json!(number);
        Step::send(format!("event: {name}\ndata: {data}\n\n"), Duration::ZERO)
    };
    let mut steps = vec![event(
        "response.created",
        0,
        json!({"response": in_progress}),
    )];
    for (index, word) in words.iter().enumerate() {
        steps.push(event(
            "response.output_text.delta",
            index + 1,
            json!({"item_id": item_id, "output_index": 0, "content_index": 0, "delta": word}),
        ));
    }
    steps.push(event(
        "response.completed",
        words.len() + 1,
        json!({"response": completed}),
    ));
    let mut response = stream::body(steps).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("text/event-stream; charset=utf-8"),
    );
    headers.insert("x-request-id", request_id);
    response
}
