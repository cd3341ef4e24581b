//! Keyward's own AWS identity, found the way AWS SDKs find it: environment variables, the
//! shared credentials file (`AWS_SHARED_CREDENTIALS_FILE`, `AWS_PROFILE`), web identity (EKS
//! IRSA: `AWS_WEB_IDENTITY_TOKEN_FILE` + `AWS_ROLE_ARN`, exchanged with STS
//! `AssumeRoleWithWebIdentity`), the container endpoint (ECS / EKS Pod Identity:
//! `AWS_CONTAINER_CREDENTIALS_RELATIVE_URI` / `_FULL_URI`), then the EC2 instance metadata
//! service (IMDSv2). Temporary credentials are refreshed five minutes before they expire (the
//! web identity token file is read anew each time, as Kubernetes rotates it). SSO profiles are
//! not read.

use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use keyward_core::sigv4;
use serde::Deserialize;
use zeroize::Zeroizing;

use super::MANAGER;
use crate::http::ManagerHttp;
use crate::{CustodyError, Env};

const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);
const CONTAINER_HOST: &str = "http://169.254.170.2";
const IMDS_HOST: &str = "http://169.254.169.254";

pub struct AwsCredentials {
    access_key_id: String,
    secret_access_key: Zeroizing<String>,
    session_token: Option<Zeroizing<String>>,
    expires_at: Option<SystemTime>,
    /// Where they came from, for messages.
    pub origin: &'static str,
}

impl std::fmt::Debug for AwsCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AwsCredentials")
            .field("origin", &self.origin)
            .field("secret_access_key", &"[redacted]")
            .finish_non_exhaustive()
    }
}

impl AwsCredentials {
    pub fn as_sigv4(&self) -> sigv4::Credentials<'_> {
        sigv4::Credentials {
            access_key_id: &self.access_key_id,
            secret_access_key: &self.secret_access_key,
            session_token: self.session_token.as_deref().map(String::as_str),
        }
    }

    fn valid(&self, now: SystemTime) -> bool {
        self.expires_at.is_none_or(|expiry| expiry > now)
    }

    fn fresh(&self, now: SystemTime) -> bool {
        self.expires_at
            .is_none_or(|expiry| expiry > now + REFRESH_BEFORE_EXPIRY)
    }
}

pub struct CredentialChain {
    http: ManagerHttp,
    env: Env,
    cached: tokio::sync::Mutex<Option<std::sync::Arc<AwsCredentials>>>,
}

impl CredentialChain {
    pub fn new(http: ManagerHttp, env: Env) -> Self {
        Self {
            http,
            env,
            cached: tokio::sync::Mutex::new(None),
        }
    }

    fn var(&self, name: &str) -> Option<String> {
        (self.env)(name).filter(|value| !value.trim().is_empty())
    }

    pub async fn get(&self) -> Result<std::sync::Arc<AwsCredentials>, CustodyError> {
        let mut cached = self.cached.lock().await;
        if let Some(credentials) = cached.as_ref().filter(|c| c.fresh(SystemTime::now())) {
            return Ok(credentials.clone());
        }
        match self.resolve().await {
            Ok(found) => {
                let found = std::sync::Arc::new(found);
                *cached = Some(found.clone());
                Ok(found)
            }
            // A refresh ahead of expiry failed: the current credentials still work meanwhile.
            Err(err) => match cached.as_ref().filter(|c| c.valid(SystemTime::now())) {
                Some(current) => {
                    tracing::warn!(origin = current.origin, error = %err, "refreshing AWS credentials failed; using the current ones until they expire");
                    Ok(current.clone())
                }
                None => Err(err),
            },
        }
    }

    async fn resolve(&self) -> Result<AwsCredentials, CustodyError> {
        if let (Some(access_key_id), Some(secret)) = (
            self.var("AWS_ACCESS_KEY_ID"),
            self.var("AWS_SECRET_ACCESS_KEY"),
        ) {
            return Ok(AwsCredentials {
                access_key_id,
                secret_access_key: Zeroizing::new(secret),
                session_token: self.var("AWS_SESSION_TOKEN").map(Zeroizing::new),
                expires_at: None,
                origin: "environment",
            });
        }
        if let Some(found) = self.read_shared_file()? {
            return Ok(found);
        }
        if let Some(found) = self.assume_role_with_web_identity().await? {
            return Ok(found);
        }
        if let Some(found) = self.ask_container_endpoint().await? {
            return Ok(found);
        }
        if self
            .var("AWS_EC2_METADATA_DISABLED")
            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
        {
            return Err(no_credentials());
        }
        self.ask_instance_metadata().await
    }

    fn read_shared_file(&self) -> Result<Option<AwsCredentials>, CustodyError> {
        let path = match self.var("AWS_SHARED_CREDENTIALS_FILE") {
            Some(path) => PathBuf::from(path),
            None => match self.var("HOME") {
                Some(home) => PathBuf::from(home).join(".aws/credentials"),
                None => return Ok(None),
            },
        };
        let Ok(text) = std::fs::read_to_string(&path).map(Zeroizing::new) else {
            return Ok(None);
        };
        let profile = self.var("AWS_PROFILE").unwrap_or_else(|| "default".into());
        let mut in_profile = false;
        let (mut key_id, mut secret, mut token) = (None, None, None);
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') || line.is_empty() {
                continue;
            }
            if let Some(section) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                in_profile = section.trim() == profile;
                continue;
            }
            if !in_profile {
                continue;
            }
            if let Some((name, value)) = line.split_once('=') {
                let value = value.trim().to_owned();
                match name.trim() {
                    "aws_access_key_id" => key_id = Some(value),
                    "aws_secret_access_key" => secret = Some(Zeroizing::new(value)),
                    "aws_session_token" => token = Some(Zeroizing::new(value)),
                    _ => {}
                }
            }
        }
        match (key_id, secret) {
            (Some(access_key_id), Some(secret_access_key)) => Ok(Some(AwsCredentials {
                access_key_id,
                secret_access_key,
                session_token: token,
                expires_at: None,
                origin: "shared credentials file",
            })),
            _ => Ok(None),
        }
    }

    async fn assume_role_with_web_identity(&self) -> Result<Option<AwsCredentials>, CustodyError> {
        let (Some(token_file), Some(role_arn)) = (
            self.var("AWS_WEB_IDENTITY_TOKEN_FILE"),
            self.var("AWS_ROLE_ARN"),
        ) else {
            return Ok(None);
        };
        let token = std::fs::read_to_string(&token_file)
            .map(|token| Zeroizing::new(token.trim().to_owned()))
            .map_err(|err| CustodyError::NotConfigured {
                manager: MANAGER,
                hint: format!("cannot read AWS_WEB_IDENTITY_TOKEN_FILE {token_file} ({err})"),
            })?;
        let session = self
            .var("AWS_ROLE_SESSION_NAME")
            .unwrap_or_else(|| format!("keyward-{}", std::process::id()));
        let endpoint = self.sts_endpoint();
        let form = Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("Action", "AssumeRoleWithWebIdentity")
                .append_pair("Version", "2011-06-15")
                .append_pair("RoleArn", &role_arn)
                .append_pair("RoleSessionName", &session)
                .append_pair("WebIdentityToken", &token)
                .finish(),
        );
        // Unsigned by design: the web identity token is the proof.
        let request = self
            .http
            .request(reqwest::Method::POST, &format!("{endpoint}/"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.as_bytes().to_vec());
        let answer = self.http.send("AWS STS", &endpoint, request).await?;
        let body = String::from_utf8_lossy(&answer.body);
        if answer.status != 200 {
            let code = xml_text(&body, "Code").unwrap_or_default();
            let message = xml_text(&body, "Message").unwrap_or_default();
            return Err(CustodyError::Denied {
                manager: "AWS STS",
                permission: "sts:AssumeRoleWithWebIdentity".into(),
                resource: format!("role {role_arn}"),
                detail: format!(
                    " (HTTP {}, {}: {}); check the role's trust policy for this cluster's OIDC provider",
                    answer.status,
                    crate::error::sanitize(code),
                    crate::error::sanitize(message)
                ),
            });
        }
        web_identity_credentials(&body)
    }

    /// STS for this region (`AWS_REGION`), or the endpoint the environment names.
    fn sts_endpoint(&self) -> String {
        let region = ["AWS_REGION", "AWS_DEFAULT_REGION"]
            .iter()
            .find_map(|var| self.var(var))
            .map(|region| region.trim().to_owned())
            .filter(|region| super::is_region_name(region));
        ["AWS_ENDPOINT_URL_STS", "AWS_ENDPOINT_URL"]
            .iter()
            .find_map(|var| self.var(var))
            .map(|url| url.trim().trim_end_matches('/').to_owned())
            .unwrap_or_else(|| match &region {
                Some(region) => format!("https://sts.{region}.amazonaws.com"),
                None => "https://sts.amazonaws.com".to_owned(),
            })
    }

    async fn ask_container_endpoint(&self) -> Result<Option<AwsCredentials>, CustodyError> {
        let url = if let Some(relative) = self.var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI") {
            format!("{CONTAINER_HOST}{relative}")
        } else if let Some(full) = self.var("AWS_CONTAINER_CREDENTIALS_FULL_URI") {
            full
        } else {
            return Ok(None);
        };
        let token = match self.var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE") {
            Some(path) => std::fs::read_to_string(&path)
                .ok()
                .map(|token| Zeroizing::new(token.trim().to_owned())),
            None => self
                .var("AWS_CONTAINER_AUTHORIZATION_TOKEN")
                .map(Zeroizing::new),
        };
        let mut request = self.http.request(reqwest::Method::GET, &url);
        if let Some(token) = &token {
            request = request.header("authorization", token.as_str());
        }
        let answer = self.http.send(MANAGER, &url, request).await?;
        if answer.status != 200 {
            return Err(CustodyError::Refused {
                manager: MANAGER,
                action: "the container credentials request".into(),
                resource: url,
                detail: format!("HTTP {}", answer.status),
            });
        }
        parse_temporary(&answer.body, "container credentials endpoint").map(Some)
    }

    async fn ask_instance_metadata(&self) -> Result<AwsCredentials, CustodyError> {
        let base = self
            .var("AWS_EC2_METADATA_SERVICE_ENDPOINT")
            .unwrap_or_else(|| IMDS_HOST.to_owned());
        let base = base.trim_end_matches('/');
        let token_answer = self
            .http
            .send(
                MANAGER,
                base,
                self.http
                    .request(reqwest::Method::PUT, &format!("{base}/latest/api/token"))
                    .header("x-aws-ec2-metadata-token-ttl-seconds", "21600")
                    .timeout(Duration::from_secs(1)),
            )
            .await
            .map_err(|_| no_credentials())?;
        if token_answer.status != 200 {
            return Err(no_credentials());
        }
        let token = Zeroizing::new(
            String::from_utf8_lossy(&token_answer.body)
                .trim()
                .to_owned(),
        );
        let roles_url = format!("{base}/latest/meta-data/iam/security-credentials/");
        let roles = self
            .http
            .send(
                MANAGER,
                base,
                self.http
                    .request(reqwest::Method::GET, &roles_url)
                    .header("x-aws-ec2-metadata-token", token.as_str()),
            )
            .await?;
        let role = String::from_utf8_lossy(&roles.body)
            .lines()
            .next()
            .unwrap_or_default()
            .trim()
            .to_owned();
        if roles.status != 200 || role.is_empty() || role.contains('/') {
            return Err(no_credentials());
        }
        let answer = self
            .http
            .send(
                MANAGER,
                base,
                self.http
                    .request(reqwest::Method::GET, &format!("{roles_url}{role}"))
                    .header("x-aws-ec2-metadata-token", token.as_str()),
            )
            .await?;
        if answer.status != 200 {
            return Err(no_credentials());
        }
        parse_temporary(&answer.body, "instance metadata service")
    }
}

/// The text between the first `<tag>` and the next `</tag>`: enough for STS's flat answers,
/// whose values (keys, tokens, dates, ARNs) contain no markup.
fn xml_text<'a>(body: &'a str, tag: &str) -> Option<&'a str> {
    let open = format!("<{tag}>");
    let close = format!("</{tag}>");
    let start = body.find(&open)? + open.len();
    let length = body[start..].find(&close)?;
    Some(&body[start..start + length])
}

fn no_credentials() -> CustodyError {
    CustodyError::NotConfigured {
        manager: MANAGER,
        hint: "no AWS credentials found (environment, shared credentials file, container endpoint or instance role); give Keyward an AWS identity".into(),
    }
}

fn parse_temporary(body: &[u8], origin: &'static str) -> Result<AwsCredentials, CustodyError> {
    #[derive(Deserialize)]
    #[serde(rename_all = "PascalCase")]
    struct Temporary {
        access_key_id: String,
        secret_access_key: Zeroizing<String>,
        token: Option<Zeroizing<String>>,
        expiration: Option<String>,
    }
    let parsed: Temporary = crate::error::decode(
        body,
        MANAGER,
        format!("the {origin} request"),
        "no AccessKeyId/SecretAccessKey",
    )?;
    let expires_at = parsed.expiration.as_deref().and_then(|text| {
        time::OffsetDateTime::parse(text, &time::format_description::well_known::Rfc3339)
            .ok()
            .map(SystemTime::from)
    });
    Ok(AwsCredentials {
        access_key_id: parsed.access_key_id,
        secret_access_key: parsed.secret_access_key,
        session_token: parsed.token,
        expires_at,
        origin: if origin.starts_with("container") {
            "container credentials endpoint"
        } else {
            "instance metadata service"
        },
    })
}

/// The temporary credentials in an `AssumeRoleWithWebIdentity` answer.
fn web_identity_credentials(body: &str) -> Result<Option<AwsCredentials>, CustodyError> {
    let credentials = xml_text(body, "Credentials").unwrap_or_default();
    let field = |name: &str| xml_text(credentials, name).map(str::to_owned);
    let (Some(access_key_id), Some(secret), Some(session_token)) = (
        field("AccessKeyId"),
        field("SecretAccessKey"),
        field("SessionToken"),
    ) else {
        return Err(CustodyError::Malformed {
            manager: "AWS STS",
            action: "AssumeRoleWithWebIdentity".into(),
            reason: "no Credentials with AccessKeyId, SecretAccessKey and SessionToken".into(),
        });
    };
    let expires_at = field("Expiration").and_then(|text| {
        time::OffsetDateTime::parse(text.trim(), &time::format_description::well_known::Rfc3339)
            .ok()
            .map(SystemTime::from)
    });
    Ok(Some(AwsCredentials {
        access_key_id,
        secret_access_key: Zeroizing::new(secret),
        session_token: Some(Zeroizing::new(session_token)),
        expires_at,
        origin: "web identity",
    }))
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn chain(vars: &[(&str, String)]) -> CredentialChain {
        let vars: Vec<(String, String)> = vars
            .iter()
            .map(|(name, value)| ((*name).to_owned(), value.clone()))
            .collect();
        let env: Env = Arc::new(move |name| {
            vars.iter()
                .find(|(var, _)| var == name)
                .map(|(_, value)| value.clone())
        });
        CredentialChain::new(ManagerHttp::new().unwrap(), env)
    }

    #[tokio::test]
    async fn environment_then_the_named_profile_of_the_shared_file() {
        let found = chain(&[
            ("AWS_ACCESS_KEY_ID", "AKIAENV".into()),
            ("AWS_SECRET_ACCESS_KEY", "env-secret".into()),
        ])
        .get()
        .await
        .unwrap();
        assert_eq!(found.origin, "environment");
        assert_eq!(found.as_sigv4().access_key_id, "AKIAENV");

        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("credentials");
        std::fs::write(
            &file,
            "[default]\naws_access_key_id = AKIADEFAULT\naws_secret_access_key = d\n\n[kw]\naws_access_key_id=AKIAKW\naws_secret_access_key=s\naws_session_token=t\n",
        )
        .unwrap();
        let found = chain(&[
            ("AWS_SHARED_CREDENTIALS_FILE", file.display().to_string()),
            ("AWS_PROFILE", "kw".into()),
        ])
        .get()
        .await
        .unwrap();
        assert_eq!(found.as_sigv4().access_key_id, "AKIAKW");
        assert_eq!(found.as_sigv4().session_token, Some("t"));
        assert!(format!("{found:?}").contains("[redacted]"));
    }

    #[test]
    fn sts_answers_are_read_by_tag() {
        let body = "<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult><Credentials><SessionToken>tok/+=</SessionToken><SecretAccessKey>sec</SecretAccessKey><Expiration>2030-01-01T00:00:00Z</Expiration><AccessKeyId>ASIA1</AccessKeyId></Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        let credentials = xml_text(body, "Credentials").unwrap();
        assert_eq!(xml_text(credentials, "SessionToken"), Some("tok/+="));
        assert_eq!(xml_text(credentials, "AccessKeyId"), Some("ASIA1"));
        assert_eq!(xml_text(body, "Missing"), None);
        assert_eq!(xml_text("<Code>x", "Code"), None);
    }

    #[test]
    fn temporary_credentials_are_refreshed_five_minutes_before_expiry() {
        let body = br#"{"AccessKeyId":"ASIA1","SecretAccessKey":"x","Token":"t","Expiration":"2030-01-01T00:00:00Z"}"#;
        let parsed = parse_temporary(body, "container credentials endpoint").unwrap();
        let expiry = parsed.expires_at.unwrap();
        assert!(parsed.fresh(expiry - Duration::from_secs(301)));
        assert!(!parsed.fresh(expiry - Duration::from_secs(299)));
        assert!(parse_temporary(b"{}", "instance metadata service").is_err());
    }
}
