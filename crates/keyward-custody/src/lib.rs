//! Key custody outside Keyward: the clients of external key managers.
//!
//! - Master keys: [`KmsWrapper`] (`aws-kms:KEY_ID`) and [`TransitWrapper`]
//!   (`vault-transit:KEY`) generate and unwrap the data keys of `keyward_vault`'s envelope
//!   source.
//! - Secret references: [`SecretReference`] (`vault://MOUNT/PATH#FIELD`,
//!   `aws-sm://SECRET_ID[#JSON_FIELD]`, `azure-kv://VAULT/NAME`) and the [`SecretResolver`]
//!   that fetches them at call time and holds them at most `secrets.cache_ttl`.
//!
//! Invariants:
//! - Secrets (data keys, fetched provider secrets, the managers' own tokens and keys) live in
//!   zeroizing buffers and are never logged, stored, or put in an error message; errors name
//!   the manager, the key id or reference, the action and the permission.
//! - Every answer from a manager is untrusted: bodies are read up to [`http::MAX_ANSWER_BYTES`],
//!   parsed into typed shapes, and a malformed answer is an error, never a panic.
//! - There is no fallback: a manager that cannot be reached fails the operation that needs it.
//! - The managers' own credentials (Vault token, AppRole login, AWS session credentials,
//!   Entra ID tokens) are refreshed before they expire.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

pub mod aws;
pub mod azure;
mod error;
pub mod hashicorp;
mod http;
mod reference;
mod resolver;

pub use aws::kms::KmsWrapper;
pub use aws::AwsClient;
pub use azure::{AzureKeyVault, AzureSettings};
pub use error::CustodyError;
pub use hashicorp::{TransitWrapper, VaultClient, VaultSettings};
pub use http::ManagerHttp;
pub use reference::{ReferenceError, SecretReference};
pub use resolver::{Managers, SecretResolver};

/// Reads an environment variable; injected so tests never touch the process environment.
pub type Env = keyward_vault::EnvLookup;
