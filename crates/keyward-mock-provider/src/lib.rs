//! A mock of the providers Keyward calls, speaking their real wire formats on loopback, so
//! every test and benchmark runs without the internet. It depends on no Keyward crate: a
//! misread wire format cannot hide on both sides.
//!
//! Surfaces: OpenAI chat completions, Responses, embeddings, models; Azure deployments;
//! Mistral's chat flavour; Anthropic Messages, count tokens, models; Bedrock Converse and
//! ConverseStream with SigV4 verification and event-stream frames.
//!
//! Shapes follow the providers' API references and official SDK types (OpenAI's OpenAPI spec
//! and `openai-python` types; Anthropic's Messages API reference and `anthropic-sdk-python`
//! types); the research notes behind them are summarised in `docs/providers.md`.
//!
//! Behaviour:
//! - Every key is valid unless revoked; keys starting with `sk-revoked` are revoked from the
//!   start, and [`MockHandle::revoke`] (or `POST /_mock/revoke {"key"}`) revokes one later. A
//!   revoked or missing key gets each provider's real 401 shape.
//! - `/mistral/v1/chat/completions` behaves as Mistral: usage on the final stream chunk by
//!   default, `stream_options` refused with 422.
//! - Calls are counted per key ([`MockHandle::calls`], `GET /_mock/calls`).
//! - Usage is exact and predictable: input tokens = ceil(UTF-8 bytes of all message text / 4)
//!   (at least 1); the reply is [`REPLY_WORDS`], one token each, cut at `max_tokens`.
//! - Faults are chosen by model name, which a gateway forwards unchanged: `mock-error-429`
//!   (with `retry-after`), `mock-error-500`, `mock-error-529`, `mock-stall` (no headers for 60
//!   s), `mock-slow-response` (a normal answer after 1 s), `mock-slow-stream` (200 ms between
//!   chunks), `mock-drop` (the stream breaks after two
//!   chunks), `mock-malformed-sse`, `mock-oversized` (a 20 MiB body). `mock-cached` reports
//!   half the input as cache reads; `mock-reasoning` reports 3 reasoning tokens.
//! - Embeddings: by default a vector from the input's length; `mock-embed-words` hashes each
//!   lower-cased word into 256 buckets (texts sharing words are similar, so retrieval can be
//!   tested); `mock-embed-short` returns one vector fewer than asked, `mock-embed-ragged` a
//!   second vector of another size; any input containing `MOCK_FAIL_EMBED` fails the call (500).

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

mod anthropic;
mod bedrock;
mod openai;
mod responses;
mod stream;
mod usage;

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use tokio::net::TcpListener;

pub use usage::REPLY_WORDS;

#[derive(Default)]
pub(crate) struct MockState {
    revoked: Mutex<BTreeSet<String>>,
    calls: Mutex<BTreeMap<String, u64>>,
    sequence: AtomicU64,
    /// The last `anthropic-version` and `anthropic-beta` received.
    anthropic_headers: Mutex<(Option<String>, Option<String>)>,
}

impl MockState {
    /// Counts a call and tells whether `key` may call.
    pub(crate) fn admit(&self, key: Option<&str>) -> bool {
        let Some(key) = key.filter(|key| !key.is_empty()) else {
            return false;
        };
        if let Ok(mut calls) = self.calls.lock() {
            *calls.entry(key.to_owned()).or_default() += 1;
        }
        let revoked = self
            .revoked
            .lock()
            .map(|revoked| revoked.contains(key))
            .unwrap_or(true);
        !(revoked || key.starts_with("sk-revoked"))
    }

    pub(crate) fn next_id(&self) -> u64 {
        self.sequence.fetch_add(1, Ordering::Relaxed) + 1
    }
}

/// A bound, not yet serving, mock provider.
pub struct MockProvider {
    listener: TcpListener,
    state: Arc<MockState>,
}

/// Test access to a running mock: counters and revocation.
#[derive(Clone)]
pub struct MockHandle {
    state: Arc<MockState>,
}

impl MockHandle {
    /// Calls made with `key` (valid or not).
    pub fn calls(&self, key: &str) -> u64 {
        self.state
            .calls
            .lock()
            .map(|calls| calls.get(key).copied().unwrap_or(0))
            .unwrap_or(0)
    }

    /// Calls made with any key.
    pub fn total_calls(&self) -> u64 {
        self.state
            .calls
            .lock()
            .map(|calls| calls.values().sum())
            .unwrap_or(0)
    }

    /// The `anthropic-version` and `anthropic-beta` headers of the last Messages call.
    pub fn last_anthropic_headers(&self) -> (Option<String>, Option<String>) {
        self.state
            .anthropic_headers
            .lock()
            .map(|headers| headers.clone())
            .unwrap_or_default()
    }

    /// The provider accepts `key` again.
    pub fn restore(&self, key: &str) {
        if let Ok(mut revoked) = self.state.revoked.lock() {
            revoked.remove(key);
        }
    }

    /// The provider now rejects `key`, as after a revocation in its console.
    pub fn revoke(&self, key: &str) {
        if let Ok(mut revoked) = self.state.revoked.lock() {
            revoked.insert(key.to_owned());
        }
    }
}

impl MockProvider {
    pub async fn bind(address: SocketAddr) -> std::io::Result<Self> {
        Ok(Self {
            listener: TcpListener::bind(address).await?,
            state: Arc::default(),
        })
    }

    pub fn address(&self) -> SocketAddr {
        self.listener
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::from(([127, 0, 0, 1], 0)))
    }

    pub fn handle(&self) -> MockHandle {
        MockHandle {
            state: self.state.clone(),
        }
    }

    pub async fn serve(
        self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> std::io::Result<()> {
        let router = Router::new()
            .route("/v1/chat/completions", post(openai::chat_completions))
            .route("/v1/embeddings", post(openai::embeddings))
            .route("/v1/responses", post(responses::responses))
            .route("/mistral/v1/embeddings", post(openai::embeddings))
            .route(
                "/openai/deployments/{deployment}/embeddings",
                post(openai::azure_embeddings),
            )
            .route(
                "/mistral/v1/chat/completions",
                post(openai::mistral_chat_completions),
            )
            .route("/v1/models", get(models))
            .route(
                "/openai/deployments/{deployment}/chat/completions",
                post(openai::azure_chat_completions),
            )
            .route("/v1/messages", post(anthropic::messages))
            .route("/model/{model}/converse", post(bedrock::converse))
            .route("/foundation-models", get(bedrock::foundation_models))
            .route(
                "/model/{model}/converse-stream",
                post(bedrock::converse_stream),
            )
            .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
            .route("/openai/models", get(openai::azure_models))
            .route("/_mock/calls", get(calls))
            .route("/_mock/revoke", post(revoke))
            .with_state(self.state);
        // TCP_NODELAY, as real providers' front ends: streamed chunks leave at once.
        let listener = axum::serve::ListenerExt::tap_io(self.listener, |stream| {
            let _ = stream.set_nodelay(true);
        });
        axum::serve(listener, router)
            .with_graceful_shutdown(shutdown)
            .await
    }
}

/// `GET /v1/models` is both OpenAI's and Anthropic's; Anthropic's clients send `x-api-key`.
async fn models(
    state: State<Arc<MockState>>,
    headers: axum::http::HeaderMap,
) -> axum::response::Response {
    if headers.contains_key("x-api-key") {
        anthropic::models(state, headers).await
    } else {
        openai::models(state, headers).await
    }
}

async fn calls(State(state): State<Arc<MockState>>) -> Json<Value> {
    let by_key = state
        .calls
        .lock()
        .map(|calls| calls.clone())
        .unwrap_or_default();
    let total: u64 = by_key.values().sum();
    Json(json!({"total": total, "by_key": by_key}))
}

async fn revoke(State(state): State<Arc<MockState>>, Json(body): Json<Value>) -> Json<Value> {
    if let (Some(key), Ok(mut revoked)) = (body["key"].as_str(), state.revoked.lock()) {
        revoked.insert(key.to_owned());
    }
    Json(json!({"revoked": body["key"]}))
}
