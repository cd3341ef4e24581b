//! Types that hold secret material: provider secrets, master keys, platform-key plaintext.
//!
//! Invariants: every type here zeroizes its bytes on drop (via `secrecy`), prints as
//! `[redacted]` in `Debug`, implements no `Display`, `Serialize` or `PartialEq`, and is not
//! `Clone`. Reading the plaintext takes an explicit `expose_secret()` call, which is easy to
//! find in review.

use std::fmt;

use secrecy::{ExposeSecret, SecretBox, SecretString};
use subtle::ConstantTimeEq;
use zeroize::Zeroize;

/// How every secret type prints.
pub const REDACTED: &str = "[redacted]";

/// The secret bytes were not UTF-8 text.
#[derive(Debug, thiserror::Error)]
#[error("the secret is not UTF-8 text; provider keys are printable ASCII")]
pub struct NotUtf8;

/// A tenant's provider secret (an API key, or Bedrock's access-key JSON), in plaintext.
pub struct ProviderSecret(SecretString);

impl ProviderSecret {
    pub fn new(secret: String) -> Self {
        Self(SecretString::from(secret))
    }

    /// Takes ownership of raw bytes (e.g. read from stdin); invalid UTF-8 is wiped and refused.
    pub fn from_utf8(bytes: Vec<u8>) -> Result<Self, NotUtf8> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Self::new(text)),
            Err(err) => {
                let mut bytes = err.into_bytes();
                bytes.zeroize();
                Err(NotUtf8)
            }
        }
    }

    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for ProviderSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// 32 bytes of AES-256 master-key material.
pub struct MasterKeyMaterial(SecretBox<[u8; 32]>);

impl MasterKeyMaterial {
    pub const LEN: usize = 32;

    pub fn new(bytes: Box<[u8; 32]>) -> Self {
        Self(SecretBox::new(bytes))
    }

    /// Fresh material from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        let mut bytes = Box::new([0u8; 32]);
        getrandom::getrandom(bytes.as_mut_slice())?;
        Ok(Self::new(bytes))
    }

    pub fn expose_secret(&self) -> &[u8; 32] {
        self.0.expose_secret()
    }
}

impl fmt::Debug for MasterKeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The plaintext of a `kw_…` platform key: shown to its owner once, at issue, then only its
/// hash is kept.
pub struct PlatformKeyPlaintext(SecretString);

impl PlatformKeyPlaintext {
    pub fn new(key: String) -> Self {
        Self(SecretString::from(key))
    }

    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl fmt::Debug for PlatformKeyPlaintext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The value of a web console session cookie: 32 random bytes, base64url. The browser holds it
/// in an `HttpOnly` cookie; the store holds only its SHA-256 (`hash_hex`).
pub struct ConsoleSessionToken(SecretString);

impl ConsoleSessionToken {
    /// A fresh token from the operating system's CSPRNG.
    pub fn generate() -> Result<Self, getrandom::Error> {
        use base64::Engine as _;
        let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
        getrandom::getrandom(bytes.as_mut_slice())?;
        Ok(Self(SecretString::from(
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes.as_slice()),
        )))
    }

    /// A token a browser presented.
    pub fn presented(value: &str) -> Self {
        Self(SecretString::from(value.to_owned()))
    }

    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }

    /// The lowercase hex SHA-256 of the token: what the store keys sessions by.
    pub fn hash_hex(&self) -> String {
        use sha2::Digest as _;
        let digest = sha2::Sha256::digest(self.0.expose_secret().as_bytes());
        digest.iter().map(|byte| format!("{byte:02x}")).collect()
    }
}

impl fmt::Debug for ConsoleSessionToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// A token a person typed or pasted (the console's sign-in): the operator token or a platform
/// key, held as a secret from the moment it is decoded from the request body.
pub struct PresentedToken(SecretString);

impl PresentedToken {
    pub fn expose_secret(&self) -> &str {
        self.0.expose_secret()
    }
}

impl<'de> serde::Deserialize<'de> for PresentedToken {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(|text| Self(SecretString::from(text)))
    }
}

impl fmt::Debug for PresentedToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

/// The operator's admin token (`KEYWARD_ADMIN_TOKEN`).
pub struct AdminToken(SecretString);

impl AdminToken {
    pub fn new(token: String) -> Self {
        Self(SecretString::from(token))
    }

    /// Constant-time comparison with a presented token. Lengths are not secret.
    pub fn matches(&self, presented: &str) -> bool {
        self.0
            .expose_secret()
            .as_bytes()
            .ct_eq(presented.as_bytes())
            .into()
    }

    /// Lends the token's bytes to `use_key` (e.g. as an HMAC key) without copying them out.
    pub fn with_bytes<R>(&self, use_key: impl FnOnce(&[u8]) -> R) -> R {
        use_key(self.0.expose_secret().as_bytes())
    }
}

impl fmt::Debug for AdminToken {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(REDACTED)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_secret_type_debug_prints_redacted() {
        let canary = "sk-canary-5f1d2c";
        assert_eq!(
            format!("{:?}", ProviderSecret::new(canary.into())),
            "[redacted]"
        );
        assert_eq!(
            format!("{:?}", PlatformKeyPlaintext::new(canary.into())),
            "[redacted]"
        );
        assert_eq!(
            format!("{:?}", AdminToken::new(canary.into())),
            "[redacted]"
        );
        assert_eq!(
            format!("{:?}", MasterKeyMaterial::new(Box::new([7u8; 32]))),
            "[redacted]"
        );
        // Pretty Debug and nesting in a struct print the same.
        let nested = Some(ProviderSecret::new(canary.into()));
        assert_eq!(format!("{nested:#?}"), "Some(\n    [redacted],\n)");
    }

    #[test]
    fn admin_token_matches_only_the_exact_token() {
        let token = AdminToken::new("operator-token-123".into());
        assert!(token.matches("operator-token-123"));
        assert!(!token.matches("operator-token-124"));
        assert!(!token.matches("operator-token-12"));
        assert!(!token.matches(""));
    }

    #[test]
    fn generated_master_keys_differ() {
        let first = MasterKeyMaterial::generate().unwrap();
        let second = MasterKeyMaterial::generate().unwrap();
        assert_ne!(first.expose_secret(), second.expose_secret());
    }
}
