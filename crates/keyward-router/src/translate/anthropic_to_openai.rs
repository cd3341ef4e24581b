//! Anthropic Messages → OpenAI chat completions (requests), and OpenAI → Anthropic (complete
//! responses, errors and stream chunks), so Anthropic clients can use OpenAI-shaped providers.

use bytes::Bytes;
use serde_json::{json, Map, Value};

use crate::BodyError;

fn invalid(path: &'static str, expected: &'static str) -> BodyError {
    BodyError::InvalidField { path, expected }
}

/// Text of an Anthropic `content` or `system`: a string or text blocks.
fn text_of(content: &Value, path: &'static str) -> Result<String, BodyError> {
    match content {
        Value::String(text) => Ok(text.clone()),
        Value::Array(blocks) => blocks
            .iter()
            .map(|block| match block["type"].as_str() {
                Some("text") => Ok(block["text"].as_str().unwrap_or_default().to_owned()),
                _ => Err(invalid(path, "text blocks only when the model is an OpenAI-style model (images cannot be translated yet)")),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.concat()),
        Value::Null => Ok(String::new()),
        _ => Err(invalid(path, "a string or an array of content blocks")),
    }
}

/// Translates an Anthropic Messages request into an OpenAI chat completions request.
/// `max_field` is `max_completion_tokens` for OpenAI itself, `max_tokens` for the others.
#[expect(
    clippy::too_many_lines,
    reason = "a data-driven translation table: one arm per request field, in the reference's order"
)]
pub(crate) fn request(
    anthropic: &Map<String, Value>,
    model: &str,
    max_field: &str,
) -> Result<Map<String, Value>, BodyError> {
    let mut messages = Vec::new();
    if let Some(system) = anthropic.get("system") {
        messages.push(json!({"role": "system", "content": text_of(system, "system")?}));
    }
    let turns = anthropic
        .get("messages")
        .and_then(Value::as_array)
        .ok_or(BodyError::MissingField { path: "messages" })?;
    for turn in turns {
        let role = turn["role"]
            .as_str()
            .ok_or(invalid("messages[].role", "user or assistant"))?;
        let blocks: Vec<Value> = match &turn["content"] {
            Value::String(text) => vec![json!({"type": "text", "text": text})],
            Value::Array(blocks) => blocks.clone(),
            _ => {
                return Err(invalid(
                    "messages[].content",
                    "a string or an array of content blocks",
                ))
            }
        };
        let mut text = String::new();
        let mut images = Vec::new();
        let mut tool_calls = Vec::new();
        for block in &blocks {
            match block["type"].as_str() {
                Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
                Some("image") if role == "user" => {
                    let source = &block["source"];
                    let url = match source["type"].as_str() {
                        Some("base64") => format!(
                            "data:{};base64,{}",
                            source["media_type"].as_str().unwrap_or("image/png"),
                            source["data"].as_str().unwrap_or_default()
                        ),
                        Some("url") => source["url"].as_str().unwrap_or_default().to_owned(),
                        _ => {
                            return Err(invalid(
                                "messages[].content[].source",
                                "a base64 or url image source",
                            ))
                        }
                    };
                    images.push(json!({"type": "image_url", "image_url": {"url": url}}));
                }
                Some("tool_use") if role == "assistant" => tool_calls.push(json!({
                    "id": block["id"], "type": "function",
                    "function": {"name": block["name"], "arguments": block["input"].to_string()},
                })),
                Some("tool_result") if role == "user" => messages.push(json!({
                    "role": "tool", "tool_call_id": block["tool_use_id"],
                    "content": text_of(&block["content"], "messages[].content[].content")?,
                })),
                _ => {
                    return Err(invalid(
                        "messages[].content",
                        "text, image (user), tool_use (assistant) and tool_result (user) blocks",
                    ))
                }
            }
        }
        match role {
            "assistant" => {
                let mut message = json!({"role": "assistant", "content": if text.is_empty() { Value::Null } else { Value::from(text) }});
                if !tool_calls.is_empty() {
                    message["tool_calls"] = Value::Array(tool_calls);
                }
                messages.push(message);
            }
            "user" if !images.is_empty() => {
                let mut parts = Vec::new();
                if !text.is_empty() {
                    parts.push(json!({"type": "text", "text": text}));
                }
                parts.extend(images);
                messages.push(json!({"role": "user", "content": parts}));
            }
            "user" if !text.is_empty() || blocks.is_empty() => {
                messages.push(json!({"role": "user", "content": text}))
            }
            "user" => {}
            _ => return Err(invalid("messages[].role", "user or assistant")),
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), Value::from(model));
    out.insert("messages".into(), Value::Array(messages));
    if let Some(max) = anthropic.get("max_tokens").and_then(Value::as_u64) {
        out.insert(max_field.into(), Value::from(max));
    }
    for field in ["temperature", "top_p", "stream"] {
        if let Some(value) = anthropic.get(field).filter(|value| !value.is_null()) {
            out.insert(field.into(), value.clone());
        }
    }
    if let Some(stops) = anthropic
        .get("stop_sequences")
        .filter(|stops| stops.is_array())
    {
        out.insert("stop".into(), stops.clone());
    }
    if let Some(user) = anthropic
        .get("metadata")
        .and_then(|metadata| metadata.get("user_id"))
        .filter(|user| user.is_string())
    {
        out.insert("user".into(), user.clone());
    }
    if let Some(tools) = anthropic.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .map(|tool| {
                let mut function = json!({"name": tool["name"], "parameters": tool.get("input_schema").cloned().unwrap_or(json!({"type": "object"}))});
                if let Some(description) = tool.get("description") {
                    function["description"] = description.clone();
                }
                json!({"type": "function", "function": function})
            })
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    if let Some(choice) = anthropic.get("tool_choice") {
        let translated = match choice["type"].as_str() {
            Some("any") => json!("required"),
            Some("none") => json!("none"),
            Some("tool") => json!({"type": "function", "function": {"name": choice["name"]}}),
            _ => json!("auto"),
        };
        out.insert("tool_choice".into(), translated);
    }
    Ok(out)
}

pub(crate) fn stop_reason(finish_reason: Option<&str>) -> Value {
    match finish_reason {
        Some("stop") => json!("end_turn"),
        Some("length") => json!("max_tokens"),
        Some("tool_calls" | "function_call") => json!("tool_use"),
        Some("content_filter") => json!("refusal"),
        _ => Value::Null,
    }
}

/// Anthropic `usage` from OpenAI `usage` (Anthropic's `input_tokens` excludes cache reads).
pub(crate) fn usage(usage: &Value) -> Value {
    let number = |path: &[&str]| {
        path.iter()
            .try_fold(usage, |value, key| value.get(*key))
            .and_then(Value::as_u64)
            .unwrap_or(0)
    };
    let cached = number(&["prompt_tokens_details", "cached_tokens"]);
    json!({
        "input_tokens": number(&["prompt_tokens"]).saturating_sub(cached),
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": cached,
        "output_tokens": number(&["completion_tokens"]),
    })
}

/// An OpenAI `chat.completion` → an Anthropic message.
pub(crate) fn response(completion: &Value) -> Value {
    let choice = &completion["choices"][0];
    let message = &choice["message"];
    let mut content = Vec::new();
    if let Some(text) = message["content"].as_str().filter(|text| !text.is_empty()) {
        content.push(json!({"type": "text", "text": text}));
    }
    for call in message["tool_calls"].as_array().into_iter().flatten() {
        let input: Value =
            serde_json::from_str(call["function"]["arguments"].as_str().unwrap_or("{}"))
                .unwrap_or(json!({}));
        content.push(json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": input}));
    }
    json!({
        "id": completion["id"], "type": "message", "role": "assistant", "model": completion["model"],
        "content": content, "stop_reason": stop_reason(choice["finish_reason"].as_str()), "stop_sequence": null,
        "usage": usage(&completion["usage"]),
    })
}

/// An OpenAI error body → Anthropic's error shape (type by HTTP status, as SPEC lists it).
pub(crate) fn error(body: &Value, status: u16) -> Value {
    let kind = match status {
        401 => "authentication_error",
        403 => "permission_error",
        404 => "not_found_error",
        429 => "rate_limit_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    };
    let message = body["error"]["message"]
        .as_str()
        .or_else(|| body["message"].as_str())
        .unwrap_or("the provider returned an error");
    json!({"type": "error", "error": {"type": kind, "message": message}})
}

/// OpenAI chat completion chunks → Anthropic Messages stream events.
pub(crate) struct OpenAiToAnthropic {
    started: bool,
    /// The open content block: its index and whether it is text.
    open_block: Option<(usize, bool)>,
    next_block: usize,
    stop_reason: Value,
    usage: Value,
}

fn event(name: &str, data: Value) -> Bytes {
    Bytes::from(format!("event: {name}\ndata: {data}\n\n"))
}

impl OpenAiToAnthropic {
    pub(crate) fn new() -> Self {
        Self {
            started: false,
            open_block: None,
            next_block: 0,
            stop_reason: Value::Null,
            usage: json!({}),
        }
    }

    fn close_block(&mut self, frames: &mut Vec<Bytes>) {
        if let Some((index, _)) = self.open_block.take() {
            frames.push(event(
                "content_block_stop",
                json!({"type": "content_block_stop", "index": index}),
            ));
        }
    }

    fn open(&mut self, frames: &mut Vec<Bytes>, text: bool, block: Value) -> usize {
        self.close_block(frames);
        let index = self.next_block;
        self.next_block += 1;
        self.open_block = Some((index, text));
        frames.push(event(
            "content_block_start",
            json!({"type": "content_block_start", "index": index, "content_block": block}),
        ));
        index
    }

    /// The Anthropic events for one OpenAI `data:` payload (often none).
    pub(crate) fn translate(&mut self, data: &str) -> Vec<Bytes> {
        let mut frames = Vec::new();
        if data.trim() == "[DONE]" {
            self.close_block(&mut frames);
            frames.push(event("message_delta", json!({"type": "message_delta",
                "delta": {"stop_reason": self.stop_reason, "stop_sequence": null}, "usage": usage(&self.usage)})));
            frames.push(event("message_stop", json!({"type": "message_stop"})));
            return frames;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(data) else {
            return frames;
        };
        if let Some(error) = chunk.get("error") {
            frames.push(event("error", json!({"type": "error", "error": {"type": "api_error", "message": error["message"]}})));
            return frames;
        }
        if !self.started {
            self.started = true;
            frames.push(event("message_start", json!({"type": "message_start", "message": {
                "id": chunk["id"], "type": "message", "role": "assistant", "model": chunk["model"], "content": [],
                "stop_reason": null, "stop_sequence": null, "usage": {"input_tokens": 0, "output_tokens": 0}}})));
        }
        if chunk["usage"].is_object() {
            self.usage = chunk["usage"].clone();
        }
        let Some(choice) = chunk["choices"].get(0) else {
            return frames;
        };
        let delta = &choice["delta"];
        if let Some(text) = delta["content"].as_str().filter(|text| !text.is_empty()) {
            let index = match self.open_block {
                Some((index, true)) => index,
                _ => self.open(&mut frames, true, json!({"type": "text", "text": ""})),
            };
            frames.push(event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "text_delta", "text": text}})));
        }
        for call in delta["tool_calls"].as_array().into_iter().flatten() {
            if call.get("id").is_some_and(|id| !id.is_null()) {
                self.open(&mut frames, false, json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": {}}));
            }
            if let (Some((index, false)), Some(arguments)) = (
                self.open_block,
                call["function"]["arguments"]
                    .as_str()
                    .filter(|a| !a.is_empty()),
            ) {
                frames.push(event("content_block_delta", json!({"type": "content_block_delta", "index": index, "delta": {"type": "input_json_delta", "partial_json": arguments}})));
            }
        }
        if let Some(finish) = choice["finish_reason"].as_str() {
            self.stop_reason = stop_reason(Some(finish));
        }
        frames
    }
}
