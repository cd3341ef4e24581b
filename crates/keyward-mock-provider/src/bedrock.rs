//! AWS Bedrock Runtime Converse and ConverseStream, with SigV4 verification of every request
//! and AWS event-stream framing — written from AWS's documentation, independently of the
//! gateway's signer and decoder.
//!
//! Credentials: any access key id is known; its secret access key is `<id>-secret`. Calls are
//! counted (and revoked) under the credential string `ID:SECRET[:SESSION_TOKEN]`, the form a
//! Keyward bedrock credential stores.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use hmac::{Hmac, Mac};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::stream::{self, Step};
use crate::usage::{fault_of, reply, text_bytes, tokens_of, Fault};
use crate::MockState;

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else {
        return Vec::new();
    };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn aws_error(status: StatusCode, code: &str, message: &str) -> Response {
    let mut response = (status, axum::Json(json!({"message": message}))).into_response();
    if let Ok(value) = HeaderValue::from_str(&format!(
        "{code}:http://internal.amazon.com/coral/com.amazon.bedrock/"
    )) {
        response.headers_mut().insert("x-amzn-errortype", value);
    }
    response
}

/// The parts of a SigV4 `authorization` header.
struct Authorization<'a> {
    credential: &'a str,
    signed_headers: &'a str,
    signature: &'a str,
}

fn authorization(headers: &HeaderMap) -> Option<Authorization<'_>> {
    let rest = headers
        .get("authorization")?
        .to_str()
        .ok()?
        .strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed_headers, mut signature) = (None, None, None);
    for part in rest.split(", ") {
        match part.split_once('=') {
            Some(("Credential", value)) => credential = Some(value),
            Some(("SignedHeaders", value)) => signed_headers = Some(value),
            Some(("Signature", value)) => signature = Some(value),
            _ => {}
        }
    }
    Some(Authorization {
        credential: credential?,
        signed_headers: signed_headers?,
        signature: signature?,
    })
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

fn signature_mismatch() -> Box<Response> {
    Box::new(aws_error(
        StatusCode::FORBIDDEN,
        "InvalidSignatureException",
        "The request signature we calculated does not match the signature you provided. Check your AWS Secret Access Key and signing method. Consult the service documentation for details.",
    ))
}

/// The canonical request SigV4 signs: method, URI-encoded path, signed headers, body hash.
fn canonical_request(
    method: &str,
    headers: &HeaderMap,
    uri: &Uri,
    signed_headers: &str,
    body: &[u8],
) -> String {
    let mut canonical_headers = String::new();
    for name in signed_headers.split(';') {
        canonical_headers.push_str(&format!("{name}:{}\n", header(headers, name).trim()));
    }
    let canonical_uri: String = uri
        .path()
        .bytes()
        .map(|byte| {
            if byte.is_ascii_alphanumeric() || b"-._~/".contains(&byte) {
                char::from(byte).to_string()
            } else {
                format!("%{byte:02X}")
            }
        })
        .collect();
    format!(
        "{method}\n{canonical_uri}\n\n{canonical_headers}\n{signed_headers}\n{}",
        hex(&Sha256::digest(body))
    )
}

/// Checks the SigV4 signature; returns the credential string to count under.
fn verify(
    method: &str,
    headers: &HeaderMap,
    uri: &Uri,
    body: &[u8],
) -> Result<String, Box<Response>> {
    let Some(authorization) = authorization(headers) else {
        return Err(Box::new(aws_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )));
    };
    let mut scope = authorization.credential.splitn(5, '/');
    let mut next = || scope.next().unwrap_or_default();
    let (access_key_id, date, region, service) = (next(), next(), next(), next());
    // As the real service: the host and date must be signed (and a session token sent), and
    // the scope must name this day and the bedrock service.
    let signed: Vec<&str> = authorization.signed_headers.split(';').collect();
    let amz_date = header(headers, "x-amz-date");
    let token_unsigned =
        headers.contains_key("x-amz-security-token") && !signed.contains(&"x-amz-security-token");
    if !signed.contains(&"host")
        || !signed.contains(&"x-amz-date")
        || token_unsigned
        || service != "bedrock"
        || !amz_date.starts_with(date)
        || date.len() != 8
    {
        return Err(signature_mismatch());
    }
    let secret = format!("{access_key_id}-secret");
    let key = match headers
        .get("x-amz-security-token")
        .and_then(|value| value.to_str().ok())
    {
        Some(token) => format!("{access_key_id}:{secret}:{token}"),
        None => format!("{access_key_id}:{secret}"),
    };
    let canonical_request =
        canonical_request(method, headers, uri, authorization.signed_headers, body);
    let string_to_sign = format!(
        "AWS4-HMAC-SHA256\n{amz_date}\n{date}/{region}/{service}/aws4_request\n{}",
        hex(&Sha256::digest(canonical_request.as_bytes()))
    );
    let mut signing_key = hmac_sha256(format!("AWS4{secret}").as_bytes(), date.as_bytes());
    for part in [region, service, "aws4_request"] {
        signing_key = hmac_sha256(&signing_key, part.as_bytes());
    }
    if hex(&hmac_sha256(&signing_key, string_to_sign.as_bytes())) != authorization.signature {
        return Err(signature_mismatch());
    }
    Ok(key)
}

/// One event-stream frame with string headers.
fn frame(event_type: &str, payload: &Value) -> String {
    // Frames are binary; the step body carries them as a lossless Latin-1 string (see `bytes`).
    let payload = payload.to_string();
    let mut headers = Vec::new();
    for (name, value) in [
        (":event-type", event_type),
        (":content-type", "application/json"),
        (":message-type", "event"),
    ] {
        headers.push(name.len() as u8);
        headers.extend_from_slice(name.as_bytes());
        headers.push(7);
        headers.extend_from_slice(&(value.len() as u16).to_be_bytes());
        headers.extend_from_slice(value.as_bytes());
    }
    let total = 12 + headers.len() + payload.len() + 4;
    let mut bytes = Vec::with_capacity(total);
    bytes.extend_from_slice(&(total as u32).to_be_bytes());
    bytes.extend_from_slice(&(headers.len() as u32).to_be_bytes());
    let prelude_crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&prelude_crc.to_be_bytes());
    bytes.extend_from_slice(&headers);
    bytes.extend_from_slice(payload.as_bytes());
    let message_crc = crc32fast::hash(&bytes);
    bytes.extend_from_slice(&message_crc.to_be_bytes());
    bytes.into_iter().map(char::from).collect()
}

pub(crate) async fn converse(
    state: State<Arc<MockState>>,
    path: Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, path, uri, headers, body, false).await
}

pub(crate) async fn converse_stream(
    state: State<Arc<MockState>>,
    path: Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    handle(state, path, uri, headers, body, true).await
}

async fn handle(
    State(state): State<Arc<MockState>>,
    Path(model): Path<String>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
    stream: bool,
) -> Response {
    let key = match verify("POST", &headers, &uri, &body) {
        Ok(key) => key,
        Err(response) => return *response,
    };
    if !state.admit(Some(&key)) {
        return aws_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    let Ok(request) = serde_json::from_slice::<Value>(&body) else {
        return aws_error(
            StatusCode::BAD_REQUEST,
            "ValidationException",
            "Malformed input request, please reformat your input and try again.",
        );
    };
    let fault = fault_of(&model);
    if let Some(response) = fault_response(fault).await {
        return response;
    }
    let input_tokens = tokens_of(text_bytes(&request["messages"]) + text_bytes(&request["system"]));
    let (words, cut) = reply(request["inferenceConfig"]["maxTokens"].as_u64());
    let output_tokens = words.len() as u64;
    let stop_reason = if cut { "max_tokens" } else { "end_turn" };
    let usage = json!({"inputTokens": input_tokens, "outputTokens": output_tokens, "totalTokens": input_tokens + output_tokens});
    let request_id = HeaderValue::from_str(&format!("mock-{}", state.next_id()))
        .unwrap_or(HeaderValue::from_static("mock"));
    if !stream {
        let body = json!({"output": {"message": {"role": "assistant", "content": [{"text": words.concat()}]}},
            "stopReason": stop_reason, "usage": usage, "metrics": {"latencyMs": 1}});
        let mut response = axum::Json(body).into_response();
        response
            .headers_mut()
            .insert("x-amzn-requestid", request_id);
        return response;
    }
    let steps = stream_steps(&words, stop_reason, &usage, fault);
    let mut response = stream::latin1_body(steps).into_response();
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        HeaderValue::from_static("application/vnd.amazon.eventstream"),
    );
    headers.insert("x-amzn-requestid", request_id);
    response
}

/// The answer a fault model gives instead of a reply (`None`: answer normally, after the
/// delay if there is one).
async fn fault_response(fault: Fault) -> Option<Response> {
    match fault {
        Fault::Stall => tokio::time::sleep(Duration::from_secs(60)).await,
        Fault::SlowResponse => tokio::time::sleep(Duration::from_secs(1)).await,
        Fault::Status(429) => {
            let mut response = aws_error(
                StatusCode::TOO_MANY_REQUESTS,
                "ThrottlingException",
                "Too many requests, please wait before trying again.",
            );
            response
                .headers_mut()
                .insert("retry-after", HeaderValue::from_static("1"));
            return Some(response);
        }
        Fault::Status(_) => {
            return Some(aws_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerException",
                "Internal server error",
            ))
        }
        _ => {}
    }
    None
}

/// The event-stream frames of a streamed reply, with the faults a model name asks for.
fn stream_steps(words: &[&str], stop_reason: &str, usage: &Value, fault: Fault) -> Vec<Step> {
    let pause = if fault == Fault::SlowStream {
        Duration::from_millis(200)
    } else {
        Duration::ZERO
    };
    let mut steps = vec![Step::send(
        frame("messageStart", &json!({"p": "abcdef", "role": "assistant"})),
        Duration::ZERO,
    )];
    for (index, word) in words.iter().enumerate() {
        if fault == Fault::Drop && index == 2 {
            steps.push(Step::abort());
            break;
        }
        steps.push(Step::send(
            frame(
                "contentBlockDelta",
                &json!({"contentBlockIndex": 0, "delta": {"text": word}, "p": "ab"}),
            ),
            pause,
        ));
    }
    steps.push(Step::send(
        frame(
            "contentBlockStop",
            &json!({"contentBlockIndex": 0, "p": "abc"}),
        ),
        pause,
    ));
    steps.push(Step::send(
        frame("messageStop", &json!({"p": "a", "stopReason": stop_reason})),
        pause,
    ));
    steps.push(Step::send(
        frame(
            "metadata",
            &json!({"metrics": {"latencyMs": 1}, "p": "abcd", "usage": usage}),
        ),
        pause,
    ));
    steps
}

/// The control plane's `GET /foundation-models` (what a cheap credential check calls).
pub(crate) async fn foundation_models(
    State(state): State<Arc<MockState>>,
    uri: Uri,
    headers: HeaderMap,
) -> Response {
    let key = match verify("GET", &headers, &uri, b"") {
        Ok(key) => key,
        Err(response) => return *response,
    };
    if !state.admit(Some(&key)) {
        return aws_error(
            StatusCode::FORBIDDEN,
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        );
    }
    axum::Json(
        json!({"modelSummaries": [{"modelId": "amazon.nova-lite-v1:0", "providerName": "Amazon"}]}),
    )
    .into_response()
}
