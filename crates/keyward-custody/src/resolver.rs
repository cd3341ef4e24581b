//! Fetching referenced secrets at call time, with a short in-memory cache.
//!
//! Invariants:
//! - A fetched secret is held at most `secrets.cache_ttl` (0: not at all): a hit checks the
//!   age, and [`SecretResolver::purge_expired`] (run by the server every few hundred
//!   milliseconds) wipes entries nobody asked for since.
//! - One fetch per reference at a time: concurrent callers of an expired entry wait for the
//!   one fetch instead of all asking the manager.
//! - An unreachable manager is never papered over with a stale value past its TTL.
//! - A refetch after the provider rejected a value ([`SecretResolver::refetch_since`]) is one
//!   fetch however many calls were rejected at once: a caller whose value was obtained before
//!   the entry was last fetched takes that fetch's result instead of asking again.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use zeroize::Zeroizing;

use crate::aws::secrets_manager;
use crate::{AwsClient, AzureKeyVault, CustodyError, SecretReference, VaultClient};

/// The managers references can name; `None` where it is not configured.
#[derive(Clone, Debug)]
pub struct Managers {
    pub aws: Arc<AwsClient>,
    pub vault: Option<Arc<VaultClient>>,
    pub azure: Option<Arc<AzureKeyVault>>,
}

/// One reference's state. A failure is kept only to answer the callers that were waiting for
/// that very fetch (no secret in it); it never stops a later caller from trying again.
#[derive(Default)]
enum Slot {
    #[default]
    Empty,
    Fetched {
        value: Zeroizing<String>,
        fetched_at: Instant,
    },
    Failed {
        error: CustodyError,
        at: Instant,
    },
}

/// How long a failure record is kept (it only serves callers already waiting).
const FAILURE_KEPT: Duration = Duration::from_secs(1);

type Entry = Arc<tokio::sync::Mutex<Slot>>;

pub struct SecretResolver {
    managers: Managers,
    ttl: Duration,
    entries: Mutex<HashMap<String, Entry>>,
}

impl std::fmt::Debug for SecretResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretResolver")
            .field("ttl", &self.ttl)
            .finish_non_exhaustive()
    }
}

impl SecretResolver {
    pub fn new(managers: Managers, ttl: Duration) -> Self {
        Self {
            managers,
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Entry>> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    fn entry(&self, key: &str) -> Entry {
        self.entries().entry(key.to_owned()).or_default().clone()
    }

    /// The secret behind `reference`: from the cache if younger than the TTL and `refresh` is
    /// false, else fetched now. Callers that queued behind a fetch that failed get its error
    /// rather than each waiting out their own attempt against a manager that is down.
    pub async fn resolve(
        &self,
        reference: &SecretReference,
        refresh: bool,
    ) -> Result<Zeroizing<String>, CustodyError> {
        let fresh_after = if refresh { Some(Instant::now()) } else { None };
        self.resolve_fresh(reference, fresh_after).await
    }

    /// The secret behind `reference` as fetched after `used_at` (when the caller obtained the
    /// value the provider just rejected): the result of a fetch another caller made since, or a
    /// fetch made now. Many calls rejected together cost the manager one request.
    pub async fn refetch_since(
        &self,
        reference: &SecretReference,
        used_at: Instant,
    ) -> Result<Zeroizing<String>, CustodyError> {
        self.resolve_fresh(reference, Some(used_at)).await
    }

    /// With `fresh_after`, only a value (or failure) obtained after that instant is taken from
    /// the entry; without, any value younger than the TTL is.
    async fn resolve_fresh(
        &self,
        reference: &SecretReference,
        fresh_after: Option<Instant>,
    ) -> Result<Zeroizing<String>, CustodyError> {
        if self.ttl.is_zero() {
            return self.fetch(reference).await;
        }
        let entry = self.entry(&reference.to_string());
        let arrived = Instant::now();
        let mut slot = entry.lock().await;
        match &*slot {
            Slot::Fetched { value, fetched_at }
                if fetched_at.elapsed() < self.ttl
                    && fresh_after.is_none_or(|after| *fetched_at > after) =>
            {
                return Ok(value.clone());
            }
            Slot::Failed { error, at }
                if *at >= fresh_after.map_or(arrived, |after| after.min(arrived)) =>
            {
                return Err(error.clone())
            }
            _ => {}
        }
        // Nothing stale survives a refresh, failed or not.
        *slot = Slot::Empty;
        match self.fetch(reference).await {
            Ok(value) => {
                *slot = Slot::Fetched {
                    value: value.clone(),
                    fetched_at: Instant::now(),
                };
                Ok(value)
            }
            Err(error) => {
                *slot = Slot::Failed {
                    error: error.clone(),
                    at: Instant::now(),
                };
                Err(error)
            }
        }
    }

    /// Drops what is held for `reference`: a value its user found malformed must not be served
    /// again for the rest of the TTL (the next call asks the manager).
    pub async fn forget(&self, reference: &SecretReference) {
        let entry = self.entry(&reference.to_string());
        *entry.lock().await = Slot::Empty;
    }

    /// Wipes cached secrets older than the TTL (and old failure records).
    pub fn purge_expired(&self) {
        let ttl = self.ttl;
        self.entries().retain(|_, entry| {
            let Ok(mut slot) = entry.try_lock() else {
                return true; // being fetched or read right now
            };
            let expired = match &*slot {
                Slot::Fetched { fetched_at, .. } => fetched_at.elapsed() >= ttl,
                Slot::Failed { at, .. } => at.elapsed() >= FAILURE_KEPT,
                Slot::Empty => true,
            };
            if expired {
                *slot = Slot::Empty;
            }
            !matches!(*slot, Slot::Empty)
        });
    }

    /// How many secrets are held in memory now (for tests and metrics).
    pub fn cached_count(&self) -> usize {
        self.entries()
            .values()
            .filter(|entry| {
                entry
                    .try_lock()
                    .map_or(true, |slot| matches!(*slot, Slot::Fetched { .. }))
            })
            .count()
    }

    async fn fetch(&self, reference: &SecretReference) -> Result<Zeroizing<String>, CustodyError> {
        match reference {
            SecretReference::Vault { mount, path, field } => {
                let vault = self.managers.vault.as_ref().ok_or(CustodyError::NotConfigured {
                    manager: "Vault",
                    hint: "set VAULT_ADDR and VAULT_TOKEN (or vault.role_id and vault.secret_id_file) for Keyward".into(),
                })?;
                vault.kv2_field(mount, path, field).await
            }
            SecretReference::AwsSecretsManager {
                secret_id,
                json_field,
            } => {
                let text =
                    secrets_manager::get_secret_string(&self.managers.aws, secret_id).await?;
                match json_field {
                    None => Ok(text),
                    Some(field) => json_field_of(&text, field, secret_id),
                }
            }
            SecretReference::AzureKeyVault { vault, name } => {
                let azure = self
                    .managers
                    .azure
                    .as_ref()
                    .ok_or(CustodyError::NotConfigured {
                    manager: "Azure Key Vault",
                    hint:
                        "set AZURE_TENANT_ID, AZURE_CLIENT_ID and AZURE_CLIENT_SECRET for Keyward"
                            .into(),
                })?;
                azure.secret(vault, name).await
            }
        }
    }
}

fn json_field_of(
    text: &str,
    field: &str,
    secret_id: &str,
) -> Result<Zeroizing<String>, CustodyError> {
    let refused = |detail: &str| CustodyError::Refused {
        manager: "AWS Secrets Manager",
        action: "secretsmanager:GetSecretValue".into(),
        resource: format!("secret {secret_id}"),
        detail: detail.to_owned(),
    };
    let mut parsed: serde_json::Map<String, serde_json::Value> = serde_json::from_str(text)
        .map_err(|_| {
            refused("the secret is not a JSON object, so it has no field to pick; drop the #FIELD")
        })?;
    let value = parsed.remove(field);
    for other in parsed.values_mut() {
        if let serde_json::Value::String(text) = other {
            zeroize::Zeroize::zeroize(text);
        }
    }
    match value {
        Some(serde_json::Value::String(value)) => Ok(Zeroizing::new(value)),
        Some(_) => Err(refused(&format!("field {field} is not a string"))),
        None => Err(CustodyError::NotFound {
            manager: "AWS Secrets Manager",
            resource: format!("field {field} of secret {secret_id}"),
            detail: String::new(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;
    use crate::hashicorp::{VaultAuth, VaultSettings};
    use crate::ManagerHttp;

    /// A Vault that answers every request, slowly, with 503 (sealed), counting requests.
    async fn sealed_vault() -> (String, Arc<AtomicUsize>) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(AtomicUsize::new(0));
        let counter = requests.clone();
        #[expect(clippy::disallowed_methods, reason = "a test server")]
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let counter = counter.clone();
                #[expect(clippy::disallowed_methods, reason = "a test server")]
                tokio::spawn(async move {
                    let mut buffer = [0u8; 4096];
                    let _ = socket.read(&mut buffer).await;
                    counter.fetch_add(1, Ordering::SeqCst);
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    let body = r#"{"errors":["Vault is sealed"]}"#;
                    let answer = format!("HTTP/1.1 503 Service Unavailable\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}", body.len());
                    let _ = socket.write_all(answer.as_bytes()).await;
                });
            }
        });
        (address, requests)
    }

    #[tokio::test]
    async fn callers_waiting_on_a_failed_fetch_share_its_error_and_later_ones_retry() {
        let (addr, requests) = sealed_vault().await;
        let http = ManagerHttp::new().unwrap();
        let vault = crate::VaultClient::new(
            http.clone(),
            VaultSettings {
                addr,
                namespace: None,
                auth: VaultAuth::Token(Zeroizing::new("s.test".into())),
            },
        );
        let env: crate::Env = Arc::new(|_| None);
        let resolver = Arc::new(SecretResolver::new(
            Managers {
                aws: crate::AwsClient::new(http, env),
                vault: Some(vault),
                azure: None,
            },
            Duration::from_secs(60),
        ));
        let reference = SecretReference::parse("vault://secret/acme/openai#api_key").unwrap();
        let mut callers = tokio::task::JoinSet::new();
        for _ in 0..5 {
            let resolver = resolver.clone();
            let reference = reference.clone();
            callers.spawn(async move { resolver.resolve(&reference, false).await });
        }
        let mut errors = Vec::new();
        while let Some(result) = callers.join_next().await {
            errors.push(result.unwrap().unwrap_err().to_string());
        }
        assert_eq!(errors.len(), 5);
        assert!(
            errors.iter().all(|err| err.contains("sealed")),
            "{errors:?}"
        );
        assert_eq!(
            requests.load(Ordering::SeqCst),
            1,
            "one fetch for five waiting callers"
        );
        assert_eq!(resolver.cached_count(), 0, "a failure holds no secret");

        // A caller arriving afterwards tries again.
        assert!(resolver.resolve(&reference, false).await.is_err());
        assert_eq!(requests.load(Ordering::SeqCst), 2);
        tokio::time::sleep(FAILURE_KEPT).await;
        resolver.purge_expired();
        assert!(resolver.entries().is_empty());
    }
}
