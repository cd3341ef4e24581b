//! CSRF tokens. A signed-in page sends `x-keyward-csrf` with every admin request; its value is
//! HMAC-SHA256 of the session token under a fixed label, so the server recomputes it from the
//! cookie (nothing more to store) and a token learnt from one session is worthless in another.
//! Before sign-in, the header must echo the `kw_console_signin` cookie (double submit).
//! A cross-site page can neither read the cookie nor set a custom header without a CORS
//! preflight, which Keyward never grants.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

/// The request header that carries the token.
pub const HEADER: &str = "x-keyward-csrf";

/// The CSRF token of the session whose cookie value is `session_token`.
pub fn token_for(session_token: &str) -> String {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(session_token.as_bytes()) else {
        // HMAC accepts keys of any length; this branch is unreachable.
        return String::new();
    };
    mac.update(b"keyward console csrf v1");
    URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
}

/// Whether `presented` equals `expected`, in constant time. An empty token never matches.
pub fn matches(expected: &str, presented: &str) -> bool {
    !expected.is_empty() && bool::from(expected.as_bytes().ct_eq(presented.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_differ_per_session_and_match_only_themselves() {
        let one = token_for("session-one");
        let two = token_for("session-two");
        assert_ne!(one, two);
        assert_eq!(one, token_for("session-one"));
        assert_eq!(one.len(), 43);
        assert!(matches(&one, &one));
        assert!(!matches(&one, &two));
        assert!(!matches(&one, ""));
        assert!(!matches("", ""));
        assert!(!one.contains("session"));
    }
}
