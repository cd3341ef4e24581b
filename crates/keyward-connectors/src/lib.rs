//! Chat connectors: what it takes to trust a request from Microsoft Teams or Google Chat and
//! to read the question in it.
//!
//! - [`keys`]: the platforms' published signing keys — a JWKS (Bot Framework, with each key's
//!   channel endorsements) or an x509 certificate map (Google) — and the OpenID metadata that
//!   points at a JWKS.
//! - [`verify`]: the checks of an incoming bearer token, platform by platform, exactly as the
//!   platforms document them (SPEC "Chat connectors"): RS256 only, the key by `kid`, issuer,
//!   audience = the connector's app id, expiry and not-before with five minutes of skew, and
//!   for Teams the channel endorsement and the `serviceurl` claim.
//! - [`activity`]: a Teams activity or a Google Chat event read into what Keyward needs (who,
//!   where, the question as `BodyText`).
//!
//! Invariants:
//! - A token is accepted only with an asymmetric RS256 signature by a published key; `none`,
//!   HMAC and every other algorithm are refused before any key is looked at.
//! - Errors name the check that failed, never the token or the message text.
//! - No I/O here: the domain fetches keys (through the egress guard) and hands them in.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

pub mod activity;
pub mod keys;
pub mod verify;

pub use keys::{KeyError, KeySet};
pub use verify::{VerifyError, CLOCK_SKEW_SECONDS};
