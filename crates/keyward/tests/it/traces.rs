//! Traces from the real `keyward serve`: an OTLP/HTTP receiver started here on loopback gets
//! one span per model call with the GenAI attributes, in the client's trace, never a body; a
//! collector that is gone costs the calls nothing but a counter.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::routing::post;
use serde_json::{json, Value};

use crate::cli::{Server, Workdir, OPERATOR_TOKEN};

/// The OTLP/HTTP receiver: every body POSTed to `/v1/traces`, as text (JSON protocol).
async fn receiver() -> (
    String,
    Arc<Mutex<Vec<String>>>,
    tokio::sync::oneshot::Sender<()>,
) {
    let bodies = Arc::new(Mutex::new(Vec::new()));
    let kept = bodies.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: String| {
            let kept = kept.clone();
            async move {
                kept.lock().unwrap().push(body);
                axum::Json(json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        axum::serve(listener, app)
            .with_graceful_shutdown(async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
    });
    (address, bodies, stop)
}

/// Every attribute of every span received, as (span name, trace id, attributes).
fn spans(bodies: &[String]) -> Vec<(String, String, serde_json::Map<String, Value>)> {
    let mut found = Vec::new();
    for body in bodies {
        let request: Value = serde_json::from_str(body).unwrap();
        for resource in request["resourceSpans"].as_array().into_iter().flatten() {
            for scope in resource["scopeSpans"].as_array().into_iter().flatten() {
                for span in scope["spans"].as_array().into_iter().flatten() {
                    let mut attributes = serde_json::Map::new();
                    for attribute in span["attributes"].as_array().into_iter().flatten() {
                        let value = &attribute["value"];
                        let value = value
                            .get("stringValue")
                            .or_else(|| value.get("intValue"))
                            .cloned()
                            .unwrap_or(Value::Null);
                        attributes.insert(attribute["key"].as_str().unwrap().to_owned(), value);
                    }
                    found.push((
                        span["name"].as_str().unwrap_or_default().to_owned(),
                        span["traceId"].as_str().unwrap_or_default().to_lowercase(),
                        attributes,
                    ));
                }
            }
        }
    }
    found
}

#[tokio::test(flavor = "multi_thread")]
async fn a_call_is_a_genai_span_in_the_clients_trace_and_a_dead_collector_costs_nothing() {
    let mock = keyward_mock_provider::MockProvider::bind(([127, 0, 0, 1], 0).into())
        .await
        .unwrap();
    let mock_url = format!("http://{}/v1", mock.address());
    tokio::spawn(mock.serve(std::future::pending()));
    let (collector, bodies, stop_collector) = receiver().await;
    let work = Workdir::new();
    let server = Server::start_with(
        &work,
        &[
            ("KEYWARD_EGRESS_ALLOW_PRIVATE", "127.0.0.1"),
            ("OTEL_EXPORTER_OTLP_ENDPOINT", collector.as_str()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ("OTEL_SERVICE_NAME", "keyward-test"),
            ("OTEL_BSP_SCHEDULE_DELAY", "100"),
        ],
    );
    let client = reqwest::Client::new();
    let admin = |method: reqwest::Method, path: &str, body: Value| {
        client
            .request(method, format!("{}{path}", server.address))
            .bearer_auth(OPERATOR_TOKEN)
            .json(&body)
            .send()
    };
    let tenant: Value = admin(
        reqwest::Method::POST,
        "/admin/v1/tenants",
        json!({"name": "acme"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let tenant = tenant["id"].as_str().unwrap().to_owned();
    let secret = "sk-proj-traces-0123456789abcdefQq12";
    let credential: Value = admin(
        reqwest::Method::POST,
        &format!("/admin/v1/tenants/{tenant}/credentials"),
        json!({"provider": "openai", "label": "main", "secret": secret, "base_url": mock_url}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key: Value = admin(
        reqwest::Method::POST,
        &format!("/admin/v1/tenants/{tenant}/keys"),
        json!({"role": "member"}),
    )
    .await
    .unwrap()
    .json()
    .await
    .unwrap();
    let key = key["key"].as_str().unwrap().to_owned();
    let canary = "CANARY-TRACE-PROMPT-7f3e";
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let call = || {
        client
            .post(format!("{}/v1/chat/completions", server.address))
            .bearer_auth(&key)
            .header("traceparent", format!("00-{trace_id}-00f067aa0ba902b7-01"))
            .json(&json!({"model": "main/gpt-4o-mini", "messages": [{"role": "user", "content": canary}]}))
            .send()
    };
    let response = call().await.unwrap();
    assert_eq!(response.status(), 200);
    let request_id = response.headers()["x-keyward-request-id"]
        .to_str()
        .unwrap()
        .to_owned();

    let deadline = Instant::now() + Duration::from_secs(20);
    let call_span = loop {
        let received = bodies.lock().unwrap().clone();
        let found = spans(&received).into_iter().find(|(_, _, attributes)| {
            attributes.get("keyward.request_id") == Some(&json!(request_id))
                && attributes.contains_key("gen_ai.usage.input_tokens")
        });
        if let Some(found) = found {
            break found;
        }
        assert!(
            Instant::now() < deadline,
            "no call span received: {received:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    let (name, span_trace, attributes) = call_span;
    assert_eq!(name, "chat gpt-4o-mini");
    assert_eq!(span_trace, trace_id, "the client's trace is continued");
    for (attribute, value) in [
        ("gen_ai.operation.name", json!("chat")),
        ("gen_ai.provider.name", json!("openai")),
        ("gen_ai.request.model", json!("gpt-4o-mini")),
        ("keyward.tenant_id", json!(tenant)),
        ("keyward.credential_id", credential["id"].clone()),
    ] {
        assert_eq!(attributes.get(attribute), Some(&value), "{attribute}");
    }
    for attribute in [
        "gen_ai.response.model",
        "gen_ai.usage.output_tokens",
        "keyward.cost_micro_usd",
    ] {
        assert!(attributes.contains_key(attribute), "{attribute} missing");
    }
    let received = bodies.lock().unwrap().clone();
    let names: Vec<String> = spans(&received)
        .into_iter()
        .map(|(name, _, _)| name)
        .collect();
    for child in [
        "keyward.admission",
        "keyward.upstream",
        "keyward.settlement",
    ] {
        assert!(
            names.iter().any(|name| name == child),
            "{child} missing from {names:?}"
        );
    }
    let everything = received.join("\n");
    assert!(
        everything.contains("keyward-test"),
        "OTEL_SERVICE_NAME names the service"
    );
    assert!(
        !everything.contains(canary),
        "no prompt in an exported span"
    );
    assert!(!everything.contains(secret) && !everything.contains(&key));

    // The collector goes away: calls still answer at once; failures are only counted.
    let _ = stop_collector.send(());
    tokio::time::sleep(Duration::from_millis(200)).await;
    for _ in 0..3 {
        let started = Instant::now();
        let response = call().await.unwrap();
        assert_eq!(response.status(), 200);
        assert!(started.elapsed() < Duration::from_secs(2));
    }
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let metrics = client
            .get(format!("{}/metrics", server.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        let failures = metrics
            .lines()
            .find_map(|line| line.strip_prefix("keyward_trace_export_failures_total "))
            .and_then(|value| value.parse::<u64>().ok())
            .unwrap_or(0);
        if failures > 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no export failure counted:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(server.terminate().success());
}

#[test]
fn an_otel_variable_that_does_not_parse_stops_the_start_naming_it() {
    let work = Workdir::new();
    let output = work
        .command(&["serve"])
        .env("KEYWARD_SERVER_LISTEN", "127.0.0.1:0")
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("OTEL_EXPORTER_OTLP_ENDPOINT"));
}
