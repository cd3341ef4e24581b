//! Table-driven translation tests: each case is an input and the exact expected output.

use serde_json::{json, Value};

use super::anthropic_stream::AnthropicToOpenAi;
use super::openai_to_anthropic::{request, response};

fn object(value: Value) -> serde_json::Map<String, Value> {
    match value {
        Value::Object(map) => map,
        _ => panic!("not an object"),
    }
}

#[test]
fn openai_requests_become_anthropic_requests() {
    let cases = [
        (
            "system, multi-turn, stop, user, default max_tokens",
            json!({"model": "claude/claude-sonnet-4-5", "stop": "END", "user": "u-1", "temperature": 0.2,
                   "messages": [{"role": "system", "content": "Be terse."}, {"role": "developer", "content": [{"type": "text", "text": "No emojis."}]},
                                {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}, {"role": "user", "content": "Bye"}]}),
            json!({"model": "claude-sonnet-4-5", "system": "Be terse.\n\nNo emojis.", "max_tokens": 4096, "temperature": 0.2,
                   "stop_sequences": ["END"], "metadata": {"user_id": "u-1"},
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]},
                                {"role": "assistant", "content": [{"type": "text", "text": "Hello"}]},
                                {"role": "user", "content": [{"type": "text", "text": "Bye"}]}]}),
        ),
        (
            "tools, tool choice, tool calls and results",
            json!({"model": "c/m", "max_completion_tokens": 99, "stream": true, "tool_choice": "required",
                   "tools": [{"type": "function", "function": {"name": "weather", "description": "Get weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
                   "messages": [{"role": "user", "content": "Weather in Paris?"},
                                {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                                {"role": "tool", "tool_call_id": "call_1", "content": "sunny"}]}),
            json!({"model": "m", "max_tokens": 99, "stream": true, "tool_choice": {"type": "any"},
                   "tools": [{"name": "weather", "description": "Get weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
                   "messages": [{"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
                                {"role": "assistant", "content": [{"type": "tool_use", "id": "call_1", "name": "weather", "input": {"city": "Paris"}}]},
                                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "call_1", "content": "sunny"}]}]}),
        ),
    ];
    for (name, input, expected) in cases {
        let upstream = input["model"]
            .as_str()
            .unwrap()
            .split_once('/')
            .unwrap()
            .1
            .to_owned();
        let translated = request(&object(input), &upstream).unwrap();
        assert_eq!(Value::Object(translated), expected, "{name}");
    }
}

#[test]
fn images_translate_between_openai_and_anthropic_and_to_bedrock() {
    let openai = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}]}]});
    let anthropic = request(&object(openai.clone()), "m").unwrap();
    assert_eq!(
        anthropic["messages"][0]["content"],
        json!([
        {"type": "text", "text": "What is this?"},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0K"}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}}])
    );
    // And back: an Anthropic image becomes an OpenAI image part.
    let back =
        crate::translate::anthropic_to_openai::request(&anthropic, "m", "max_tokens").unwrap();
    assert_eq!(
        back["messages"][0]["content"],
        json!([
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0K"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}}])
    );
    // Bedrock takes image bytes: data URLs translate, other URLs are refused by field.
    let mut data_only = openai.clone();
    data_only["messages"][0]["content"]
        .as_array_mut()
        .unwrap()
        .pop();
    let converse = crate::translate::bedrock::request(&object(data_only)).unwrap();
    assert_eq!(
        converse["messages"][0]["content"][1],
        json!({"image": {"format": "png", "source": {"bytes": "iVBORw0K"}}})
    );
    let err = crate::translate::bedrock::request(&object(openai)).unwrap_err();
    assert_eq!(err.param(), Some("messages[].content[].image_url.url"));
}

#[test]
fn untranslatable_requests_name_the_field() {
    let audio = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {"data": "..."}}]}]});
    let err = request(&object(audio), "m").unwrap_err();
    assert_eq!(err.param(), Some("messages[].content"));
    let bad_args = json!({"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "x", "function": {"name": "f", "arguments": "not json"}}]}]});
    assert!(request(&object(bad_args), "m").is_err());
}

#[test]
fn anthropic_responses_become_openai_responses() {
    let message = json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
        "content": [{"type": "text", "text": "Checking."}, {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "cache_read_input_tokens": 30, "cache_creation_input_tokens": 5, "output_tokens": 7}});
    let expected = json!({"id": "msg_1", "object": "chat.completion", "created": 1700000000, "model": "claude-sonnet-4-5",
        "choices": [{"index": 0, "logprobs": null, "finish_reason": "tool_calls",
                     "message": {"role": "assistant", "content": "Checking.",
                                 "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]}}],
        "usage": {"prompt_tokens": 45, "completion_tokens": 7, "total_tokens": 52, "prompt_tokens_details": {"cached_tokens": 30}}});
    assert_eq!(response(&message, 1_700_000_000), expected);
}

#[test]
fn anthropic_stream_events_become_openai_chunks() {
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 8, "cache_read_input_tokens": 2, "output_tokens": 1}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 1, "delta": {"type": "input_json_delta", "partial_json": "{\"a\":"}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 12}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    let mut translator = AnthropicToOpenAi::new(true, 5);
    let frames: Vec<String> = events
        .iter()
        .flat_map(|(name, data)| translator.translate(Some(name), data))
        .map(|frame| String::from_utf8(frame.to_vec()).unwrap())
        .collect();
    let chunk = |delta: Value, finish: Value| {
        format!(
            "data: {}\n\n",
            json!({"id": "msg_1", "object": "chat.completion.chunk", "created": 5, "model": "claude-x",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}], "usage": null})
        )
    };
    let expected = vec![
        chunk(json!({"role": "assistant", "content": ""}), Value::Null),
        chunk(json!({"content": "Hi"}), Value::Null),
        chunk(
            json!({"tool_calls": [{"index": 0, "id": "toolu_9", "type": "function", "function": {"name": "f", "arguments": ""}}]}),
            Value::Null,
        ),
        chunk(
            json!({"tool_calls": [{"index": 0, "function": {"arguments": "{\"a\":"}}]}),
            Value::Null,
        ),
        chunk(json!({}), json!("tool_calls")),
        format!(
            "data: {}\n\n",
            json!({"id": "msg_1", "object": "chat.completion.chunk", "created": 5, "model": "claude-x", "choices": [],
            "usage": {"prompt_tokens": 10, "completion_tokens": 12, "total_tokens": 22, "prompt_tokens_details": {"cached_tokens": 2}}})
        ),
        "data: [DONE]\n\n".to_owned(),
    ];
    assert_eq!(frames, expected);
}

mod reverse {
    use serde_json::{json, Value};

    use super::object;
    use crate::translate::anthropic_to_openai::{request, response, OpenAiToAnthropic};

    #[test]
    fn anthropic_requests_become_openai_requests() {
        let input = json!({"model": "team-openai/gpt-4o", "max_tokens": 50, "system": [{"type": "text", "text": "Be terse."}],
            "stop_sequences": ["END"], "metadata": {"user_id": "u-2"}, "stream": true, "tool_choice": {"type": "tool", "name": "weather"},
            "tools": [{"name": "weather", "description": "Get weather", "input_schema": {"type": "object"}}],
            "messages": [{"role": "user", "content": "Weather in Paris?"},
                         {"role": "assistant", "content": [{"type": "text", "text": "Checking."}, {"type": "tool_use", "id": "toolu_1", "name": "weather", "input": {"city": "Paris"}}]},
                         {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [{"type": "text", "text": "sunny"}]}]}]});
        let expected = json!({"model": "gpt-4o", "max_completion_tokens": 50, "stream": true, "stop": ["END"], "user": "u-2",
            "tool_choice": {"type": "function", "function": {"name": "weather"}},
            "tools": [{"type": "function", "function": {"name": "weather", "description": "Get weather", "parameters": {"type": "object"}}}],
            "messages": [{"role": "system", "content": "Be terse."},
                         {"role": "user", "content": "Weather in Paris?"},
                         {"role": "assistant", "content": "Checking.", "tool_calls": [{"id": "toolu_1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Paris\"}"}}]},
                         {"role": "tool", "tool_call_id": "toolu_1", "content": "sunny"}]});
        assert_eq!(
            Value::Object(request(&object(input), "gpt-4o", "max_completion_tokens").unwrap()),
            expected
        );
    }

    #[test]
    fn openai_responses_become_anthropic_messages() {
        let completion = json!({"id": "chatcmpl-1", "object": "chat.completion", "model": "gpt-4o",
            "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hi"}}],
            "usage": {"prompt_tokens": 40, "completion_tokens": 9, "prompt_tokens_details": {"cached_tokens": 30}}});
        let expected = json!({"id": "chatcmpl-1", "type": "message", "role": "assistant", "model": "gpt-4o",
            "content": [{"type": "text", "text": "Hi"}], "stop_reason": "max_tokens", "stop_sequence": null,
            "usage": {"input_tokens": 10, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 30, "output_tokens": 9}});
        assert_eq!(response(&completion), expected);
    }

    #[test]
    fn openai_chunks_become_anthropic_events() {
        let chunks = [
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"role":"assistant","content":""},"finish_reason":null}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":null}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"call_1","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{}"}}]},"finish_reason":null}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
            r#"{"id":"c1","model":"gpt-4o","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3}}"#,
            "[DONE]",
        ];
        let mut translator = OpenAiToAnthropic::new();
        let events: Vec<(String, Value)> = chunks
            .iter()
            .flat_map(|chunk| translator.translate(chunk))
            .map(|frame| {
                let text = String::from_utf8(frame.to_vec()).unwrap();
                let (name, data) = text.trim_end().split_once('\n').unwrap();
                (
                    name.trim_start_matches("event: ").to_owned(),
                    serde_json::from_str(data.trim_start_matches("data: ")).unwrap(),
                )
            })
            .collect();
        let names: Vec<&str> = events.iter().map(|(name, _)| name.as_str()).collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert_eq!(
            events[2].1["delta"],
            json!({"type": "text_delta", "text": "Hi"})
        );
        assert_eq!(
            events[4].1["content_block"],
            json!({"type": "tool_use", "id": "call_1", "name": "f", "input": {}})
        );
        assert_eq!(
            events[5].1["delta"],
            json!({"type": "input_json_delta", "partial_json": "{}"})
        );
        assert_eq!(events[7].1["delta"]["stop_reason"], "tool_use");
        assert_eq!(events[7].1["usage"]["output_tokens"], 3);
        assert_eq!(events[7].1["usage"]["input_tokens"], 7);
    }
}

mod bedrock {
    use serde_json::{json, Value};

    use super::object;
    use crate::translate::bedrock::{request, response};

    #[test]
    fn openai_requests_become_converse_requests() {
        let input = json!({"model": "aws/m", "max_tokens": 64, "temperature": 0.5, "stop": ["END"], "tool_choice": "required",
            "tools": [{"type": "function", "function": {"name": "weather", "parameters": {"type": "object"}}}],
            "messages": [{"role": "system", "content": "Be terse."}, {"role": "user", "content": "Weather?"},
                         {"role": "assistant", "content": null, "tool_calls": [{"id": "t1", "type": "function", "function": {"name": "weather", "arguments": "{\"city\":\"Oslo\"}"}}]},
                         {"role": "tool", "tool_call_id": "t1", "content": "snow"}]});
        let expected = json!({"system": [{"text": "Be terse."}],
            "inferenceConfig": {"maxTokens": 64, "temperature": 0.5, "stopSequences": ["END"]},
            "toolConfig": {"tools": [{"toolSpec": {"name": "weather", "inputSchema": {"json": {"type": "object"}}}}], "toolChoice": {"any": {}}},
            "messages": [{"role": "user", "content": [{"text": "Weather?"}]},
                         {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "weather", "input": {"city": "Oslo"}}}]},
                         {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "snow"}], "status": "success"}}]}]});
        assert_eq!(Value::Object(request(&object(input)).unwrap()), expected);
    }

    #[test]
    fn converse_responses_become_openai_responses() {
        let converse = json!({"output": {"message": {"role": "assistant", "content": [{"text": "Hi"}]}}, "stopReason": "max_tokens",
            "usage": {"inputTokens": 10, "outputTokens": 4, "totalTokens": 14, "cacheReadInputTokens": 6}, "metrics": {"latencyMs": 9}});
        let translated = response(&converse, "amazon.nova-lite-v1:0", "req-1", 7);
        assert_eq!(translated["choices"][0]["message"]["content"], "Hi");
        assert_eq!(translated["choices"][0]["finish_reason"], "length");
        assert_eq!(
            translated["usage"],
            json!({"prompt_tokens": 16, "completion_tokens": 4, "total_tokens": 20, "prompt_tokens_details": {"cached_tokens": 6}})
        );
        assert_eq!(translated["model"], "amazon.nova-lite-v1:0");
    }
}
