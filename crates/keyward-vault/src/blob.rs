//! The stored blob: `base64(nonce(12) || ciphertext || tag(16))`, standard alphabet with padding.
//! Decoding checks sizes before anything else, so untrusted text never causes a large
//! allocation or a panic.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;

use crate::VaultError;

pub(crate) const NONCE_LEN: usize = 12;
pub(crate) const TAG_LEN: usize = 16;
/// Largest plaintext Keyward seals: provider keys and Bedrock key JSON are far below this.
pub(crate) const MAX_PLAINTEXT_LEN: usize = 16 * 1024;
const MAX_BLOB_LEN: usize = NONCE_LEN + MAX_PLAINTEXT_LEN + TAG_LEN;

pub(crate) fn encode(nonce: &[u8; NONCE_LEN], ciphertext_and_tag: &[u8]) -> String {
    let mut raw = Vec::with_capacity(NONCE_LEN + ciphertext_and_tag.len());
    raw.extend_from_slice(nonce);
    raw.extend_from_slice(ciphertext_and_tag);
    STANDARD.encode(raw)
}

/// Splits a blob into its nonce and `ciphertext || tag`.
pub(crate) fn decode(blob: &str) -> Result<([u8; NONCE_LEN], Vec<u8>), VaultError> {
    // base64 yields 3 bytes per 4 characters; refuse oversized text before decoding it.
    let max_text_len = MAX_BLOB_LEN.div_ceil(3) * 4;
    if blob.len() > max_text_len {
        return Err(VaultError::BlobTooLong {
            len: blob.len() / 4 * 3,
            max: MAX_BLOB_LEN,
        });
    }
    let raw = STANDARD
        .decode(blob)
        .map_err(|_| VaultError::BlobNotBase64)?;
    if raw.len() < NONCE_LEN + TAG_LEN {
        return Err(VaultError::BlobTooShort { len: raw.len() });
    }
    if raw.len() > MAX_BLOB_LEN {
        return Err(VaultError::BlobTooLong {
            len: raw.len(),
            max: MAX_BLOB_LEN,
        });
    }
    let mut nonce = [0u8; NONCE_LEN];
    nonce.copy_from_slice(&raw[..NONCE_LEN]);
    Ok((nonce, raw[NONCE_LEN..].to_vec()))
}
