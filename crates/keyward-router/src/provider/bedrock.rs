//! AWS Bedrock Runtime Converse / ConverseStream, reached from OpenAI-shaped chat completions
//! by translation. Requests are signed with SigV4 over the exact body sent; the credential's
//! secret is `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`.

use reqwest::header::{HeaderMap, HeaderName};
use url::Url;
use zeroize::Zeroizing;

use super::{base_url, sensitive, Plan, Target};
use crate::stream::Dialect;
use crate::translate::Translation;
use crate::{PromptBody, RouteRequest, RouterError};

/// What signing needs, held only for this call.
pub(crate) struct Signing {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: Option<Zeroizing<String>>,
    pub region: String,
}

/// Percent-encodes a model id as the AWS SDKs put it in the path (`:` → `%3A`, `/` → `%2F`).
fn encode_model(model: &str) -> String {
    model
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect()
}

pub(crate) fn plan(
    target: &Target,
    prompt: &mut PromptBody,
    route: &RouteRequest,
) -> Result<(Plan, Signing), RouterError> {
    let region = target
        .options
        .get("region")
        .cloned()
        .ok_or(RouterError::BadBaseUrl {
            reason: "a bedrock credential needs its region",
        })?;
    let default = format!("https://bedrock-runtime.{region}.amazonaws.com");
    let base: Url = base_url(target, Some(&default))?;
    let operation = if route.stream {
        "converse-stream"
    } else {
        "converse"
    };
    let mut url = base.clone();
    let path = format!(
        "{}/model/{}/{operation}",
        base.path().trim_end_matches('/'),
        encode_model(&target.model)
    );
    url.set_path(&path);
    let signing = signing_of(target, region)?;
    let translated = crate::translate::bedrock::request(prompt.json())?;
    prompt.replace(translated);
    let plan = Plan {
        url,
        headers: HeaderMap::new(),
        dialect: Dialect::Bedrock,
        hide_usage_chunk: false,
        translation: Some(Translation::BedrockToOpenAi {
            include_usage: route.client_wants_usage,
        }),
    };
    Ok((plan, signing))
}

/// The credential's keys and region, held for one call.
fn signing_of(target: &Target, region: String) -> Result<Signing, RouterError> {
    let secret = target.secret.as_ref().ok_or(RouterError::MissingSecret {
        provider: "bedrock",
    })?;
    let mut parts = secret.expose_secret().splitn(3, ':');
    Ok(Signing {
        access_key_id: parts.next().unwrap_or_default().to_owned(),
        secret_access_key: Zeroizing::new(parts.next().unwrap_or_default().to_owned()),
        session_token: parts.next().map(|token| Zeroizing::new(token.to_owned())),
        region,
    })
}

/// Adds SigV4 headers for `method url` with `body` (and `content-type` when there is a body).
fn add_signature(
    headers: &mut HeaderMap,
    method: &str,
    url: &Url,
    body: &[u8],
    signing: &Signing,
) -> Result<(), RouterError> {
    let host = match (url.host_str(), url.port()) {
        (Some(host), Some(port)) => format!("{host}:{port}"),
        (Some(host), None) => host.to_owned(),
        (None, _) => {
            return Err(RouterError::BadBaseUrl {
                reason: "the URL has no host",
            })
        }
    };
    let signed_content_type: &[(&str, &str)] = if method == "GET" {
        &[]
    } else {
        &[("content-type", "application/json")]
    };
    let amz_date = crate::aws::sigv4::amz_date(std::time::SystemTime::now());
    let signed = crate::aws::sigv4::sign(
        &crate::aws::sigv4::Request {
            method,
            host: &host,
            path: url.path(),
            headers: signed_content_type,
            body,
            region: &signing.region,
            service: "bedrock",
            amz_date: &amz_date,
        },
        &crate::aws::sigv4::Credentials {
            access_key_id: &signing.access_key_id,
            secret_access_key: &signing.secret_access_key,
            session_token: signing.session_token.as_deref().map(String::as_str),
        },
    );
    for (name, value) in signed {
        headers.insert(HeaderName::from_static(name), sensitive(&value)?);
    }
    Ok(())
}

/// Adds the SigV4 headers for the exact `body` that will be sent.
pub(crate) fn sign(plan: &mut Plan, signing: &Signing, body: &[u8]) -> Result<(), RouterError> {
    add_signature(&mut plan.headers, "POST", &plan.url, body, signing)
}

/// 403 with an authentication failure code: the key itself is unknown, wrong or expired. A
/// signature refused only for its time ("Signature expired", "not yet current") is this
/// host's clock, not the tenant's key.
pub(crate) fn key_rejected(
    status: u16,
    error_type: Option<&str>,
    body: Option<&serde_json::Value>,
) -> bool {
    let message = body
        .and_then(|body| body.get("message").or_else(|| body.get("Message")))
        .and_then(serde_json::Value::as_str)
        .unwrap_or_default();
    let clock_skew = message.contains("Signature expired") || message.contains("not yet current");
    status == 403
        && !clock_skew
        && matches!(
            error_type,
            Some(
                "UnrecognizedClientException"
                    | "InvalidSignatureException"
                    | "ExpiredTokenException"
                    | "InvalidClientTokenId"
            )
        )
}

/// The error code of `x-amzn-ErrorType: Code:url`.
pub(crate) fn error_type(header: Option<&str>) -> Option<String> {
    header.map(|value| value.split(':').next().unwrap_or(value).to_owned())
}

/// `GET /foundation-models` on the Bedrock control plane (`bedrock.<region>…`, or under the
/// credential's `base_url`): free, and refused exactly when the key is.
pub(crate) fn verify_request(target: &Target) -> Result<(Url, HeaderMap, Dialect), RouterError> {
    let region = target
        .options
        .get("region")
        .cloned()
        .ok_or(RouterError::BadBaseUrl {
            reason: "a bedrock credential needs its region",
        })?;
    let default = format!("https://bedrock.{region}.amazonaws.com");
    let mut url = base_url(target, Some(&default))?;
    let path = format!("{}/foundation-models", url.path().trim_end_matches('/'));
    url.set_path(&path);
    Ok((url, HeaderMap::new(), Dialect::Bedrock))
}

/// SigV4 headers for a bodiless GET.
pub(crate) fn sign_get(
    target: &Target,
    url: &Url,
    mut headers: HeaderMap,
) -> Result<HeaderMap, RouterError> {
    let region = target.options.get("region").cloned().unwrap_or_default();
    let signing = signing_of(target, region)?;
    add_signature(&mut headers, "GET", url, &[], &signing)?;
    Ok(headers)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    // Review of session 1: a skewed clock on this host made AWS refuse every signature, and
    // every tenant's Bedrock key was marked rejected.
    #[test]
    fn a_refused_signature_time_is_not_a_rejected_key() {
        let expired = json!({"message": "Signature expired: 20250130T203827Z is now earlier than 20250130T204131Z (20250130T204631Z - 5 min.)"});
        assert!(!key_rejected(
            403,
            Some("InvalidSignatureException"),
            Some(&expired)
        ));
        let mismatch = json!({"message": "The request signature we calculated does not match the signature you provided."});
        assert!(key_rejected(
            403,
            Some("InvalidSignatureException"),
            Some(&mismatch)
        ));
        assert!(key_rejected(403, Some("UnrecognizedClientException"), None));
        assert!(!key_rejected(403, Some("AccessDeniedException"), None));
        assert!(!key_rejected(429, Some("ThrottlingException"), None));
    }

    #[test]
    fn model_ids_are_encoded_as_the_aws_sdks_do() {
        assert_eq!(
            encode_model("anthropic.claude-3-5-sonnet-20240620-v1:0"),
            "anthropic.claude-3-5-sonnet-20240620-v1%3A0"
        );
        assert_eq!(
            encode_model("arn:aws:bedrock:us-east-1:1:inference-profile/us.x"),
            "arn%3Aaws%3Abedrock%3Aus-east-1%3A1%3Ainference-profile%2Fus.x"
        );
    }
}
