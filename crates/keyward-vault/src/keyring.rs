//! The master keyring: one AES-256 key per version, text form `VERSION:BASE64` per line
//! (`#` comments and blank lines allowed). The highest version seals; every listed version opens.

use std::collections::BTreeMap;
use std::fmt;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keyward_core::secret::MasterKeyMaterial;
use keyward_core::KeyVersion;
use zeroize::Zeroizing;

use crate::{cipher, VaultError};

/// Associated data of the key check value computation.
const KCV_CONTEXT: &[u8] = b"keyward key check value v1";

/// A short public fingerprint of a master key: the first 8 bytes (hex) of the AES-256-GCM tag
/// over an empty message with an all-zero nonce. It identifies a key without revealing it, so
/// the store can record which key sealed its rows and startup can refuse a different one.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct KeyCheckValue(String);

impl KeyCheckValue {
    pub fn from_stored(hex: String) -> Self {
        Self(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn compute(key: &MasterKeyMaterial) -> Result<Self, VaultError> {
        let tag = cipher::seal(key, &[0u8; 12], &[], KCV_CONTEXT)?;
        Ok(Self(
            tag[..8].iter().map(|byte| format!("{byte:02x}")).collect(),
        ))
    }
}

impl fmt::Display for KeyCheckValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

pub struct Keyring {
    keys: BTreeMap<KeyVersion, (MasterKeyMaterial, KeyCheckValue)>,
    source_location: String,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("versions", &self.keys.keys().collect::<Vec<_>>())
            .field("source", &self.source_location)
            .finish()
    }
}

impl Keyring {
    /// Parses keyring text. Error messages give line numbers, never line contents.
    pub fn parse(text: &str, source_location: &str) -> Result<Self, VaultError> {
        let malformed = |line: usize, reason: &'static str| VaultError::KeyringMalformed {
            source_location: source_location.to_owned(),
            line,
            reason,
        };
        let mut keys = BTreeMap::new();
        for (index, line) in text.lines().enumerate() {
            let line_number = index + 1;
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let (version, encoded) = line
                .split_once(':')
                .ok_or_else(|| malformed(line_number, "expected `VERSION:BASE64`"))?;
            let version = version
                .trim()
                .parse::<u32>()
                .ok()
                .and_then(KeyVersion::new)
                .ok_or_else(|| malformed(line_number, "VERSION must be a positive integer"))?;
            let decoded = Zeroizing::new(
                STANDARD
                    .decode(encoded.trim())
                    .map_err(|_| malformed(line_number, "key is not standard base64"))?,
            );
            let bytes: [u8; 32] = decoded.as_slice().try_into().map_err(|_| {
                malformed(
                    line_number,
                    "key must be exactly 32 bytes (44 base64 characters)",
                )
            })?;
            let material = MasterKeyMaterial::new(Box::new(bytes));
            let check_value = KeyCheckValue::compute(&material)?;
            if keys.insert(version, (material, check_value)).is_some() {
                return Err(malformed(line_number, "this version is listed twice"));
            }
        }
        Self::non_empty(keys, source_location)
    }

    fn non_empty(
        keys: BTreeMap<KeyVersion, (MasterKeyMaterial, KeyCheckValue)>,
        source_location: &str,
    ) -> Result<Self, VaultError> {
        if keys.is_empty() {
            return Err(VaultError::KeyringEmpty {
                source_location: source_location.to_owned(),
            });
        }
        Ok(Self {
            keys,
            source_location: source_location.to_owned(),
        })
    }

    /// A keyring of keys obtained elsewhere (unwrapped by a key manager).
    pub fn from_materials(
        materials: Vec<(KeyVersion, MasterKeyMaterial)>,
        source_location: &str,
    ) -> Result<Self, VaultError> {
        let mut keys = BTreeMap::new();
        for (version, material) in materials {
            let check_value = KeyCheckValue::compute(&material)?;
            keys.insert(version, (material, check_value));
        }
        Self::non_empty(keys, source_location)
    }

    /// Adds a previous source's versions. The same version from two sources must be the same
    /// key; this keyring's location stays the one reported.
    pub fn merge(mut self, other: Keyring) -> Result<Self, VaultError> {
        for (version, (material, check_value)) in other.keys {
            match self.keys.get(&version) {
                Some((_, existing)) if *existing != check_value => {
                    return Err(VaultError::KeyringConflict {
                        version,
                        first: self.source_location.clone(),
                        second: other.source_location.clone(),
                    })
                }
                Some(_) => {}
                None => {
                    self.keys.insert(version, (material, check_value));
                }
            }
        }
        Ok(self)
    }

    /// A new keyring line `VERSION:BASE64\n` with fresh random material.
    pub fn generate_line(version: KeyVersion) -> Result<Zeroizing<String>, VaultError> {
        let material = MasterKeyMaterial::generate().map_err(|_| VaultError::RandomUnavailable)?;
        let encoded = Zeroizing::new(STANDARD.encode(material.expose_secret()));
        Ok(Zeroizing::new(format!("{version}:{}\n", encoded.as_str())))
    }

    /// The version that seals: the highest listed.
    pub fn primary(&self) -> KeyVersion {
        self.keys
            .keys()
            .next_back()
            .copied()
            .unwrap_or(KeyVersion::MIN)
    }

    pub fn versions(&self) -> impl Iterator<Item = (KeyVersion, &KeyCheckValue)> {
        self.keys
            .iter()
            .map(|(version, (_, check_value))| (*version, check_value))
    }

    pub fn contains(&self, version: KeyVersion) -> bool {
        self.keys.contains_key(&version)
    }

    pub fn source_location(&self) -> &str {
        &self.source_location
    }

    pub(crate) fn key(&self, version: KeyVersion) -> Result<&MasterKeyMaterial, VaultError> {
        self.keys
            .get(&version)
            .map(|(material, _)| material)
            .ok_or_else(|| VaultError::KeyVersionMissing {
                version,
                source_location: self.source_location.clone(),
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY_A: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

    #[test]
    fn highest_version_is_primary_and_comments_are_skipped() {
        let text = format!("# rotated 2026-11\n1:{KEY_A}\n\n3:{KEY_A}\n2:{KEY_A}\n");
        let keyring = Keyring::parse(&text, "test").unwrap();
        assert_eq!(keyring.primary().get(), 3);
        assert_eq!(keyring.versions().count(), 3);
    }

    #[test]
    fn malformed_lines_are_reported_by_number_without_content() {
        let cases = [
            ("1:c2hvcnQ=", "key must be exactly 32 bytes"),
            ("0:AAAA", "VERSION must be a positive integer"),
            ("x:AAAA", "VERSION must be a positive integer"),
            ("just-text-secretish", "expected `VERSION:BASE64`"),
            ("1:!!notbase64!!", "key is not standard base64"),
        ];
        for (line, reason) in cases {
            let err = Keyring::parse(&format!("# header\n{line}\n"), "file:k").unwrap_err();
            let message = err.to_string();
            assert!(message.contains("line 2"), "{message}");
            assert!(message.contains(reason), "{message}");
            assert!(!message.contains(line), "{message} echoes the line");
        }
        let twice = format!("1:{KEY_A}\n1:{KEY_A}\n");
        assert!(Keyring::parse(&twice, "k")
            .unwrap_err()
            .to_string()
            .contains("twice"));
        assert!(matches!(
            Keyring::parse("# nothing\n", "k").unwrap_err(),
            VaultError::KeyringEmpty { .. }
        ));
    }

    #[test]
    fn check_value_identifies_the_key() {
        let line_a = Keyring::generate_line(KeyVersion::MIN).unwrap();
        let line_b = Keyring::generate_line(KeyVersion::MIN).unwrap();
        let first = Keyring::parse(&line_a, "a").unwrap();
        let again = Keyring::parse(&line_a, "a").unwrap();
        let other = Keyring::parse(&line_b, "b").unwrap();
        let kcv = |keyring: &Keyring| keyring.versions().next().unwrap().1.clone();
        assert_eq!(kcv(&first), kcv(&again));
        assert_ne!(kcv(&first), kcv(&other));
        assert_eq!(kcv(&first).as_str().len(), 16);
    }
}
