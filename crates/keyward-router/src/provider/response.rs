//! Reading a provider's answer, the same way for model calls and verifications: the response
//! head (the few headers Keyward keeps, each cut to 200 characters), whether the provider
//! refused the key itself, and the usage a whole answer reports.
//!
//! Invariant: one `key_rejected` decides a rejection for every dialect; a call and a
//! verification cannot disagree about the same answer.

use serde_json::Value;

use super::{anthropic, bedrock, openai};
use crate::stream::Dialect;
use crate::UsageReport;

/// Longest header value kept (ids and types only; anything longer is cut).
const MAX_HEADER_CHARS: usize = 200;

/// The headers of a provider's answer that Keyward keeps.
pub(crate) struct ResponseHead {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    /// `x-request-id` (OpenAI), `request-id` (Anthropic) or `x-amzn-requestid` (AWS).
    pub provider_request_id: Option<String>,
    /// AWS's `x-amzn-errortype`, without its `:` suffix.
    pub aws_error_type: Option<String>,
}

impl ResponseHead {
    pub(crate) fn read(response: &reqwest::Response) -> Self {
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(|value| value.chars().take(MAX_HEADER_CHARS).collect::<String>())
        };
        Self {
            status: response.status().as_u16(),
            content_type: header("content-type"),
            retry_after: header("retry-after"),
            provider_request_id: header("x-request-id")
                .or_else(|| header("request-id"))
                .or_else(|| header("x-amzn-requestid")),
            aws_error_type: bedrock::error_type(header("x-amzn-errortype").as_deref()),
        }
    }

    pub(crate) fn success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// Whether the answer is a stream of events (SSE, or AWS's event stream).
    pub(crate) fn is_event_stream(&self) -> bool {
        self.content_type.as_deref().is_some_and(|value| {
            value.starts_with("text/event-stream")
                || value.starts_with("application/vnd.amazon.eventstream")
        })
    }

    /// Whether the provider refused the credential itself (revoked, expired, wrong key).
    pub(crate) fn key_rejected(&self, dialect: Dialect, json: Option<&Value>) -> bool {
        match dialect {
            Dialect::Bedrock => {
                bedrock::key_rejected(self.status, self.aws_error_type.as_deref(), json)
            }
            Dialect::OpenAi | Dialect::OpenAiResponses => openai::key_rejected(self.status),
            Dialect::Anthropic => anthropic::key_rejected(self.status, json),
        }
    }

    /// The usage a whole successful answer reports (Bedrock's names no model: `model` does).
    pub(crate) fn usage(&self, dialect: Dialect, json: Option<&Value>, model: &str) -> UsageReport {
        let mut usage = UsageReport::default();
        if !self.success() {
            return usage;
        }
        if let Some(json) = json {
            usage.set_model(json.get("model").and_then(|model| model.as_str()));
            if let Some(reported) = json.get("usage") {
                match dialect {
                    Dialect::OpenAi => usage.merge_openai(reported),
                    Dialect::Anthropic => usage.merge_anthropic(reported),
                    Dialect::OpenAiResponses => usage.merge_responses(reported),
                    Dialect::Bedrock => usage.merge_bedrock(reported),
                }
            }
        }
        if dialect == Dialect::Bedrock {
            usage.set_model(Some(model));
        }
        usage
    }
}
