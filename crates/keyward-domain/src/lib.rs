//! Keyward's business rules: tenants, departments, credentials, platform keys, who may touch
//! what, and master-key rotation.
//!
//! Invariants:
//! - Every operation on a tenant's objects takes a [`TenantScope`], which only
//!   [`Keyward::scope`] can create after checking the actor; a tenant admin asking for another
//!   tenant's objects gets `NotFound`, exactly as for a missing one.
//! - Plaintext secrets exist only inside `ProviderSecret` values: sealed before they reach the
//!   store, opened only by [`Keyward::open_credential_secret`] for an outbound call.
//! - There is no operator-level provider key: every secret belongs to one tenant's credential.
//! - Error messages name ids, labels and fields, never a secret or a request body.

mod access;
mod credential;
mod department;
mod error;
mod master_key;
mod platform_key;
mod tenant;
mod validate;

use std::sync::Arc;

use keyward_core::egress_policy::EgressPolicy;
use keyward_store::Store;
use keyward_vault::Vault;

pub use access::{Actor, TenantScope};
pub use credential::{CredentialInput, OpenedCredential};
pub use department::DepartmentInput;
pub use error::DomainError;
pub use keyward_store::{
    CredentialRecord, CredentialStatus, DepartmentRecord, Page, PageRequest, PlatformKeyRecord,
    RewrapJob, RewrapState, Role, TenantRecord,
};
pub use master_key::{MasterKeyStatus, RewrapProgress, VersionState, VersionStatus};
pub use platform_key::{IssuedPlatformKey, PlatformKeyInput};

/// The domain facade shared by the HTTP layer and the CLI.
#[derive(Clone, Debug)]
pub struct Keyward {
    store: Store,
    vault: Arc<Vault>,
    egress: EgressPolicy,
}

impl Keyward {
    /// Checks the keyring against the keys this database was sealed with (fail fast on a wrong
    /// or missing key) and returns the facade.
    pub async fn start(
        store: Store,
        vault: Arc<Vault>,
        egress: EgressPolicy,
    ) -> Result<Self, DomainError> {
        let keyward = Self {
            store,
            vault,
            egress,
        };
        keyward.verify_master_keys().await?;
        Ok(keyward)
    }

    pub fn store(&self) -> &Store {
        &self.store
    }
}
