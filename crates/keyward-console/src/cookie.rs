//! The console's cookies: `kw_console` (the session; `HttpOnly`, `SameSite=Strict`, `Secure`
//! over TLS, path `/` so the admin API sees it) and `kw_console_signin` (a random value that
//! the sign-in request must echo in a header: the sign-in form's CSRF protection, before any
//! session exists).

/// The session cookie.
pub const SESSION: &str = "kw_console";
/// The pre-session cookie the sign-in request must echo.
pub const SIGN_IN: &str = "kw_console_signin";

/// A cookie's attributes.
#[derive(Clone, Copy, Debug)]
pub struct Attributes {
    /// Add `Secure` (the request came over TLS or `server.public_url` is `https://`).
    pub secure: bool,
    /// `Max-Age` in seconds; 0 deletes the cookie.
    pub max_age_secs: u64,
}

/// A `Set-Cookie` value. `value` must be a cookie-safe token (base64url).
pub fn set_cookie(name: &str, value: &str, attributes: Attributes) -> String {
    let secure = if attributes.secure { "; Secure" } else { "" };
    format!(
        "{name}={value}; Path=/; Max-Age={}; HttpOnly; SameSite=Strict{secure}",
        attributes.max_age_secs
    )
}

/// A `Set-Cookie` value that deletes the cookie.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(
        name,
        "",
        Attributes {
            secure,
            max_age_secs: 0,
        },
    )
}

/// The value of cookie `name` in a `Cookie` request header, if present and cookie-safe
/// (base64url characters only; anything else is treated as absent).
pub fn read<'a>(header: &'a str, name: &str) -> Option<&'a str> {
    header
        .split(';')
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
        .filter(|value| {
            !value.is_empty()
                && value.len() <= 128
                && value
                    .bytes()
                    .all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_cookie_has_every_flag() {
        let cookie = set_cookie(
            SESSION,
            "abc_DEF-1",
            Attributes {
                secure: true,
                max_age_secs: 43_200,
            },
        );
        assert_eq!(
            cookie,
            "kw_console=abc_DEF-1; Path=/; Max-Age=43200; HttpOnly; SameSite=Strict; Secure"
        );
        assert!(!clear_cookie(SESSION, false).contains("Secure"));
        assert!(clear_cookie(SESSION, false).contains("Max-Age=0"));
    }

    #[test]
    fn reads_only_safe_values_of_the_named_cookie() {
        let header = "a=1; kw_console=tok_EN-9; kw_console_signin=x";
        assert_eq!(read(header, SESSION), Some("tok_EN-9"));
        assert_eq!(read(header, SIGN_IN), Some("x"));
        assert_eq!(read("kw_console=a\"b", SESSION), None);
        assert_eq!(read("kw_console=", SESSION), None);
        assert_eq!(read("xkw_console=abc", SESSION), None);
        assert_eq!(
            read(&format!("kw_console={}", "a".repeat(129)), SESSION),
            None
        );
    }
}
