//! The credential vault: AES-256-GCM sealing of tenant secrets under a versioned master keyring.
//!
//! Invariants:
//! - A seal uses a fresh 96-bit nonce from the OS CSPRNG and the keyring's primary (highest)
//!   version; the stored blob is `base64(nonce(12) || ciphertext || tag(16))` and the version is
//!   kept beside it.
//! - Associated data binds every ciphertext to its row (format version, tenant, record id, field,
//!   key version): a blob moved to another row, tenant or version does not open.
//! - Master-key material never leaves this crate except as the opaque [`Keyring`]; plaintext
//!   from `open` is returned in zeroizing buffers and never cached.
//! - Loading a keyring verifies every version's key check value against what the store recorded
//!   (done by the domain), so a wrong key fails at startup, not per call.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

mod aad;
mod blob;
mod cipher;
mod envelope;
mod error;
mod keyring;
mod source;
mod vault;

pub use aad::RowBinding;
pub use envelope::{
    EnvelopeSource, KeyWrapper, LayeredSource, NewDataKey, WrapContext, WrappedKey, WrappedKeyStore,
};
pub use error::VaultError;
pub use keyring::{KeyCheckValue, Keyring};
pub use source::{parse_source, EnvLookup, FileSource, MasterKeySource, SourceFuture};
pub use vault::Vault;
