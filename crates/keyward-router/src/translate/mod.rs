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
mod tests;
