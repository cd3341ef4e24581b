//! Token usage as providers report it, normalised to the ledger's meaning: `input_tokens` is
//! all input, cached included; `output_tokens` includes reasoning.

use serde_json::Value;

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageReport {
    pub input_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    /// The model the provider says answered (may be a dated snapshot of the one requested).
    pub model_reported: Option<String>,
}

fn field(value: &Value, path: &[&str]) -> Option<u64> {
    path.iter()
        .try_fold(value, |value, key| value.get(*key))
        .and_then(Value::as_u64)
}

impl UsageReport {
    /// OpenAI-style `usage` (chat completions; also Mistral, Groq, vLLM, Ollama).
    pub(crate) fn merge_openai(&mut self, usage: &Value) {
        if !usage.is_object() {
            return;
        }
        self.input_tokens = field(usage, &["prompt_tokens"]).or(self.input_tokens);
        self.output_tokens = field(usage, &["completion_tokens"]).or(self.output_tokens);
        self.cached_input_tokens =
            field(usage, &["prompt_tokens_details", "cached_tokens"]).or(self.cached_input_tokens);
        self.reasoning_tokens = field(usage, &["completion_tokens_details", "reasoning_tokens"])
            .or(self.reasoning_tokens);
    }

    /// Responses API `usage`: `input_tokens` (cached included), `output_tokens` (reasoning
    /// included) and their details.
    pub(crate) fn merge_responses(&mut self, usage: &Value) {
        if !usage.is_object() {
            return;
        }
        self.input_tokens = field(usage, &["input_tokens"]).or(self.input_tokens);
        self.output_tokens = field(usage, &["output_tokens"]).or(self.output_tokens);
        self.cached_input_tokens =
            field(usage, &["input_tokens_details", "cached_tokens"]).or(self.cached_input_tokens);
        self.reasoning_tokens =
            field(usage, &["output_tokens_details", "reasoning_tokens"]).or(self.reasoning_tokens);
    }

    /// Bedrock `usage` (`inputTokens` excludes cache reads and writes, as Anthropic's).
    pub(crate) fn merge_bedrock(&mut self, usage: &Value) {
        if !usage.is_object() {
            return;
        }
        let read = field(usage, &["cacheReadInputTokens"]);
        let write = field(usage, &["cacheWriteInputTokens"]);
        self.cached_input_tokens = read.or(self.cached_input_tokens);
        self.cache_write_tokens = write.or(self.cache_write_tokens);
        if let Some(input) = field(usage, &["inputTokens"]) {
            self.input_tokens = Some(
                input
                    .saturating_add(read.unwrap_or(0))
                    .saturating_add(write.unwrap_or(0)),
            );
        }
        self.output_tokens = field(usage, &["outputTokens"]).or(self.output_tokens);
    }

    /// Anthropic `usage`: its `input_tokens` excludes cache reads and writes, so they are added.
    /// Stream events carry cumulative counts; a later event's fields replace earlier ones.
    pub(crate) fn merge_anthropic(&mut self, usage: &Value) {
        if !usage.is_object() {
            return;
        }
        let uncached = field(usage, &["input_tokens"]);
        let read = field(usage, &["cache_read_input_tokens"]);
        let write = field(usage, &["cache_creation_input_tokens"]);
        if read.is_some() {
            self.cached_input_tokens = read;
        }
        if write.is_some() {
            self.cache_write_tokens = write;
        }
        if let Some(uncached) = uncached {
            self.input_tokens = Some(
                uncached
                    .saturating_add(self.cached_input_tokens.unwrap_or(0))
                    .saturating_add(self.cache_write_tokens.unwrap_or(0)),
            );
        }
        self.output_tokens = field(usage, &["output_tokens"]).or(self.output_tokens);
    }

    pub(crate) fn set_model(&mut self, model: Option<&str>) {
        if let Some(model) = model.filter(|model| !model.is_empty()) {
            self.model_reported = Some(model.chars().take(256).collect());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn openai_usage_keeps_cached_and_reasoning_details() {
        let mut usage = UsageReport::default();
        usage.merge_openai(&json!({"prompt_tokens": 100, "completion_tokens": 20,
            "prompt_tokens_details": {"cached_tokens": 40}, "completion_tokens_details": {"reasoning_tokens": 5}}));
        assert_eq!(usage.input_tokens, Some(100));
        assert_eq!(usage.cached_input_tokens, Some(40));
        assert_eq!(usage.output_tokens, Some(20));
        assert_eq!(usage.reasoning_tokens, Some(5));
    }

    #[test]
    fn anthropic_input_adds_cache_reads_and_writes() {
        let mut usage = UsageReport::default();
        usage.merge_anthropic(&json!({"input_tokens": 10, "cache_read_input_tokens": 30,
            "cache_creation_input_tokens": 5, "output_tokens": 1}));
        usage.merge_anthropic(&json!({"output_tokens": 42}));
        assert_eq!(usage.input_tokens, Some(45));
        assert_eq!(usage.cached_input_tokens, Some(30));
        assert_eq!(usage.cache_write_tokens, Some(5));
        assert_eq!(usage.output_tokens, Some(42));
    }
}
