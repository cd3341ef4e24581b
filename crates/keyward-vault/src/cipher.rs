//! AES-256-GCM itself, from RustCrypto's `aes-gcm` (constant-time, audited). This is the only
//! module that touches raw key bytes.

use aes_gcm::aead::{Aead, KeyInit, Payload};
use aes_gcm::{Aes256Gcm, Nonce};
use keyward_core::secret::MasterKeyMaterial;
use zeroize::Zeroizing;

use crate::blob::{NONCE_LEN, TAG_LEN};
use crate::VaultError;

pub(crate) fn fresh_nonce() -> Result<[u8; NONCE_LEN], VaultError> {
    let mut nonce = [0u8; NONCE_LEN];
    getrandom::getrandom(&mut nonce).map_err(|_| VaultError::RandomUnavailable)?;
    Ok(nonce)
}

/// Returns `ciphertext || tag`.
pub(crate) fn seal(
    key: &MasterKeyMaterial,
    nonce: &[u8; NONCE_LEN],
    plaintext: &[u8],
    associated_data: &[u8],
) -> Result<Vec<u8>, VaultError> {
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    cipher
        .encrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: plaintext,
                aad: associated_data,
            },
        )
        .map_err(|_| VaultError::SealFailed)
}

/// Opens `ciphertext || tag`; `None` when authentication fails.
pub(crate) fn open(
    key: &MasterKeyMaterial,
    nonce: &[u8; NONCE_LEN],
    ciphertext_and_tag: &[u8],
    associated_data: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    if ciphertext_and_tag.len() < TAG_LEN {
        return None;
    }
    let cipher = Aes256Gcm::new(key.expose_secret().into());
    cipher
        .decrypt(
            Nonce::from_slice(nonce),
            Payload {
                msg: ciphertext_and_tag,
                aad: associated_data,
            },
        )
        .ok()
        .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    //! Known-answer tests. Sources: McGrew & Viega, "The Galois/Counter Mode of Operation
    //! (GCM)", test cases 13–16 (the AES-256 cases; as embedded in pycryptodome's
    //! `SelfTest/Cipher/test_GCM.py`), and Project Wycheproof `testvectors_v1/aes_gcm_test.json`
    //! tcId 91, 92 and 130.
    use super::*;

    fn hex(text: &str) -> Vec<u8> {
        (0..text.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
            .collect()
    }

    fn key(text: &str) -> MasterKeyMaterial {
        let bytes: [u8; 32] = hex(text).try_into().unwrap();
        MasterKeyMaterial::new(Box::new(bytes))
    }

    fn nonce(text: &str) -> [u8; 12] {
        hex(text).try_into().unwrap()
    }

    struct Vector {
        name: &'static str,
        key: &'static str,
        iv: &'static str,
        plaintext: &'static str,
        aad: &'static str,
        ciphertext: &'static str,
        tag: &'static str,
    }

    const P64: &str = "d9313225f88406e5a55909c5aff5269a86a7a9531534f7da2e4c303d8a318a721c3c0c95956809532fcf0e2449a6b525b16aedf5aa0de657ba637b391aafd255";
    const C64: &str = "522dc1f099567d07f47f37a32a84427d643a8cdcbfe5c0c97598a2bd2555d1aa8cb08e48590dbb3da7b08b1056828838c5f61e6393ba7a0abcc9f662898015ad";
    const K15: &str = "feffe9928665731c6d6a8f9467308308feffe9928665731c6d6a8f9467308308";
    const ZERO_KEY: &str = "0000000000000000000000000000000000000000000000000000000000000000";

    const VECTORS: &[Vector] = &[
        Vector {
            name: "GCM spec test case 13",
            key: ZERO_KEY,
            iv: "000000000000000000000000",
            plaintext: "",
            aad: "",
            ciphertext: "",
            tag: "530f8afbc74536b9a963b4f1c4cb738b",
        },
        Vector {
            name: "GCM spec test case 14",
            key: ZERO_KEY,
            iv: "000000000000000000000000",
            plaintext: "00000000000000000000000000000000",
            aad: "",
            ciphertext: "cea7403d4d606b6e074ec5d3baf39d18",
            tag: "d0d1c8a799996bf0265b98b5d48ab919",
        },
        Vector {
            name: "GCM spec test case 15",
            key: K15,
            iv: "cafebabefacedbaddecaf888",
            plaintext: P64,
            aad: "",
            ciphertext: C64,
            tag: "b094dac5d93471bdec1a502270e3cc6c",
        },
        Vector {
            name: "GCM spec test case 16",
            key: K15,
            iv: "cafebabefacedbaddecaf888",
            plaintext: P64.split_at(120).0,
            aad: "feedfacedeadbeeffeedfacedeadbeefabaddad2",
            ciphertext: C64.split_at(120).0,
            tag: "76fc6ece0f4e1768cddf8853bb2d551b",
        },
        Vector {
            name: "Wycheproof aes_gcm tcId 91",
            key: "92ace3e348cd821092cd921aa3546374299ab46209691bc28b8752d17f123c20",
            iv: "00112233445566778899aabb",
            plaintext: "00010203040506070809",
            aad: "00000000ffffffff",
            ciphertext: "e27abdd2d2a53d2f136b",
            tag: "9a4a2579529301bcfb71c78d4060f52c",
        },
        Vector {
            name: "Wycheproof aes_gcm tcId 92",
            key: "29d3a44f8723dc640239100c365423a312934ac80239212ac3df3421a2098123",
            iv: "00112233445566778899aabb",
            plaintext: "",
            aad: "aabbccddeeff",
            ciphertext: "",
            tag: "2a7d77fa526b8250cb296078926b5020",
        },
    ];

    #[test]
    fn known_answer_vectors_seal_and_open() {
        for vector in VECTORS {
            let key = key(vector.key);
            let nonce = nonce(vector.iv);
            let sealed = seal(&key, &nonce, &hex(vector.plaintext), &hex(vector.aad)).unwrap();
            let mut expected = hex(vector.ciphertext);
            expected.extend(hex(vector.tag));
            assert_eq!(sealed, expected, "{}", vector.name);
            let opened = open(&key, &nonce, &expected, &hex(vector.aad)).unwrap();
            assert_eq!(*opened, hex(vector.plaintext), "{}", vector.name);
        }
    }

    #[test]
    fn wycheproof_130_flipped_tag_bit_is_rejected() {
        let key = key("000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f");
        let nonce = nonce("505152535455565758595a5b");
        let mut sealed = hex("b2061457c0759fc1749f174ee1ccadfa");
        sealed.extend(hex("9de8fef6d8ab1bf1bf887232eab590dd"));
        assert!(open(&key, &nonce, &sealed, &[]).is_none());
    }
}
