//! Checks of an incoming bearer token, as the platforms document them.
//!
//! - Bot Framework ("Authentication with the Bot Connector API", connector to bot): RS256,
//!   key from the OpenID metadata's JWKS by `kid`, `iss` `https://api.botframework.com`, `aud`
//!   the bot's app id, `exp`/`nbf` with five minutes of skew, the key's `endorsements` include
//!   the activity's `channelId`, and the `serviceurl` claim equals the activity's `serviceUrl`.
//! - Google Chat ("Verify requests from Google Chat", project-number audience): RS256, key from
//!   the Chat service account's certificate map by `kid`, `iss`
//!   `chat@system.gserviceaccount.com`, `aud` the app's project number, `exp` with skew.

use jsonwebtoken::{Algorithm, Validation};
use serde_json::{Map, Value};

use crate::keys::KeySet;

/// Skew allowed on `exp` and `nbf`, both platforms.
pub const CLOCK_SKEW_SECONDS: u64 = 300;
/// The issuer of Bot Framework tokens sent to a bot.
pub const TEAMS_ISSUER: &str = "https://api.botframework.com";
/// The issuer (and signer) of Google Chat's tokens.
pub const GOOGLE_CHAT_ISSUER: &str = "chat@system.gserviceaccount.com";

/// Why a token was refused. Names the check, never the token.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VerifyError {
    #[error("no bearer token")]
    Missing,
    #[error("the token is not a well-formed JWT")]
    Malformed,
    #[error("the token is not signed with RS256")]
    Algorithm,
    #[error("the token names no key id")]
    NoKeyId,
    #[error("the token's key is not among the platform's published keys")]
    UnknownKey,
    #[error("the signature does not verify")]
    Signature,
    #[error("the token has expired")]
    Expired,
    #[error("the token is not valid yet")]
    NotYetValid,
    #[error("the token's issuer is not the platform")]
    Issuer,
    #[error("the token's audience is not this connector's app id")]
    Audience,
    #[error("the token lacks a required claim")]
    MissingClaim,
    #[error("the signing key is not endorsed for the activity's channel")]
    Endorsement,
    #[error("the token's serviceurl claim does not match the activity's serviceUrl")]
    ServiceUrl,
}

impl VerifyError {
    /// A short label for metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            Self::Missing => "missing",
            Self::Malformed => "malformed",
            Self::Algorithm => "algorithm",
            Self::NoKeyId => "no_kid",
            Self::UnknownKey => "unknown_key",
            Self::Signature => "signature",
            Self::Expired => "expired",
            Self::NotYetValid => "not_yet_valid",
            Self::Issuer => "issuer",
            Self::Audience => "audience",
            Self::MissingClaim => "missing_claim",
            Self::Endorsement => "endorsement",
            Self::ServiceUrl => "service_url",
        }
    }
}

/// The key id of an RS256 token, before anything is verified (to pick or refresh keys).
pub fn key_id(token: &str) -> Result<String, VerifyError> {
    let header = jsonwebtoken::decode_header(token).map_err(|_| VerifyError::Malformed)?;
    if header.alg != Algorithm::RS256 {
        return Err(VerifyError::Algorithm);
    }
    header.kid.ok_or(VerifyError::NoKeyId)
}

/// A verified token's claims and its key's endorsements.
struct Verified {
    claims: Map<String, Value>,
    endorsements: Option<Vec<String>>,
}

/// Verifies signature, issuer, audience and times.
fn verify(
    token: &str,
    keys: &KeySet,
    issuer: &str,
    audience: &str,
) -> Result<Verified, VerifyError> {
    let kid = key_id(token)?;
    let published = keys.get(&kid).ok_or(VerifyError::UnknownKey)?;
    let mut validation = Validation::new(Algorithm::RS256);
    validation.algorithms = vec![Algorithm::RS256];
    validation.leeway = CLOCK_SKEW_SECONDS;
    validation.validate_nbf = true;
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    validation.set_required_spec_claims(&["exp", "iss", "aud"]);
    let data = jsonwebtoken::decode::<Map<String, Value>>(token, &published.key, &validation)
        .map_err(|err| {
            use jsonwebtoken::errors::ErrorKind;
            match err.kind() {
                ErrorKind::InvalidSignature | ErrorKind::InvalidRsaKey(_) => VerifyError::Signature,
                ErrorKind::ExpiredSignature => VerifyError::Expired,
                ErrorKind::ImmatureSignature => VerifyError::NotYetValid,
                ErrorKind::InvalidIssuer => VerifyError::Issuer,
                ErrorKind::InvalidAudience => VerifyError::Audience,
                ErrorKind::MissingRequiredClaim(_) => VerifyError::MissingClaim,
                ErrorKind::InvalidAlgorithm => VerifyError::Algorithm,
                _ => VerifyError::Malformed,
            }
        })?;
    Ok(Verified {
        claims: data.claims,
        endorsements: published.endorsements.clone(),
    })
}

/// A Bot Framework token for an activity of `channel_id` sent from `service_url`.
pub fn teams(
    token: &str,
    keys: &KeySet,
    app_id: &str,
    channel_id: &str,
    service_url: &str,
) -> Result<(), VerifyError> {
    let Verified {
        claims,
        endorsements,
    } = verify(token, keys, TEAMS_ISSUER, app_id)?;
    let endorsed = endorsements
        .unwrap_or_default()
        .iter()
        .any(|endorsement| endorsement == channel_id);
    if !endorsed {
        return Err(VerifyError::Endorsement);
    }
    let claimed = claims
        .get("serviceurl")
        .and_then(Value::as_str)
        .ok_or(VerifyError::ServiceUrl)?;
    if !same_service_url(claimed, service_url) {
        return Err(VerifyError::ServiceUrl);
    }
    Ok(())
}

/// A Google Chat token for the app whose project number is `project_number`.
pub fn google_chat(token: &str, keys: &KeySet, project_number: &str) -> Result<(), VerifyError> {
    verify(token, keys, GOOGLE_CHAT_ISSUER, project_number).map(|_| ())
}

/// Two service URLs are the same without a trailing slash, the scheme and host
/// case-insensitive.
pub fn same_service_url(left: &str, right: &str) -> bool {
    match (url::Url::parse(left), url::Url::parse(right)) {
        (Ok(left), Ok(right)) => {
            left.scheme() == right.scheme()
                && left.host_str().map(str::to_ascii_lowercase)
                    == right.host_str().map(str::to_ascii_lowercase)
                && left.port_or_known_default() == right.port_or_known_default()
                && left.path().trim_end_matches('/') == right.path().trim_end_matches('/')
        }
        _ => false,
    }
}
