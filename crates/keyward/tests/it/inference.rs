//! Model calls end to end against the mock provider: pass-through, streaming with usage,
//! exact ledger rows, revocation, faults, client disconnects, and errors decided before any
//! upstream traffic.

use std::time::{Duration, Instant};

use keyward_core::{RequestId, TenantId};
use keyward_store::{CallRecord, CallStatus};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestApp;

/// "Hello there, mock!" is 18 bytes: the mock counts ceil(18 / 4) = 5 input tokens.
const PROMPT: &str = "Hello there, mock!";
const INPUT_TOKENS: u64 = 5;
/// The mock's reply: six words, one token each.
const REPLY: &str = "Mockly answers with quokka words.";
const OUTPUT_TOKENS: u64 = 6;

struct Setup {
    app: TestApp,
    tenant: String,
    key: String,
    openai_secret: String,
}

async fn setup() -> Setup {
    setup_with(&[]).await
}

async fn setup_with(overrides: &[(&str, &str)]) -> Setup {
    let app = TestApp::spawn_with(overrides).await;
    let tenant = app.create_tenant("acme").await;
    let openai_secret = format!("sk-mock-openai-{}", RequestId::generate());
    for body in [
        json!({"provider": "openai", "label": "team-openai", "secret": openai_secret, "base_url": format!("{}/v1", app.mock_origin)}),
        json!({"provider": "anthropic", "label": "claude", "secret": format!("sk-ant-mock-{}", RequestId::generate()), "base_url": app.mock_origin}),
    ] {
        app.connect(&tenant, &body).await;
    }
    let (_, key) = app.issue_key(&tenant, "member").await;
    Setup {
        app,
        tenant,
        key,
        openai_secret,
    }
}

fn chat(model: &str, stream: bool) -> Value {
    json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]})
}

impl Setup {
    async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        self.app
            .with_key(&self.key, Method::POST, path)
            .json(body)
            .send()
            .await
            .unwrap()
    }

    async fn row(&self, request_id: &str) -> CallRecord {
        let tenant: TenantId = self.tenant.parse().unwrap();
        let request_id: RequestId = request_id.parse().unwrap();
        self.app
            .store()
            .await
            .call(tenant, request_id)
            .await
            .unwrap()
            .unwrap_or_else(|| panic!("no ledger row for call {request_id}"))
    }

    /// The id of the tenant's credential labelled `label`.
    async fn credential_id(&self, label: &str) -> String {
        self.app.credential_id(&self.tenant, label).await
    }

    /// The row once it has left `pending` (streams settle when they end).
    async fn settled_row(&self, request_id: &str) -> CallRecord {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let row = self.row(request_id).await;
            if row.status != CallStatus::Pending || Instant::now() > deadline {
                return row;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn request_id(response: &reqwest::Response) -> String {
    response.headers()["x-keyward-request-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_chat_completion_runs_on_the_tenants_key_and_is_recorded_exactly() {
    let setup = setup().await;
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/gpt-4o-mini", false),
        )
        .await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], REPLY);
    assert_eq!(
        body["model"], "gpt-4o-mini",
        "the provider saw the model without the label"
    );
    assert_eq!(
        setup.app.mock.calls(&setup.openai_secret),
        1,
        "the tenant's own key made the call"
    );

    let row = setup.row(&id).await;
    assert_eq!(row.status, CallStatus::Ok);
    assert_eq!(
        (row.input_tokens, row.output_tokens),
        (Some(INPUT_TOKENS), Some(OUTPUT_TOKENS))
    );
    assert_eq!(row.cached_input_tokens, Some(0));
    assert_eq!(row.model_requested, "team-openai/gpt-4o-mini");
    assert_eq!(row.model_reported.as_deref(), Some("gpt-4o-mini"));
    assert_eq!(row.credential_label, "team-openai");
    assert_eq!(
        (row.provider.as_str(), row.endpoint.as_str()),
        ("openai", "/v1/chat/completions")
    );
    assert!(row
        .provider_request_id
        .as_deref()
        .is_some_and(|id| id.starts_with("req_mock")));
    assert_eq!(row.http_status, Some(200));
    assert!(!row.stream);
    assert!(row.latency_ms.is_some() && row.ttfb_ms.is_some());

    let metrics = setup
        .app
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let labels = format!(
        "tenant=\"{}\",provider=\"openai\",model=\"gpt-4o-mini\",status=\"ok\"",
        setup.tenant
    );
    assert!(
        metrics.contains(&format!("keyward_upstream_calls_total{{{labels}}} 1")),
        "{metrics}"
    );
    assert!(metrics.contains(&format!(
        "keyward_upstream_tokens_total{{{labels},direction=\"input\"}} {INPUT_TOKENS}"
    )));
    assert!(metrics
        .contains("keyward_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"}"));
}

/// Splits an SSE body into its `data:` payloads.
fn sse_data(text: &str) -> Vec<String> {
    text.split("\n\n")
        .filter_map(|event| event.lines().find_map(|line| line.strip_prefix("data: ")))
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn streams_report_usage_and_hide_the_chunk_keyward_asked_for() {
    let setup = setup().await;
    // The client did not ask for usage: Keyward asks the provider and hides the extra chunk.
    let response = setup
        .app
        .with_key(&setup.key, Method::POST, "/v1/chat/completions")
        .header("x-keyward-tags", "feature=search, customer=globex")
        .json(
            &json!({"model": "team-openai/gpt-4o-mini", "stream": true, "user": "end-user-7",
            "messages": [{"role": "user", "content": PROMPT}]}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/event-stream"));
    let id = request_id(&response);
    let data = sse_data(&response.text().await.unwrap());
    assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
    let chunks: Vec<Value> = data[..data.len() - 1]
        .iter()
        .map(|chunk| serde_json::from_str(chunk).unwrap())
        .collect();
    let text: String = chunks
        .iter()
        .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
        .collect();
    assert_eq!(text, REPLY);
    assert!(
        chunks
            .iter()
            .all(|chunk| !chunk["choices"].as_array().unwrap().is_empty()),
        "no usage-only chunk"
    );
    let row = setup.settled_row(&id).await;
    assert_eq!(row.status, CallStatus::Ok);
    assert!(row.stream);
    assert_eq!(
        (row.input_tokens, row.output_tokens),
        (Some(INPUT_TOKENS), Some(OUTPUT_TOKENS))
    );
    assert_eq!(row.tags["feature"], "search");
    assert_eq!(row.tags["customer"], "globex");
    assert_eq!(row.tags["user"], "end-user-7");

    // The client asked for usage itself: it gets the usage chunk.
    let mut asked = chat("team-openai/gpt-4o-mini", true);
    asked["stream_options"] = json!({"include_usage": true});
    let response = setup.post("/v1/chat/completions", &asked).await;
    let data = sse_data(&response.text().await.unwrap());
    let usage_chunk: Value = serde_json::from_str(&data[data.len() - 2]).unwrap();
    assert_eq!(usage_chunk["choices"], json!([]));
    assert_eq!(usage_chunk["usage"]["prompt_tokens"], INPUT_TOKENS);
}

#[tokio::test]
async fn anthropic_messages_stream_and_normalise_cached_input() {
    let setup = setup().await;
    let body = json!({"model": "claude/mock-cached", "max_tokens": 100, "messages": [{"role": "user", "content": "a much longer prompt that is partly cached"}]});
    let response = setup.post("/v1/messages", &body).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["content"][0]["text"], REPLY);
    // 42 bytes → 11 tokens; the mock reports 5 as cache reads and 6 as uncached input.
    assert_eq!(message["usage"]["cache_read_input_tokens"], 5);
    let row = setup.row(&id).await;
    assert_eq!(
        (row.input_tokens, row.cached_input_tokens),
        (Some(11), Some(5))
    );

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let response = setup.post("/v1/messages", &streamed).await;
    let id = request_id(&response);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("event: message_stop"));
    let row = setup.settled_row(&id).await;
    assert_eq!(row.status, CallStatus::Ok);
    assert_eq!(
        (row.input_tokens, row.cached_input_tokens, row.output_tokens),
        (Some(11), Some(5), Some(OUTPUT_TOKENS))
    );
    assert_eq!(row.endpoint, "/v1/messages");
}

#[tokio::test]
async fn a_key_the_provider_revoked_fails_fast_until_rotated() {
    let setup = setup().await;
    setup.app.mock.revoke(&setup.openai_secret);
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/gpt-4o-mini", false),
        )
        .await;
    assert_eq!(response.status(), 424);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "provider_credential_rejected");
    assert!(error["error"]["message"]
        .as_str()
        .unwrap()
        .contains("team-openai"));
    assert_eq!(setup.app.mock.calls(&setup.openai_secret), 1);

    let credentials = setup.app.credentials(&setup.tenant).await;
    let credential = credentials
        .iter()
        .find(|c| c["label"] == "team-openai")
        .unwrap()
        .clone();
    assert_eq!(credential["status"], "rejected_by_provider");

    // Fail fast: no upstream traffic while rejected, even as a stream.
    for stream in [false, true] {
        let response = setup
            .post(
                "/v1/chat/completions",
                &chat("team-openai/gpt-4o-mini", stream),
            )
            .await;
        assert_eq!(response.status(), 424);
    }
    assert_eq!(setup.app.mock.calls(&setup.openai_secret), 1);

    let new_secret = format!("sk-mock-rotated-{}", RequestId::generate());
    let rotate = setup
        .app
        .operator(
            Method::POST,
            &format!(
                "/admin/v1/tenants/{}/credentials/{}/rotate",
                setup.tenant,
                credential["id"].as_str().unwrap()
            ),
        )
        .json(&json!({"secret": new_secret}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotate.status(), 200);
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/gpt-4o-mini", false),
        )
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(setup.app.mock.calls(&new_secret), 1);
}

#[tokio::test]
async fn provider_failures_are_relayed_with_the_right_code_and_recorded() {
    let setup = setup_with(&[("KEYWARD_EGRESS_FIRST_BYTE_TIMEOUT", "1s")]).await;

    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/mock-error-429", false),
        )
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(
        body["error"]["code"], "rate_limit_exceeded",
        "the provider's own 4xx body is relayed"
    );
    let row = setup.row(&id).await;
    assert_eq!(
        (row.status, row.http_status),
        (CallStatus::ProviderError, Some(429))
    );

    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/mock-error-500", false),
        )
        .await;
    assert_eq!(response.status(), 502);
    let id = request_id(&response);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "upstream_error"
    );
    assert_eq!(setup.row(&id).await.http_status, Some(500));

    let started = Instant::now();
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/mock-stall", false),
        )
        .await;
    assert!(started.elapsed() < Duration::from_secs(5));
    assert_eq!(response.status(), 504);
    let id = request_id(&response);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "upstream_timeout"
    );
    assert_eq!(setup.row(&id).await.status, CallStatus::Timeout);

    // A stream the provider breaks off: the client sees the break, the row says provider_error.
    let response = setup
        .post("/v1/chat/completions", &chat("team-openai/mock-drop", true))
        .await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    assert!(
        response.text().await.is_err(),
        "a broken stream must not look complete"
    );
    let row = setup.settled_row(&id).await;
    assert_eq!(row.status, CallStatus::ProviderError);
}

#[tokio::test]
async fn stream_events_reach_the_client_as_they_arrive_never_coalesced() {
    // The mock sends one word every 200 ms; each must reach the client on its own, about when
    // it was sent, not gathered with the next ones.
    let setup = setup().await;
    let mut response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/mock-slow-stream", true),
        )
        .await;
    let start = std::time::Instant::now();
    let mut arrivals: Vec<(std::time::Duration, String)> = Vec::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        let text = String::from_utf8_lossy(&chunk).into_owned();
        if text.contains("\"content\"") {
            arrivals.push((start.elapsed(), text));
        }
    }
    // Six words, each in a chunk of its own: no chunk carries two content events.
    let words: Vec<_> = arrivals
        .iter()
        .filter(|(_, text)| text.matches("\"content\"").count() == 1)
        .collect();
    assert!(words.len() >= 6, "{arrivals:?}");
    // Spread over the ~1 s the mock took, not delivered at the end.
    let first = arrivals.first().unwrap().0;
    let last = arrivals.last().unwrap().0;
    assert!(
        last - first >= std::time::Duration::from_millis(800),
        "events arrived within {:?}: coalesced or buffered",
        last - first
    );
}

#[tokio::test]
async fn a_client_that_leaves_mid_stream_is_recorded_as_cancelled() {
    let setup = setup().await;
    let mut response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/mock-slow-stream", true),
        )
        .await;
    let id = request_id(&response);
    let first = response.chunk().await.unwrap();
    assert!(first.is_some());
    drop(response);
    let row = setup.settled_row(&id).await;
    assert_eq!(row.status, CallStatus::ClientCancelled);
    assert!(row.stream);
}

#[tokio::test]
async fn errors_decided_before_the_call_send_nothing_upstream() {
    let setup = setup().await;
    let tenant = &setup.tenant;
    let (_, limited) = {
        let response = setup
            .app
            .operator(Method::POST, &format!("/admin/v1/tenants/{tenant}/keys"))
            .json(&json!({"models": ["gpt-4o"]}))
            .send()
            .await
            .unwrap();
        let body: Value = response.json().await.unwrap();
        ((), body["key"].as_str().unwrap().to_owned())
    };
    let cases: Vec<(Option<&str>, &str, Value, u16, &str)> = vec![
        (
            Some("kw_not-a-real-key"),
            "/v1/chat/completions",
            chat("team-openai/gpt-4o-mini", false),
            401,
            "invalid_platform_key",
        ),
        (
            None,
            "/v1/chat/completions",
            chat("team-openai/gpt-4o-mini", true),
            401,
            "invalid_platform_key",
        ),
        (
            Some(&setup.key),
            "/v1/chat/completions",
            chat("gpt-4o-mini", true),
            400,
            "no_credential",
        ),
        (
            Some(&setup.key),
            "/v1/chat/completions",
            chat("nobody/gpt-4o-mini", false),
            400,
            "no_credential",
        ),
        (
            Some(&setup.key),
            "/v1/chat/completions",
            json!({"stream": true}),
            400,
            "invalid_request",
        ),
        (
            Some(&limited),
            "/v1/chat/completions",
            chat("team-openai/gpt-4o-mini", true),
            403,
            "model_not_allowed",
        ),
    ];
    for (key, path, body, status, code) in cases {
        let mut request = setup.app.request(Method::POST, path).json(&body);
        if let Some(key) = key {
            request = request.bearer_auth(key);
        }
        let response = request.send().await.unwrap();
        assert_eq!(response.status(), status, "{code}");
        assert_eq!(
            response.json::<Value>().await.unwrap()["error"]["code"],
            code
        );
    }
    let malformed = setup
        .app
        .with_key(&setup.key, Method::POST, "/v1/chat/completions")
        .header("content-type", "application/json")
        .body("{\"model\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(malformed.status(), 400);

    // Anthropic's error shape on /v1/messages.
    let response = setup
        .app
        .request(Method::POST, "/v1/messages")
        .header("x-api-key", "kw_wrong")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");
    assert_eq!(body["error"]["code"], "invalid_platform_key");

    assert_eq!(setup.app.mock.total_calls(), 0, "nothing went upstream");
}

#[tokio::test]
async fn a_disabled_credential_is_refused_without_upstream_traffic() {
    let setup = setup().await;
    let id = setup.credential_id("team-openai").await;
    setup
        .app
        .operator(
            Method::POST,
            &format!(
                "/admin/v1/tenants/{}/credentials/{id}/disable",
                setup.tenant
            ),
        )
        .send()
        .await
        .unwrap();
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/gpt-4o-mini", true),
        )
        .await;
    assert_eq!(response.status(), 403);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "credential_disabled"
    );
    assert_eq!(setup.app.mock.total_calls(), 0);
}

#[tokio::test]
async fn the_egress_guard_checks_the_address_actually_dialled() {
    let setup = setup().await;
    // Allowed when the credentials were added; a server without the allow-list refuses to dial.
    let strict = setup
        .app
        .sibling(&[("KEYWARD_EGRESS_ALLOW_PRIVATE", "")])
        .await;
    let response = strict
        .with_key(&setup.key, Method::POST, "/v1/chat/completions")
        .json(&chat("team-openai/gpt-4o-mini", false))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 502);
    let id = request_id(&response);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "egress_blocked"
    );
    assert_eq!(setup.row(&id).await.status, CallStatus::EgressBlocked);

    // A hostname that resolves to loopback is refused by the resolver, not just literals.
    let tenant = &setup.tenant;
    let local = json!({"provider": "openai-compatible", "label": "local", "base_url": format!("{}/v1", setup.app.mock_origin.replace("127.0.0.1", "localhost"))});
    setup.app.connect(tenant, &local).await;
    let response = strict
        .with_key(&setup.key, Method::POST, "/v1/chat/completions")
        .json(&chat("local/llama3.2", false))
        .send()
        .await
        .unwrap();
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "egress_blocked"
    );
    assert_eq!(setup.app.mock.total_calls(), 0);
}

#[tokio::test]
async fn verify_checks_the_key_with_the_provider_and_clears_a_rejection() {
    let setup = setup().await;
    let credentials = setup.app.credentials(&setup.tenant).await;
    let ids: Vec<(String, String)> = credentials
        .iter()
        .map(|c| {
            (
                c["label"].as_str().unwrap().to_owned(),
                c["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    let verify = |id: &str| {
        let request = setup.app.operator(
            Method::POST,
            &format!("/admin/v1/tenants/{}/credentials/{id}/verify", setup.tenant),
        );
        async move { request.send().await.unwrap() }
    };
    // Both providers' verification calls succeed on good keys.
    for (label, id) in &ids {
        let response = verify(id).await;
        assert_eq!(response.status(), 200, "{label}");
        assert_eq!(response.json::<Value>().await.unwrap()["status"], "active");
    }
    let openai_id = &ids
        .iter()
        .find(|(label, _)| label == "team-openai")
        .unwrap()
        .1;

    // Revoked at the provider: verify marks it, calls fail fast.
    setup.app.mock.revoke(&setup.openai_secret);
    let verified: Value = verify(openai_id).await.json().await.unwrap();
    assert_eq!(verified["status"], "rejected_by_provider");
    let calls_before = setup.app.mock.calls(&setup.openai_secret);
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/gpt-4o-mini", false),
        )
        .await;
    assert_eq!(response.status(), 424);
    assert_eq!(setup.app.mock.calls(&setup.openai_secret), calls_before);

    // Restored at the provider (e.g. a billing problem fixed): verify clears the rejection.
    setup.app.mock.restore(&setup.openai_secret);
    let verified: Value = verify(openai_id).await.json().await.unwrap();
    assert_eq!(verified["status"], "active");
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/gpt-4o-mini", false),
        )
        .await;
    assert_eq!(response.status(), 200);

    // Every verification went upstream on the tenant's key and left a ledger row.
    let tenant: TenantId = setup.tenant.parse().unwrap();
    let rows = setup
        .app
        .store()
        .await
        .calls(tenant, &keyward_store::PageRequest::default())
        .await
        .unwrap()
        .items;
    let verifications: Vec<&CallRecord> =
        rows.iter().filter(|row| row.endpoint == "verify").collect();
    assert_eq!(verifications.len(), 4);
    assert!(verifications
        .iter()
        .all(|row| row.key_id.is_none() && row.status != CallStatus::Pending));
}

#[tokio::test]
async fn anthropic_version_and_beta_headers_reach_the_provider() {
    let setup = setup().await;
    let body = json!({"model": "claude/claude-sonnet-4-5", "max_tokens": 20, "messages": [{"role": "user", "content": PROMPT}]});
    let response = setup
        .app
        .with_key(&setup.key, Method::POST, "/v1/messages")
        .header("anthropic-version", "2023-06-01")
        .header(
            "anthropic-beta",
            "prompt-caching-2024-07-31,output-128k-2025-02-19",
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        setup.app.mock.last_anthropic_headers(),
        (
            Some("2023-06-01".to_owned()),
            Some("prompt-caching-2024-07-31,output-128k-2025-02-19".to_owned())
        )
    );
    // Without them, Keyward sends the API version itself and no beta.
    let response = setup.post("/v1/messages", &body).await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        setup.app.mock.last_anthropic_headers(),
        (Some("2023-06-01".to_owned()), None)
    );
}

#[tokio::test]
async fn embeddings_pass_through_on_openai_azure_and_mistral() {
    let setup = setup().await;
    for body in [
        json!({"provider": "azure-openai", "label": "azure", "secret": "azure-key-0123456789abcdef", "base_url": setup.app.mock_origin,
               "options": {"api_version": "2024-10-21", "deployments": "text-embedding-3-small=emb-prod"}}),
        json!({"provider": "mistral", "label": "mistral", "secret": "mistral-key-0123456789abcd", "base_url": format!("{}/mistral/v1", setup.app.mock_origin)}),
    ] {
        setup.app.connect(&setup.tenant, &body).await;
    }
    for model in [
        "team-openai/text-embedding-3-small",
        "azure/text-embedding-3-small",
        "mistral/mistral-embed",
    ] {
        // The OpenAI SDK's default encoding is base64: it must pass through untouched.
        let response = setup
            .post("/v1/embeddings", &json!({"model": model, "input": ["twelve bytes", "eight by"], "encoding_format": "base64", "dimensions": 4}))
            .await;
        assert_eq!(response.status(), 200, "{model}");
        let id = request_id(&response);
        let body: Value = response.json().await.unwrap();
        let encoded = body["data"][0]["embedding"].as_str().unwrap();
        let decoded =
            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, encoded).unwrap();
        assert_eq!(decoded.len(), 4 * 4, "four little-endian f32 values");
        let row = setup.row(&id).await;
        assert_eq!(
            (row.status, row.endpoint.as_str()),
            (CallStatus::Ok, "/v1/embeddings")
        );
        assert_eq!(row.input_tokens, Some(3 + 2), "{model}");
    }
    // Anthropic has no embeddings API: refused before any traffic.
    let response = setup
        .post(
            "/v1/embeddings",
            &json!({"model": "claude/x", "input": "hi"}),
        )
        .await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "no_credential"
    );
}

#[tokio::test]
async fn a_route_falls_back_in_the_configured_order_and_records_each_attempt() {
    let setup = setup().await;
    let tenant = &setup.tenant;
    let put = |model: &str, targets: Value| {
        let request = setup
            .app
            .operator(
                Method::PUT,
                &format!("/admin/v1/tenants/{tenant}/routes/{model}"),
            )
            .json(&json!({"targets": targets}));
        async move { request.send().await.unwrap() }
    };
    let response = put("chat", json!([{"credential": "team-openai", "model": "mock-error-500"}, {"credential": "team-openai", "model": "gpt-4o-mini"}])).await;
    assert_eq!(response.status(), 200);
    let route: Value = response.json().await.unwrap();
    assert_eq!(route["targets"].as_array().unwrap().len(), 2);

    let response = setup
        .post("/v1/chat/completions", &chat("chat", false))
        .await;
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()["x-keyward-fallback"],
        "team-openai/gpt-4o-mini"
    );
    let first_id = request_id(&response);
    let fallback_id = response.headers()["x-keyward-fallback-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        response.json::<Value>().await.unwrap()["choices"][0]["message"]["content"],
        REPLY
    );
    let first = setup.row(&first_id).await;
    assert_eq!(
        (first.status, first.http_status),
        (CallStatus::ProviderError, Some(500))
    );
    let fallback = setup.row(&fallback_id).await;
    assert_eq!(fallback.status, CallStatus::Ok);
    assert_eq!(fallback.fallback_of.as_deref(), Some(first_id.as_str()));
    assert_eq!(fallback.model_requested, "chat");
    assert_eq!(fallback.model_reported.as_deref(), Some("gpt-4o-mini"));

    // A disabled first target is skipped without any upstream traffic or ledger row.
    let claude_id = setup.credential_id("claude").await;
    let disabled = setup
        .app
        .operator(
            Method::POST,
            &format!("/admin/v1/tenants/{tenant}/credentials/{claude_id}/disable"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(disabled.status(), 200);
    put("mixed", json!([{"credential": claude_id, "model": "claude-x"}, {"credential": "team-openai", "model": "gpt-4o-mini"}])).await;
    let calls_before = setup.app.mock.total_calls();
    let response = setup
        .post("/v1/chat/completions", &chat("mixed", true))
        .await;
    assert_eq!(
        response.status(),
        200,
        "the disabled target is skipped; the next one serves"
    );
    let id = request_id(&response);
    assert!(response.text().await.unwrap().contains("quokka"));
    assert_eq!(
        setup.settled_row(&id).await.credential_label,
        "team-openai",
        "the first row is the serving attempt"
    );
    assert_eq!(setup.app.mock.total_calls(), calls_before + 1);

    // Every target failing answers with the last failure.
    put("broken", json!([{"credential": "team-openai", "model": "mock-error-500"}, {"credential": "team-openai", "model": "mock-error-429"}])).await;
    let response = setup
        .post("/v1/chat/completions", &chat("broken", false))
        .await;
    assert_eq!(response.status(), 429, "the last target's 429 is relayed");

    // Bad routes are refused with the field named.
    let response = put("x", json!([{"credential": "nobody", "model": "m"}])).await;
    assert_eq!(response.status(), 400);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["param"],
        "targets[0].credential"
    );
    assert_eq!(put("x", json!([])).await.status(), 400);
}

#[tokio::test]
async fn models_lists_what_the_key_may_call() {
    let setup = setup().await;
    let tenant = &setup.tenant;
    setup
        .app
        .operator(
            Method::PUT,
            &format!("/admin/v1/tenants/{tenant}/routes/chat"),
        )
        .json(&json!({"targets": [{"credential": "team-openai", "model": "gpt-4o-mini"}]}))
        .send()
        .await
        .unwrap();
    let list = |key: String| {
        let request = setup.app.with_key(&key, Method::GET, "/v1/models");
        async move { request.send().await.unwrap().json::<Value>().await.unwrap() }
    };
    let ids = |body: Value| -> Vec<String> {
        body["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_owned())
            .collect()
    };
    // A key without an allow-list: the routes, and label/model for what each credential's
    // provider lists (one model-list call per credential, with its ledger row, then cached).
    let unrestricted = ids(list(setup.key.clone()).await);
    for expected in [
        "chat",
        "team-openai/gpt-4o-mini",
        "claude/claude-sonnet-4-5",
    ] {
        assert!(
            unrestricted.iter().any(|id| id == expected),
            "{expected} in {unrestricted:?}"
        );
    }
    assert_eq!(ids(list(setup.key.clone()).await), unrestricted);
    let rows: Value = setup
        .app
        .operator_get(&format!("/admin/v1/tenants/{tenant}/usage"))
        .await;
    let listings = rows["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|row| row["endpoint"] == "models")
        .count();
    assert_eq!(
        listings, 2,
        "one listing per credential, the second answer from the cache"
    );
    let limited: Value = setup
        .app
        .operator(Method::POST, &format!("/admin/v1/tenants/{tenant}/keys"))
        .json(&json!({"models": ["team-openai/gpt-4o", "claude/claude-sonnet-4-5", "nobody/x"]}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed = ids(list(limited["key"].as_str().unwrap().to_owned()).await);
    assert_eq!(
        listed,
        vec!["claude/claude-sonnet-4-5", "team-openai/gpt-4o"],
        "the route is not on this key's allow-list"
    );
    let response = setup
        .app
        .request(Method::GET, "/v1/models")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rotating_a_credential_under_traffic_fails_no_call() {
    let setup = setup().await;
    let id = setup.credential_id("team-openai").await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut clients = tokio::task::JoinSet::new();
    for worker in 0..8 {
        let request = setup
            .app
            .with_key(&setup.key, Method::POST, "/v1/chat/completions");
        let stop = stop.clone();
        clients.spawn(async move {
            let (mut ok, mut failed) = (0u32, 0u32);
            let mut index = 0u32;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let body = chat(
                    "team-openai/gpt-4o-mini",
                    (worker + index).is_multiple_of(2),
                );
                let response = request
                    .try_clone()
                    .unwrap()
                    .json(&body)
                    .send()
                    .await
                    .unwrap();
                let good = response.status() == 200
                    && response
                        .text()
                        .await
                        .is_ok_and(|text| text.contains("quokka"));
                if good {
                    ok += 1
                } else {
                    failed += 1
                }
                index += 1;
            }
            (ok, failed)
        });
    }
    // Rotate twice, each time once the current key has carried traffic.
    let serves = |secret: String| {
        let mock = setup.app.mock.clone();
        async move {
            let deadline = Instant::now() + Duration::from_secs(10);
            while mock.calls(&secret) < 5 {
                assert!(Instant::now() < deadline, "traffic stalled");
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    };
    let mut secrets = vec![setup.openai_secret.clone()];
    for round in 0..2 {
        serves(secrets[secrets.len() - 1].clone()).await;
        let secret = format!("sk-mock-rotation-{round}-{}", RequestId::generate());
        let response = setup
            .app
            .operator(
                Method::POST,
                &format!("/admin/v1/tenants/{}/credentials/{id}/rotate", setup.tenant),
            )
            .json(&json!({"secret": secret}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        secrets.push(secret);
    }
    serves(secrets[secrets.len() - 1].clone()).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (mut ok, mut failed) = (0, 0);
    while let Some(result) = clients.join_next().await {
        let (worker_ok, worker_failed) = result.unwrap();
        ok += worker_ok;
        failed += worker_failed;
    }
    assert_eq!(
        failed,
        0,
        "{failed} of {} calls failed during rotation",
        ok + failed
    );
    // Each of the three keys served at least five calls before the next step (`serves`).
    assert!(ok >= 15, "traffic really ran: {ok} calls");
    for secret in &secrets {
        assert!(
            setup.app.mock.calls(secret) > 0,
            "each key in turn served calls"
        );
    }
}

#[tokio::test]
async fn openai_shaped_calls_run_on_an_anthropic_credential() {
    let setup = setup().await;
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("claude/claude-sonnet-4-5", false),
        )
        .await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["choices"][0]["message"]["content"], REPLY);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    assert_eq!(body["usage"]["prompt_tokens"], INPUT_TOKENS);
    let row = setup.row(&id).await;
    assert_eq!(
        (row.provider.as_str(), row.endpoint.as_str()),
        ("anthropic", "/v1/chat/completions")
    );
    assert_eq!(
        (row.input_tokens, row.output_tokens),
        (Some(INPUT_TOKENS), Some(OUTPUT_TOKENS))
    );

    // Streamed, without and with the client asking for usage.
    for include_usage in [false, true] {
        let mut body = chat("claude/claude-sonnet-4-5", true);
        if include_usage {
            body["stream_options"] = json!({"include_usage": true});
        }
        let response = setup.post("/v1/chat/completions", &body).await;
        let id = request_id(&response);
        let data = sse_data(&response.text().await.unwrap());
        assert_eq!(data.last().map(String::as_str), Some("[DONE]"));
        let chunks: Vec<Value> = data[..data.len() - 1]
            .iter()
            .map(|chunk| serde_json::from_str(chunk).unwrap())
            .collect();
        assert!(chunks
            .iter()
            .all(|chunk| chunk["object"] == "chat.completion.chunk"));
        let text: String = chunks
            .iter()
            .filter_map(|chunk| chunk["choices"][0]["delta"]["content"].as_str())
            .collect();
        assert_eq!(text, REPLY);
        let usage_chunks: Vec<&Value> = chunks
            .iter()
            .filter(|chunk| chunk["choices"] == json!([]))
            .collect();
        assert_eq!(usage_chunks.len(), usize::from(include_usage));
        if include_usage {
            assert_eq!(usage_chunks[0]["usage"]["completion_tokens"], OUTPUT_TOKENS);
        }
        let row = setup.settled_row(&id).await;
        assert_eq!(row.status, CallStatus::Ok);
        assert_eq!(
            (row.input_tokens, row.output_tokens),
            (Some(INPUT_TOKENS), Some(OUTPUT_TOKENS))
        );
    }

    // Anthropic's errors come back in OpenAI's shape.
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("claude/mock-error-429", false),
        )
        .await;
    assert_eq!(response.status(), 429);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["error"]["message"].is_string());
}

// Regression (review of session 1): a client that gave up before a non-streamed answer left
// the ledger row pending until the next restart.
#[tokio::test]
async fn a_client_that_leaves_before_the_answer_is_recorded_as_cancelled_with_usage() {
    let setup = setup().await;
    let impatient = setup
        .app
        .with_key(&setup.key, Method::POST, "/v1/chat/completions")
        .timeout(Duration::from_millis(200))
        .json(&chat("team-openai/mock-slow-response", false))
        .send()
        .await;
    assert!(impatient.is_err(), "the client gives up first");
    let tenant: TenantId = setup.tenant.parse().unwrap();
    let store = setup.app.store().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    let row = loop {
        let rows = store
            .calls(tenant, &keyward_store::PageRequest::default())
            .await
            .unwrap()
            .items;
        if let Some(row) = rows
            .into_iter()
            .find(|row| row.status != CallStatus::Pending)
        {
            break row;
        }
        assert!(Instant::now() < deadline, "the row was never settled");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(row.status, CallStatus::ClientCancelled);
    assert_eq!(
        (row.input_tokens, row.output_tokens),
        (Some(INPUT_TOKENS), Some(OUTPUT_TOKENS)),
        "the provider billed it: usage kept"
    );
}

#[tokio::test]
async fn the_responses_api_passes_through_with_exact_usage() {
    let setup = setup().await;
    let body = json!({"model": "team-openai/gpt-4o-mini", "input": PROMPT});
    let response = setup.post("/v1/responses", &body).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let answer: Value = response.json().await.unwrap();
    assert_eq!(answer["object"], "response");
    assert_eq!(answer["output"][0]["content"][0]["text"], REPLY);
    let row = setup.row(&id).await;
    assert_eq!(
        (row.status, row.endpoint.as_str()),
        (CallStatus::Ok, "/v1/responses")
    );
    assert_eq!(
        (row.input_tokens, row.output_tokens),
        (Some(INPUT_TOKENS), Some(OUTPUT_TOKENS))
    );

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let response = setup.post("/v1/responses", &streamed).await;
    let id = request_id(&response);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("event: response.created"), "{text}");
    assert!(text.contains("event: response.completed"));
    let row = setup.settled_row(&id).await;
    assert_eq!(row.status, CallStatus::Ok);
    assert_eq!(
        (row.input_tokens, row.output_tokens),
        (Some(INPUT_TOKENS), Some(OUTPUT_TOKENS))
    );
    assert_eq!(row.model_reported.as_deref(), Some("gpt-4o-mini"));

    // Anthropic credentials cannot serve the Responses API: refused before any traffic.
    let response = setup
        .post(
            "/v1/responses",
            &json!({"model": "claude/x", "input": "hi"}),
        )
        .await;
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn anthropic_shaped_calls_run_on_an_openai_credential() {
    let setup = setup().await;
    let body = json!({"model": "team-openai/gpt-4o-mini", "max_tokens": 100, "messages": [{"role": "user", "content": PROMPT}]});
    let response = setup.post("/v1/messages", &body).await;
    assert_eq!(response.status(), 200);
    let id = request_id(&response);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["text"], REPLY);
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(
        (
            message["usage"]["input_tokens"].as_u64(),
            message["usage"]["output_tokens"].as_u64()
        ),
        (Some(INPUT_TOKENS), Some(OUTPUT_TOKENS))
    );
    let row = setup.row(&id).await;
    assert_eq!(
        (row.provider.as_str(), row.endpoint.as_str()),
        ("openai", "/v1/messages")
    );

    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let response = setup.post("/v1/messages", &streamed).await;
    let id = request_id(&response);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(
        text.trim_end()
            .ends_with("data: {\"type\":\"message_stop\"}"),
        "{text}"
    );
    assert!(!text.contains("[DONE]"));
    let row = setup.settled_row(&id).await;
    assert_eq!(row.status, CallStatus::Ok);
    assert_eq!(
        (row.input_tokens, row.output_tokens),
        (Some(INPUT_TOKENS), Some(OUTPUT_TOKENS))
    );
}

#[tokio::test]
async fn bedrock_requests_are_signed_with_the_tenants_aws_keys() {
    let setup = setup().await;
    for (label, secret) in [
        (
            "aws-good",
            "AKIAMOCKSIGNED000001:AKIAMOCKSIGNED000001-secret:SESSIONTOKEN",
        ),
        ("aws-wrong", "AKIAMOCKSIGNED000002:not-the-secret"),
    ] {
        let body = json!({"provider": "bedrock", "label": label, "secret": secret, "base_url": setup.app.mock_origin, "options": {"region": "eu-central-1"}});
        setup.app.connect(&setup.tenant, &body).await;
    }
    // A model id with ':' is percent-encoded in the path and signed over the double-encoded form.
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("aws-good/anthropic.claude-3-5-sonnet-20240620-v1:0", false),
        )
        .await;
    assert_eq!(
        response.status(),
        200,
        "the mock verified the SigV4 signature, session token included"
    );
    let id = request_id(&response);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], REPLY);
    let row = setup.row(&id).await;
    assert_eq!(
        (row.provider.as_str(), row.input_tokens, row.output_tokens),
        ("bedrock", Some(INPUT_TOKENS), Some(OUTPUT_TOKENS))
    );
    assert_eq!(
        row.model_reported.as_deref(),
        Some("anthropic.claude-3-5-sonnet-20240620-v1:0")
    );
    assert_eq!(
        setup
            .app
            .mock
            .calls("AKIAMOCKSIGNED000001:AKIAMOCKSIGNED000001-secret:SESSIONTOKEN"),
        1
    );

    // A wrong secret access key fails the signature check: the key is rejected, not retried.
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("aws-wrong/amazon.nova-lite-v1:0", false),
        )
        .await;
    assert_eq!(response.status(), 424);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "provider_credential_rejected"
    );
}

#[tokio::test]
async fn anthropic_shaped_calls_run_on_bedrock() {
    let setup = setup().await;
    let body = json!({"provider": "bedrock", "label": "aws", "secret": "AKIAMOCKMESSAGES0001:AKIAMOCKMESSAGES0001-secret",
                      "base_url": setup.app.mock_origin, "options": {"region": "us-west-2"}});
    setup.app.connect(&setup.tenant, &body).await;
    let request = json!({"model": "aws/anthropic.claude-3-5-haiku-20241022-v1:0", "max_tokens": 100, "system": "Be brief.",
                         "messages": [{"role": "user", "content": PROMPT}]});
    let response = setup.post("/v1/messages", &request).await;
    assert_eq!(response.status(), 200);
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["text"], REPLY);
    assert_eq!(message["stop_reason"], "end_turn");
    // "Be brief." (9 bytes) + the prompt (18 bytes) = 27 bytes: 7 input tokens at the mock.
    assert_eq!(message["usage"]["input_tokens"], 7);

    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    let response = setup.post("/v1/messages", &streamed).await;
    let id = request_id(&response);
    let text = response.text().await.unwrap();
    assert!(text.starts_with("event: message_start"), "{text}");
    assert!(text.contains("\"text\":\"Mockly\""), "{text}");
    assert!(text.contains("event: message_stop"));
    let row = setup.settled_row(&id).await;
    assert_eq!(row.status, CallStatus::Ok);
    assert_eq!(
        (row.provider.as_str(), row.input_tokens, row.output_tokens),
        ("bedrock", Some(7), Some(OUTPUT_TOKENS))
    );
}

#[tokio::test]
async fn verify_checks_a_bedrock_key_with_a_signed_call() {
    let setup = setup().await;
    let credentials = format!("/admin/v1/tenants/{}/credentials", setup.tenant);
    let secret = "AKIAMOCKVERIFY000001:AKIAMOCKVERIFY000001-secret";
    let body = json!({"provider": "bedrock", "label": "aws", "secret": secret, "base_url": setup.app.mock_origin, "options": {"region": "us-east-1"}});
    let created = setup.app.connect(&setup.tenant, &body).await;
    let verify = format!("{credentials}/{}/verify", created["id"].as_str().unwrap());
    let verified: Value = setup
        .app
        .operator(Method::POST, &verify)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verified["status"], "active");
    assert_eq!(
        setup.app.mock.calls(secret),
        1,
        "the verification reached the provider, signed"
    );
    setup.app.mock.revoke(secret);
    let verified: Value = setup
        .app
        .operator(Method::POST, &verify)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(verified["status"], "rejected_by_provider");
}

// Review of session 1: a later target's failure replaced an earlier target's 429, so the
// client lost the provider's answer and its retry-after.
#[tokio::test]
async fn a_rate_limit_stays_the_answer_when_later_targets_cannot_serve() {
    let setup = setup().await;
    let tenant = &setup.tenant;
    let claude = setup.credential_id("claude").await;
    setup
        .app
        .operator(
            Method::POST,
            &format!("/admin/v1/tenants/{tenant}/credentials/{claude}/disable"),
        )
        .send()
        .await
        .unwrap();
    let route = json!({"targets": [{"credential": "team-openai", "model": "mock-error-429"}, {"credential": "claude", "model": "claude-x"}]});
    let put = setup
        .app
        .operator(
            Method::PUT,
            &format!("/admin/v1/tenants/{tenant}/routes/limited"),
        )
        .json(&route)
        .send()
        .await
        .unwrap();
    assert_eq!(put.status(), 200);
    let response = setup
        .post("/v1/chat/completions", &chat("limited", false))
        .await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
}

#[tokio::test]
async fn calls_are_costed_exactly_at_the_dated_list_price() {
    let setup = setup().await;
    // claude-haiku-4-5: $1.00 input, $5.00 output per million tokens (prices/prices.toml).
    let body = json!({"model": "claude/claude-haiku-4-5", "max_tokens": 100, "messages": [{"role": "user", "content": PROMPT}]});
    let response = setup.post("/v1/messages", &body).await;
    let id = request_id(&response);
    assert_eq!(response.status(), 200);
    let row = setup.row(&id).await;
    // 5 × 1.00 + 6 × 5.00 = 35 micro-dollars.
    assert_eq!(row.cost_micro_usd, Some(35));
    assert_eq!(
        row.price_id.as_deref(),
        Some("anthropic/claude-haiku-4-5/2025-10-15")
    );

    // Streamed, the same call costs the same.
    let mut streamed = body.clone();
    streamed["stream"] = json!(true);
    let response = setup.post("/v1/messages", &streamed).await;
    let id = request_id(&response);
    response.text().await.unwrap();
    assert_eq!(setup.settled_row(&id).await.cost_micro_usd, Some(35));

    // A model missing from the price book has no cost, never a guess.
    let response = setup
        .post(
            "/v1/chat/completions",
            &chat("team-openai/some-unlisted-model", false),
        )
        .await;
    let id = request_id(&response);
    let row = setup.row(&id).await;
    assert_eq!(
        (row.status, row.cost_micro_usd, row.price_id),
        (CallStatus::Ok, None, None)
    );
    let metrics = setup
        .app
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    // Counted by provider; the client's model name is never a label (#23: bounded series).
    assert!(
        metrics.contains("keyward_unpriced_calls_total{provider=\"openai\"} 1"),
        "{metrics}"
    );
    assert!(!metrics.contains("some-unlisted-model"), "{metrics}");
}
