//! [`Vault`]: seals and opens row-bound secrets with the current keyring, and reloads the keyring
//! from its source when a newer version appears (another process rotated the master key).

use std::sync::{Arc, RwLock};
use std::time::Duration;

// tokio's clock, so tests can pause and advance it past the reload interval.
use tokio::time::Instant;

use keyward_core::secret::ProviderSecret;
use keyward_core::{KeyVersion, SealedSecret};
use zeroize::Zeroizing;

use crate::blob::{self, MAX_PLAINTEXT_LEN};
use crate::{cipher, Keyring, MasterKeySource, RowBinding, VaultError};

/// Least time between two reloads triggered by an unknown version, so a truly missing version
/// cannot turn every call into a keyring read.
const MISSING_VERSION_RELOAD_INTERVAL: Duration = Duration::from_millis(250);

pub struct Vault {
    source: Arc<dyn MasterKeySource>,
    keyring: RwLock<Arc<Keyring>>,
    last_reload: tokio::sync::Mutex<Instant>,
}

impl std::fmt::Debug for Vault {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Vault")
            .field("source", &self.source.location())
            .finish_non_exhaustive()
    }
}

impl Vault {
    pub async fn load(source: Arc<dyn MasterKeySource>) -> Result<Self, VaultError> {
        let keyring = source.load().await?;
        Ok(Self {
            source,
            keyring: RwLock::new(Arc::new(keyring)),
            last_reload: tokio::sync::Mutex::new(Instant::now()),
        })
    }

    /// The keyring in use (a snapshot; a reload swaps in a new one).
    pub fn keyring(&self) -> Arc<Keyring> {
        match self.keyring.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    pub fn source_location(&self) -> String {
        self.source.location()
    }

    /// Re-reads the keyring from its source.
    pub async fn reload(&self) -> Result<Arc<Keyring>, VaultError> {
        let mut last_reload = self.last_reload.lock().await;
        let keyring = Arc::new(self.source.load().await?);
        *last_reload = Instant::now();
        match self.keyring.write() {
            Ok(mut guard) => *guard = keyring.clone(),
            Err(poisoned) => *poisoned.into_inner() = keyring.clone(),
        }
        Ok(keyring)
    }

    /// Asks the source for a new, higher version and loads it.
    pub async fn prepare_rotation(&self) -> Result<Arc<Keyring>, VaultError> {
        self.source.prepare_rotation().await?;
        self.reload().await
    }

    /// Seals `plaintext` for `binding` under the primary version.
    pub fn seal(&self, plaintext: &[u8], binding: &RowBinding) -> Result<SealedSecret, VaultError> {
        let primary = self.keyring().primary();
        self.seal_with(plaintext, binding, primary)
    }

    /// Seals under a given version, which the keyring must hold.
    fn seal_with(
        &self,
        plaintext: &[u8],
        binding: &RowBinding,
        key_version: KeyVersion,
    ) -> Result<SealedSecret, VaultError> {
        if plaintext.len() > MAX_PLAINTEXT_LEN {
            return Err(VaultError::PlaintextTooLong {
                len: plaintext.len(),
                max: MAX_PLAINTEXT_LEN,
            });
        }
        let keyring = self.keyring();
        let key = keyring.key(key_version)?;
        let nonce = cipher::fresh_nonce()?;
        let sealed = cipher::seal(
            key,
            &nonce,
            plaintext,
            &binding.associated_data(key_version),
        )?;
        Ok(SealedSecret {
            blob: blob::encode(&nonce, &sealed),
            key_version,
        })
    }

    /// Opens a sealed value of `binding`'s row.
    pub async fn open(
        &self,
        sealed: &SealedSecret,
        binding: &RowBinding,
    ) -> Result<Zeroizing<Vec<u8>>, VaultError> {
        let (nonce, ciphertext) = blob::decode(&sealed.blob)?;
        let keyring = self.keyring_with(sealed.key_version).await?;
        let key = keyring.key(sealed.key_version)?;
        cipher::open(
            key,
            &nonce,
            &ciphertext,
            &binding.associated_data(sealed.key_version),
        )
        .ok_or(VaultError::OpenFailed {
            version: sealed.key_version,
        })
    }

    /// Opens a sealed provider secret.
    pub async fn open_secret(
        &self,
        sealed: &SealedSecret,
        binding: &RowBinding,
    ) -> Result<ProviderSecret, VaultError> {
        let mut plaintext = self.open(sealed, binding).await?;
        ProviderSecret::from_utf8(std::mem::take(&mut *plaintext)).map_err(|_| VaultError::NotText)
    }

    /// Opens `sealed` and seals it again under `target` (master-key rotation). Fails if this
    /// process's keyring lacks `target` even after a reload, rather than sealing under an
    /// older version.
    pub async fn reseal(
        &self,
        sealed: &SealedSecret,
        binding: &RowBinding,
        target: KeyVersion,
    ) -> Result<SealedSecret, VaultError> {
        let plaintext = self.open(sealed, binding).await?;
        self.keyring_with(target).await?;
        self.seal_with(&plaintext, binding, target)
    }

    /// The keyring, reloaded first if it lacks `version` (another process may have rotated).
    async fn keyring_with(&self, version: KeyVersion) -> Result<Arc<Keyring>, VaultError> {
        let keyring = self.keyring();
        if keyring.contains(version) {
            return Ok(keyring);
        }
        let last_reload = self.last_reload.lock().await;
        let current = self.keyring();
        if current.contains(version) || last_reload.elapsed() < MISSING_VERSION_RELOAD_INTERVAL {
            return Ok(current);
        }
        drop(last_reload);
        tracing::info!(%version, "unknown master key version; reloading the keyring");
        self.reload().await
    }
}
