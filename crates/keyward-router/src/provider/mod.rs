//! Calling a provider: the request plan per provider family ([`openai`], [`anthropic`]), the
//! send with timeouts, and the reply — complete (bounded) or streaming.

mod anthropic;
mod bedrock;
mod openai;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use keyward_core::secret::ProviderSecret;
use keyward_core::ProviderId;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use tokio::sync::oneshot;
use url::Url;

use crate::stream::Dialect;
use crate::{
    ClientHeaders, CompletionBody, CompletionStream, EgressClient, PromptBody, RouteRequest,
    RouterError, StreamOutcome, Surface, UsageReport,
};

/// Where and as whom to call: one tenant credential, opened for this call only.
pub struct Target {
    pub provider: ProviderId,
    /// The credential's options, `base_url` included.
    pub options: BTreeMap<String, String>,
    pub secret: Option<ProviderSecret>,
    /// The provider's own name of the model (the part after `label/`).
    pub model: String,
}

/// A provider's answer.
pub enum UpstreamReply {
    Complete(Box<CompleteReply>),
    Streaming(Box<StreamingReply>),
}

/// A whole response: success, or the provider's error, relayed as it came.
pub struct CompleteReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub retry_after: Option<String>,
    pub provider_request_id: Option<String>,
    pub body: CompletionBody,
    pub usage: UsageReport,
    /// The provider refused the credential itself (revoked, expired, wrong key).
    pub key_rejected: bool,
    pub first_byte: Duration,
    pub elapsed: Duration,
}

/// A successful stream; its outcome arrives when it ends, however it ends.
pub struct StreamingReply {
    pub status: u16,
    pub content_type: Option<String>,
    pub provider_request_id: Option<String>,
    pub stream: CompletionStream,
    pub outcome: oneshot::Receiver<StreamOutcome>,
}

/// The answer to a verification call.
#[derive(Clone, Debug)]
pub struct Verification {
    pub status: u16,
    /// The provider accepted the credential.
    pub accepted: bool,
    pub key_rejected: bool,
    pub provider_request_id: Option<String>,
    pub elapsed: Duration,
}

/// What one provider family needs for one call.
pub(crate) struct Plan {
    pub url: Url,
    pub headers: HeaderMap,
    pub dialect: Dialect,
    pub hide_usage_chunk: bool,
    /// Set when the provider's answer must be translated to the client's format.
    pub translation: Option<Translation>,
}

/// A response translation.
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

/// A header value that must not appear in debug output of the client or its logs.
pub(crate) fn sensitive(value: &str) -> Result<HeaderValue, RouterError> {
    let mut header = HeaderValue::from_str(value).map_err(|_| RouterError::BadSecret)?;
    header.set_sensitive(true);
    Ok(header)
}

pub(crate) fn base_url(target: &Target, default: Option<&str>) -> Result<Url, RouterError> {
    let base = target
        .options
        .get("base_url")
        .map(String::as_str)
        .or(default)
        .ok_or(RouterError::BadBaseUrl {
            reason: "this provider needs a base_url",
        })?;
    Url::parse(base.trim_end_matches('/')).map_err(|_| RouterError::BadBaseUrl {
        reason: "not an absolute URL",
    })
}

/// `base` with `path` appended (keeps the base's own path, e.g. `/v1`).
pub(crate) fn join(base: &Url, segments: &[&str]) -> Result<Url, RouterError> {
    let mut url = base.clone();
    url.path_segments_mut()
        .map_err(|()| RouterError::BadBaseUrl {
            reason: "the URL cannot have a path",
        })?
        .pop_if_empty()
        .extend(segments);
    Ok(url)
}

/// Whether calls on `surface` can go to a `provider` credential (chat completions and messages
/// cross between OpenAI-style and Anthropic providers by translation; Bedrock is not built yet).
pub fn supports(surface: Surface, provider: ProviderId) -> bool {
    match surface {
        Surface::Messages => true,
        Surface::ChatCompletions => true,
        Surface::Responses => matches!(provider, ProviderId::OpenAi | ProviderId::OpenAiCompatible),
        Surface::Embeddings => matches!(
            provider,
            ProviderId::OpenAi
                | ProviderId::AzureOpenAi
                | ProviderId::Mistral
                | ProviderId::OpenAiCompatible
        ),
    }
}

pub(crate) fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0)
}

/// The provider client.
pub struct Router {
    egress: EgressClient,
    max_response_bytes: usize,
}

impl Router {
    pub fn new(egress: EgressClient, max_response_bytes: usize) -> Self {
        Self {
            egress,
            max_response_bytes,
        }
    }

    /// Sends one call on `target` and returns the provider's reply.
    pub async fn send(
        &self,
        surface: Surface,
        target: &Target,
        prompt: &PromptBody,
        route: &RouteRequest,
        client: &ClientHeaders,
    ) -> Result<UpstreamReply, RouterError> {
        let mut prompt = prompt.attempt_copy();
        if !supports(surface, target.provider) {
            return Err(RouterError::Unsupported {
                surface: surface.endpoint(),
                provider: target.provider.as_str(),
            });
        }
        let mut signing = None;
        let mut plan = match (surface, target.provider) {
            (Surface::ChatCompletions, ProviderId::Bedrock) => {
                let (plan, sign) = bedrock::plan(target, &mut prompt, route)?;
                signing = Some(sign);
                plan
            }
            (Surface::Messages, ProviderId::Bedrock) => {
                let as_openai = crate::translate::anthropic_to_openai::request(
                    prompt.json(),
                    &target.model,
                    "max_tokens",
                )?;
                prompt.replace(as_openai);
                let (mut plan, sign) = bedrock::plan(target, &mut prompt, route)?;
                plan.translation = Some(Translation::BedrockToAnthropic);
                signing = Some(sign);
                plan
            }
            (Surface::ChatCompletions, ProviderId::Anthropic) => {
                anthropic::plan_from_openai(target, &mut prompt, route, client)?
            }
            (Surface::Messages, ProviderId::Anthropic) => {
                anthropic::plan(target, &mut prompt, client)?
            }
            (Surface::Messages, _) => openai::plan_from_anthropic(target, &mut prompt, route)?,
            (Surface::ChatCompletions | Surface::Embeddings | Surface::Responses, _) => {
                openai::plan(surface, target, &mut prompt, route)?
            }
        };
        self.egress.check_literal(&plan.url)?;
        let body = prompt.to_vec();
        if let Some(signing) = &signing {
            bedrock::sign(&mut plan, signing, &body)?;
        }
        drop(signing);
        let started = Instant::now();
        let request = self
            .egress
            .client
            .post(plan.url.clone())
            .headers(plan.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        let response = tokio::time::timeout(self.egress.first_byte_timeout, request.send())
            .await
            .map_err(|_| RouterError::Timeout {
                seconds: self.egress.first_byte_timeout.as_secs(),
            })?
            .map_err(|err| self.egress.classify(&err))?;
        let first_byte = started.elapsed();
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(|value| value.chars().take(200).collect::<String>())
        };
        let content_type = header("content-type");
        let provider_request_id = header("x-request-id")
            .or_else(|| header("request-id"))
            .or_else(|| header("x-amzn-requestid"));
        let aws_error_type = bedrock::error_type(header("x-amzn-errortype").as_deref());
        let retry_after = header("retry-after");
        let is_event_stream = content_type.as_deref().is_some_and(|value| {
            value.starts_with("text/event-stream")
                || value.starts_with("application/vnd.amazon.eventstream")
        });

        if route.stream && (200..300).contains(&status) && is_event_stream {
            let (stream, outcome) = CompletionStream::new(
                Box::pin(response.bytes_stream()),
                plan.dialect,
                plan.hide_usage_chunk,
                started,
                plan.translation,
            );
            let stream = stream.with_model(&target.model);
            return Ok(UpstreamReply::Streaming(Box::new(StreamingReply {
                status,
                content_type,
                provider_request_id,
                stream,
                outcome,
            })));
        }

        // The whole answer within the first-byte budget again: the idle timeout alone would let
        // a provider trickle a body forever.
        let bytes =
            tokio::time::timeout(self.egress.first_byte_timeout, self.read_bounded(response))
                .await
                .map_err(|_| RouterError::Timeout {
                    seconds: self.egress.first_byte_timeout.as_secs(),
                })??;
        let json: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
        let body = match (plan.translation, &json) {
            (Some(Translation::AnthropicToOpenAi { .. }), Some(json)) => {
                let translated = if (200..300).contains(&status) {
                    crate::translate::openai_to_anthropic::response(json, unix_now())
                } else {
                    crate::translate::openai_to_anthropic::error(json)
                };
                CompletionBody::new(Bytes::from(translated.to_string()))
            }
            (Some(Translation::BedrockToAnthropic), json) => {
                let translated = if (200..300).contains(&status) {
                    let id = provider_request_id.clone().unwrap_or_default();
                    let as_openai = crate::translate::bedrock::response(
                        json.as_ref().unwrap_or(&serde_json::Value::Null),
                        &target.model,
                        &id,
                        unix_now(),
                    );
                    crate::translate::anthropic_to_openai::response(&as_openai)
                } else {
                    let as_openai =
                        crate::translate::bedrock::error(json.as_ref(), aws_error_type.as_deref());
                    crate::translate::anthropic_to_openai::error(&as_openai, status)
                };
                CompletionBody::new(Bytes::from(translated.to_string()))
            }
            (Some(Translation::BedrockToOpenAi { .. }), json) => {
                let translated = if (200..300).contains(&status) {
                    let id = provider_request_id.clone().unwrap_or_default();
                    crate::translate::bedrock::response(
                        json.as_ref().unwrap_or(&serde_json::Value::Null),
                        &target.model,
                        &id,
                        unix_now(),
                    )
                } else {
                    crate::translate::bedrock::error(json.as_ref(), aws_error_type.as_deref())
                };
                CompletionBody::new(Bytes::from(translated.to_string()))
            }
            (Some(Translation::OpenAiToAnthropic), Some(json)) => {
                let translated = if (200..300).contains(&status) {
                    crate::translate::anthropic_to_openai::response(json)
                } else {
                    crate::translate::anthropic_to_openai::error(json, status)
                };
                CompletionBody::new(Bytes::from(translated.to_string()))
            }
            _ => CompletionBody::new(bytes),
        };
        let content_type = if plan.translation.is_some() {
            Some("application/json".to_owned())
        } else {
            content_type
        };
        let mut usage = UsageReport::default();
        if (200..300).contains(&status) {
            if let Some(json) = &json {
                usage.set_model(json.get("model").and_then(|model| model.as_str()));
                if let Some(reported) = json.get("usage") {
                    match plan.dialect {
                        Dialect::OpenAi => usage.merge_openai(reported),
                        Dialect::Anthropic => usage.merge_anthropic(reported),
                        Dialect::OpenAiResponses => usage.merge_responses(reported),
                        Dialect::Bedrock => usage.merge_bedrock(reported),
                    }
                }
            }
        }
        if plan.dialect == Dialect::Bedrock && (200..300).contains(&status) {
            usage.set_model(Some(&target.model));
        }
        let key_rejected = match plan.dialect {
            Dialect::Bedrock => {
                bedrock::key_rejected(status, aws_error_type.as_deref(), json.as_ref())
            }
            Dialect::OpenAi | Dialect::OpenAiResponses => openai::key_rejected(status),
            Dialect::Anthropic => anthropic::key_rejected(status, json.as_ref()),
        };
        Ok(UpstreamReply::Complete(Box::new(CompleteReply {
            status,
            content_type,
            retry_after,
            provider_request_id,
            body,
            usage,
            key_rejected,
            first_byte,
            elapsed: started.elapsed(),
        })))
    }

    /// A cheap real call that proves the credential works: the provider's model list.
    /// Returns the HTTP status and whether the provider refused the key itself.
    pub async fn verify(&self, target: &Target) -> Result<Verification, RouterError> {
        let (url, headers, dialect) = match target.provider {
            ProviderId::Anthropic => anthropic::verify_request(target)?,
            ProviderId::Bedrock => bedrock::verify_request(target)?,
            _ => openai::verify_request(target)?,
        };
        self.egress.check_literal(&url)?;
        let started = Instant::now();
        let headers = match target.provider {
            ProviderId::Bedrock => bedrock::sign_get(target, &url, headers)?,
            _ => headers,
        };
        let response = tokio::time::timeout(
            self.egress.first_byte_timeout,
            self.egress.client.get(url).headers(headers).send(),
        )
        .await
        .map_err(|_| RouterError::Timeout {
            seconds: self.egress.first_byte_timeout.as_secs(),
        })?
        .map_err(|err| self.egress.classify(&err))?;
        let status = response.status().as_u16();
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .and_then(|value| value.to_str().ok())
                .map(|value| value.chars().take(200).collect::<String>())
        };
        let provider_request_id = header("x-request-id")
            .or_else(|| header("request-id"))
            .or_else(|| header("x-amzn-requestid"));
        let aws_error_type = bedrock::error_type(header("x-amzn-errortype").as_deref());
        let body = self.read_bounded(response).await?;
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        let key_rejected = match dialect {
            Dialect::Bedrock => {
                bedrock::key_rejected(status, aws_error_type.as_deref(), json.as_ref())
            }
            Dialect::OpenAi | Dialect::OpenAiResponses => openai::key_rejected(status),
            Dialect::Anthropic => anthropic::key_rejected(status, json.as_ref()),
        };
        // An AWS key that authenticates but may not list models is still a working key.
        let accepted = (200..300).contains(&status)
            || (dialect == Dialect::Bedrock
                && aws_error_type.as_deref() == Some("AccessDeniedException"));
        Ok(Verification {
            status,
            accepted,
            key_rejected,
            provider_request_id,
            elapsed: started.elapsed(),
        })
    }

    async fn read_bounded(&self, mut response: reqwest::Response) -> Result<Bytes, RouterError> {
        let mut bytes = BytesMut::new();
        loop {
            match response.chunk().await {
                Ok(Some(chunk)) => {
                    if bytes.len() + chunk.len() > self.max_response_bytes {
                        return Err(RouterError::ResponseTooLarge {
                            limit: self.max_response_bytes,
                        });
                    }
                    bytes.extend_from_slice(&chunk);
                }
                Ok(None) => return Ok(bytes.freeze()),
                Err(err) => return Err(self.egress.classify(&err)),
            }
        }
    }
}
