//! Format translation between client surfaces and provider APIs, so an OpenAI-shaped request
//! can run on an Anthropic credential and an Anthropic-shaped one on an OpenAI-style provider. Pure functions over JSON values: no I/O, no logging
//! (bodies pass through here), errors by field path only.
//!
//! Mapping (from the providers' API references; see `docs/providers/`):
//! - system/developer messages → `system`; user/assistant turns → `messages`; assistant
//!   `tool_calls` → `tool_use` blocks; `tool` messages → `tool_result` blocks in a user turn.
//! - `tools`/`tool_choice` → Anthropic tools (`input_schema` = `parameters`) and choice
//!   (`required` → `any`); `stop` → `stop_sequences`; `user` → `metadata.user_id`;
//!   `max_completion_tokens`/`max_tokens` → `max_tokens` (required by Anthropic; a default
//!   applies when the client set none).
//! - Responses: text blocks → `content`, `tool_use` → `tool_calls`; `stop_reason` →
//!   `finish_reason` (end_turn/stop_sequence → stop, max_tokens → length, tool_use →
//!   tool_calls, refusal → content_filter); usage: `prompt_tokens` = input + cache reads +
//!   cache writes, `cached_tokens` = cache reads.

pub(crate) mod anthropic_stream;
pub(crate) mod anthropic_to_openai;
pub(crate) mod bedrock;
pub(crate) mod openai_to_anthropic;

use bytes::Bytes;
use serde_json::Value;

/// A response translation, chosen when the request was planned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Translation {
    /// Anthropic Messages → OpenAI chat completions; `include_usage` as the client asked.
    AnthropicToOpenAi { include_usage: bool },
    /// OpenAI chat completions → Anthropic Messages.
    OpenAiToAnthropic,
    /// Bedrock Converse → OpenAI chat completions.
    BedrockToOpenAi { include_usage: bool },
    /// Bedrock Converse → Anthropic Messages (through the OpenAI shape).
    BedrockToAnthropic,
}

/// Seconds since the Unix epoch, for the `created` fields of translated responses.
pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// What a whole (non-streamed) provider answer is translated with, besides its JSON.
pub(crate) struct CompleteAnswer<'a> {
    pub status: u16,
    /// The provider's name of the model, for Bedrock answers that carry none.
    pub model: &'a str,
    /// The provider's request id, the id of a translated Bedrock answer.
    pub provider_request_id: Option<&'a str>,
    /// Bedrock's `x-amzn-errortype`, which names an error its body may not.
    pub aws_error_type: Option<&'a str>,
}

/// A whole answer in the client's format: `translation` applied to `json`, or `raw` as it
/// came when there is nothing to translate (or an Anthropic/OpenAI answer that is not JSON).
pub(crate) fn complete(
    translation: Option<Translation>,
    answer: &CompleteAnswer<'_>,
    json: Option<&Value>,
    raw: Bytes,
) -> Bytes {
    let success = (200..300).contains(&answer.status);
    let bedrock_as_openai = || {
        if success {
            bedrock::response(
                json.unwrap_or(&Value::Null),
                answer.model,
                answer.provider_request_id.unwrap_or_default(),
                unix_now(),
            )
        } else {
            bedrock::error(json, answer.aws_error_type)
        }
    };
    let translated = match (translation, json) {
        (Some(Translation::AnthropicToOpenAi { .. }), Some(json)) => {
            if success {
                openai_to_anthropic::response(json, unix_now())
            } else {
                openai_to_anthropic::error(json)
            }
        }
        (Some(Translation::BedrockToAnthropic), _) => {
            let as_openai = bedrock_as_openai();
            if success {
                anthropic_to_openai::response(&as_openai)
            } else {
                anthropic_to_openai::error(&as_openai, answer.status)
            }
        }
        (Some(Translation::BedrockToOpenAi { .. }), _) => bedrock_as_openai(),
        (Some(Translation::OpenAiToAnthropic), Some(json)) => {
            if success {
                anthropic_to_openai::response(json)
            } else {
                anthropic_to_openai::error(json, answer.status)
            }
        }
        _ => return raw,
    };
    Bytes::from(translated.to_string())
}

/// Splits `data:<media type>;base64,<data>` into its media type and base64 data.
pub(crate) fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let rest = url.strip_prefix("data:")?;
    let (meta, data) = rest.split_once(',')?;
    let media_type = meta.strip_suffix(";base64")?;
    (!media_type.is_empty()).then_some((media_type, data))
}

/// Appends a content block to the last message if it has `role`, else starts a new message
/// (Anthropic and Bedrock both want alternating turns of content blocks).
pub(crate) fn push_block(
    messages: &mut Vec<serde_json::Value>,
    role: &str,
    block: serde_json::Value,
) {
    if let Some(last) = messages.last_mut() {
        if last["role"] == role {
            if let Some(content) = last["content"].as_array_mut() {
                content.push(block);
                return;
            }
        }
    }
    messages.push(serde_json::json!({"role": role, "content": [block]}));
}

#[cfg(test)]
mod properties;
#[cfg(test)]
mod tests;
