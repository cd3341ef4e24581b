//! AWS JSON 1.1 calls (KMS, Secrets Manager), signed with SigV4 (`keyward_core::sigv4`) using
//! Keyward's own AWS identity from the standard credential chain.
//!
//! Endpoints: `AWS_ENDPOINT_URL_<SERVICE>`, else `AWS_ENDPOINT_URL`, else the public regional
//! endpoint. Region: the one in a key or secret ARN, else `AWS_REGION` / `AWS_DEFAULT_REGION`.

pub mod credentials;
pub mod kms;
pub mod secrets_manager;

use std::sync::Arc;

use keyward_core::sigv4;
use serde::Deserialize;

use crate::error::sanitize;
use crate::http::ManagerHttp;
use crate::{CustodyError, Env};

pub(crate) const MANAGER: &str = "AWS";

pub const KMS: Service = Service {
    signing_name: "kms",
    target_prefix: "TrentService",
    endpoint_env: "KMS",
    name: "KMS",
};

pub const SECRETS_MANAGER: Service = Service {
    signing_name: "secretsmanager",
    target_prefix: "secretsmanager",
    endpoint_env: "SECRETS_MANAGER",
    name: "Secrets Manager",
};

/// One AWS service reached over JSON 1.1.
#[derive(Clone, Copy, Debug)]
pub struct Service {
    /// Signing name and endpoint prefix (`kms`, `secretsmanager`).
    pub signing_name: &'static str,
    /// `X-Amz-Target` prefix (`TrentService`, `secretsmanager`).
    pub target_prefix: &'static str,
    /// Suffix of the per-service endpoint variable (`KMS`, `SECRETS_MANAGER`).
    pub endpoint_env: &'static str,
    /// Name in messages.
    pub name: &'static str,
}

/// An AWS error answer: `__type` (shortened to its name) and message.
#[derive(Debug)]
pub struct AwsFault {
    pub status: u16,
    pub kind: String,
    pub message: String,
}

pub struct AwsClient {
    http: ManagerHttp,
    env: Env,
    credentials: credentials::CredentialChain,
}

impl std::fmt::Debug for AwsClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsClient").finish_non_exhaustive()
    }
}

impl AwsClient {
    pub fn new(http: ManagerHttp, env: Env) -> Arc<Self> {
        Arc::new(Self {
            credentials: credentials::CredentialChain::new(http.clone(), env.clone()),
            http,
            env,
        })
    }

    /// The region for a resource: the ARN's, else the environment's.
    /// The region is checked to be a region name: it becomes part of a host name, and a
    /// reference must not be able to steer a signed request to another host.
    pub(crate) fn region_for(&self, resource: &str) -> Result<String, CustodyError> {
        let region = match arn_region(resource) {
            Some(region) => region.to_owned(),
            None => ["AWS_REGION", "AWS_DEFAULT_REGION"]
                .iter()
                .find_map(|var| (self.env)(var).filter(|value| !value.trim().is_empty()))
                .map(|region| region.trim().to_owned())
                .ok_or(CustodyError::NotConfigured {
                    manager: MANAGER,
                    hint: format!("no region for {resource}; set AWS_REGION or use the full ARN"),
                })?,
        };
        if is_region_name(&region) {
            Ok(region)
        } else {
            Err(CustodyError::NotConfigured {
                manager: MANAGER,
                hint: format!(
                    "the region of {resource} is not an AWS region name such as eu-west-1"
                ),
            })
        }
    }

    fn endpoint(&self, service: Service, region: &str) -> String {
        let specific = format!("AWS_ENDPOINT_URL_{}", service.endpoint_env);
        [specific.as_str(), "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|var| (self.env)(var).filter(|value| !value.trim().is_empty()))
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("https://{}.{region}.amazonaws.com", service.signing_name))
    }

    /// Calls `operation` and returns its JSON answer, or the service's fault.
    pub async fn call(
        &self,
        service: Service,
        operation: &str,
        region: &str,
        body: &serde_json::Value,
    ) -> Result<Result<zeroize::Zeroizing<Vec<u8>>, AwsFault>, CustodyError> {
        let endpoint = self.endpoint(service, region);
        let url = url::Url::parse(&endpoint).map_err(|_| CustodyError::NotConfigured {
            manager: MANAGER,
            hint: format!("the {} endpoint {endpoint} is not a URL", service.name),
        })?;
        let host = match (url.host_str(), url.port()) {
            (Some(host), Some(port)) => format!("{host}:{port}"),
            (Some(host), None) => host.to_owned(),
            (None, _) => {
                return Err(CustodyError::NotConfigured {
                    manager: MANAGER,
                    hint: format!("the {} endpoint {endpoint} has no host", service.name),
                })
            }
        };
        let credentials = self.credentials.get().await?;
        let payload = zeroize::Zeroizing::new(serde_json::to_vec(body).map_err(|_| {
            CustodyError::Malformed {
                manager: MANAGER,
                action: operation.to_owned(),
                reason: "request not serialisable".to_owned(),
            }
        })?);
        let target = format!("{}.{operation}", service.target_prefix);
        let content_type = "application/x-amz-json-1.1";
        let signed = sigv4::sign(
            &sigv4::Request {
                method: "POST",
                host: &host,
                path: "/",
                headers: &[("content-type", content_type), ("x-amz-target", &target)],
                body: &payload,
                region,
                service: service.signing_name,
                amz_date: &sigv4::amz_date(std::time::SystemTime::now()),
            },
            &credentials.as_sigv4(),
        );
        let mut request = self
            .http
            .request(reqwest::Method::POST, &format!("{endpoint}/"))
            .header("content-type", content_type)
            .header("x-amz-target", &target);
        for (name, value) in signed {
            request = request.header(name, value);
        }
        let answer = self
            .http
            .send(MANAGER, &endpoint, request.body(payload.to_vec()))
            .await?;
        if (200..300).contains(&answer.status) {
            return Ok(Ok(answer.body));
        }
        Ok(Err(fault(answer.status, &answer.body)))
    }
}

fn fault(status: u16, body: &[u8]) -> AwsFault {
    #[derive(Deserialize)]
    struct Body {
        #[serde(rename = "__type")]
        kind: Option<String>,
        #[serde(alias = "Message")]
        message: Option<String>,
    }
    let parsed: Option<Body> = serde_json::from_slice(body).ok();
    let kind = parsed
        .as_ref()
        .and_then(|body| body.kind.as_deref())
        .map(short_error_type)
        .unwrap_or_else(|| format!("HTTP {status}"));
    let message = parsed
        .and_then(|body| body.message)
        .map(|message| sanitize(&message))
        .unwrap_or_default();
    AwsFault {
        status,
        kind,
        message,
    }
}

/// `com.amazonaws.kms#NotFoundException:http://…` → `NotFoundException`.
fn short_error_type(raw: &str) -> String {
    let before_colon = raw.split(':').next().unwrap_or(raw);
    before_colon
        .rsplit('#')
        .next()
        .unwrap_or(before_colon)
        .to_owned()
}

/// `eu-west-1`, `us-gov-west-1`, `cn-north-1`: lowercase letters, digits, hyphens.
pub fn is_region_name(region: &str) -> bool {
    (4..=32).contains(&region.len())
        && region
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !region.starts_with('-')
        && !region.ends_with('-')
}

/// `arn:aws:kms:eu-west-1:123456789012:key/…` → `eu-west-1`.
fn arn_region(resource: &str) -> Option<&str> {
    let mut parts = resource.split(':');
    (parts.next()? == "arn").then_some(())?;
    let _partition = parts.next()?;
    let _service = parts.next()?;
    parts.next().filter(|region| !region.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_types_and_regions_are_read_from_their_aws_forms() {
        assert_eq!(
            short_error_type("com.amazonaws.kms#NotFoundException:http://internal"),
            "NotFoundException"
        );
        assert_eq!(
            short_error_type("AccessDeniedException"),
            "AccessDeniedException"
        );
        assert_eq!(
            arn_region("arn:aws:kms:eu-west-1:123456789012:key/abc"),
            Some("eu-west-1")
        );
        assert_eq!(arn_region("alias/keyward"), None);
        assert!(is_region_name("us-gov-west-1"));
        for bad in ["x@evil.example/", "eu-west-1.evil", "EU-WEST-1", "", "-a-"] {
            assert!(!is_region_name(bad), "{bad}");
        }
        assert_eq!(arn_region("1234abcd-12ab-34cd-56ef-1234567890ab"), None);
        let answer = fault(400, br#"{"__type":"InvalidCiphertextException"}"#);
        assert_eq!(answer.kind, "InvalidCiphertextException");
        let answer = fault(404, b"not json");
        assert_eq!(answer.kind, "HTTP 404");
    }
}
