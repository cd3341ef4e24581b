//! Liveness (`/healthz`: the process answers) and readiness (`/readyz`: the database answers,
//! so calls can be recorded), and `/metrics` (Prometheus text; structural labels only).
//!
//! Invariant: with `metrics.token` set, `/metrics` answers only a request bearing that token
//! (compared in constant time); anything else is 401 with no series in the body.

use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{json, Value};

use keyward_domain::DomainError;

use crate::error::ApiError;
use crate::AppState;

pub(crate) fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
}

async fn healthz() -> Json<Value> {
    Json(json!({"status": "ok"}))
}

async fn readyz(State(state): State<AppState>) -> (StatusCode, Json<Value>) {
    match state.keyward.ping_store().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(err) => {
            tracing::warn!(error = %err, "not ready: database unavailable");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                Json(json!({"status": "not_ready", "reason": "database unavailable"})),
            )
        }
    }
}

async fn metrics(
    State(state): State<AppState>,
    peer: Option<axum::Extension<axum::extract::ConnectInfo<std::net::SocketAddr>>>,
    headers: axum::http::HeaderMap,
) -> Result<([(axum::http::HeaderName, &'static str); 1], String), ApiError> {
    if let Some(token) = &state.metrics_token {
        // Wrong tokens count against the client address like failed console sign-ins.
        let address = peer.map(|axum::Extension(axum::extract::ConnectInfo(peer))| peer.ip());
        state.console.check_throttle(address)?;
        let presented = crate::auth::presented_token(&headers).unwrap_or_default();
        if !token.matches(presented) {
            state.console.record_failure(address);
            return Err(DomainError::Unauthenticated.into());
        }
    }
    let mut body = state.keyward.metrics().render();
    crate::process_metrics::render(state.build, &state.trace_export, &mut body);
    Ok((
        [(
            axum::http::header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        body,
    ))
}
