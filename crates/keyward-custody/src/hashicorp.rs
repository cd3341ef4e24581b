//! HashiCorp Vault / OpenBao over its HTTP API: token or AppRole login (renewed before the
//! lease runs out), Transit for `vault-transit:[MOUNT/]KEY` master keys, and KV v2 reads for
//! `vault://MOUNT/PATH#FIELD` references.
//!
//! Transit data keys are 32 random bytes from the OS, encrypted by `transit/encrypt` with the
//! [`WrapContext`] as associated data (AES-GCM keys; Vault ≥ 1.13, every OpenBao), so Vault
//! refuses to decrypt them for another deployment or version.

use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keyward_core::secret::MasterKeyMaterial;
use keyward_vault::{KeyWrapper, NewDataKey, SourceFuture, VaultError, WrapContext};
use serde::Deserialize;
use zeroize::Zeroizing;

use crate::error::sanitize;
use crate::http::ManagerHttp;
use crate::CustodyError;

const MANAGER: &str = "Vault";

/// How Keyward logs in to Vault.
pub struct VaultSettings {
    /// `VAULT_ADDR`.
    pub addr: String,
    /// `VAULT_NAMESPACE` (Vault Enterprise / OpenBao namespaces).
    pub namespace: Option<String>,
    pub auth: VaultAuth,
}

pub enum VaultAuth {
    /// `VAULT_TOKEN`: renewed while renewable; when it cannot be renewed, it is used until
    /// Vault refuses it.
    Token(Zeroizing<String>),
    /// AppRole (`vault.role_id`, `vault.secret_id_file`): renewed, or logged in again, before
    /// the lease ends. The secret id file is read at each login, so an operator can replace a
    /// secret id (e.g. one with a use limit) without restarting Keyward.
    AppRole {
        mount: String,
        role_id: String,
        secret_id_file: std::path::PathBuf,
    },
}

struct Session {
    token: Zeroizing<String>,
    /// When to renew or log in again (two thirds into the lease); `None`: never expires.
    refresh_at: Option<Instant>,
    renewable: bool,
    /// Counts logins, so that callers who saw the same dead token log in once between them.
    generation: u64,
}

/// Shortest renewed lease worth keeping: an AppRole token renewed up to its maximum TTL comes
/// back with a shrinking lease, and a fresh login is better than renewing every few seconds.
const MIN_RENEWED_LEASE: u64 = 60;

pub struct VaultClient {
    http: ManagerHttp,
    settings: VaultSettings,
    session: tokio::sync::Mutex<Option<Session>>,
}

impl std::fmt::Debug for VaultClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("VaultClient")
            .field("addr", &self.settings.addr)
            .finish_non_exhaustive()
    }
}

#[derive(Deserialize)]
struct AuthAnswer {
    auth: AuthBlock,
}

#[derive(Deserialize)]
struct AuthBlock {
    client_token: Zeroizing<String>,
    #[serde(default)]
    lease_duration: u64,
    #[serde(default)]
    renewable: bool,
}

#[derive(Deserialize)]
struct Errors {
    #[serde(default)]
    errors: Vec<String>,
}

fn refresh_at(lease_seconds: u64) -> Option<Instant> {
    (lease_seconds > 0).then(|| Instant::now() + Duration::from_secs(lease_seconds * 2 / 3))
}

impl VaultClient {
    pub fn new(http: ManagerHttp, settings: VaultSettings) -> Arc<Self> {
        Arc::new(Self {
            http,
            settings,
            session: tokio::sync::Mutex::new(None),
        })
    }

    fn url(&self, path: &str) -> String {
        format!("{}/v1/{path}", self.settings.addr.trim_end_matches('/'))
    }

    async fn raw(
        &self,
        method: reqwest::Method,
        path: &str,
        token: Option<&str>,
        body: Option<&serde_json::Value>,
    ) -> Result<crate::http::Answer, CustodyError> {
        let mut request = self.http.request(method, &self.url(path));
        if let Some(token) = token {
            request = request.header("x-vault-token", token);
        }
        if let Some(namespace) = &self.settings.namespace {
            request = request.header("x-vault-namespace", namespace);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.http.send(MANAGER, &self.settings.addr, request).await
    }

    /// Whether `token` is still a valid token (`lookup-self`), with its TTL and renewability.
    async fn look_up(&self, token: &str) -> Result<Option<(u64, bool)>, CustodyError> {
        let answer = self
            .raw(
                reqwest::Method::GET,
                "auth/token/lookup-self",
                Some(token),
                None,
            )
            .await?;
        #[derive(Deserialize)]
        struct Lookup {
            data: LookupData,
        }
        #[derive(Deserialize)]
        struct LookupData {
            #[serde(default)]
            ttl: u64,
            #[serde(default)]
            renewable: bool,
        }
        match answer.status {
            200 => {
                let lookup: Lookup = crate::error::decode(
                    &answer.body,
                    MANAGER,
                    "auth/token/lookup-self",
                    "no data",
                )?;
                Ok(Some((lookup.data.ttl, lookup.data.renewable)))
            }
            // Vault answers 403 for a token that is invalid, expired or revoked.
            403 => Ok(None),
            status => Err(CustodyError::Refused {
                manager: MANAGER,
                action: "auth/token/lookup-self".into(),
                resource: self.settings.addr.clone(),
                detail: vault_errors(status, &answer.body),
            }),
        }
    }

    async fn login(&self, generation: u64) -> Result<Session, CustodyError> {
        match &self.settings.auth {
            VaultAuth::Token(token) => {
                let Some((ttl, renewable)) = self.look_up(token).await? else {
                    return Err(CustodyError::Denied {
                        manager: MANAGER,
                        permission: "use of VAULT_TOKEN".into(),
                        resource: self.settings.addr.clone(),
                        detail: " (the token is invalid, expired or revoked)".into(),
                    });
                };
                Ok(Session {
                    token: token.clone(),
                    refresh_at: if renewable { refresh_at(ttl) } else { None },
                    renewable,
                    generation,
                })
            }
            VaultAuth::AppRole {
                mount,
                role_id,
                secret_id_file,
            } => {
                let secret_id = std::fs::read_to_string(secret_id_file)
                    .map(|text| Zeroizing::new(text.trim().to_owned()))
                    .map_err(|err| CustodyError::NotConfigured {
                        manager: MANAGER,
                        hint: format!(
                            "cannot read vault.secret_id_file {} ({err})",
                            secret_id_file.display()
                        ),
                    })?;
                let body = Zeroizing::new(
                    serde_json::json!({"role_id": role_id, "secret_id": secret_id.as_str()})
                        .to_string(),
                );
                let path = format!("auth/{mount}/login");
                let request = self
                    .http
                    .request(reqwest::Method::POST, &self.url(&path))
                    .header("content-type", "application/json")
                    .body(body.as_bytes().to_vec());
                let request = match &self.settings.namespace {
                    Some(namespace) => request.header("x-vault-namespace", namespace),
                    None => request,
                };
                let answer = self
                    .http
                    .send(MANAGER, &self.settings.addr, request)
                    .await?;
                if answer.status != 200 {
                    return Err(CustodyError::Denied {
                        manager: MANAGER,
                        permission: format!("login at auth/{mount}"),
                        resource: format!("AppRole role id {role_id}"),
                        detail: format!(" ({})", vault_errors(answer.status, &answer.body)),
                    });
                }
                let auth: AuthAnswer = crate::error::decode(
                    &answer.body,
                    MANAGER,
                    "AppRole login",
                    "no auth.client_token",
                )?;
                tracing::debug!("logged in to vault with approle");
                Ok(Session {
                    token: auth.auth.client_token,
                    refresh_at: refresh_at(auth.auth.lease_duration),
                    renewable: auth.auth.renewable,
                    generation,
                })
            }
        }
    }

    /// Replaces the session with a fresh login, revoking the AppRole token it replaces (best
    /// effort: it would expire anyway).
    async fn replace_session(
        &self,
        slot: &mut Option<Session>,
    ) -> Result<(Zeroizing<String>, u64), CustodyError> {
        let generation = slot.as_ref().map_or(1, |session| session.generation + 1);
        let fresh = self.login(generation).await?;
        let token = fresh.token.clone();
        if let (Some(old), VaultAuth::AppRole { .. }) = (slot.take(), &self.settings.auth) {
            if *old.token != *token {
                let _ = self
                    .raw(
                        reqwest::Method::POST,
                        "auth/token/revoke-self",
                        Some(&old.token),
                        None,
                    )
                    .await;
            }
        }
        *slot = Some(fresh);
        Ok((token, generation))
    }

    /// A token that is good for a while: renewed or logged in again when due.
    async fn token(&self) -> Result<(Zeroizing<String>, u64), CustodyError> {
        let mut session = self.session.lock().await;
        let Some(current) = session.as_ref() else {
            return self.replace_session(&mut session).await;
        };
        match current.refresh_at {
            Some(due) if Instant::now() >= due => {}
            _ => return Ok((current.token.clone(), current.generation)),
        }
        if current.renewable {
            let answer = self
                .raw(
                    reqwest::Method::POST,
                    "auth/token/renew-self",
                    Some(&current.token),
                    Some(&serde_json::json!({})),
                )
                .await?;
            let renewed = serde_json::from_slice::<AuthAnswer>(&answer.body)
                .ok()
                .filter(|_| answer.status == 200);
            let approle = matches!(self.settings.auth, VaultAuth::AppRole { .. });
            if let Some(renewed) = renewed {
                // Near its maximum TTL a renewal returns a short lease: log in again instead.
                if !approle || renewed.auth.lease_duration >= MIN_RENEWED_LEASE {
                    tracing::debug!("vault token renewed");
                    let generation = current.generation;
                    let fresh = Session {
                        token: renewed.auth.client_token,
                        refresh_at: refresh_at(renewed.auth.lease_duration),
                        renewable: renewed.auth.renewable,
                        generation,
                    };
                    let token = fresh.token.clone();
                    *session = Some(fresh);
                    return Ok((token, generation));
                }
            } else if !approle {
                // A static token that can no longer be renewed is used until Vault refuses it.
                let token = current.token.clone();
                let generation = current.generation;
                if let Some(current) = session.as_mut() {
                    current.refresh_at = None;
                }
                return Ok((token, generation));
            }
        }
        self.replace_session(&mut session).await
    }

    /// A request with the session token. A 403 means either a path the policy does not allow
    /// (answered as is) or a dead token: only when `lookup-self` says the token itself is no
    /// longer valid does an AppRole session log in again (once among concurrent callers) and
    /// retry.
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<crate::http::Answer, CustodyError> {
        let (token, generation) = self.token().await?;
        let answer = self.raw(method.clone(), path, Some(&token), body).await?;
        if answer.status != 403 || !matches!(self.settings.auth, VaultAuth::AppRole { .. }) {
            return Ok(answer);
        }
        if self.look_up(&token).await?.is_some() {
            return Ok(answer);
        }
        let token = {
            let mut session = self.session.lock().await;
            match session.as_ref() {
                Some(current) if current.generation != generation => current.token.clone(),
                _ => self.replace_session(&mut session).await?.0,
            }
        };
        self.raw(method, path, Some(&token), body).await
    }

    /// Reads one string field of a KV v2 secret.
    pub async fn kv2_field(
        &self,
        mount: &str,
        path: &str,
        field: &str,
    ) -> Result<Zeroizing<String>, CustodyError> {
        let api_path = format!("{mount}/data/{path}");
        let resource = format!("{mount}/{path}");
        let answer = self.call(reqwest::Method::GET, &api_path, None).await?;
        match answer.status {
            200 => {}
            403 => {
                return Err(CustodyError::Denied {
                    manager: MANAGER,
                    permission: format!("read on {api_path}"),
                    resource,
                    detail: String::new(),
                })
            }
            404 => {
                return Err(CustodyError::NotFound {
                    manager: MANAGER,
                    resource: format!("KV v2 secret {resource}"),
                    detail: " (or it was deleted)".into(),
                })
            }
            status => {
                return Err(CustodyError::Refused {
                    manager: MANAGER,
                    action: "read".into(),
                    resource,
                    detail: vault_errors(status, &answer.body),
                })
            }
        }
        let mut value: serde_json::Value =
            crate::error::decode(&answer.body, MANAGER, "a KV v2 read", "not JSON")?;
        let field_value = value
            .get_mut("data")
            .and_then(|data| data.get_mut("data"))
            .and_then(|data| data.get_mut(field))
            .map(serde_json::Value::take);
        // Wipe the rest of the answer's parsed copy as far as possible.
        let text = match field_value {
            Some(serde_json::Value::String(text)) => Zeroizing::new(text),
            Some(mut other) => {
                zeroize_json(&mut other);
                zeroize_json(&mut value);
                return Err(CustodyError::Refused {
                    manager: MANAGER,
                    action: "read".into(),
                    resource: format!("field {field} of {resource}"),
                    detail: "the field is not a string".into(),
                });
            }
            None => {
                return Err(CustodyError::NotFound {
                    manager: MANAGER,
                    resource: format!("field {field} of KV v2 secret {resource}"),
                    detail: String::new(),
                })
            }
        };
        zeroize_json(&mut value);
        Ok(text)
    }
}

/// Overwrites every string in a parsed answer (other fields of a secret).
fn zeroize_json(value: &mut serde_json::Value) {
    use zeroize::Zeroize;
    match value {
        serde_json::Value::String(text) => text.zeroize(),
        serde_json::Value::Array(items) => items.iter_mut().for_each(zeroize_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(zeroize_json),
        _ => {}
    }
}

fn vault_errors(status: u16, body: &[u8]) -> String {
    let errors = serde_json::from_slice::<Errors>(body)
        .map(|errors| errors.errors.join("; "))
        .unwrap_or_default();
    if errors.is_empty() {
        format!("HTTP {status}")
    } else {
        format!("HTTP {status}: {}", sanitize(&errors))
    }
}

/// `vault-transit:[MOUNT/]KEY` (mount `transit` when not given).
#[derive(Debug)]
pub struct TransitWrapper {
    client: Arc<VaultClient>,
    mount: String,
    key: String,
}

impl TransitWrapper {
    pub fn new(client: Arc<VaultClient>, spec: &str) -> Self {
        let (mount, key) = match spec.rsplit_once('/') {
            Some((mount, key)) => (mount.to_owned(), key.to_owned()),
            None => ("transit".to_owned(), spec.to_owned()),
        };
        Self { client, mount, key }
    }

    fn associated_data(context: &WrapContext) -> String {
        let text = context
            .pairs()
            .iter()
            .map(|(name, value)| format!("{name}={value}"))
            .collect::<Vec<_>>()
            .join(";");
        STANDARD.encode(text)
    }

    fn vault_error(&self, err: CustodyError) -> VaultError {
        err.at_source(self.location())
    }

    async fn transit(
        &self,
        operation: &str,
        version: keyward_core::KeyVersion,
        body: serde_json::Value,
    ) -> Result<serde_json::Value, VaultError> {
        let path = format!("{}/{operation}/{}", self.mount, self.key);
        let answer = self
            .client
            .call(reqwest::Method::POST, &path, Some(&body))
            .await
            .map_err(|err| self.vault_error(err))?;
        let key = format!("Transit key {}/{}", self.mount, self.key);
        let failure = match answer.status {
            200 => None,
            403 => Some(CustodyError::Denied {
                manager: MANAGER,
                permission: format!("update on {path}"),
                resource: key,
                detail: String::new(),
            }),
            status => {
                let detail = vault_errors(status, &answer.body);
                Some(if detail.contains("authentication failed") {
                    CustodyError::Refused {
                        manager: MANAGER,
                        action: operation.to_owned(),
                        resource: format!("the data key of master key version {version}"),
                        detail: format!("it was not wrapped by {key} for this deployment and version ({detail}); the database may come from another deployment, or the wrapped key was altered"),
                    }
                } else if detail.contains("not found") {
                    CustodyError::NotFound {
                        manager: MANAGER,
                        resource: key,
                        detail: format!(
                            " ({detail}); create it with `transit/keys/{}` type aes256-gcm96",
                            self.key
                        ),
                    }
                } else {
                    CustodyError::Refused {
                        manager: MANAGER,
                        action: operation.to_owned(),
                        resource: key,
                        detail,
                    }
                })
            }
        };
        if let Some(err) = failure {
            return Err(self.vault_error(err));
        }
        #[derive(Deserialize)]
        struct Answer {
            data: serde_json::Value,
        }
        serde_json::from_slice::<Answer>(&answer.body)
            .map(|answer| answer.data)
            .map_err(|_| {
                self.vault_error(CustodyError::Malformed {
                    manager: MANAGER,
                    action: format!("transit {operation}"),
                    reason: "no data".into(),
                })
            })
    }
}

impl KeyWrapper for TransitWrapper {
    fn location(&self) -> String {
        if self.mount == "transit" {
            format!("vault-transit:{}", self.key)
        } else {
            format!("vault-transit:{}/{}", self.mount, self.key)
        }
    }

    fn generate(&self, context: WrapContext) -> SourceFuture<'_, NewDataKey> {
        Box::pin(async move {
            let material =
                MasterKeyMaterial::generate().map_err(|_| VaultError::RandomUnavailable)?;
            let plaintext = Zeroizing::new(STANDARD.encode(material.expose_secret()));
            let mut data = self
                .transit(
                    "encrypt",
                    context.version,
                    serde_json::json!({
                        "plaintext": plaintext.as_str(),
                        "associated_data": Self::associated_data(&context),
                    }),
                )
                .await?;
            let wrapped = match data.get_mut("ciphertext").map(serde_json::Value::take) {
                Some(serde_json::Value::String(ciphertext)) if ciphertext.starts_with("vault:") => {
                    ciphertext
                }
                _ => {
                    return Err(self.vault_error(CustodyError::Malformed {
                        manager: MANAGER,
                        action: "transit encrypt".into(),
                        reason: "no vault: ciphertext".into(),
                    }))
                }
            };
            // A server that ignores associated data (Vault before 1.13, or a key type without
            // AEAD) would wrap without binding the context: check it refuses a wrong one.
            let probe = WrapContext {
                deployment: format!("{}-probe", context.deployment),
                version: context.version,
            };
            if self.unwrap(wrapped.clone(), probe).await.is_ok() {
                return Err(self.vault_error(CustodyError::Refused {
                    manager: MANAGER,
                    action: "encrypt with associated data".into(),
                    resource: format!("Transit key {}/{}", self.mount, self.key),
                    detail: "the server ignores associated data, so wrapped keys would not be bound to this deployment; use an aes256-gcm96 key on Vault 1.13+ or OpenBao".into(),
                }));
            }
            Ok(NewDataKey { material, wrapped })
        })
    }

    fn unwrap(&self, wrapped: String, context: WrapContext) -> SourceFuture<'_, MasterKeyMaterial> {
        Box::pin(async move {
            let mut data = self
                .transit(
                    "decrypt",
                    context.version,
                    serde_json::json!({
                        "ciphertext": wrapped,
                        "associated_data": Self::associated_data(&context),
                    }),
                )
                .await?;
            let plaintext = match data.get_mut("plaintext").map(serde_json::Value::take) {
                Some(serde_json::Value::String(text)) => Zeroizing::new(text),
                _ => Zeroizing::new(String::new()),
            };
            let bytes = Zeroizing::new(STANDARD.decode(plaintext.as_bytes()).unwrap_or_default());
            let array: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
                self.vault_error(CustodyError::Malformed {
                    manager: MANAGER,
                    action: "transit decrypt".into(),
                    reason: "plaintext is not 32 bytes of base64".into(),
                })
            })?;
            Ok(MasterKeyMaterial::new(Box::new(array)))
        })
    }
}
