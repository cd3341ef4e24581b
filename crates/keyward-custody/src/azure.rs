//! Azure Key Vault secrets (`azure-kv://VAULT/NAME`): an access token from Microsoft Entra ID
//! by the client-credentials grant (`AZURE_TENANT_ID`, `AZURE_CLIENT_ID`,
//! `AZURE_CLIENT_SECRET`, `AZURE_AUTHORITY_HOST`), refreshed five minutes before it expires,
//! then `GET {vault}/secrets/{name}?api-version=7.5` (the latest version).

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::sanitize;
use crate::http::ManagerHttp;
use crate::CustodyError;

const MANAGER: &str = "Azure Key Vault";
const API_VERSION: &str = "7.5";
const SCOPE: &str = "https://vault.azure.net/.default";
const REFRESH_BEFORE_EXPIRY: Duration = Duration::from_secs(300);

pub struct AzureSettings {
    pub tenant_id: String,
    pub client_id: String,
    pub client_secret: Zeroizing<String>,
    /// `https://login.microsoftonline.com` unless `AZURE_AUTHORITY_HOST` says otherwise.
    pub authority_host: String,
    /// `https://{vault}.vault.azure.net` (`secrets.azure_vault_url`).
    pub vault_url_template: String,
}

struct AccessToken {
    token: Zeroizing<String>,
    refresh_at: Instant,
}

pub struct AzureKeyVault {
    http: ManagerHttp,
    settings: AzureSettings,
    token: tokio::sync::Mutex<Option<AccessToken>>,
}

impl std::fmt::Debug for AzureKeyVault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AzureKeyVault")
            .field("client_id", &self.settings.client_id)
            .finish_non_exhaustive()
    }
}

impl AzureKeyVault {
    pub fn new(http: ManagerHttp, settings: AzureSettings) -> Arc<Self> {
        Arc::new(Self {
            http,
            settings,
            token: tokio::sync::Mutex::new(None),
        })
    }

    async fn access_token(&self) -> Result<Zeroizing<String>, CustodyError> {
        let mut cached = self.token.lock().await;
        if let Some(token) = cached.as_ref().filter(|t| Instant::now() < t.refresh_at) {
            return Ok(token.token.clone());
        }
        let authority = self.settings.authority_host.trim_end_matches('/');
        let url = format!("{authority}/{}/oauth2/v2.0/token", self.settings.tenant_id);
        let form = Zeroizing::new(
            url::form_urlencoded::Serializer::new(String::new())
                .append_pair("grant_type", "client_credentials")
                .append_pair("client_id", &self.settings.client_id)
                .append_pair("client_secret", &self.settings.client_secret)
                .append_pair("scope", SCOPE)
                .finish(),
        );
        let request = self
            .http
            .request(reqwest::Method::POST, &url)
            .header("content-type", "application/x-www-form-urlencoded")
            .body(form.as_bytes().to_vec());
        let answer = self
            .http
            .send("Microsoft Entra ID", authority, request)
            .await?;
        if answer.status != 200 {
            #[derive(Deserialize)]
            struct Failure {
                error: Option<String>,
                error_description: Option<String>,
            }
            let failure: Option<Failure> = serde_json::from_slice(&answer.body).ok();
            let detail = failure
                .map(|f| {
                    format!(
                        "{}: {}",
                        f.error.unwrap_or_default(),
                        sanitize(&f.error_description.unwrap_or_default())
                    )
                })
                .unwrap_or_else(|| format!("HTTP {}", answer.status));
            return Err(CustodyError::Denied {
                manager: "Microsoft Entra ID",
                permission: "a token for Key Vault (client credentials)".into(),
                resource: format!(
                    "client {} in tenant {}",
                    self.settings.client_id, self.settings.tenant_id
                ),
                detail: format!(" ({detail})"),
            });
        }
        #[derive(Deserialize)]
        struct Granted {
            access_token: Zeroizing<String>,
            #[serde(default)]
            expires_in: u64,
        }
        let granted: Granted = crate::error::decode(
            &answer.body,
            "Microsoft Entra ID",
            "the token request",
            "no access_token",
        )?;
        let lifetime = Duration::from_secs(granted.expires_in);
        let refresh_at = Instant::now()
            + lifetime
                .checked_sub(REFRESH_BEFORE_EXPIRY)
                .unwrap_or(lifetime / 2);
        let token = granted.access_token.clone();
        *cached = Some(AccessToken {
            token: granted.access_token,
            refresh_at,
        });
        Ok(token)
    }

    /// The current version of a secret's value.
    pub async fn secret(&self, vault: &str, name: &str) -> Result<Zeroizing<String>, CustodyError> {
        let base = self.settings.vault_url_template.replace("{vault}", vault);
        let base = base.trim_end_matches('/');
        let url = format!("{base}/secrets/{name}?api-version={API_VERSION}");
        let resource = format!("secret {name} in vault {vault}");
        let mut retried = false;
        loop {
            let token = self.access_token().await?;
            let request = self
                .http
                .request(reqwest::Method::GET, &url)
                .header("authorization", format!("Bearer {}", token.as_str()))
                .header("accept", "application/json");
            let answer = self.http.send(MANAGER, base, request).await?;
            if answer.status == 200 {
                #[derive(Deserialize)]
                struct Secret {
                    value: Option<Zeroizing<String>>,
                }
                let secret: Secret =
                    crate::error::decode(&answer.body, MANAGER, "Get Secret", "not a JSON object")?;
                return secret.value.ok_or_else(|| CustodyError::Malformed {
                    manager: MANAGER,
                    action: "Get Secret".into(),
                    reason: "no value".into(),
                });
            }
            // A token revoked early: one fresh token, one retry.
            if answer.status == 401 && !retried {
                retried = true;
                *self.token.lock().await = None;
                continue;
            }
            return Err(get_secret_failure(&answer, resource));
        }
    }
}

/// Why Get Secret failed, from Key Vault's error body (its codes; the message is sanitized
/// before it is kept).
fn get_secret_failure(answer: &crate::http::Answer, resource: String) -> CustodyError {
    #[derive(Deserialize)]
    struct Failure {
        error: FailureBody,
    }
    #[derive(Deserialize)]
    struct FailureBody {
        #[serde(default)]
        code: String,
        #[serde(default)]
        message: String,
        innererror: Option<Inner>,
    }
    #[derive(Deserialize)]
    struct Inner {
        #[serde(default)]
        code: String,
    }
    let failure = serde_json::from_slice::<Failure>(&answer.body).ok();
    let code = failure
        .as_ref()
        .map(|f| {
            f.error
                .innererror
                .as_ref()
                .map(|inner| inner.code.clone())
                .filter(|code| !code.is_empty())
                .unwrap_or_else(|| f.error.code.clone())
        })
        .unwrap_or_default();
    let message = failure
        .map(|f| sanitize(&f.error.message))
        .unwrap_or_default();
    let detail = format!(" (HTTP {}, {code}: {message})", answer.status);
    match (answer.status, code.as_str()) {
        (404, _) => CustodyError::NotFound {
            manager: MANAGER,
            resource,
            detail,
        },
        (403, "SecretDisabled") => CustodyError::Refused {
            manager: MANAGER,
            action: "secrets/get".into(),
            resource,
            detail: format!("the secret is disabled{detail}"),
        },
        (401 | 403, _) => CustodyError::Denied {
            manager: MANAGER,
            permission: "secrets/get (role Key Vault Secrets User)".into(),
            resource,
            detail,
        },
        _ => CustodyError::Refused {
            manager: MANAGER,
            action: "secrets/get".into(),
            resource,
            detail,
        },
    }
}
