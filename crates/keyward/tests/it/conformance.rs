//! Provider conformance: one list of behaviours every adapter must pass against the mock,
//! generated per provider. Behaviours: a call with exact usage, a stream with exact usage, a
//! rejected key (424, credential marked, no further traffic), a 429 relayed, a 5xx as
//! `upstream_error`, a stall as `upstream_timeout`, a stream broken mid-way recorded as a
//! provider error, a stream the client abandons charged its whole reservation.

use keyward_core::{RequestId, TenantId};
use keyward_store::{CallRecord, CallStatus};
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestApp;

/// How one provider is connected to the mock and called.
struct Case {
    provider: &'static str,
    /// The credential's `base_url`, from the mock's origin.
    base_url: fn(&str) -> String,
    options: &'static [(&'static str, &'static str)],
    anthropic_surface: bool,
    /// A fresh secret in this provider's format.
    secret: fn() -> String,
}

fn api_key() -> String {
    format!("sk-conformance-{}", RequestId::generate())
}

/// Bedrock's `ACCESS_KEY_ID:SECRET_ACCESS_KEY`; the mock knows `<id>-secret` for every id.
fn aws_keys() -> String {
    let id: String = RequestId::generate()
        .to_string()
        .replace('-', "")
        .to_uppercase()
        .chars()
        .rev()
        .take(12)
        .collect();
    format!("AKIAMOCK{id}:AKIAMOCK{id}-secret")
}

const OPENAI: Case = Case {
    provider: "openai",
    base_url: |origin| format!("{origin}/v1"),
    options: &[],
    anthropic_surface: false,
    secret: api_key,
};
const AZURE: Case = Case {
    provider: "azure-openai",
    base_url: |origin| origin.to_owned(),
    options: &[("api_version", "2024-10-21")],
    anthropic_surface: false,
    secret: api_key,
};
const MISTRAL: Case = Case {
    provider: "mistral",
    base_url: |origin| format!("{origin}/mistral/v1"),
    options: &[],
    anthropic_surface: false,
    secret: api_key,
};
const GROQ: Case = Case {
    provider: "groq",
    base_url: |origin| format!("{origin}/v1"),
    options: &[],
    anthropic_surface: false,
    secret: api_key,
};
const COMPATIBLE: Case = Case {
    provider: "openai-compatible",
    base_url: |origin| format!("{origin}/v1"),
    options: &[],
    anthropic_surface: false,
    secret: api_key,
};
const BEDROCK: Case = Case {
    provider: "bedrock",
    base_url: |origin| origin.to_owned(),
    options: &[("region", "us-east-1")],
    anthropic_surface: false,
    secret: aws_keys,
};
const ANTHROPIC: Case = Case {
    provider: "anthropic",
    base_url: |origin| origin.to_owned(),
    options: &[],
    anthropic_surface: true,
    secret: api_key,
};

/// "conformance prompt" is 18 bytes: 5 input tokens at the mock; the reply is 6 tokens.
const PROMPT: &str = "conformance prompt";

struct Connected {
    app: TestApp,
    tenant: TenantId,
    key: String,
    secret: String,
    credential_id: String,
    case: &'static Case,
}

async fn connect(case: &'static Case) -> Connected {
    let app = TestApp::spawn_with(&[("KEYWARD_EGRESS_FIRST_BYTE_TIMEOUT", "1s")]).await;
    let tenant = app.create_tenant("conformance").await;
    let secret = (case.secret)();
    let options: serde_json::Map<String, Value> = case
        .options
        .iter()
        .map(|(k, v)| ((*k).to_owned(), Value::from(*v)))
        .collect();
    let response = app
        .operator(Method::POST, &format!("/admin/v1/tenants/{tenant}/credentials"))
        .json(&json!({"provider": case.provider, "label": "p", "secret": secret, "base_url": (case.base_url)(&app.mock_origin), "options": options}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 201, "{}", response.text().await.unwrap());
    let credential_id = response.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (_, key) = app.issue_key(&tenant, "member").await;
    Connected {
        tenant: tenant.parse().unwrap(),
        app,
        key,
        secret,
        credential_id,
        case,
    }
}

impl Connected {
    async fn call(&self, model: &str, stream: bool) -> reqwest::Response {
        let (path, body) = if self.case.anthropic_surface {
            (
                "/v1/messages",
                json!({"model": format!("p/{model}"), "max_tokens": 64, "stream": stream, "messages": [{"role": "user", "content": PROMPT}]}),
            )
        } else {
            (
                "/v1/chat/completions",
                json!({"model": format!("p/{model}"), "stream": stream, "messages": [{"role": "user", "content": PROMPT}]}),
            )
        };
        self.app
            .with_key(&self.key, Method::POST, path)
            .json(&body)
            .send()
            .await
            .unwrap()
    }

    async fn row(&self, response: &reqwest::Response) -> CallRecord {
        self.row_of(response.headers()["x-keyward-request-id"].to_str().unwrap())
            .await
    }

    /// The call's ledger row once settled (streams settle when they end).
    async fn row_of(&self, request_id: &str) -> CallRecord {
        let request_id: RequestId = request_id.parse().unwrap();
        let store = self.app.store().await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let row = store.call(self.tenant, request_id).await.unwrap().unwrap();
            if row.status != CallStatus::Pending || std::time::Instant::now() > deadline {
                return row;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }
}

async fn completes_with_exact_usage(case: &'static Case) {
    let connected = connect(case).await;
    let response = connected.call("model-a", false).await;
    assert_eq!(response.status(), 200);
    let row = connected.row(&response).await;
    assert_eq!(row.status, CallStatus::Ok);
    assert_eq!(
        (row.input_tokens, row.output_tokens),
        (Some(5), Some(6)),
        "{}",
        case.provider
    );
    assert_eq!(row.provider, case.provider);
    assert_eq!(connected.app.mock.calls(&connected.secret), 1);
}

async fn streams_with_exact_usage(case: &'static Case) {
    let connected = connect(case).await;
    let response = connected.call("model-a", true).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-keyward-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap();
    assert!(text.contains("quokka"), "{text}");
    let row = connected.row_of(&request_id).await;
    assert_eq!(row.status, CallStatus::Ok);
    assert!(row.stream);
    assert_eq!(
        (row.input_tokens, row.output_tokens),
        (Some(5), Some(6)),
        "{}",
        case.provider
    );
}

async fn a_rejected_key_is_marked_and_traffic_stops(case: &'static Case) {
    let connected = connect(case).await;
    connected.app.mock.revoke(&connected.secret);
    let response = connected.call("model-a", false).await;
    assert_eq!(response.status(), 424, "{}", case.provider);
    assert_eq!(
        response.json::<Value>().await.unwrap()["error"]["code"],
        "provider_credential_rejected"
    );
    let credential: Value = connected
        .app
        .operator(
            Method::GET,
            &format!(
                "/admin/v1/tenants/{}/credentials/{}",
                connected.tenant, connected.credential_id
            ),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(credential["status"], "rejected_by_provider");
    let response = connected.call("model-a", true).await;
    assert_eq!(response.status(), 424);
    assert_eq!(
        connected.app.mock.calls(&connected.secret),
        1,
        "no traffic after the rejection"
    );
}

async fn rate_limits_are_relayed(case: &'static Case) {
    let connected = connect(case).await;
    let response = connected.call("mock-error-429", false).await;
    assert_eq!(response.status(), 429, "{}", case.provider);
    assert_eq!(response.headers()["retry-after"], "1");
    let row = connected.row(&response).await;
    assert_eq!(
        (row.status, row.http_status),
        (CallStatus::ProviderError, Some(429))
    );
}

async fn server_errors_are_upstream_errors(case: &'static Case) {
    let connected = connect(case).await;
    let response = connected.call("mock-error-500", false).await;
    assert_eq!(response.status(), 502, "{}", case.provider);
    let row = connected.row(&response).await;
    assert_eq!(row.http_status, Some(500));
}

async fn a_stall_is_an_upstream_timeout(case: &'static Case) {
    let connected = connect(case).await;
    let response = connected.call("mock-stall", false).await;
    assert_eq!(response.status(), 504, "{}", case.provider);
    assert_eq!(connected.row(&response).await.status, CallStatus::Timeout);
}

async fn a_broken_stream_is_a_provider_error(case: &'static Case) {
    let connected = connect(case).await;
    let response = connected.call("mock-drop", true).await;
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-keyward-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(
        response.text().await.is_err(),
        "the client must see the break"
    );
    let row = connected.row_of(&request_id).await;
    assert_eq!(row.status, CallStatus::ProviderError, "{}", case.provider);
}

/// A stream the client leaves after its first bytes may be billed for far more than was seen
/// (the provider generates on until it notices): the budget keeps the whole reservation (#23).
async fn an_abandoned_stream_keeps_its_reservation(case: &'static Case) {
    let connected = connect(case).await;
    let tenant = connected.tenant;
    let admin = |method: Method, path: &str, body: Value| {
        connected
            .app
            .operator(method, &format!("/admin/v1/tenants/{tenant}{path}"))
            .json(&body)
    };
    // $1,000 per million output tokens: 1,000 micro-dollars a token, nothing for input.
    let price = json!({"provider": case.provider, "model": "mock-slow-stream", "effective": "2020-01-01", "input": "0", "output": "1000"});
    assert!(admin(Method::PUT, "/prices", price)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let cap = json!({"scope": "tenant", "period": "day", "hard_limit_usd": "1000"});
    assert!(admin(Method::PUT, "/budgets", cap)
        .send()
        .await
        .unwrap()
        .status()
        .is_success());
    let mut response = connected.call("mock-slow-stream", true).await;
    assert_eq!(response.status(), 200, "{}", case.provider);
    let request_id = response.headers()["x-keyward-request-id"]
        .to_str()
        .unwrap()
        .to_owned();
    assert!(response.chunk().await.unwrap().is_some());
    drop(response);
    let row = connected.row_of(&request_id).await;
    assert_eq!(row.status, CallStatus::ClientCancelled, "{}", case.provider);
    // The ceiling: the client's 64 on Messages, the 4,096 default otherwise.
    let reserved = if case.anthropic_surface {
        "0.064000"
    } else {
        "4.096000"
    };
    let budgets: Value = admin(Method::GET, "/budgets", Value::Null)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        budgets["data"][0]["spent_usd"], reserved,
        "{}: {budgets}",
        case.provider
    );
}

macro_rules! conformance {
    ($($module:ident => $case:expr),* $(,)?) => {$(
        mod $module {
            use super::*;
            #[tokio::test] async fn completes_with_exact_usage() { super::completes_with_exact_usage(&$case).await }
            #[tokio::test] async fn streams_with_exact_usage() { super::streams_with_exact_usage(&$case).await }
            #[tokio::test] async fn a_rejected_key_is_marked_and_traffic_stops() { super::a_rejected_key_is_marked_and_traffic_stops(&$case).await }
            #[tokio::test] async fn rate_limits_are_relayed() { super::rate_limits_are_relayed(&$case).await }
            #[tokio::test] async fn server_errors_are_upstream_errors() { super::server_errors_are_upstream_errors(&$case).await }
            #[tokio::test] async fn a_stall_is_an_upstream_timeout() { super::a_stall_is_an_upstream_timeout(&$case).await }
            #[tokio::test] async fn a_broken_stream_is_a_provider_error() { super::a_broken_stream_is_a_provider_error(&$case).await }
            #[tokio::test] async fn an_abandoned_stream_keeps_its_reservation() { super::an_abandoned_stream_keeps_its_reservation(&$case).await }
        }
    )*};
}

conformance! {
    openai => OPENAI,
    azure_openai => AZURE,
    mistral => MISTRAL,
    groq => GROQ,
    openai_compatible => COMPATIBLE,
    anthropic => ANTHROPIC,
    bedrock => BEDROCK,
}
