//! Envelope master-key sources (`aws-kms:KEY_ID`, `vault-transit:KEY`): each keyring version is
//! a 32-byte data key that an external key manager generated and wrapped. Only the wrapped form
//! is stored (in the database, so every replica sees new versions); it is unwrapped when the
//! keyring loads and then lives only in this process's memory, like a `file:` key.
//!
//! Invariants:
//! - A data key is never written anywhere in the clear: the manager returns it with its wrapped
//!   form, the wrapped form is stored, the clear one goes straight into the [`Keyring`].
//! - Every wrap and unwrap carries the [`WrapContext`] (this deployment's id and the version),
//!   so a wrapped key copied to another deployment or relabelled as another version does not
//!   unwrap.
//! - A source that cannot reach its manager fails the load with the manager's error; there is
//!   no fallback to a local key.

use std::fmt;
use std::sync::Arc;

use keyward_core::secret::MasterKeyMaterial;
use keyward_core::KeyVersion;

use crate::{Keyring, MasterKeySource, SourceFuture, VaultError};

/// What a data key is bound to when it is wrapped; the manager authenticates it on unwrap.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrapContext {
    pub deployment: String,
    pub version: KeyVersion,
}

impl WrapContext {
    /// The context as key/value pairs (a KMS encryption context; Transit's associated data).
    pub fn pairs(&self) -> [(&'static str, String); 2] {
        [
            ("keyward:deployment", self.deployment.clone()),
            ("keyward:key-version", self.version.to_string()),
        ]
    }
}

/// A data key fresh from the manager: the clear key and its wrapped form.
pub struct NewDataKey {
    pub material: MasterKeyMaterial,
    pub wrapped: String,
}

/// An external key manager that generates and unwraps data keys.
pub trait KeyWrapper: Send + Sync + fmt::Debug {
    /// The source as configured (`aws-kms:…`, `vault-transit:…`).
    fn location(&self) -> String;
    fn generate(&self, context: WrapContext) -> SourceFuture<'_, NewDataKey>;
    fn unwrap(&self, wrapped: String, context: WrapContext) -> SourceFuture<'_, MasterKeyMaterial>;
}

/// A stored wrapped data key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedKey {
    pub version: KeyVersion,
    pub wrapper: String,
    pub wrapped: String,
}

/// Where wrapped data keys are kept (the database), seen from the vault.
pub trait WrappedKeyStore: Send + Sync {
    fn deployment_id(&self) -> SourceFuture<'_, String>;
    fn wrapped_keys(&self) -> SourceFuture<'_, Vec<WrappedKey>>;
    /// The highest version known to the database, wrapped or recorded.
    fn highest_version(&self) -> SourceFuture<'_, Option<KeyVersion>>;
    /// Stores a new key; `false` if its version is taken.
    fn insert(&self, key: WrappedKey) -> SourceFuture<'_, bool>;
}

/// How often a new version is retried when another replica takes the number first.
const CREATE_ATTEMPTS: usize = 5;

pub struct EnvelopeSource {
    wrapper: Arc<dyn KeyWrapper>,
    store: Arc<dyn WrappedKeyStore>,
    /// Whether a first data key is created when none is stored (the primary source), or the
    /// load fails (a decrypt-only previous source).
    create_first: bool,
}

impl fmt::Debug for EnvelopeSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EnvelopeSource")
            .field("wrapper", &self.wrapper.location())
            .field("create_first", &self.create_first)
            .finish()
    }
}

impl EnvelopeSource {
    pub fn new(
        wrapper: Arc<dyn KeyWrapper>,
        store: Arc<dyn WrappedKeyStore>,
        create_first: bool,
    ) -> Self {
        Self {
            wrapper,
            store,
            create_first,
        }
    }

    async fn own_keys(&self) -> Result<Vec<WrappedKey>, VaultError> {
        let location = self.wrapper.location();
        Ok(self
            .store
            .wrapped_keys()
            .await?
            .into_iter()
            .filter(|key| key.wrapper == location)
            .collect())
    }

    /// Asks the manager for a data key under the next free version and stores it wrapped.
    /// With `first`, a version another replica created meanwhile for this source is used
    /// instead (replicas starting together must not each add one).
    async fn create_version(&self, first: bool) -> Result<KeyVersion, VaultError> {
        let deployment = self.store.deployment_id().await?;
        for _ in 0..CREATE_ATTEMPTS {
            if first {
                if let Some(theirs) = self.own_keys().await?.last() {
                    return Ok(theirs.version);
                }
            }
            let version = match self.store.highest_version().await? {
                None => KeyVersion::MIN,
                Some(highest) => highest
                    .next()
                    .ok_or(VaultError::VersionExhausted { version: highest })?,
            };
            let context = WrapContext {
                deployment: deployment.clone(),
                version,
            };
            // The clear key is dropped (zeroized) here: the load unwraps what was stored, so
            // a key that cannot be unwrapped is noticed now rather than after it sealed rows.
            let fresh = self.wrapper.generate(context).await?;
            let stored = self
                .store
                .insert(WrappedKey {
                    version,
                    wrapper: self.wrapper.location(),
                    wrapped: fresh.wrapped,
                })
                .await?;
            if stored {
                tracing::info!(version = %version, source = %self.wrapper.location(), "new master key version created by the key manager");
                return Ok(version);
            }
        }
        Err(VaultError::WrappedKeyStore(
            "another process kept taking the next key version; retry the rotation".into(),
        ))
    }
}

impl MasterKeySource for EnvelopeSource {
    fn location(&self) -> String {
        self.wrapper.location()
    }

    fn load(&self) -> SourceFuture<'_, Keyring> {
        Box::pin(async move {
            let mut keys = self.own_keys().await?;
            if keys.is_empty() {
                if !self.create_first {
                    return Err(VaultError::NoWrappedDataKey {
                        source_location: self.location(),
                    });
                }
                self.create_version(true).await?;
                keys = self.own_keys().await?;
            }
            let deployment = self.store.deployment_id().await?;
            let mut materials = Vec::with_capacity(keys.len());
            for key in keys {
                let context = WrapContext {
                    deployment: deployment.clone(),
                    version: key.version,
                };
                let material = self.wrapper.unwrap(key.wrapped, context).await?;
                materials.push((key.version, material));
            }
            Keyring::from_materials(materials, &self.location())
        })
    }

    fn prepare_rotation(&self) -> SourceFuture<'_, ()> {
        Box::pin(async move { self.create_version(false).await.map(|_| ()) })
    }
}

/// The configured source plus decrypt-only previous sources (`master_key.previous_sources`),
/// for moving between sources: the union of their versions opens, the highest seals, and
/// rotation asks the configured source.
#[derive(Debug)]
pub struct LayeredSource {
    primary: Arc<dyn MasterKeySource>,
    previous: Vec<Arc<dyn MasterKeySource>>,
}

impl LayeredSource {
    pub fn new(primary: Arc<dyn MasterKeySource>, previous: Vec<Arc<dyn MasterKeySource>>) -> Self {
        Self { primary, previous }
    }
}

impl MasterKeySource for LayeredSource {
    fn location(&self) -> String {
        self.primary.location()
    }

    fn load(&self) -> SourceFuture<'_, Keyring> {
        Box::pin(async move {
            let mut keyring = self.primary.load().await?;
            let primary = keyring.primary();
            for source in &self.previous {
                let previous = source.load().await?;
                // A previous source only opens: if it held a newer version, that version would
                // seal new rows under the source being retired.
                if previous.primary() > primary {
                    return Err(VaultError::PreviousSourceNewer {
                        previous: source.location(),
                        version: previous.primary(),
                        source_location: self.primary.location(),
                        primary,
                    });
                }
                keyring = keyring.merge(previous)?;
            }
            Ok(keyring)
        })
    }

    fn prepare_rotation(&self) -> SourceFuture<'_, ()> {
        self.primary.prepare_rotation()
    }
}
