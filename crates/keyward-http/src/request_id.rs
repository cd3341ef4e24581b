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
    let span = tracing::info_span!("request", request_id = %request_id, %method, %route);
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
