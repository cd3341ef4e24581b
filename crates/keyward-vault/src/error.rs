//! Errors of the vault layer. Messages name versions, row ids and key-source locations, never
//! key material, plaintext or blob contents.

use keyward_core::KeyVersion;

#[derive(Debug, thiserror::Error)]
pub enum VaultError {
    #[error("sealed blob is not valid base64; the stored value was altered or truncated")]
    BlobNotBase64,
    #[error("sealed blob holds {len} bytes, fewer than nonce + tag (28); the stored value was truncated")]
    BlobTooShort { len: usize },
    #[error("sealed blob holds {len} bytes, more than the {max}-byte limit; the stored value is not a Keyward blob")]
    BlobTooLong { len: usize, max: usize },
    #[error("secret is {len} bytes, more than the {max}-byte limit for sealed values")]
    PlaintextTooLong { len: usize, max: usize },
    #[error("master key version {version} is not in the keyring at {source_location}; add its `{version}:BASE64` line back (a version may be removed only once `keyward masterkey status` shows 0 rows on it)")]
    KeyVersionMissing {
        version: KeyVersion,
        source_location: String,
    },
    #[error("sealed value did not open with master key version {version}: it belongs to another row, was altered, or the keyring holds a different key under that version")]
    OpenFailed { version: KeyVersion },
    #[error("sealed value decrypted but is not UTF-8 text")]
    NotText,
    #[error("keyring at {source_location}, line {line}: {reason}")]
    KeyringMalformed {
        source_location: String,
        line: usize,
        reason: &'static str,
    },
    #[error("keyring at {source_location} holds no key; add a line `1:BASE64` with 32 random bytes in standard base64 (or remove the file to let Keyward create one)")]
    KeyringEmpty { source_location: String },
    #[error("cannot read the keyring at {source_location}: {source}")]
    KeyringRead {
        source_location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot write the keyring at {source_location}: {source}; check that the directory exists and is writable by Keyward")]
    KeyringWrite {
        source_location: String,
        #[source]
        source: std::io::Error,
    },
    #[error("environment variable {var} is not set; it must hold the master keyring (`1:BASE64` lines) for master_key.source = \"env:{var}\"")]
    EnvVarMissing { var: String },
    #[error(
        "master_key.source must be `file:PATH`, `env:VAR`, `aws-kms:KEY_ID` or `vault-transit:KEY`"
    )]
    UnsupportedSource,
    #[error("{source_location}: {message}")]
    KeyManager {
        source_location: String,
        message: String,
    },
    #[error("no data key wrapped by {source_location} is stored in this database; list it in master_key.previous_sources only while rows still use its versions, and check that store.url points at the right database")]
    NoWrappedDataKey { source_location: String },
    #[error("master key version {version} is in both {first} and {second} with different keys; each version must come from one source")]
    KeyringConflict {
        version: KeyVersion,
        first: String,
        second: String,
    },
    #[error("master_key.previous_sources entry {previous} holds version {version}, newer than {source_location}'s primary {primary}; previous sources must only hold older versions (run `keyward masterkey rotate` with the new source once it is the only one)")]
    PreviousSourceNewer {
        previous: String,
        version: KeyVersion,
        source_location: String,
        primary: KeyVersion,
    },
    #[error("wrapped data keys: {0}")]
    WrappedKeyStore(String),
    #[error("keyring version {version} is at the maximum; start a new keyring")]
    VersionExhausted { version: KeyVersion },
    #[error(
        "the operating system's random number generator failed; Keyward cannot seal without it"
    )]
    RandomUnavailable,
    #[error("AES-GCM refused to seal (input too long)")]
    SealFailed,
}
