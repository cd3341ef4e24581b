//! AWS Signature Version 4, header form, as Bedrock Runtime, KMS and Secrets Manager expect it: the canonical URI is
//! the wire path percent-encoded once more (non-S3 "double encoding"), no
//! `x-amz-content-sha256` header, and a session token is signed when present.
//!
//! Invariant: the secret access key and derived keys live only inside `sign`, in buffers that
//! are dropped before it returns; nothing here logs.

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

type HmacSha256 = Hmac<Sha256>;

/// Static or session credentials.
pub struct Credentials<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    pub session_token: Option<&'a str>,
}

/// What is signed.
pub struct Request<'a> {
    pub method: &'a str,
    /// Host header value (`bedrock-runtime.us-east-1.amazonaws.com`, with `:port` if not 443/80).
    pub host: &'a str,
    /// The path exactly as sent on the wire (already percent-encoded, e.g. `v1%3A0`).
    pub path: &'a str,
    /// Extra headers to sign (lowercase names), e.g. `content-type`.
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
    pub region: &'a str,
    pub service: &'a str,
    /// `YYYYMMDDTHHMMSSZ`.
    pub amz_date: &'a str,
}

/// `YYYYMMDDTHHMMSSZ` for a moment (UTC).
pub fn amz_date(now: std::time::SystemTime) -> String {
    let seconds = now
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_secs())
        .unwrap_or(0);
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}{month:02}{day:02}T{:02}{:02}{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn hmac(key: &[u8], message: &[u8]) -> Zeroizing<Vec<u8>> {
    // HMAC accepts keys of any length; the error case cannot occur.
    let mut mac = match HmacSha256::new_from_slice(key) {
        Ok(mac) => mac,
        Err(_) => return Zeroizing::new(Vec::new()),
    };
    mac.update(message);
    Zeroizing::new(mac.finalize().into_bytes().to_vec())
}

/// Percent-encodes everything but unreserved characters and `/` (a `%` becomes `%25`).
fn encode_path(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~' | b'/') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// The headers to add to the request: `x-amz-date`, `x-amz-security-token` (if any) and
/// `authorization`.
pub fn sign(request: &Request<'_>, credentials: &Credentials<'_>) -> Vec<(&'static str, String)> {
    let mut signed: Vec<(String, String)> = request
        .headers
        .iter()
        .map(|(name, value)| {
            (
                name.to_ascii_lowercase(),
                value.split_whitespace().collect::<Vec<_>>().join(" "),
            )
        })
        .collect();
    signed.push(("host".to_owned(), request.host.to_owned()));
    signed.push(("x-amz-date".to_owned(), request.amz_date.to_owned()));
    if let Some(token) = credentials.session_token {
        signed.push(("x-amz-security-token".to_owned(), token.to_owned()));
    }
    signed.sort();
    let signed_names = signed
        .iter()
        .map(|(name, _)| name.as_str())
        .collect::<Vec<_>>()
        .join(";");
    let canonical_headers: String = signed
        .iter()
        .map(|(name, value)| format!("{name}:{value}\n"))
        .collect();
    let canonical_request = format!(
        "{}\n{}\n\n{canonical_headers}\n{signed_names}\n{}",
        request.method,
        encode_path(request.path),
        hex(&Sha256::digest(request.body)),
    );
    let date = request.amz_date.get(..8).unwrap_or_default();
    let scope = format!("{date}/{}/{}/aws4_request", request.region, request.service);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{}\n{scope}\n{}",
        request.amz_date,
        hex(&Sha256::digest(canonical_request.as_bytes())),
    );
    let secret = Zeroizing::new(format!("AWS4{}", credentials.secret_access_key));
    let key = hmac(secret.as_bytes(), date.as_bytes());
    let key = hmac(&key, request.region.as_bytes());
    let key = hmac(&key, request.service.as_bytes());
    let key = hmac(&key, b"aws4_request");
    let signature = hex(&hmac(&key, string_to_sign.as_bytes()));

    let mut headers = vec![("x-amz-date", request.amz_date.to_owned())];
    if let Some(token) = credentials.session_token {
        headers.push(("x-amz-security-token", token.to_owned()));
    }
    headers.push((
        "authorization",
        format!(
            "AWS4-HMAC-SHA256 Credential={}/{scope}, SignedHeaders={signed_names}, Signature={signature}",
            credentials.access_key_id
        ),
    ));
    headers
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = br#"{"messages":[{"role":"user","content":[{"text":"Hello"}]}],"inferenceConfig":{"maxTokens":64}}"#;

    fn request() -> Request<'static> {
        Request {
            method: "POST",
            host: "bedrock-runtime.us-east-1.amazonaws.com",
            path: "/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse",
            headers: &[("content-type", "application/json")],
            body: BODY,
            region: "us-east-1",
            service: "bedrock",
            amz_date: "20240101T000000Z",
        }
    }

    /// The worked example of docs/providers/bedrock.md §1, whose signature `aws-sigv4` 1.6.4
    /// produces as well.
    #[test]
    fn signs_a_converse_request_like_the_aws_sdk() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
        };
        let headers = sign(&request(), &credentials);
        assert_eq!(headers[0], ("x-amz-date", "20240101T000000Z".to_owned()));
        assert_eq!(
            headers[1].1,
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature=293708168414703abf86f80829bd6947acf610ac0cf139701b959f7c21243665"
        );
    }

    #[test]
    fn signs_the_session_token() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: Some("SESSIONTOKEN"),
        };
        let headers = sign(&request(), &credentials);
        assert_eq!(
            headers[1],
            ("x-amz-security-token", "SESSIONTOKEN".to_owned())
        );
        assert!(headers[2].1.ends_with(
            "SignedHeaders=content-type;host;x-amz-date;x-amz-security-token, Signature=b7e0aef916b1db883096d59585a880d6c3ea845e884c04d5156e2d03a40b45de"
        ));
    }

    /// Cases of AWS's published SigV4 test suite (`aws-sig-v4-test-suite`, credentials
    /// `AKIDEXAMPLE`, 2015-08-30, `us-east-1`, service `service`) that fit a request without a
    /// query string, each with the suite's expected signature.
    #[test]
    fn the_aws_sigv4_test_suite_signs_alike() {
        let credentials = Credentials {
            access_key_id: "AKIDEXAMPLE",
            secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
            session_token: None,
        };
        type Case<'a> = (
            &'a str,
            &'a str,
            &'a [(&'a str, &'a str)],
            &'a [u8],
            &'a str,
        );
        let cases: [Case<'_>; 4] = [
            (
                "get-vanilla",
                "GET",
                &[],
                b"",
                "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
            ),
            (
                "post-vanilla",
                "POST",
                &[],
                b"",
                "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b",
            ),
            (
                "post-header-key-sort",
                "POST",
                &[("My-Header1", "value1")],
                b"",
                "c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
            ),
            (
                "post-x-www-form-urlencoded",
                "POST",
                &[("Content-Type", "application/x-www-form-urlencoded")],
                b"Param1=value1",
                "ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
            ),
        ];
        for (name, method, headers, body, signature) in cases {
            let signed = sign(
                &Request {
                    method,
                    host: "example.amazonaws.com",
                    path: "/",
                    headers,
                    body,
                    region: "us-east-1",
                    service: "service",
                    amz_date: "20150830T123600Z",
                },
                &credentials,
            );
            let authorization = &signed
                .iter()
                .find(|(header, _)| *header == "authorization")
                .unwrap_or_else(|| unreachable!("signed"))
                .1;
            assert!(
                authorization.ends_with(&format!("Signature={signature}")),
                "{name}: {authorization}"
            );
            assert!(authorization
                .starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders="));
        }
    }

    #[test]
    fn amz_dates_are_utc_calendar_times() {
        let at = |seconds| std::time::UNIX_EPOCH + std::time::Duration::from_secs(seconds);
        assert_eq!(amz_date(at(1_704_067_200)), "20240101T000000Z");
        assert_eq!(amz_date(at(1_709_210_096)), "20240229T123456Z");
        assert_eq!(amz_date(at(0)), "19700101T000000Z");
    }

    #[test]
    fn the_canonical_path_is_encoded_twice() {
        assert_eq!(
            encode_path("/model/anthropic.claude-3-5-sonnet-20240620-v1%3A0/converse"),
            "/model/anthropic.claude-3-5-sonnet-20240620-v1%253A0/converse"
        );
    }
}
