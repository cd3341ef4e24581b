//! What bounds a request's input tokens. Its bytes bound its text (a token is at least one
//! byte), but not everything a request makes the provider read: an image costs tokens by its
//! pixels, whatever its bytes (a 1×1 data URL is 100 bytes, a linked photo 30); a file
//! reference or a previous response brings in tokens the request does not carry at all.
//!
//! Invariant: [`InputBound::tokens`] is an upper bound of the input the provider bills, or the
//! bound is `Unbounded` with the field that makes it so — never an estimate that can be low.

use serde_json::{Map, Value};

/// Tokens reserved for each image, above the documented maximum of current vision models
/// (Anthropic: about 1,600 for the largest image it accepts unscaled; OpenAI: 1,105 for a
/// high-detail 2048×768 on GPT-4o, 1,536 patches on GPT-4.1 mini).
pub const IMAGE_TOKENS: u64 = 6_000;

/// How deep a request is searched; deeper nesting is not a chat request.
const MAX_DEPTH: usize = 32;

/// A request's input, bounded or not.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InputBound {
    /// At most this many input tokens.
    Tokens(u64),
    /// No bound can be set before the call: the field that makes it so.
    Unbounded(&'static str),
}

impl InputBound {
    /// The bound of a request `input_bytes` long whose JSON is `json`.
    pub(crate) fn of(json: &Map<String, Value>, input_bytes: u64) -> Self {
        if json
            .get("previous_response_id")
            .is_some_and(|id| !id.is_null())
        {
            return Self::Unbounded("previous_response_id");
        }
        let mut images = 0_u64;
        if let Some(field) = json.values().find_map(|value| scan(value, 0, &mut images)) {
            return Self::Unbounded(field);
        }
        Self::Tokens(input_bytes.saturating_add(images.saturating_mul(IMAGE_TOKENS)))
    }

    /// The tokens to reserve for; an unbounded input reserves its bytes (the caller refuses it
    /// where a hard cap applies).
    pub fn tokens(self, input_bytes: u64) -> u64 {
        match self {
            Self::Tokens(tokens) => tokens,
            Self::Unbounded(_) => input_bytes,
        }
    }
}

/// Counts images; returns the field of a reference to content the request does not carry.
fn scan(value: &Value, depth: usize, images: &mut u64) -> Option<&'static str> {
    if depth > MAX_DEPTH {
        return Some("messages (nested too deeply to bound)");
    }
    match value {
        Value::Array(items) => items.iter().find_map(|item| scan(item, depth + 1, images)),
        Value::Object(fields) => {
            if fields.contains_key("file_id") {
                return Some("file_id");
            }
            match fields.get("type").and_then(Value::as_str) {
                Some("image_url" | "input_image" | "image") => *images += 1,
                Some("file" | "input_file" | "document") => return Some("a file or document part"),
                _ => {}
            }
            fields
                .values()
                .find_map(|item| scan(item, depth + 1, images))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn bound(value: Value, input_bytes: u64) -> InputBound {
        match value {
            Value::Object(map) => InputBound::of(&map, input_bytes),
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn images_are_reserved_at_their_maximum_and_references_are_unbounded() {
        let text = json!({"messages": [{"role": "user", "content": "hi"}]});
        assert_eq!(bound(text, 50), InputBound::Tokens(50));
        let two_images = json!({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "https://example.com/a.png"}},
            {"type": "image", "source": {"type": "base64", "data": "aGk="}}]}]});
        assert_eq!(
            bound(two_images, 200),
            InputBound::Tokens(200 + 2 * IMAGE_TOKENS)
        );
        let file = json!({"messages": [{"role": "user", "content": [{"type": "file", "file": {"file_id": "file-1"}}]}]});
        assert!(matches!(bound(file, 10), InputBound::Unbounded(_)));
        let previous = json!({"previous_response_id": "resp_1", "input": "and then?"});
        assert_eq!(
            bound(previous, 10),
            InputBound::Unbounded("previous_response_id")
        );
        let mut deep = json!("x");
        for _ in 0..40 {
            deep = json!([deep]);
        }
        assert!(matches!(
            bound(json!({"messages": deep}), 10),
            InputBound::Unbounded(_)
        ));
    }
}
