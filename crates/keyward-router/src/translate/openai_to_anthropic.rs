//! OpenAI chat completions → Anthropic Messages (requests), and Anthropic → OpenAI (complete
//! responses and errors).

use serde_json::{json, Map, Value};

use super::push_block;
use crate::BodyError;

/// Output cap used when an OpenAI-shaped request sets none (Anthropic requires one).
pub(crate) const DEFAULT_MAX_TOKENS: u64 = 4096;

fn invalid(path: &'static str, expected: &'static str) -> BodyError {
    BodyError::InvalidField { path, expected }
}

/// The text of an OpenAI `content`: a string or an array of parts; `None` for null.
fn text_of(content: &Value, path: &'static str) -> Result<Option<String>, BodyError> {
    match content {
        Value::Null => Ok(None),
        Value::String(text) => Ok(Some(text.clone())),
        Value::Array(parts) => {
            let mut text = String::new();
            for part in parts {
                match part.get("type").and_then(Value::as_str) {
                    Some("text") => text.push_str(part.get("text").and_then(Value::as_str).unwrap_or_default()),
                    _ => return Err(invalid(path, "text parts only when the model is an Anthropic model (images and audio cannot be translated yet)")),
                }
            }
            Ok(Some(text))
        }
        _ => Err(invalid(path, "a string or an array of text parts")),
    }
}

/// A user turn's OpenAI content → Anthropic blocks: text parts, and `image_url` parts as
/// image blocks (a `data:` URL as base64, any other URL as a url source).
fn user_blocks(content: &Value) -> Result<Vec<Value>, BodyError> {
    let path = "messages[].content";
    match content {
        Value::String(text) => Ok(vec![json!({"type": "text", "text": text})]),
        Value::Array(parts) => parts
            .iter()
            .map(|part| match part.get("type").and_then(Value::as_str) {
                Some("text") => Ok(json!({"type": "text", "text": part.get("text").and_then(Value::as_str).unwrap_or_default()})),
                Some("image_url") => {
                    let url = part["image_url"]["url"].as_str().ok_or(invalid("messages[].content[].image_url.url", "a URL"))?;
                    Ok(match super::parse_data_url(url) {
                        Some((media_type, data)) => json!({"type": "image", "source": {"type": "base64", "media_type": media_type, "data": data}}),
                        None => json!({"type": "image", "source": {"type": "url", "url": url}}),
                    })
                }
                _ => Err(invalid(path, "text and image_url parts when the model is an Anthropic model (audio and files cannot be translated yet)")),
            })
            .collect(),
        Value::Null => Ok(Vec::new()),
        _ => Err(invalid(path, "a string or an array of content parts")),
    }
}

/// Translates an OpenAI chat completions request body into an Anthropic Messages body.
#[expect(
    clippy::too_many_lines,
    reason = "a data-driven translation table: one arm per request field, in the reference's order"
)]
pub(crate) fn request(
    openai: &Map<String, Value>,
    model: &str,
) -> Result<Map<String, Value>, BodyError> {
    let messages = openai
        .get("messages")
        .and_then(Value::as_array)
        .ok_or(BodyError::MissingField { path: "messages" })?;
    let mut system: Vec<String> = Vec::new();
    let mut turns: Vec<Value> = Vec::new();
    for message in messages {
        match message.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => {
                if let Some(text) = text_of(&message["content"], "messages[].content")? {
                    system.push(text);
                }
            }
            Some("user") => {
                for block in user_blocks(&message["content"])? {
                    push_block(&mut turns, "user", block);
                }
            }
            Some("assistant") => {
                if let Some(text) = text_of(&message["content"], "messages[].content")?
                    .filter(|text| !text.is_empty())
                {
                    push_block(
                        &mut turns,
                        "assistant",
                        json!({"type": "text", "text": text}),
                    );
                }
                for call in message
                    .get("tool_calls")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let arguments = call["function"]["arguments"].as_str().unwrap_or("{}");
                    let input: Value = serde_json::from_str(arguments).map_err(|_| {
                        invalid(
                            "messages[].tool_calls[].function.arguments",
                            "a JSON object in a string",
                        )
                    })?;
                    push_block(
                        &mut turns,
                        "assistant",
                        json!({"type": "tool_use", "id": call["id"], "name": call["function"]["name"], "input": input}),
                    );
                }
            }
            Some("tool") => {
                let text = text_of(&message["content"], "messages[].content")?.unwrap_or_default();
                let id = message
                    .get("tool_call_id")
                    .cloned()
                    .ok_or(BodyError::MissingField {
                        path: "messages[].tool_call_id",
                    })?;
                push_block(
                    &mut turns,
                    "user",
                    json!({"type": "tool_result", "tool_use_id": id, "content": text}),
                );
            }
            _ => {
                return Err(invalid(
                    "messages[].role",
                    "system, developer, user, assistant or tool",
                ))
            }
        }
    }
    let mut out = Map::new();
    out.insert("model".into(), Value::from(model));
    if !system.is_empty() {
        out.insert("system".into(), Value::from(system.join("\n\n")));
    }
    out.insert("messages".into(), Value::Array(turns));
    let max_tokens = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|field| openai.get(*field).and_then(Value::as_u64))
        .unwrap_or(DEFAULT_MAX_TOKENS);
    out.insert("max_tokens".into(), Value::from(max_tokens));
    for field in ["temperature", "top_p", "stream"] {
        if let Some(value) = openai.get(field).filter(|value| !value.is_null()) {
            out.insert(field.into(), value.clone());
        }
    }
    match openai.get("stop") {
        Some(Value::String(stop)) => {
            out.insert("stop_sequences".into(), json!([stop]));
        }
        Some(Value::Array(stops)) => {
            out.insert("stop_sequences".into(), Value::Array(stops.clone()));
        }
        _ => {}
    }
    if let Some(user) = openai.get("user").and_then(Value::as_str) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    if let Some(tools) = openai.get("tools").and_then(Value::as_array) {
        let tools: Vec<Value> = tools
            .iter()
            .map(|tool| {
                let function = &tool["function"];
                let mut translated = json!({"name": function["name"], "input_schema": function.get("parameters").cloned().unwrap_or(json!({"type": "object", "properties": {}}))});
                if let Some(description) = function.get("description") {
                    translated["description"] = description.clone();
                }
                translated
            })
            .collect();
        out.insert("tools".into(), Value::Array(tools));
    }
    match openai.get("tool_choice") {
        Some(Value::String(choice)) => {
            let kind = match choice.as_str() {
                "required" => "any",
                "none" => "none",
                _ => "auto",
            };
            out.insert("tool_choice".into(), json!({"type": kind}));
        }
        Some(Value::Object(choice)) => {
            if let Some(name) = choice
                .get("function")
                .and_then(|function| function.get("name"))
            {
                out.insert("tool_choice".into(), json!({"type": "tool", "name": name}));
            }
        }
        _ => {}
    }
    Ok(out)
}

pub(crate) fn finish_reason(stop_reason: Option<&str>) -> Value {
    match stop_reason {
        Some("end_turn" | "stop_sequence" | "pause_turn") => Value::from("stop"),
        Some("max_tokens" | "model_context_window_exceeded") => Value::from("length"),
        Some("tool_use") => Value::from("tool_calls"),
        Some("refusal") => Value::from("content_filter"),
        _ => Value::Null,
    }
}

/// OpenAI `usage` from Anthropic `usage` (input excludes cache reads and writes there).
pub(crate) fn usage(usage: &Value) -> Value {
    let number = |field: &str| usage.get(field).and_then(Value::as_u64).unwrap_or(0);
    let prompt = number("input_tokens")
        .saturating_add(number("cache_read_input_tokens"))
        .saturating_add(number("cache_creation_input_tokens"));
    let completion = number("output_tokens");
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt.saturating_add(completion),
        "prompt_tokens_details": {"cached_tokens": number("cache_read_input_tokens")},
    })
}

/// An Anthropic message → an OpenAI `chat.completion`.
pub(crate) fn response(message: &Value, created: u64) -> Value {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in message["content"].as_array().into_iter().flatten() {
        match block["type"].as_str() {
            Some("text") => text.push_str(block["text"].as_str().unwrap_or_default()),
            Some("tool_use") => tool_calls.push(json!({
                "id": block["id"], "type": "function",
                "function": {"name": block["name"], "arguments": block["input"].to_string()},
            })),
            _ => {}
        }
    }
    let mut assistant = json!({"role": "assistant", "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { Value::from(text) }});
    if !tool_calls.is_empty() {
        assistant["tool_calls"] = Value::Array(tool_calls);
    }
    json!({
        "id": message["id"], "object": "chat.completion", "created": created, "model": message["model"],
        "choices": [{"index": 0, "message": assistant, "logprobs": null, "finish_reason": finish_reason(message["stop_reason"].as_str())}],
        "usage": usage(&message["usage"]),
    })
}

/// An Anthropic error body → OpenAI's error shape, keeping the provider's message and type.
pub(crate) fn error(body: &Value) -> Value {
    let error = &body["error"];
    json!({"error": {
        "message": error["message"].as_str().unwrap_or("the provider returned an error"),
        "type": error["type"].as_str().unwrap_or("api_error"),
        "param": null,
        "code": null,
    }})
}
