//! Tags every request with a fresh [`RequestId`], returned in `x-keyward-request-id`, and logs
//! one structural line per request: method, route template (never the raw URI or query),
//! status and latency — also counted in `/metrics`.

use std::time::Instant;

use axum::extract::{MatchedPath, Request, State};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use keyward_core::RequestId;
use tracing::Instrument;

use crate::AppState;

pub const REQUEST_ID_HEADER: &str = "x-keyward-request-id";

pub(crate) async fn tag_and_log(
    State(state): State<AppState>,
    mut request: Request,
    next: Next,
) -> Response {
    let request_id = RequestId::generate();
    let started = Instant::now();
    let method = request.method().clone();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_owned(), |path| path.as_str().to_owned());
    request.extensions_mut().insert(request_id);
    let span = tracing::info_span!(
        "request",
        otel.name = tracing::field::Empty,
        otel.kind = tracing::field::Empty,
        request_id = %request_id,
        %method,
        %route,
    );
    if let Some(traces) = &state.traces {
        // Only for the exporter: log lines stay as they were when traces are off.
        span.record("otel.name", format_args!("{method} {route}"));
        span.record("otel.kind", "server");
        if let Some(traceparent) = incoming_traceparent(request.headers()) {
            traces.continue_trace(&span, traceparent);
        }
    }
    let mut response = next.run(request).instrument(span.clone()).await;
    if let Ok(value) = HeaderValue::from_str(&request_id.to_string()) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    let status = response.status().as_u16();
    state
        .keyward
        .metrics()
        .record_request(&route, status, started.elapsed());
    span.in_scope(|| {
        tracing::info!(
            status = response.status().as_u16(),
            latency_ms = started.elapsed().as_millis() as u64,
            "request finished"
        );
    });
    response
}

/// The client's W3C `traceparent`, if it is well formed: `00-` + 32 and 16 lowercase hex digits
/// (not all zero) + `-` + 2 hex digits of flags.
pub(crate) fn incoming_traceparent(headers: &axum::http::HeaderMap) -> Option<&str> {
    let value = headers.get("traceparent")?.to_str().ok()?.trim();
    let parts: Vec<&str> = value.split('-').collect();
    let hex = |part: &str, len: usize| {
        part.len() == len
            && part
                .bytes()
                .all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'))
    };
    let valid = parts.len() == 4
        && hex(parts[0], 2)
        && parts[0] != "ff"
        && hex(parts[1], 32)
        && parts[1].bytes().any(|byte| byte != b'0')
        && hex(parts[2], 16)
        && parts[2].bytes().any(|byte| byte != b'0')
        && hex(parts[3], 2);
    valid.then_some(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_well_formed_traceparents_are_continued() {
        let header = |value: &str| {
            let mut headers = axum::http::HeaderMap::new();
            headers.insert(
                "traceparent",
                HeaderValue::from_str(value).unwrap_or_else(|_| unreachable!()),
            );
            headers
        };
        let good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
        assert_eq!(incoming_traceparent(&header(good)), Some(good));
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "garbage",
        ] {
            assert_eq!(incoming_traceparent(&header(bad)), None, "{bad}");
        }
    }
}
