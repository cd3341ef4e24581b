//! The mock's deterministic token accounting and reply.

use serde_json::Value;

/// The reply, one token per word. Distinctive words, so tests can grep for any single one.
pub const REPLY_WORDS: [&str; 6] = ["Mockly", " answers", " with", " quokka", " words", "."];

/// ceil(bytes / 4), at least 1.
pub(crate) fn tokens_of(bytes: usize) -> u64 {
    (bytes as u64).div_ceil(4).max(1)
}

/// UTF-8 bytes of every text in a message list: string contents and `text` parts/blocks.
pub(crate) fn text_bytes(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len(),
        Value::Array(items) => items.iter().map(text_bytes).sum(),
        Value::Object(map) => ["content", "text"]
            .iter()
            .filter_map(|field| map.get(*field))
            .map(text_bytes)
            .sum(),
        _ => 0,
    }
}

/// The reply cut at `max_tokens`, and whether it was cut.
pub(crate) fn reply(max_tokens: Option<u64>) -> (Vec<&'static str>, bool) {
    let limit = max_tokens.map_or(REPLY_WORDS.len(), |max| {
        usize::try_from(max).unwrap_or(usize::MAX)
    });
    let words: Vec<_> = REPLY_WORDS.iter().copied().take(limit).collect();
    let cut = words.len() < REPLY_WORDS.len();
    (words, cut)
}

/// The fault a model name asks for.
#[derive(Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fault {
    None,
    Status(u16),
    Stall,
    /// A normal answer, one second late.
    SlowResponse,
    SlowStream,
    Drop,
    MalformedSse,
    /// A stream of tiny events that never ends (until the client leaves).
    Endless,
    /// A stream that sends its first event, then nothing for a minute.
    StallStream,
    Oversized,
}

pub(crate) fn fault_of(model: &str) -> Fault {
    match model {
        "mock-error-429" => Fault::Status(429),
        "mock-error-500" => Fault::Status(500),
        "mock-error-529" => Fault::Status(529),
        "mock-stall" => Fault::Stall,
        "mock-slow-response" => Fault::SlowResponse,
        "mock-slow-stream" => Fault::SlowStream,
        "mock-drop" => Fault::Drop,
        "mock-malformed-sse" => Fault::MalformedSse,
        "mock-endless" => Fault::Endless,
        "mock-stall-stream" => Fault::StallStream,
        "mock-oversized" => Fault::Oversized,
        _ => Fault::None,
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}
