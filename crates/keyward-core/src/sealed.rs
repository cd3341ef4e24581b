//! A secret after sealing: the vault produces it, the store persists it, and nothing but the
//! vault can turn it back into plaintext. It carries no plaintext, so it may be cloned, printed
//! and stored freely.

use std::fmt;

/// A master-key version: a positive integer, the `VERSION` of a `VERSION:BASE64` keyring line.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyVersion(u32);

impl KeyVersion {
    /// Version 1, the first of every keyring.
    pub const MIN: KeyVersion = KeyVersion(1);

    /// `None` for zero: versions start at 1.
    pub fn new(version: u32) -> Option<Self> {
        (version > 0).then_some(Self(version))
    }

    pub fn get(self) -> u32 {
        self.0
    }

    /// The version after this one, or `None` at `u32::MAX`.
    pub fn next(self) -> Option<Self> {
        self.0.checked_add(1).map(Self)
    }
}

impl fmt::Display for KeyVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

/// `base64(nonce(12) || ciphertext || tag(16))` plus the master-key version that sealed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedSecret {
    pub blob: String,
    pub key_version: KeyVersion,
}
