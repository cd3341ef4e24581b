//! Prompt and completion bodies: opaque outside this crate. A client body is read once, with a
//! size limit, into [`PromptBody`]; the metadata the rest of Keyward needs is copied out as a
//! [`RouteRequest`].

use bytes::Bytes;
use http_body_util::BodyExt;
use serde_json::{Map, Value};

/// Which client-facing API a request came in on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Surface {
    /// OpenAI `POST /v1/chat/completions`.
    ChatCompletions,
    /// Anthropic `POST /v1/messages`.
    Messages,
    /// OpenAI `POST /v1/embeddings`.
    Embeddings,
    /// OpenAI `POST /v1/responses`.
    Responses,
}

impl Surface {
    pub fn endpoint(self) -> &'static str {
        match self {
            Self::ChatCompletions => "/v1/chat/completions",
            Self::Messages => "/v1/messages",
            Self::Embeddings => "/v1/embeddings",
            Self::Responses => "/v1/responses",
        }
    }
}

/// A client's request body. No `Debug`, `Display`, `Clone` or `Serialize`.
pub struct PromptBody {
    json: Map<String, Value>,
    /// Size of the body as the client sent it.
    input_bytes: u64,
}

/// A provider's complete response body, relayed to the client as it is.
pub struct CompletionBody {
    bytes: Bytes,
}

static_assertions::assert_not_impl_any!(PromptBody: std::fmt::Debug, std::fmt::Display, Clone);
static_assertions::assert_not_impl_any!(CompletionBody: std::fmt::Debug, std::fmt::Display, Clone);

/// The largest output ceiling a request may set: above any model's output limit, and small
/// enough that a worst-case cost never overflows.
pub const MAX_OUTPUT_TOKENS: u64 = 1_000_000;

/// Metadata of a request: what routing, authorization and the ledger need, and nothing else.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteRequest {
    pub model: String,
    pub stream: bool,
    /// The output ceiling: the client's (see `PromptBody::output_ceiling`); the domain fills in
    /// its default before the call, and the router sends exactly this number upstream.
    pub max_tokens: Option<u64>,
    /// OpenAI `user` / Anthropic `metadata.user_id`, recorded as an attribution tag.
    pub user: Option<String>,
    /// Whether the client itself asked for streamed usage (OpenAI `stream_options.include_usage`).
    pub client_wants_usage: bool,
    /// The request body's size in bytes.
    pub input_bytes: u64,
    /// What bounds its input tokens (the bytes, plus each image at its maximum), or why
    /// nothing does; budgets reserve for it.
    pub input_bound: crate::InputBound,
}

/// Client request headers that a provider must see as the client sent them: Anthropic's API
/// version and beta flags (prompt caching, extended output, …). Validated printable ASCII.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ClientHeaders {
    pub anthropic_version: Option<String>,
    pub anthropic_beta: Option<String>,
    /// A W3C `traceparent` to send upstream (validated by the HTTP layer).
    pub traceparent: Option<String>,
}

impl ClientHeaders {
    /// Keeps a header value only if it is short printable ASCII.
    pub fn accept(value: &str) -> Option<String> {
        let value = value.trim();
        (!value.is_empty()
            && value.len() <= 512
            && value.chars().all(|c| c.is_ascii_graphic() || c == ' '))
        .then(|| value.to_owned())
    }
}

/// A request body Keyward cannot use. Messages give a position or a field path, never text.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error(
        "request body is larger than the server's limit of {limit} bytes (server.max_body_bytes)"
    )]
    TooLarge { limit: usize },
    #[error("the request body could not be read")]
    Unreadable,
    #[error("malformed JSON at line {line} column {column}")]
    InvalidJson { line: usize, column: usize },
    #[error("the request body must be a JSON object")]
    NotAnObject,
    #[error("`{path}` is required")]
    MissingField { path: &'static str },
    #[error("`{path}` must be {expected}")]
    InvalidField {
        path: &'static str,
        expected: &'static str,
    },
}

impl BodyError {
    /// The request field at fault, for the error's `param`.
    pub fn param(&self) -> Option<&'static str> {
        match self {
            Self::MissingField { path } | Self::InvalidField { path, .. } => Some(path),
            _ => None,
        }
    }
}

impl PromptBody {
    /// Reads a client body, refusing more than `limit` bytes.
    pub async fn read<B>(body: B, limit: usize) -> Result<Self, BodyError>
    where
        B: http_body::Body<Data = Bytes>,
        B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    {
        #[expect(
            clippy::disallowed_methods,
            reason = "the router is the one place allowed to buffer a prompt"
        )]
        let collected = http_body_util::Limited::new(body, limit)
            .collect()
            .await
            .map_err(|err| {
                if err
                    .downcast_ref::<http_body_util::LengthLimitError>()
                    .is_some()
                {
                    BodyError::TooLarge { limit }
                } else {
                    BodyError::Unreadable
                }
            })?;
        Self::parse(&collected.to_bytes())
    }

    pub fn parse(bytes: &[u8]) -> Result<Self, BodyError> {
        match serde_json::from_slice::<Value>(bytes) {
            Ok(Value::Object(json)) => Ok(Self {
                json,
                input_bytes: bytes.len() as u64,
            }),
            Ok(_) => Err(BodyError::NotAnObject),
            Err(err) => Err(BodyError::InvalidJson {
                line: err.line(),
                column: err.column(),
            }),
        }
    }

    /// Copies out the metadata, checking the fields Keyward relies on.
    pub fn route_request(&self, surface: Surface) -> Result<RouteRequest, BodyError> {
        let model = match self.json.get("model") {
            None => return Err(BodyError::MissingField { path: "model" }),
            Some(Value::String(model)) if !model.trim().is_empty() && model.len() <= 256 => {
                model.trim().to_owned()
            }
            Some(_) => {
                return Err(BodyError::InvalidField {
                    path: "model",
                    expected: "a model name such as team-openai/gpt-4o-mini",
                })
            }
        };
        let stream = match self.json.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(stream)) => *stream,
            Some(_) => {
                return Err(BodyError::InvalidField {
                    path: "stream",
                    expected: "true or false",
                })
            }
        };
        let max_tokens = self.output_ceiling(surface)?;
        let user = match surface {
            Surface::ChatCompletions | Surface::Embeddings | Surface::Responses => {
                self.json.get("user").and_then(Value::as_str)
            }
            Surface::Messages => self
                .json
                .get("metadata")
                .and_then(|metadata| metadata.get("user_id"))
                .and_then(Value::as_str),
        }
        .map(|user| user.chars().take(256).collect());
        let client_wants_usage = self
            .json
            .get("stream_options")
            .and_then(|options| options.get("include_usage"))
            .and_then(Value::as_bool)
            == Some(true);
        Ok(RouteRequest {
            model,
            stream,
            max_tokens,
            user,
            client_wants_usage,
            input_bytes: self.input_bytes,
            input_bound: crate::InputBound::of(&self.json, self.input_bytes),
        })
    }

    /// The output ceiling the client set, read from the one field the surface's API defines
    /// (chat completions: `max_completion_tokens`, else the older `max_tokens`; Messages:
    /// `max_tokens`; Responses: `max_output_tokens`). Other spellings are ignored here and
    /// removed from the upstream request ([`PromptBody::set_output_ceiling`]), so the number
    /// reserved is the number the provider sees.
    fn output_ceiling(&self, surface: Surface) -> Result<Option<u64>, BodyError> {
        let fields: &[&'static str] = match surface {
            Surface::ChatCompletions => &["max_completion_tokens", "max_tokens"],
            Surface::Messages => &["max_tokens"],
            Surface::Responses => &["max_output_tokens"],
            Surface::Embeddings => &[],
        };
        for field in fields {
            match self.json.get(*field) {
                None | Some(Value::Null) => continue,
                Some(value) => {
                    return match value.as_u64() {
                        Some(ceiling @ 1..=MAX_OUTPUT_TOKENS) => Ok(Some(ceiling)),
                        _ => Err(BodyError::InvalidField {
                            path: field,
                            expected: "a whole number of tokens from 1 to 1000000",
                        }),
                    };
                }
            }
        }
        Ok(None)
    }

    /// Writes `ceiling` into the one field the upstream API reads (`field`) and removes every
    /// other spelling, so a provider cannot be given a higher cap than the one reserved.
    pub(crate) fn set_output_ceiling(&mut self, field: &str, ceiling: u64) {
        for alias in ["max_completion_tokens", "max_tokens", "max_output_tokens"] {
            self.json.remove(alias);
        }
        self.json.insert(field.into(), Value::from(ceiling));
    }

    /// A working copy for one upstream attempt, which the provider plan then adjusts (model
    /// name, usage request). Crate-private: outside the router a prompt exists once.
    pub(crate) fn attempt_copy(&self) -> Self {
        Self {
            json: self.json.clone(),
            input_bytes: self.input_bytes,
        }
    }

    pub(crate) fn json(&self) -> &Map<String, Value> {
        &self.json
    }

    /// The body to change in place; `added_bytes` grows the size budgets reserve by.
    pub(crate) fn json_mut(&mut self, added_bytes: u64) -> &mut Map<String, Value> {
        self.input_bytes = self.input_bytes.saturating_add(added_bytes);
        &mut self.json
    }

    /// A body built by Keyward itself (an embedding request).
    pub(crate) fn from_json(json: Map<String, Value>) -> Self {
        let input_bytes = serde_json::to_vec(&json).map_or(0, |bytes| bytes.len() as u64);
        Self { json, input_bytes }
    }

    /// Replaces the whole body (format translation).
    pub(crate) fn replace(&mut self, json: Map<String, Value>) {
        self.json = json;
    }

    /// Replaces the model with the provider's own name for it (`label/model` → `model`).
    pub(crate) fn set_model(&mut self, model: &str) {
        self.json.insert("model".into(), Value::from(model));
    }

    /// Asks an OpenAI-style provider to report usage on a stream. Returns whether Keyward added
    /// the request (and so must hide the extra usage chunk from the client).
    pub(crate) fn request_stream_usage(&mut self) -> bool {
        let options = self
            .json
            .entry("stream_options")
            .or_insert_with(|| Value::Object(Map::new()));
        let Value::Object(options) = options else {
            return false;
        };
        if options.get("include_usage").and_then(Value::as_bool) == Some(true) {
            return false;
        }
        options.insert("include_usage".into(), Value::Bool(true));
        true
    }

    pub(crate) fn to_vec(&self) -> Vec<u8> {
        serde_json::to_vec(&self.json).unwrap_or_default()
    }
}

impl CompletionBody {
    pub(crate) fn new(bytes: Bytes) -> Self {
        Self { bytes }
    }

    pub(crate) fn bytes(&self) -> &Bytes {
        &self.bytes
    }

    /// An HTTP body for the response to the client. The bytes are not handed out: reading
    /// them would take `collect()`, which is banned outside the router.
    pub fn into_http_body(self) -> http_body_util::Full<Bytes> {
        http_body_util::Full::new(self.bytes)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn route_requests_carry_metadata_only() {
        let body = PromptBody::parse(
            br#"{"model": "team/gpt-4o", "stream": true, "max_tokens": 50, "user": "u-1",
                "messages": [{"role": "user", "content": "secret plans"}]}"#,
        )
        .unwrap();
        let route = body.route_request(Surface::ChatCompletions).unwrap();
        assert_eq!(route.model, "team/gpt-4o");
        assert!(route.stream);
        assert_eq!(route.max_tokens, Some(50));
        assert_eq!(route.user.as_deref(), Some("u-1"));
        assert!(!format!("{route:?}").contains("secret plans"));
    }

    #[test]
    fn body_errors_never_quote_the_body() {
        let canary = "CANARY-body-8d2f";
        for text in [
            format!(r#"{{"model": 5, "messages": "{canary}"}}"#),
            format!(r#"{{"model": "m", "stream": "{canary}"}}"#),
            format!(r#"["{canary}"]"#),
            format!(r#"{{"model": "{canary}"#),
            format!(r#"{{"messages": "{canary}"}}"#),
        ] {
            let err = PromptBody::parse(text.as_bytes())
                .and_then(|body| body.route_request(Surface::ChatCompletions))
                .err()
                .unwrap();
            assert!(!err.to_string().contains("CANARY"), "{err}");
            assert!(!format!("{err:?}").contains("CANARY"), "{err:?}");
        }
    }

    #[test]
    fn usage_is_requested_once_and_only_when_missing() {
        let mut body = PromptBody::parse(br#"{"model": "m", "stream": true}"#).unwrap();
        assert!(body.request_stream_usage());
        assert!(!body.request_stream_usage());
        let mut asked =
            PromptBody::parse(br#"{"model": "m", "stream_options": {"include_usage": true}}"#)
                .unwrap();
        assert!(!asked.request_stream_usage());
    }
}
