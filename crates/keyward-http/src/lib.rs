//! Keyward's HTTP surfaces: the admin API under `/admin/v1` (with its OpenAPI document, built
//! from the same router that serves it), `/healthz` and `/readyz`.
//!
//! Invariants:
//! - This crate holds the single mapping from domain errors to SPEC codes, HTTP statuses and
//!   error shapes ([`error::ApiError`]).
//! - Client JSON is decoded by [`json::ApiJson`], whose errors name the JSON path, never the
//!   value, so a secret in a malformed body cannot be echoed or logged.
//! - Every response carries `x-keyward-request-id`; request logs hold method, route template,
//!   status and latency only.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

mod admin;
mod auth;
mod connectors;
pub mod console;
pub mod error;
pub mod export;
mod health;
pub mod json;
mod process_metrics;
mod request_id;
mod serve;
mod v1;
pub mod views;

use std::sync::Arc;

use axum::extract::DefaultBodyLimit;
use axum::Router;
use keyward_core::secret::AdminToken;
use keyward_domain::Keyward;

pub use process_metrics::{BuildInfo, TraceExportStats};
pub use request_id::REQUEST_ID_HEADER;
pub use serve::ServeLimits;

/// What every handler can reach.
#[derive(Clone, Debug)]
pub struct AppState {
    pub keyward: Keyward,
    /// `None`: the operator API is off.
    pub admin_token: Option<Arc<AdminToken>>,
    /// `metrics.token`: `None` leaves `/metrics` open on the listener.
    pub metrics_token: Option<Arc<AdminToken>>,
    /// Largest accepted request body (`server.max_body_bytes`).
    pub max_body_bytes: usize,
    /// Longest wait for a model call's whole body (`server.body_read_timeout`).
    pub body_read_timeout: std::time::Duration,
    /// The web console's session settings and sign-in throttle.
    pub console: Arc<console::ConsoleState>,
    /// Version and commit, for `keyward_build_info`.
    pub build: BuildInfo,
    /// W3C trace context, when traces are exported.
    pub traces: Option<Arc<dyn TraceContext>>,
    /// The trace exporter's counters.
    pub trace_export: Arc<TraceExportStats>,
}

/// Trace context propagation, provided by the binary when it exports traces: the HTTP layer
/// stays free of OpenTelemetry.
pub trait TraceContext: Send + Sync + std::fmt::Debug {
    /// Makes `span` continue the trace an incoming W3C `traceparent` names.
    fn continue_trace(&self, span: &tracing::Span, traceparent: &str);
    /// The `traceparent` naming `span`, to pass upstream.
    fn traceparent(&self, span: &tracing::Span) -> Option<String>;
}

/// Limits and switches of the HTTP layer.
#[derive(Clone, Debug)]
pub struct HttpConfig {
    /// Largest accepted request body (`server.max_body_bytes`).
    pub max_body_bytes: usize,
    /// Timeouts and connection limits of the accept loop.
    pub limits: ServeLimits,
}

/// The application, ready to serve on a listener.
pub struct HttpService {
    router: Router,
    limits: ServeLimits,
    keyward: Keyward,
}

impl HttpService {
    pub fn new(state: AppState, config: &HttpConfig) -> Self {
        Self {
            keyward: state.keyward.clone(),
            router: router(state, config),
            limits: config.limits,
        }
    }

    /// Serves until `shutdown` resolves, then stops accepting and waits for in-flight requests.
    pub async fn serve(
        self,
        listener: tokio::net::TcpListener,
        shutdown: impl std::future::Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let keyward = self.keyward;
        let refused = move |limit: &'static str| keyward.metrics().record_connection_refused(limit);
        serve::serve(listener, self.router, self.limits, refused, shutdown).await
    }
}

/// The whole application router.
pub fn router(state: AppState, config: &HttpConfig) -> Router {
    let (admin, _) = admin::router().split_for_parts();
    // Shared bytes, not a String: axum clones a route's handler for every connection it
    // serves, and a 70 KiB document copied per connection was most of a stream's memory.
    let openapi = axum::body::Bytes::from(admin::openapi_json());
    Router::new()
        .merge(admin)
        .route(
            "/admin/v1/openapi.json",
            axum::routing::get(move || {
                let openapi = openapi.clone();
                async move {
                    (
                        [(axum::http::header::CONTENT_TYPE, "application/json")],
                        openapi,
                    )
                }
            }),
        )
        .merge(health::router())
        .merge(v1::router())
        .merge(connectors::router())
        .merge(console::router())
        .fallback(error::not_found_fallback)
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            request_id::tag_and_log,
        ))
        .with_state(state)
}

/// The admin API's OpenAPI document (JSON), as served at `/admin/v1/openapi.json`.
pub fn openapi_json() -> String {
    admin::openapi_json()
}
