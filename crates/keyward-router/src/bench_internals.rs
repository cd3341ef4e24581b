//! Hot-path internals for the criterion micro-benchmarks in `bench/` (feature
//! `bench-internals`, never enabled by Keyward itself). Thin wrappers, so the modules they reach
//! stay private to the router.

use bytes::Bytes;
use serde_json::{Map, Value};

use crate::sse::SseParser;
use crate::usage::UsageReport;

/// Parses a provider's SSE byte stream delivered in `chunks` and extracts the usage from every
/// `data:` event as the stream relay does; returns (events, usage found).
pub fn parse_openai_stream(chunks: &[Bytes]) -> (usize, UsageReport) {
    let mut parser = SseParser::default();
    let mut usage = UsageReport::default();
    let mut events = 0;
    for chunk in chunks {
        let Ok(parsed) = parser.push(chunk) else {
            break;
        };
        for event in parsed {
            events += 1;
            if event.data == "[DONE]" {
                continue;
            }
            if let Ok(value) = serde_json::from_str::<Value>(&event.data) {
                if let Some(found) = value.get("usage") {
                    usage.merge_openai(found);
                }
            }
        }
    }
    (events, usage)
}

/// OpenAI chat completions request → Anthropic Messages request.
pub fn openai_to_anthropic_request(
    openai: &Map<String, Value>,
    model: &str,
) -> Option<Map<String, Value>> {
    crate::translate::openai_to_anthropic::request(openai, model).ok()
}

/// Anthropic Messages response → OpenAI chat completion.
pub fn anthropic_to_openai_response(message: &Value) -> Value {
    crate::translate::openai_to_anthropic::response(message, 0)
}
