//! `ApiJson<T>`: a JSON body extractor whose errors never quote the input. serde's own messages
//! can contain the offending value (`invalid type: string "sk-…"`), so only the JSON path and a
//! fixed description are reported; unknown and missing field names, which the client chose,
//! are kept (truncated): they are the client's own keys, not values, and client errors are
//! answered, not logged.

use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::StatusCode;
use serde::de::DeserializeOwned;

use crate::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<S, T> FromRequest<S> for ApiJson<T>
where
    S: Send + Sync,
    T: DeserializeOwned,
{
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|rejection| {
                if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                    ApiError::invalid(
                        "body",
                        "request body is larger than the server's limit (server.max_body_bytes)",
                    )
                } else {
                    ApiError::invalid("body", "the request body could not be read")
                }
            })?;
        decode(&bytes).map(ApiJson)
    }
}

/// Decodes a JSON document, describing failures by path only.
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = serde_path_to_error::deserialize(&mut deserializer).map_err(|err| {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = describe(&inner, &path);
        ApiError::invalid(if path == "." { "body".into() } else { path }, message)
    })?;
    deserializer
        .end()
        .map_err(|_| ApiError::invalid("body", "unexpected data after the JSON document"))?;
    Ok(value)
}

fn describe(err: &serde_json::Error, path: &str) -> String {
    use serde_json::error::Category;
    match err.classify() {
        Category::Syntax => format!(
            "malformed JSON at line {} column {}",
            err.line(),
            err.column()
        ),
        Category::Eof => "the JSON document ends early".to_owned(),
        Category::Io => "the request body could not be read".to_owned(),
        Category::Data => {
            let text = err.to_string();
            // These two messages quote only field names from the schema or the client's keys.
            for kind in ["unknown field", "missing field"] {
                if let Some(start) = text.find(kind) {
                    let message = &text[start..];
                    let end = message.find(" at line").unwrap_or(message.len());
                    return message[..end].to_owned();
                }
            }
            format!("`{path}` has the wrong type or value; see /admin/v1/openapi.json")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[expect(dead_code, reason = "fields exist to be decoded")]
    struct Body {
        name: String,
        count: u32,
    }

    #[test]
    fn errors_name_the_path_and_never_a_value() {
        let canary = "sk-canary-json-31337";
        let cases = [
            format!(r#"{{"name": "a", "count": "{canary}"}}"#),
            format!(r#"{{"name": {canary}}}"#),
            format!(r#"["{canary}"]"#),
            format!(r#"{{"name": "a", "count": 1}} "{canary}""#),
        ];
        for case in cases {
            let err = decode::<Body>(case.as_bytes()).err().unwrap();
            assert!(!err.message.contains("31337"), "{}", err.message);
        }
        let err = decode::<Body>(br#"{"name": "a", "count": "x"}"#)
            .err()
            .unwrap();
        assert_eq!(err.param.as_deref(), Some("count"));
        let err = decode::<Body>(br#"{"name": "a"}"#).err().unwrap();
        assert!(
            err.message.contains("missing field `count`"),
            "{}",
            err.message
        );
        let err = decode::<Body>(br#"{"name": "a", "count": 1, "colour": 2}"#)
            .err()
            .unwrap();
        assert!(
            err.message.starts_with("unknown field `colour`"),
            "{}",
            err.message
        );
    }
}
