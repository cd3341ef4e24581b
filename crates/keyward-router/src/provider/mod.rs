//! Calling a provider: the request plan per provider family ([`openai`], [`anthropic`]), the
//! send with timeouts, and the reply — complete (bounded) or streaming.

mod anthropic;
mod bedrock;
mod openai;
mod response;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use keyward_core::secret::ProviderSecret;
use keyward_core::ProviderId;
use reqwest::header::{HeaderMap, HeaderValue, CONTENT_TYPE};
use tokio::sync::oneshot;
use url::Url;

use crate::stream::Dialect;
use crate::translate::{CompleteAnswer, Translation};
use crate::{
    ClientHeaders, CompletionBody, CompletionStream, EgressClient, PromptBody, RouteRequest,
    RouterError, StreamOutcome, Surface, UsageReport,
};
use response::ResponseHead;

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
    /// The model ids the provider listed (at most [`MAX_LISTED_MODELS`], printable, short).
    pub models: Vec<String>,
}

/// The most model ids kept from one provider's list.
pub const MAX_LISTED_MODELS: usize = 1000;

/// The model ids of a model-list answer: `data[].id` (OpenAI, Anthropic, Azure, Mistral, Groq,
/// Ollama, vLLM, llama.cpp) or `modelSummaries[].modelId` (Bedrock). Ids that are long or not
/// printable are left out: they are untrusted and end up in a client's answer.
fn listed_models(json: Option<&serde_json::Value>) -> Vec<String> {
    let Some(json) = json else {
        return Vec::new();
    };
    let (items, field) = match json.get("data").and_then(serde_json::Value::as_array) {
        Some(items) => (items, "id"),
        None => match json
            .get("modelSummaries")
            .and_then(serde_json::Value::as_array)
        {
            Some(items) => (items, "modelId"),
            None => return Vec::new(),
        },
    };
    items
        .iter()
        .filter_map(|item| item.get(field)?.as_str())
        .filter(|id| !id.is_empty() && id.len() <= 200 && id.chars().all(|c| c.is_ascii_graphic()))
        .take(MAX_LISTED_MODELS)
        .map(str::to_owned)
        .collect()
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
/// cross between OpenAI-style, Anthropic and Bedrock providers by translation; the
/// Responses API and embeddings only reach providers that serve them).
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

/// The request for one call on `target`: the provider family's plan, the body to send, and
/// what signs it when the provider needs that (Bedrock's SigV4 covers the exact bytes; it is
/// applied after the egress check, so a blocked request is never signed).
fn plan(
    surface: Surface,
    target: &Target,
    prompt: &PromptBody,
    route: &RouteRequest,
    client: &ClientHeaders,
) -> Result<(Plan, Vec<u8>, Option<bedrock::Signing>), RouterError> {
    if !supports(surface, target.provider) {
        return Err(RouterError::Unsupported {
            surface: surface.endpoint(),
            provider: target.provider.as_str(),
        });
    }
    let mut prompt = prompt.attempt_copy();
    if let Some(ceiling) = route.max_tokens {
        prompt.set_output_ceiling(ceiling_field(surface, target.provider), ceiling);
    }
    let mut signing = None;
    let plan = match (surface, target.provider) {
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
        (Surface::Messages, ProviderId::Anthropic) => anthropic::plan(target, &mut prompt, client)?,
        (Surface::Messages, _) => openai::plan_from_anthropic(target, &mut prompt, route)?,
        (Surface::ChatCompletions | Surface::Embeddings | Surface::Responses, _) => {
            openai::plan(surface, target, &mut prompt, route)?
        }
    };
    let mut plan = plan;
    if let Some(value) = client
        .traceparent
        .as_deref()
        .and_then(|value| reqwest::header::HeaderValue::from_str(value).ok())
    {
        plan.headers.insert("traceparent", value);
    }
    Ok((plan, prompt.to_vec(), signing))
}

/// The field of the client's surface that carries the output ceiling to this provider: the
/// translations read it from there. OpenAI's own models refuse the deprecated `max_tokens` on
/// chat completions; other OpenAI-style servers expect it.
fn ceiling_field(surface: Surface, provider: ProviderId) -> &'static str {
    match surface {
        Surface::Messages => "max_tokens",
        Surface::Responses => "max_output_tokens",
        Surface::ChatCompletions | Surface::Embeddings => match provider {
            ProviderId::OpenAi | ProviderId::AzureOpenAi => "max_completion_tokens",
            _ => "max_tokens",
        },
    }
}

/// A whole answer, translated to the client's format, with its usage and the key verdict.
fn complete_reply(
    plan: &Plan,
    head: ResponseHead,
    bytes: Bytes,
    model: &str,
    first_byte: Duration,
    started: Instant,
) -> CompleteReply {
    let json: Option<serde_json::Value> = serde_json::from_slice(&bytes).ok();
    let answer = CompleteAnswer {
        status: head.status,
        model,
        provider_request_id: head.provider_request_id.as_deref(),
        aws_error_type: head.aws_error_type.as_deref(),
    };
    let body = crate::translate::complete(plan.translation, &answer, json.as_ref(), bytes);
    let usage = head.usage(plan.dialect, json.as_ref(), model);
    let key_rejected = head.key_rejected(plan.dialect, json.as_ref());
    let content_type = match plan.translation {
        Some(_) => Some("application/json".to_owned()),
        None => head.content_type,
    };
    CompleteReply {
        status: head.status,
        content_type,
        retry_after: head.retry_after,
        provider_request_id: head.provider_request_id,
        body: CompletionBody::new(body),
        usage,
        key_rejected,
        first_byte,
        elapsed: started.elapsed(),
    }
}

/// The provider client.
pub struct Router {
    pub(crate) egress: EgressClient,
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
        let (mut plan, body, signing) = plan(surface, target, prompt, route, client)?;
        self.egress.check_literal(&plan.url)?;
        if let Some(signing) = &signing {
            bedrock::sign(&mut plan, signing, &body)?;
        }
        drop(signing);
        let started = Instant::now();
        let response = self.post(&plan, body).await?;
        let first_byte = started.elapsed();
        let head = ResponseHead::read(&response);
        if route.stream && head.success() && head.is_event_stream() {
            let (stream, outcome) = CompletionStream::new(
                Box::pin(response.bytes_stream()),
                plan.dialect,
                plan.hide_usage_chunk,
                started,
                plan.translation,
            );
            return Ok(UpstreamReply::Streaming(Box::new(StreamingReply {
                status: head.status,
                content_type: head.content_type,
                provider_request_id: head.provider_request_id,
                stream: stream
                    .with_model(&target.model)
                    .with_budget(self.egress.stream_budget),
                outcome,
            })));
        }
        // The whole answer within the first-byte budget again: the idle timeout alone would let
        // a provider trickle a body forever.
        let bytes = self
            .within_first_byte_budget(self.read_bounded(response))
            .await??;
        Ok(UpstreamReply::Complete(Box::new(complete_reply(
            &plan,
            head,
            bytes,
            &target.model,
            first_byte,
            started,
        ))))
    }

    /// POSTs the planned request and waits for the answer's head.
    async fn post(&self, plan: &Plan, body: Vec<u8>) -> Result<reqwest::Response, RouterError> {
        let request = self
            .egress
            .client
            .post(plan.url.clone())
            .headers(plan.headers.clone())
            .header(CONTENT_TYPE, "application/json")
            .body(body);
        self.within_first_byte_budget(request.send())
            .await?
            .map_err(|err| self.egress.classify(&err))
    }

    /// Anthropic's token count for a Messages body (`POST /v1/messages/count_tokens`), relayed
    /// as the provider answers it. Only an Anthropic credential counts: another provider's
    /// tokenizer is not Anthropic's, so translating would give a wrong number.
    pub async fn count_tokens(
        &self,
        target: &Target,
        prompt: &PromptBody,
        client: &ClientHeaders,
    ) -> Result<CompleteReply, RouterError> {
        if target.provider != ProviderId::Anthropic {
            return Err(RouterError::Unsupported {
                surface: "/v1/messages/count_tokens",
                provider: target.provider.as_str(),
            });
        }
        let mut prompt = prompt.attempt_copy();
        let mut plan = anthropic::count_tokens_plan(target, &mut prompt, client)?;
        if let Some(value) = client
            .traceparent
            .as_deref()
            .and_then(|value| reqwest::header::HeaderValue::from_str(value).ok())
        {
            plan.headers.insert("traceparent", value);
        }
        self.egress.check_literal(&plan.url)?;
        let started = Instant::now();
        let response = self.post(&plan, prompt.to_vec()).await?;
        let first_byte = started.elapsed();
        let head = ResponseHead::read(&response);
        let bytes = self
            .within_first_byte_budget(self.read_bounded(response))
            .await??;
        Ok(complete_reply(
            &plan,
            head,
            bytes,
            &target.model,
            first_byte,
            started,
        ))
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
        let request = self.egress.client.get(url).headers(headers);
        let response = self
            .within_first_byte_budget(request.send())
            .await?
            .map_err(|err| self.egress.classify(&err))?;
        let head = ResponseHead::read(&response);
        let body = self.read_bounded(response).await?;
        let json: Option<serde_json::Value> = serde_json::from_slice(&body).ok();
        // An AWS key that authenticates but may not list models is still a working key.
        let accepted = head.success()
            || (dialect == Dialect::Bedrock
                && head.aws_error_type.as_deref() == Some("AccessDeniedException"));
        let models = if head.success() {
            listed_models(json.as_ref())
        } else {
            Vec::new()
        };
        Ok(Verification {
            status: head.status,
            accepted,
            key_rejected: head.key_rejected(dialect, json.as_ref()),
            provider_request_id: head.provider_request_id,
            elapsed: started.elapsed(),
            models,
        })
    }

    /// `future`, or `Timeout` once the first-byte budget (`egress.first_byte_timeout`) is spent.
    pub(crate) async fn within_first_byte_budget<T>(
        &self,
        future: impl std::future::Future<Output = T>,
    ) -> Result<T, RouterError> {
        tokio::time::timeout(self.egress.first_byte_timeout, future)
            .await
            .map_err(|_| RouterError::Timeout {
                seconds: self.egress.first_byte_timeout.as_secs(),
            })
    }

    pub(crate) async fn read_bounded(
        &self,
        mut response: reqwest::Response,
    ) -> Result<Bytes, RouterError> {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listed_model_ids_are_read_bounded_and_cleaned() {
        let openai = serde_json::json!({"object": "list", "data": [{"id": "gpt-4o-mini"}, {"id": "bad id"}, {"id": "x".repeat(201)}, {"nope": 1}]});
        assert_eq!(listed_models(Some(&openai)), vec!["gpt-4o-mini"]);
        let bedrock = serde_json::json!({"modelSummaries": [{"modelId": "amazon.nova-lite-v1:0"}]});
        assert_eq!(listed_models(Some(&bedrock)), vec!["amazon.nova-lite-v1:0"]);
        let many: Vec<serde_json::Value> = (0..2000)
            .map(|n| serde_json::json!({"id": format!("m{n}")}))
            .collect();
        assert_eq!(
            listed_models(Some(&serde_json::json!({"data": many}))).len(),
            MAX_LISTED_MODELS
        );
        assert!(listed_models(Some(&serde_json::json!({"error": "x"}))).is_empty());
        assert!(listed_models(None).is_empty());
    }

    #[test]
    fn a_trace_context_goes_upstream_to_every_provider_family() {
        let traceparent = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        let client = ClientHeaders {
            traceparent: Some(traceparent.to_owned()),
            ..ClientHeaders::default()
        };
        for provider in [
            ProviderId::OpenAi,
            ProviderId::Anthropic,
            ProviderId::Mistral,
        ] {
            let target = Target {
                provider,
                options: BTreeMap::new(),
                secret: Some(ProviderSecret::new("sk-test-0123456789".to_owned())),
                model: "m".to_owned(),
            };
            let prompt = PromptBody::parse(
                br#"{"model": "x/m", "messages": [{"role": "user", "content": "hi"}]}"#,
            )
            .unwrap_or_else(|err| unreachable!("{err}"));
            let route = prompt
                .route_request(Surface::ChatCompletions)
                .unwrap_or_else(|err| unreachable!("{err}"));
            let (planned, _, _) = plan(Surface::ChatCompletions, &target, &prompt, &route, &client)
                .unwrap_or_else(|err| unreachable!("{err}"));
            assert_eq!(planned.headers["traceparent"], traceparent, "{provider:?}");
            let (plain, _, _) = plan(
                Surface::ChatCompletions,
                &target,
                &prompt,
                &route,
                &ClientHeaders::default(),
            )
            .unwrap_or_else(|err| unreachable!("{err}"));
            assert!(!plain.headers.contains_key("traceparent"));
        }
    }
}
