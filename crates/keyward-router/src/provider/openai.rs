//! OpenAI-shaped chat completions, Responses and embeddings: `openai`, `azure-openai`, `mistral`, `groq` and
//! `openai-compatible` (Ollama, vLLM, llama.cpp server, LM Studio, TGI).
//!
//! Streams: Keyward adds `stream_options.include_usage` when the client did not, and hides the
//! usage-only chunk this adds. Mistral is left alone: it rejects `stream_options` and reports
//! usage on its last chunk by default.

use keyward_core::ProviderId;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, AUTHORIZATION};
use url::Url;
use zeroize::Zeroizing;

use super::{base_url, join, sensitive, Plan, Target};
use crate::stream::Dialect;
use crate::{PromptBody, RouteRequest, RouterError, Surface};

/// Azure's GA API version, used when the credential names none.
const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

fn default_base(provider: ProviderId) -> Option<&'static str> {
    match provider {
        ProviderId::OpenAi => Some("https://api.openai.com/v1"),
        ProviderId::Mistral => Some("https://api.mistral.ai/v1"),
        ProviderId::Groq => Some("https://api.groq.com/openai/v1"),
        _ => None,
    }
}

pub(crate) fn plan(
    surface: Surface,
    target: &Target,
    prompt: &mut PromptBody,
    route: &RouteRequest,
) -> Result<Plan, RouterError> {
    let path: &[&str] = match surface {
        Surface::Embeddings => &["embeddings"],
        Surface::Responses => &["responses"],
        _ => &["chat", "completions"],
    };
    let url = if target.provider == ProviderId::AzureOpenAi {
        let deployment = azure_deployment(target);
        let segments: Vec<&str> = ["openai", "deployments", deployment.as_str()]
            .into_iter()
            .chain(path.iter().copied())
            .collect();
        azure_url(target, &segments)?
    } else {
        join(&base_url(target, default_base(target.provider))?, path)?
    };
    let headers = auth_headers(target)?;
    prompt.set_model(&target.model);
    let hide_usage_chunk = surface == Surface::ChatCompletions
        && route.stream
        && target.provider != ProviderId::Mistral
        && prompt.request_stream_usage();
    // The Responses API always reports usage, in `response.completed`.
    let dialect = if surface == Surface::Responses {
        Dialect::OpenAiResponses
    } else {
        Dialect::OpenAi
    };
    Ok(Plan {
        url,
        headers,
        dialect,
        hide_usage_chunk,
        translation: None,
    })
}

/// An Anthropic Messages request on an OpenAI-style credential: translated to chat
/// completions (usage requested on streams), and the answer translated back.
pub(crate) fn plan_from_anthropic(
    target: &Target,
    prompt: &mut PromptBody,
    route: &RouteRequest,
) -> Result<Plan, RouterError> {
    // OpenAI's own models refuse the deprecated `max_tokens`; compatible servers expect it.
    let max_field = if target.provider == ProviderId::OpenAi {
        "max_completion_tokens"
    } else {
        "max_tokens"
    };
    let translated =
        crate::translate::anthropic_to_openai::request(prompt.json(), &target.model, max_field)?;
    prompt.replace(translated);
    let mut plan = plan(Surface::ChatCompletions, target, prompt, route)?;
    plan.translation = Some(crate::translate::Translation::OpenAiToAnthropic);
    Ok(plan)
}

/// `GET …/models` (Azure: `GET …/openai/models?api-version=V`): free, and fails exactly when
/// the key does.
pub(crate) fn verify_request(target: &Target) -> Result<(Url, HeaderMap, Dialect), RouterError> {
    let url = if target.provider == ProviderId::AzureOpenAi {
        azure_url(target, &["openai", "models"])?
    } else {
        join(
            &base_url(target, default_base(target.provider))?,
            &["models"],
        )?
    };
    Ok((url, auth_headers(target)?, Dialect::OpenAi))
}

fn auth_headers(target: &Target) -> Result<HeaderMap, RouterError> {
    let mut headers = HeaderMap::new();
    match (&target.secret, target.provider) {
        (Some(secret), ProviderId::AzureOpenAi) => {
            headers.insert(
                HeaderName::from_static("api-key"),
                sensitive(secret.expose_secret())?,
            );
        }
        (Some(secret), _) => {
            let value = Zeroizing::new(format!("Bearer {}", secret.expose_secret()));
            headers.insert(AUTHORIZATION, sensitive(&value)?);
        }
        (None, ProviderId::OpenAiCompatible) => {}
        (None, provider) => {
            return Err(RouterError::MissingSecret {
                provider: provider.as_str(),
            })
        }
    }
    if target.provider == ProviderId::OpenAi {
        for (option, header) in [
            ("organization", "openai-organization"),
            ("project", "openai-project"),
        ] {
            if let Some(value) = target
                .options
                .get(option)
                .and_then(|value| HeaderValue::from_str(value).ok())
            {
                headers.insert(HeaderName::from_static(header), value);
            }
        }
    }
    Ok(headers)
}

/// The deployment serving the model: from the `deployments` map, else the model name itself.
fn azure_deployment(target: &Target) -> String {
    target
        .options
        .get("deployments")
        .and_then(|map| {
            map.split(',').find_map(|pair| {
                let (model, deployment) = pair.split_once('=')?;
                (model.trim() == target.model).then(|| deployment.trim().to_owned())
            })
        })
        .unwrap_or_else(|| target.model.clone())
}

/// `https://RESOURCE.openai.azure.com/<segments>?api-version=V` (or under `base_url`).
fn azure_url(target: &Target, segments: &[&str]) -> Result<Url, RouterError> {
    let resource_base = target
        .options
        .get("resource")
        .map(|resource| format!("https://{resource}.openai.azure.com"));
    let mut url = join(&base_url(target, resource_base.as_deref())?, segments)?;
    let version = target
        .options
        .get("api_version")
        .map(String::as_str)
        .unwrap_or(AZURE_DEFAULT_API_VERSION);
    url.query_pairs_mut().append_pair("api-version", version);
    Ok(url)
}

/// OpenAI, Azure, Mistral and Groq all answer a bad or revoked key with 401.
pub(crate) fn key_rejected(status: u16) -> bool {
    status == 401
}
