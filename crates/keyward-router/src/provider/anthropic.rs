//! Anthropic Messages: `x-api-key` and `anthropic-version`; the bare origin as `base_url`
//! (`https://api.anthropic.com`), as Anthropic's SDKs take it.

use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use url::Url;

use super::{base_url, join, sensitive, Plan, Target};
use crate::stream::Dialect;
use crate::translate::Translation;
use crate::{ClientHeaders, PromptBody, RouteRequest, RouterError};

const DEFAULT_VERSION: &str = "2023-06-01";
const ORIGIN: &str = "https://api.anthropic.com";

/// The client's `anthropic-version` wins over the credential's option; `anthropic-beta` is
/// forwarded as sent.
pub(crate) fn plan(
    target: &Target,
    prompt: &mut PromptBody,
    client: &ClientHeaders,
) -> Result<Plan, RouterError> {
    let url = join(&base_url(target, Some(ORIGIN))?, &["v1", "messages"])?;
    let mut headers = auth_headers(target)?;
    let forwarded = [
        ("anthropic-version", &client.anthropic_version),
        ("anthropic-beta", &client.anthropic_beta),
    ];
    for (name, value) in forwarded {
        if let Some(value) = value
            .as_deref()
            .and_then(|value| HeaderValue::from_str(value).ok())
        {
            headers.insert(HeaderName::from_static(name), value);
        }
    }
    prompt.set_model(&target.model);
    Ok(Plan {
        url,
        headers,
        dialect: Dialect::Anthropic,
        hide_usage_chunk: false,
        translation: None,
    })
}

/// `POST /v1/messages/count_tokens`: the same headers as Messages, the client's body with the
/// upstream model (free at Anthropic; no output ceiling is sent).
pub(crate) fn count_tokens_plan(
    target: &Target,
    prompt: &mut PromptBody,
    client: &ClientHeaders,
) -> Result<Plan, RouterError> {
    let mut plan = plan(target, prompt, client)?;
    plan.url = join(
        &base_url(target, Some(ORIGIN))?,
        &["v1", "messages", "count_tokens"],
    )?;
    Ok(plan)
}

/// An OpenAI chat completions request on an Anthropic credential: translated to Messages,
/// and the answer translated back.
pub(crate) fn plan_from_openai(
    target: &Target,
    prompt: &mut PromptBody,
    route: &RouteRequest,
    client: &ClientHeaders,
) -> Result<Plan, RouterError> {
    let translated = crate::translate::openai_to_anthropic::request(prompt.json(), &target.model)?;
    prompt.replace(translated);
    let mut plan = plan(target, prompt, client)?;
    plan.translation = Some(Translation::AnthropicToOpenAi {
        include_usage: route.client_wants_usage,
    });
    Ok(plan)
}

/// `GET /v1/models`: free, and fails exactly when the key does.
pub(crate) fn verify_request(target: &Target) -> Result<(Url, HeaderMap, Dialect), RouterError> {
    let url = join(&base_url(target, Some(ORIGIN))?, &["v1", "models"])?;
    Ok((url, auth_headers(target)?, Dialect::Anthropic))
}

fn auth_headers(target: &Target) -> Result<HeaderMap, RouterError> {
    let secret = target.secret.as_ref().ok_or(RouterError::MissingSecret {
        provider: "anthropic",
    })?;
    let mut headers = HeaderMap::new();
    headers.insert(
        HeaderName::from_static("x-api-key"),
        sensitive(secret.expose_secret())?,
    );
    let version = target
        .options
        .get("anthropic_version")
        .and_then(|version| HeaderValue::from_str(version).ok())
        .unwrap_or(HeaderValue::from_static(DEFAULT_VERSION));
    headers.insert(HeaderName::from_static("anthropic-version"), version);
    Ok(headers)
}

/// 401 `authentication_error`, or 403 `authentication_error` / `permission_error`.
pub(crate) fn key_rejected(status: u16, body: Option<&Value>) -> bool {
    let kind = body
        .and_then(|body| body.get("error"))
        .and_then(|error| error.get("type"))
        .and_then(Value::as_str);
    status == 401
        || (status == 403 && matches!(kind, Some("authentication_error" | "permission_error")))
}
