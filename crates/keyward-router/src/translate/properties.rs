//! Property tests of every translation and usage extractor (#23 "every parser fuzzed"): any
//! JSON a client or a provider may send — shaped like the real thing, with the real field names,
//! at any depth — gives a clean error or a value, never a panic; usage counts stay counts.

use proptest::prelude::*;
use serde_json::{Map, Value};

use super::anthropic_stream::AnthropicToOpenAi;
use super::anthropic_to_openai::OpenAiToAnthropic;
use super::bedrock::BedrockToOpenAi;
use super::{anthropic_to_openai, bedrock, openai_to_anthropic};
use crate::usage::UsageReport;

/// Field names the translators look for, so generated documents reach their code paths.
const FIELDS: &[&str] = &[
    "model",
    "messages",
    "role",
    "content",
    "type",
    "text",
    "system",
    "tools",
    "tool_choice",
    "tool_calls",
    "tool_call_id",
    "function",
    "name",
    "arguments",
    "input",
    "input_schema",
    "parameters",
    "max_tokens",
    "max_completion_tokens",
    "stop",
    "stop_sequences",
    "temperature",
    "top_p",
    "stream",
    "user",
    "metadata",
    "user_id",
    "image_url",
    "url",
    "source",
    "data",
    "media_type",
    "choices",
    "delta",
    "message",
    "finish_reason",
    "stop_reason",
    "usage",
    "input_tokens",
    "output_tokens",
    "prompt_tokens",
    "completion_tokens",
    "cache_read_input_tokens",
    "cache_creation_input_tokens",
    "prompt_tokens_details",
    "cached_tokens",
    "inputTokens",
    "outputTokens",
    "cacheReadInputTokens",
    "output",
    "contentBlockIndex",
    "toolUse",
    "toolUseId",
    "stopReason",
    "error",
    "index",
    "id",
    "content_block",
    "thinking",
];

fn json() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        (-1e12f64..1e12).prop_map(Value::from),
        prop::sample::select(FIELDS).prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(Value::from("data:image/png;base64,aGk=")),
    ];
    leaf.prop_recursive(5, 96, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..5).prop_map(Value::Array),
            prop::collection::vec((prop::sample::select(FIELDS), inner), 0..6).prop_map(|fields| {
                Value::Object(
                    fields
                        .into_iter()
                        .map(|(name, value)| (name.to_owned(), value))
                        .collect(),
                )
            }),
        ]
    })
}

fn object() -> impl Strategy<Value = Map<String, Value>> {
    prop::collection::vec((prop::sample::select(FIELDS), json()), 0..8).prop_map(|fields| {
        fields
            .into_iter()
            .map(|(name, value)| (name.to_owned(), value))
            .collect()
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn requests_translate_or_fail_cleanly(body in object()) {
        let _ = openai_to_anthropic::request(&body, "m");
        let _ = anthropic_to_openai::request(&body, "m", "max_tokens");
        let _ = bedrock::request(&body);
    }

    #[test]
    fn answers_and_errors_translate_without_panicking(body in json(), status in 100u16..600) {
        let _ = openai_to_anthropic::response(&body, 0);
        let _ = openai_to_anthropic::error(&body);
        let _ = anthropic_to_openai::response(&body);
        let _ = anthropic_to_openai::error(&body, status);
        let _ = bedrock::response(&body, "m", "id", 0);
        let _ = bedrock::error(Some(&body), Some("ValidationException"));
        let _ = bedrock::usage(&body);
        let _ = anthropic_to_openai::usage(&body);
        let _ = openai_to_anthropic::usage(&body);
    }

    #[test]
    fn stream_events_translate_without_panicking(events in prop::collection::vec(json(), 0..12)) {
        let mut to_openai = AnthropicToOpenAi::new(true, 0);
        let mut to_anthropic = OpenAiToAnthropic::new();
        let mut from_bedrock = BedrockToOpenAi::new("id".into(), "m".into(), 0, true);
        for (index, event) in events.iter().enumerate() {
            let name = FIELDS[index % FIELDS.len()];
            let _ = to_openai.translate(Some(name), event);
            let _ = to_anthropic.translate(&event.to_string());
            let _ = from_bedrock.translate(name, event);
        }
    }

    #[test]
    fn usage_extractors_never_overflow_whatever_they_read(
        usages in prop::collection::vec(json(), 0..6),
    ) {
        let mut report = UsageReport::default();
        for usage in &usages {
            report.merge_openai(usage);
            report.merge_anthropic(usage);
            report.merge_responses(usage);
            report.merge_bedrock(usage);
            report.set_model(usage.get("model").and_then(Value::as_str));
        }
        // Reaching here is the property: no overflow panic (tests run with overflow checks)
        // on counts up to u64::MAX, and whatever was read is a count or absent.
        let _ = (report.input_tokens, report.output_tokens, report.cached_input_tokens);
    }
}
