//! Published signing keys. A key that cannot be used is skipped, not fatal: the others still
//! verify; a document with no usable key is an error.
//! Bot Framework publishes an OpenID metadata document whose `jwks_uri`
//! lists RSA keys, each with the channels it may sign for (`endorsements`); Google publishes
//! the Chat service account's keys as a map of key id to PEM certificate.

use std::collections::HashMap;

use jsonwebtoken::DecodingKey;
use serde::Deserialize;

/// Keys a document did not yield.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum KeyError {
    #[error("the {what} is not valid JSON of the documented shape")]
    Shape { what: &'static str },
    #[error("the {what} lists no usable RSA signing key")]
    Empty { what: &'static str },
}

/// One published key.
pub struct PublishedKey {
    pub key: DecodingKey,
    /// Channels this key may sign for (Bot Framework); `None` where the platform has no such
    /// list (Google).
    pub endorsements: Option<Vec<String>>,
}

/// The keys of one platform, by key id.
pub struct KeySet {
    keys: HashMap<String, PublishedKey>,
}

#[derive(Deserialize)]
struct OpenIdMetadata {
    jwks_uri: String,
}

#[derive(Deserialize)]
struct Jwks {
    keys: Vec<Jwk>,
}

#[derive(Deserialize)]
struct Jwk {
    kty: String,
    kid: Option<String>,
    n: Option<String>,
    e: Option<String>,
    #[serde(default)]
    endorsements: Option<Vec<String>>,
}

/// The `jwks_uri` of an OpenID metadata document.
pub fn jwks_uri(metadata: &[u8]) -> Result<String, KeyError> {
    serde_json::from_slice::<OpenIdMetadata>(metadata)
        .map(|metadata| metadata.jwks_uri)
        .map_err(|_| KeyError::Shape {
            what: "OpenID metadata",
        })
}

impl KeySet {
    /// RSA keys of a JWKS document (other key types are skipped).
    pub fn from_jwks(document: &[u8]) -> Result<Self, KeyError> {
        const WHAT: &str = "JWKS";
        let jwks: Jwks =
            serde_json::from_slice(document).map_err(|_| KeyError::Shape { what: WHAT })?;
        let mut keys = HashMap::new();
        for jwk in jwks.keys.into_iter().filter(|jwk| jwk.kty == "RSA") {
            let (Some(kid), Some(n), Some(e)) = (jwk.kid, jwk.n, jwk.e) else {
                continue;
            };
            // One unusable key does not take the others down: it is skipped (a request signed
            // with it fails as an unknown key).
            let Ok(key) = DecodingKey::from_rsa_components(&n, &e) else {
                continue;
            };
            keys.insert(
                kid,
                PublishedKey {
                    key,
                    endorsements: jwk.endorsements,
                },
            );
        }
        Self::non_empty(keys, WHAT)
    }

    /// Keys of a map of key id → PEM certificate (Google's x509 endpoint).
    pub fn from_x509_map(document: &[u8]) -> Result<Self, KeyError> {
        use x509_cert::der::DecodePem;
        const WHAT: &str = "certificate map";
        let map: HashMap<String, String> =
            serde_json::from_slice(document).map_err(|_| KeyError::Shape { what: WHAT })?;
        let mut keys = HashMap::new();
        for (kid, pem) in map {
            let Ok(certificate) = x509_cert::Certificate::from_pem(pem.as_bytes()) else {
                continue;
            };
            let public_key = certificate
                .tbs_certificate
                .subject_public_key_info
                .subject_public_key
                .raw_bytes()
                .to_vec();
            // An RSA SubjectPublicKeyInfo holds the PKCS#1 RSAPublicKey: what ring verifies with.
            keys.insert(
                kid,
                PublishedKey {
                    key: DecodingKey::from_rsa_der(&public_key),
                    endorsements: None,
                },
            );
        }
        Self::non_empty(keys, WHAT)
    }

    fn non_empty(
        keys: HashMap<String, PublishedKey>,
        what: &'static str,
    ) -> Result<Self, KeyError> {
        if keys.is_empty() {
            return Err(KeyError::Empty { what });
        }
        Ok(Self { keys })
    }

    pub fn get(&self, kid: &str) -> Option<&PublishedKey> {
        self.keys.get(kid)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}
