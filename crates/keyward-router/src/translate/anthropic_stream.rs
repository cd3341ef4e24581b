//! Anthropic Messages stream events → OpenAI `chat.completion.chunk` frames, event by event.

use std::collections::BTreeMap;

use bytes::Bytes;
use serde_json::{json, Value};

use super::openai_to_anthropic::{finish_reason, usage};

pub(crate) struct AnthropicToOpenAi {
    id: Value,
    model: Value,
    created: u64,
    /// The client asked for `stream_options.include_usage`: send the usage-only chunk.
    include_usage: bool,
    /// Anthropic usage so far (stream counts are cumulative; later fields replace earlier).
    usage: serde_json::Map<String, Value>,
    /// Anthropic content-block index → OpenAI tool-call index.
    tool_calls: BTreeMap<u64, usize>,
}

impl AnthropicToOpenAi {
    pub(crate) fn new(include_usage: bool, created: u64) -> Self {
        Self {
            id: Value::Null,
            model: Value::Null,
            created,
            include_usage,
            usage: serde_json::Map::new(),
            tool_calls: BTreeMap::new(),
        }
    }

    fn chunk(&self, delta: Value, finish: Value) -> Bytes {
        let mut chunk = json!({
            "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}],
        });
        if self.include_usage {
            chunk["usage"] = Value::Null;
        }
        Bytes::from(format!("data: {chunk}\n\n"))
    }

    fn merge_usage(&mut self, usage: Option<&Value>) {
        if let Some(Value::Object(fields)) = usage {
            for (key, value) in fields {
                self.usage.insert(key.clone(), value.clone());
            }
        }
    }

    /// The OpenAI frames for one Anthropic event (often none).
    pub(crate) fn translate(&mut self, name: Option<&str>, data: &Value) -> Vec<Bytes> {
        let kind = name.or_else(|| data.get("type").and_then(Value::as_str));
        match kind {
            Some("message_start") => {
                let message = &data["message"];
                self.id = message["id"].clone();
                self.model = message["model"].clone();
                self.merge_usage(message.get("usage"));
                vec![self.chunk(json!({"role": "assistant", "content": ""}), Value::Null)]
            }
            Some("content_block_start") if data["content_block"]["type"] == "tool_use" => {
                let index = self.tool_calls.len();
                self.tool_calls
                    .insert(data["index"].as_u64().unwrap_or(0), index);
                let block = &data["content_block"];
                let call = json!({"index": index, "id": block["id"], "type": "function",
                    "function": {"name": block["name"], "arguments": ""}});
                vec![self.chunk(json!({"tool_calls": [call]}), Value::Null)]
            }
            Some("content_block_delta") => {
                let delta = &data["delta"];
                match delta["type"].as_str() {
                    Some("text_delta") => {
                        vec![self.chunk(json!({"content": delta["text"]}), Value::Null)]
                    }
                    Some("input_json_delta") => {
                        let index = self
                            .tool_calls
                            .get(&data["index"].as_u64().unwrap_or(0))
                            .copied()
                            .unwrap_or(0);
                        let call = json!({"index": index, "function": {"arguments": delta["partial_json"]}});
                        vec![self.chunk(json!({"tool_calls": [call]}), Value::Null)]
                    }
                    _ => Vec::new(),
                }
            }
            Some("message_delta") => {
                self.merge_usage(data.get("usage"));
                let finish = finish_reason(data["delta"]["stop_reason"].as_str());
                vec![self.chunk(json!({}), finish)]
            }
            Some("message_stop") => {
                let mut frames = Vec::new();
                if self.include_usage {
                    let chunk = json!({
                        "id": self.id, "object": "chat.completion.chunk", "created": self.created, "model": self.model,
                        "choices": [], "usage": usage(&Value::Object(self.usage.clone())),
                    });
                    frames.push(Bytes::from(format!("data: {chunk}\n\n")));
                }
                frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
                frames
            }
            Some("error") => {
                let error = super::openai_to_anthropic::error(data);
                vec![Bytes::from(format!("data: {error}\n\n"))]
            }
            _ => Vec::new(),
        }
    }
}
