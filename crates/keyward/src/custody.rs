//! Wiring of external key custody: the key-manager clients (from the standard environment
//! variables and `vault.*` / `secrets.*` config), the master-key source named by
//! `master_key.source` (+ `previous_sources`), and the store adapter that keeps envelope
//! sources' wrapped data keys in the database.

use std::sync::Arc;

use anyhow::{bail, Context};
use keyward_custody::hashicorp::VaultAuth;
use keyward_custody::{
    AwsClient, AzureKeyVault, AzureSettings, KmsWrapper, ManagerHttp, Managers, TransitWrapper,
    VaultClient, VaultSettings,
};
use keyward_store::{Store, WrappedDataKeyRecord};
use keyward_vault::{
    EnvLookup, EnvelopeSource, KeyWrapper, MasterKeySource, SourceFuture, VaultError, WrappedKey,
    WrappedKeyStore,
};
use zeroize::Zeroizing;

use crate::config::Config;

/// The key-manager clients this process may use.
pub fn managers(config: &Config, env: &EnvLookup) -> anyhow::Result<Managers> {
    let var = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let http = ManagerHttp::new()?;
    let aws = AwsClient::new(http.clone(), env.clone());
    let vault = match var("VAULT_ADDR") {
        None => None,
        Some(addr) => {
            let auth = match (&config.vault_role_id, &config.vault_secret_id_file) {
                (Some(role_id), Some(file)) => {
                    // Read now to fail fast; read again at every login.
                    std::fs::metadata(file).with_context(|| {
                        format!("cannot read vault.secret_id_file {}", file.display())
                    })?;
                    VaultAuth::AppRole {
                        mount: config.vault_approle_mount.clone(),
                        role_id: role_id.clone(),
                        secret_id_file: file.clone(),
                    }
                }
                _ => match var("VAULT_TOKEN") {
                    Some(token) => VaultAuth::Token(Zeroizing::new(token.trim().to_owned())),
                    None => bail!(
                        "VAULT_ADDR is set but Keyward has no way to log in: set VAULT_TOKEN, or vault.role_id and vault.secret_id_file"
                    ),
                },
            };
            Some(VaultClient::new(
                http.clone(),
                VaultSettings {
                    addr: addr.trim().to_owned(),
                    namespace: var("VAULT_NAMESPACE"),
                    auth,
                },
            ))
        }
    };
    let azure = match (
        var("AZURE_TENANT_ID"),
        var("AZURE_CLIENT_ID"),
        var("AZURE_CLIENT_SECRET"),
    ) {
        (Some(tenant_id), Some(client_id), Some(client_secret)) => Some(AzureKeyVault::new(
            http,
            AzureSettings {
                tenant_id,
                client_id,
                client_secret: Zeroizing::new(client_secret),
                authority_host: match var("AZURE_AUTHORITY_HOST") {
                    None => "https://login.microsoftonline.com".to_owned(),
                    Some(host) if crate::config::https_or_loopback(&host) => host,
                    Some(_) => bail!(
                        "AZURE_AUTHORITY_HOST must be an https:// URL (the client secret is sent to it)"
                    ),
                },
                vault_url_template: config.azure_vault_url.clone(),
            },
        )),
        _ => None,
    };
    Ok(Managers { aws, vault, azure })
}

/// An envelope source (`aws-kms:` or `vault-transit:`) for `spec`, or `None` for `file:` and
/// `env:`.
pub fn envelope_source(
    spec: &str,
    managers: &Managers,
    store: &Store,
    primary: bool,
) -> anyhow::Result<Option<Arc<dyn MasterKeySource>>> {
    let wrapper: Arc<dyn KeyWrapper> = if let Some(key_id) = spec.strip_prefix("aws-kms:") {
        Arc::new(KmsWrapper::new(managers.aws.clone(), key_id))
    } else if let Some(key) = spec.strip_prefix("vault-transit:") {
        let Some(vault) = managers.vault.clone() else {
            bail!("master key source {spec} needs Vault: set VAULT_ADDR and VAULT_TOKEN (or vault.role_id and vault.secret_id_file)");
        };
        Arc::new(TransitWrapper::new(vault, key))
    } else {
        return Ok(None);
    };
    Ok(Some(Arc::new(EnvelopeSource::new(
        wrapper,
        Arc::new(StoreWrappedKeys(store.clone())),
        primary,
    ))))
}

/// The database as the vault's store of wrapped data keys.
struct StoreWrappedKeys(Store);

fn store_error(err: keyward_store::StoreError) -> VaultError {
    VaultError::WrappedKeyStore(err.to_string())
}

impl WrappedKeyStore for StoreWrappedKeys {
    fn deployment_id(&self) -> SourceFuture<'_, String> {
        Box::pin(async move {
            let candidate = keyward_core::RequestId::generate().to_string();
            self.0.deployment_id(&candidate).await.map_err(store_error)
        })
    }

    fn wrapped_keys(&self) -> SourceFuture<'_, Vec<WrappedKey>> {
        Box::pin(async move {
            Ok(self
                .0
                .wrapped_data_keys()
                .await
                .map_err(store_error)?
                .into_iter()
                .map(|record| WrappedKey {
                    version: record.version,
                    wrapper: record.wrapper,
                    wrapped: record.wrapped,
                })
                .collect())
        })
    }

    fn highest_version(&self) -> SourceFuture<'_, Option<keyward_core::KeyVersion>> {
        Box::pin(async move { self.0.highest_key_version().await.map_err(store_error) })
    }

    fn insert(&self, key: WrappedKey) -> SourceFuture<'_, bool> {
        Box::pin(async move {
            self.0
                .insert_wrapped_data_key(&WrappedDataKeyRecord {
                    version: key.version,
                    wrapper: key.wrapper,
                    wrapped: key.wrapped,
                    created_at: keyward_core::Timestamp::now(),
                })
                .await
                .map_err(store_error)
        })
    }
}
