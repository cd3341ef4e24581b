//! OpenAI chat completions ⇄ Bedrock Converse. Requests become Converse bodies (the model is
//! in the URL), Converse responses and ConverseStream events become OpenAI shapes. Bedrock's
//! `inputTokens` excludes cache reads and writes, which it reports beside it (as Anthropic).

use bytes::Bytes;
use serde_json::{json, Map, Value};

use super::push_block;
use crate::BodyError;

fn invalid(path: &'static str, expected: &'static str) -> BodyError {
    BodyError::InvalidField { path, expected }
}

fn text_of(content: &Value) -> Result<String, BodyError> {
    match content {
        Value::Null => Ok(String::new()),
        Value::String(text) => Ok(text.clone()),
        Value::Array(parts) => parts
            .iter()
            .map(|part| match part["type"].as_str() {
                Some("text") => Ok(part["text"].as_str().unwrap_or_default().to_owned()),
                _ => Err(invalid(
                    "messages[].content",
                    "text parts only for Bedrock models (images cannot be translated yet)",
                )),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(|parts| parts.concat()),
        _ => Err(invalid(
            "messages[].content",
            "a string or an array of text parts",
        )),
    }
}

/// A user turn's OpenAI content → Converse blocks; images must be `data:` URLs (Bedrock takes
/// image bytes, or S3 locations Keyward cannot provide).
fn user_blocks(content: &Value) -> Result<Vec<Value>, BodyError> {
    let url_path = "messages[].content[].image_url.url";
    match content {
        Value::Array(parts) => parts
            .iter()
            .map(|part| match part["type"].as_str() {
                Some("text") => Ok(json!({"text": part["text"].as_str().unwrap_or_default()})),
                Some("image_url") => {
                    let url = part["image_url"]["url"].as_str().unwrap_or_default();
                    let (media_type, data) = super::parse_data_url(url)
                        .ok_or(invalid(url_path, "a data: URL (base64) for Bedrock models"))?;
                    let format = media_type
                        .strip_prefix("image/")
                        .filter(|format| ["png", "jpeg", "gif", "webp"].contains(format))
                        .ok_or(invalid(url_path, "a png, jpeg, gif or webp image"))?;
                    Ok(json!({"image": {"format": format, "source": {"bytes": data}}}))
                }
                _ => Err(invalid(
                    "messages[].content",
                    "text and image_url parts for Bedrock models",
                )),
            })
            .collect(),
        other => Ok(vec![json!({"text": text_of(other)?})]),
    }
}

/// An OpenAI chat completions request → a Converse body.
#[expect(
    clippy::too_many_lines,
    reason = "a data-driven translation table: one arm per request field, in the reference's order"
)]
pub(crate) fn request(openai: &Map<String, Value>) -> Result<Map<String, Value>, BodyError> {
    let messages = openai
        .get("messages")
        .and_then(Value::as_array)
        .ok_or(BodyError::MissingField { path: "messages" })?;
    let mut system = Vec::new();
    let mut turns = Vec::new();
    for message in messages {
        match message["role"].as_str() {
            Some("system" | "developer") => {
                system.push(json!({"text": text_of(&message["content"])?}))
            }
            Some("user") => {
                for block in user_blocks(&message["content"])? {
                    push_block(&mut turns, "user", block);
                }
            }
            Some("assistant") => {
                let text = text_of(&message["content"])?;
                if !text.is_empty() {
                    push_block(&mut turns, "assistant", json!({"text": text}));
                }
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    let input: Value = serde_json::from_str(
                        call["function"]["arguments"].as_str().unwrap_or("{}"),
                    )
                    .map_err(|_| {
                        invalid(
                            "messages[].tool_calls[].function.arguments",
                            "a JSON object in a string",
                        )
                    })?;
                    push_block(
                        &mut turns,
                        "assistant",
                        json!({"toolUse": {"toolUseId": call["id"], "name": call["function"]["name"], "input": input}}),
                    );
                }
            }
            Some("tool") => push_block(
                &mut turns,
                "user",
                json!({"toolResult": {"toolUseId": message["tool_call_id"], "content": [{"text": text_of(&message["content"])?}], "status": "success"}}),
            ),
            _ => {
                return Err(invalid(
                    "messages[].role",
                    "system, developer, user, assistant or tool",
                ))
            }
        }
    }
    let mut out = Map::new();
    out.insert("messages".into(), Value::Array(turns));
    if !system.is_empty() {
        out.insert("system".into(), Value::Array(system));
    }
    let mut inference = Map::new();
    if let Some(max) = ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|field| openai.get(*field).and_then(Value::as_u64))
    {
        inference.insert("maxTokens".into(), Value::from(max));
    }
    for (from, to) in [("temperature", "temperature"), ("top_p", "topP")] {
        if let Some(value) = openai.get(from).filter(|value| value.is_number()) {
            inference.insert(to.into(), value.clone());
        }
    }
    match openai.get("stop") {
        Some(Value::String(stop)) => {
            inference.insert("stopSequences".into(), json!([stop]));
        }
        Some(Value::Array(stops)) => {
            inference.insert("stopSequences".into(), Value::Array(stops.clone()));
        }
        _ => {}
    }
    if !inference.is_empty() {
        out.insert("inferenceConfig".into(), Value::Object(inference));
    }
    if let Some(tools) = openai.get("tools").and_then(Value::as_array) {
        let specs: Vec<Value> = tools
            .iter()
            .map(|tool| {
                let function = &tool["function"];
                let mut spec = json!({"name": function["name"], "inputSchema": {"json": function.get("parameters").cloned().unwrap_or(json!({"type": "object"}))}});
                if let Some(description) = function.get("description") {
                    spec["description"] = description.clone();
                }
                json!({"toolSpec": spec})
            })
            .collect();
        let mut config = json!({"tools": specs});
        match openai.get("tool_choice") {
            Some(Value::String(choice)) if choice == "required" => {
                config["toolChoice"] = json!({"any": {}})
            }
            Some(Value::Object(choice)) => {
                if let Some(name) = choice
                    .get("function")
                    .and_then(|function| function.get("name"))
                {
                    config["toolChoice"] = json!({"tool": {"name": name}});
                }
            }
            _ => {}
        }
        out.insert("toolConfig".into(), config);
    }
    Ok(out)
}

pub(crate) fn finish_reason(stop_reason: Option<&str>) -> Value {
    match stop_reason {
        Some("end_turn" | "stop_sequence") => json!("stop"),
        Some("max_tokens" | "model_context_window_exceeded") => json!("length"),
        Some("tool_use") => json!("tool_calls"),
        Some("guardrail_intervened" | "content_filtered") => json!("content_filter"),
        _ => Value::Null,
    }
}

/// OpenAI `usage` from Bedrock `usage`.
pub(crate) fn usage(usage: &Value) -> Value {
    let number = |field: &str| usage.get(field).and_then(Value::as_u64).unwrap_or(0);
    let prompt =
        number("inputTokens") + number("cacheReadInputTokens") + number("cacheWriteInputTokens");
    json!({"prompt_tokens": prompt, "completion_tokens": number("outputTokens"),
           "total_tokens": prompt.saturating_add(number("outputTokens")), "prompt_tokens_details": {"cached_tokens": number("cacheReadInputTokens")}})
}

/// A Converse response → an OpenAI `chat.completion`.
pub(crate) fn response(converse: &Value, model: &str, id: &str, created: u64) -> Value {
    let mut text = String::new();
    let mut tool_calls = Vec::new();
    for block in converse["output"]["message"]["content"]
        .as_array()
        .into_iter()
        .flatten()
    {
        if let Some(part) = block["text"].as_str() {
            text.push_str(part);
        } else if let Some(tool) = block.get("toolUse") {
            tool_calls.push(json!({"id": tool["toolUseId"], "type": "function", "function": {"name": tool["name"], "arguments": tool["input"].to_string()}}));
        }
    }
    let mut message = json!({"role": "assistant", "content": if text.is_empty() && !tool_calls.is_empty() { Value::Null } else { Value::from(text) }});
    if !tool_calls.is_empty() {
        message["tool_calls"] = Value::Array(tool_calls);
    }
    json!({"id": id, "object": "chat.completion", "created": created, "model": model,
           "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish_reason(converse["stopReason"].as_str())}],
           "usage": usage(&converse["usage"])})
}

/// A Bedrock error (`{"message"}` or `{"Message"}`, code from `x-amzn-ErrorType`) → OpenAI's shape.
pub(crate) fn error(body: Option<&Value>, error_type: Option<&str>) -> Value {
    let message = body
        .and_then(|body| body.get("message").or_else(|| body.get("Message")))
        .and_then(Value::as_str)
        .unwrap_or("the provider returned an error");
    json!({"error": {"message": message, "type": error_type.unwrap_or("api_error"), "param": null, "code": null}})
}

/// ConverseStream events → OpenAI chunk frames.
pub(crate) struct BedrockToOpenAi {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    /// Bedrock content-block index → OpenAI tool-call index.
    tool_calls: std::collections::BTreeMap<u64, usize>,
}

impl BedrockToOpenAi {
    pub(crate) fn new(id: String, model: String, created: u64, include_usage: bool) -> Self {
        Self {
            id,
            model,
            created,
            include_usage,
            tool_calls: Default::default(),
        }
    }

    pub(crate) fn set_model(&mut self, model: &str) {
        self.model = model.to_owned();
    }

    fn chunk(&self, delta: Value, finish: Value) -> Bytes {
        let mut chunk = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]});
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        Bytes::from(format!("data: {chunk}\n\n"))
    }

    /// Frames for one event (`kind` is the `:event-type`, or `exception:<type>`).
    pub(crate) fn translate(&mut self, kind: &str, data: &Value) -> Vec<Bytes> {
        match kind {
            "messageStart" => {
                vec![self.chunk(json!({"role": "assistant", "content": ""}), Value::Null)]
            }
            "contentBlockStart" => {
                let Some(tool) = data["start"].get("toolUse") else {
                    return Vec::new();
                };
                let index = self.tool_calls.len();
                self.tool_calls
                    .insert(data["contentBlockIndex"].as_u64().unwrap_or(0), index);
                let call = json!({"index": index, "id": tool["toolUseId"], "type": "function", "function": {"name": tool["name"], "arguments": ""}});
                vec![self.chunk(json!({"tool_calls": [call]}), Value::Null)]
            }
            "contentBlockDelta" => {
                let delta = &data["delta"];
                if let Some(text) = delta["text"].as_str() {
                    vec![self.chunk(json!({"content": text}), Value::Null)]
                } else if let Some(input) = delta["toolUse"]["input"].as_str() {
                    let index = self
                        .tool_calls
                        .get(&data["contentBlockIndex"].as_u64().unwrap_or(0))
                        .copied()
                        .unwrap_or(0);
                    vec![self.chunk(
                        json!({"tool_calls": [{"index": index, "function": {"arguments": input}}]}),
                        Value::Null,
                    )]
                } else {
                    Vec::new()
                }
            }
            "messageStop" => {
                vec![self.chunk(json!({}), finish_reason(data["stopReason"].as_str()))]
            }
            "metadata" => {
                let mut frames = Vec::new();
                if self.include_usage {
                    let chunk = json!({"id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                        "choices": [], "usage": usage(&data["usage"])});
                    frames.push(Bytes::from(format!("data: {chunk}\n\n")));
                }
                frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
                frames
            }
            kind if kind.starts_with("exception:") => {
                let error = error(Some(data), kind.strip_prefix("exception:"));
                vec![Bytes::from(format!("data: {error}\n\n"))]
            }
            _ => Vec::new(),
        }
    }
}
