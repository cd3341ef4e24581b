//! Token checks against keys this test generates (openssl), signed here: every forged variant
//! is refused by the check that names it, and valid tokens pass.
#![expect(
    clippy::unwrap_used,
    reason = "a failed setup step should fail the test loudly"
)]

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyward_connectors::verify::{self, VerifyError, GOOGLE_CHAT_ISSUER, TEAMS_ISSUER};
use keyward_connectors::KeySet;
use serde_json::{json, Value};

struct TestKey {
    private_pem: Vec<u8>,
    modulus_b64: String,
    certificate_pem: String,
}

fn openssl(args: &[&str], dir: &std::path::Path) -> Vec<u8> {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

fn generate() -> TestKey {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    openssl(
        &[
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
            "key.pem",
        ],
        path,
    );
    let modulus = String::from_utf8(openssl(
        &["rsa", "-in", "key.pem", "-noout", "-modulus"],
        path,
    ))
    .unwrap();
    let hex = modulus.trim().trim_start_matches("Modulus=");
    let bytes: Vec<u8> = (0..hex.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
        .collect();
    openssl(
        &[
            "req", "-x509", "-key", "key.pem", "-subj", "/CN=chat", "-days", "1", "-out",
            "cert.pem",
        ],
        path,
    );
    TestKey {
        private_pem: std::fs::read(path.join("key.pem")).unwrap(),
        modulus_b64: base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes),
        certificate_pem: std::fs::read_to_string(path.join("cert.pem")).unwrap(),
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn sign(key: &TestKey, kid: &str, claims: &Value) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = Some(kid.to_owned());
    jsonwebtoken::encode(
        &header,
        claims,
        &EncodingKey::from_rsa_pem(&key.private_pem).unwrap(),
    )
    .unwrap()
}

fn teams_claims() -> Value {
    json!({"iss": TEAMS_ISSUER, "aud": "app-123", "exp": now() + 600, "nbf": now() - 10,
           "serviceurl": "https://smba.trafficmanager.net/emea/"})
}

fn jwks(key: &TestKey, kid: &str) -> Vec<u8> {
    serde_json::to_vec(&json!({"keys": [
        {"kty": "RSA", "use": "sig", "kid": kid, "n": key.modulus_b64, "e": "AQAB", "endorsements": ["msteams", "webchat"]},
        {"kty": "EC", "kid": "ignored", "crv": "P-256", "x": "x", "y": "y"}
    ]})).unwrap()
}

#[test]
fn teams_tokens_are_checked_as_bot_framework_documents() {
    let key = generate();
    let other = generate();
    let keys = KeySet::from_jwks(&jwks(&key, "k1")).unwrap();
    assert_eq!(keys.len(), 1);
    let check = |token: &str| {
        verify::teams(
            token,
            &keys,
            "app-123",
            "msteams",
            "https://SMBA.trafficmanager.net/emea",
        )
    };
    assert_eq!(check(&sign(&key, "k1", &teams_claims())), Ok(()));

    let with = |change: &dyn Fn(&mut Value)| {
        let mut claims = teams_claims();
        change(&mut claims);
        sign(&key, "k1", &claims)
    };
    assert_eq!(
        check(&with(&|c| c["aud"] = json!("someone-else"))),
        Err(VerifyError::Audience)
    );
    assert_eq!(
        check(&with(&|c| c["iss"] = json!("https://evil.example"))),
        Err(VerifyError::Issuer)
    );
    assert_eq!(
        check(&with(&|c| c["exp"] = json!(now() - 400))),
        Err(VerifyError::Expired)
    );
    assert_eq!(
        check(&with(&|c| c["exp"] = json!(now() - 100))),
        Ok(()),
        "within the skew"
    );
    assert_eq!(
        check(&with(&|c| c["nbf"] = json!(now() + 400))),
        Err(VerifyError::NotYetValid)
    );
    assert_eq!(
        check(&with(&|c| c["serviceurl"] = json!("https://evil.example/"))),
        Err(VerifyError::ServiceUrl)
    );
    assert_eq!(
        check(&with(&|c| {
            c.as_object_mut().unwrap().remove("serviceurl");
        })),
        Err(VerifyError::ServiceUrl)
    );
    assert_eq!(
        check(&with(&|c| {
            c.as_object_mut().unwrap().remove("exp");
        })),
        Err(VerifyError::MissingClaim)
    );
    assert_eq!(
        check(&sign(&key, "k9", &teams_claims())),
        Err(VerifyError::UnknownKey)
    );
    assert_eq!(
        check(&sign(&other, "k1", &teams_claims())),
        Err(VerifyError::Signature),
        "another key under a known kid"
    );
    let unendorsed = verify::teams(
        &sign(&key, "k1", &teams_claims()),
        &keys,
        "app-123",
        "skype",
        "https://smba.trafficmanager.net/emea/",
    );
    assert_eq!(unendorsed, Err(VerifyError::Endorsement));

    // HMAC with the public modulus as secret, and `alg: none`: refused before any key is used.
    let mut hmac = Header::new(Algorithm::HS256);
    hmac.kid = Some("k1".to_owned());
    let forged = jsonwebtoken::encode(
        &hmac,
        &teams_claims(),
        &EncodingKey::from_secret(key.modulus_b64.as_bytes()),
    )
    .unwrap();
    assert_eq!(check(&forged), Err(VerifyError::Algorithm));
    let b64 = |value: &Value| {
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(value).unwrap())
    };
    let none = format!(
        "{}.{}.",
        b64(&json!({"alg": "none", "kid": "k1"})),
        b64(&teams_claims())
    );
    assert!(matches!(
        check(&none),
        Err(VerifyError::Malformed | VerifyError::Algorithm)
    ));
    assert_eq!(check("not a token"), Err(VerifyError::Malformed));
}

#[test]
fn google_chat_tokens_are_checked_against_the_certificate_map() {
    let key = generate();
    let map = serde_json::to_vec(&json!({"g1": key.certificate_pem})).unwrap();
    let keys = KeySet::from_x509_map(&map).unwrap();
    let claims =
        json!({"iss": GOOGLE_CHAT_ISSUER, "aud": "1234567890", "exp": now() + 600, "iat": now()});
    assert_eq!(
        verify::google_chat(&sign(&key, "g1", &claims), &keys, "1234567890"),
        Ok(())
    );
    assert_eq!(
        verify::google_chat(&sign(&key, "g1", &claims), &keys, "999"),
        Err(VerifyError::Audience)
    );
    let mut wrong = claims.clone();
    wrong["iss"] = json!("someone@example.com");
    assert_eq!(
        verify::google_chat(&sign(&key, "g1", &wrong), &keys, "1234567890"),
        Err(VerifyError::Issuer)
    );
    assert!(KeySet::from_x509_map(br#"{"g1": "not a certificate"}"#).is_err());
    // One broken certificate does not take the good one down.
    let mixed =
        serde_json::to_vec(&json!({"g1": key.certificate_pem, "g2": "not a certificate"})).unwrap();
    let keys = KeySet::from_x509_map(&mixed).unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        verify::google_chat(&sign(&key, "g1", &claims), &keys, "1234567890"),
        Ok(())
    );
    assert!(KeySet::from_jwks(br#"{"keys": []}"#).is_err());
}
