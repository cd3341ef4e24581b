//! Fetching referenced secrets at call time, with a short in-memory cache.
//!
//! Invariants:
//! - A fetched secret is held at most `secrets.cache_ttl` (0: not at all): a hit checks the
//!   age, and [`SecretResolver::purge_expired`] (run by the server every few hundred
//!   milliseconds) wipes entries nobody asked for since.
//! - One fetch per reference at a time: concurrent callers of an expired entry wait for the
//!   one fetch instead of all asking the manager.
//! - An unreachable manager is never papered over with a stale value past its TTL.

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

struct Cached {
    value: Zeroizing<String>,
    fetched_at: Instant,
}

type Entry = Arc<tokio::sync::Mutex<Option<Cached>>>;

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

    fn entry(&self, key: &str) -> Entry {
        let mut entries = match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries.entry(key.to_owned()).or_default().clone()
    }

    /// The secret behind `reference`: from the cache if younger than the TTL and `refresh` is
    /// false, else fetched now.
    pub async fn resolve(
        &self,
        reference: &SecretReference,
        refresh: bool,
    ) -> Result<Zeroizing<String>, CustodyError> {
        if self.ttl.is_zero() {
            return self.fetch(reference).await;
        }
        let entry = self.entry(&reference.to_string());
        let mut slot = entry.lock().await;
        if let Some(cached) = slot.as_ref() {
            if !refresh && cached.fetched_at.elapsed() < self.ttl {
                return Ok(cached.value.clone());
            }
        }
        // Nothing stale survives a failed refresh.
        *slot = None;
        let value = self.fetch(reference).await?;
        *slot = Some(Cached {
            value: value.clone(),
            fetched_at: Instant::now(),
        });
        Ok(value)
    }

    /// Wipes cached secrets older than the TTL.
    pub fn purge_expired(&self) {
        let mut entries = match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries.retain(|_, entry| {
            let Ok(mut slot) = entry.try_lock() else {
                return true; // being fetched or read right now
            };
            if slot
                .as_ref()
                .is_some_and(|cached| cached.fetched_at.elapsed() >= self.ttl)
            {
                *slot = None;
            }
            slot.is_some()
        });
    }

    /// How many secrets are held in memory now (for tests and metrics).
    pub fn cached_count(&self) -> usize {
        let entries = match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        entries
            .values()
            .filter(|entry| entry.try_lock().map_or(true, |slot| slot.is_some()))
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
