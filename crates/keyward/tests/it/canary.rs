//! Canary tests: unique strings go in as provider secrets (valid, malformed, rotated) and the
//! operator token; afterwards every log line (TRACE), every response body, and every byte of
//! the database, WAL and shared-memory files are searched. Zero hits, also for the base64 form
//! and for the platform key that was issued.

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use reqwest::Method;
use serde_json::json;

use crate::harness::{captured_logs, contains, TestApp, ADMIN_TOKEN};

#[tokio::test]
async fn no_secret_reaches_logs_responses_or_the_database() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("canary-tenant").await;
    let credentials = format!("/admin/v1/tenants/{tenant}/credentials");
    let canaries = [
        "sk-CANARYopenai7f3a9c1e5b2d8046",
        "sk-ant-CANARYanthropic41d2c3b4e5",
        "AKIACANARYBEDROCK000:CANARYbedrockSecretKey1234567890",
        "sk-CANARYrotated0a1b2c3d4e5f6789",
        "sk-CANARYmalformed11223344556677",
    ];
    let mut bodies = String::new();
    let mut record = |text: String| bodies.push_str(&text);

    for (provider, secret, options) in [
        ("openai", canaries[0], json!({})),
        ("anthropic", canaries[1], json!({})),
        ("bedrock", canaries[2], json!({"region": "us-east-1"})),
    ] {
        let response = app
            .operator(Method::POST, &credentials)
            .json(&json!({"provider": provider, "label": provider, "secret": secret, "options": options}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        record(response.text().await.unwrap());
    }
    let listed = app
        .operator(Method::GET, &credentials)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let first_id = serde_json::from_str::<serde_json::Value>(&listed).unwrap()["data"][0]["id"]
        .as_str()
        .unwrap()
        .to_owned();
    record(listed);
    let rotated = app
        .operator(Method::POST, &format!("{credentials}/{first_id}/rotate"))
        .json(&json!({"secret": canaries[3]}))
        .send()
        .await
        .unwrap();
    record(rotated.text().await.unwrap());

    // Malformed requests carrying the canary in every position the decoder may complain about.
    let malformed = canaries[4];
    for body in [
        format!(r#"{{"provider": "openai", "label": "x", "secret": ["{malformed}"]}}"#),
        format!(r#"{{"provider": "openai", "label": "x", "secret": {{"v": "{malformed}"}}}}"#),
        format!(r#"{{"provider": "openai", "label": "x", "secret": "{malformed} with spaces"}}"#),
        format!(
            r#"{{"provider": "bedrock", "label": "x", "secret": "{malformed}", "options": {{"region": "us-east-1"}}}}"#
        ),
        format!(
            r#"{{"provider": "openai", "label": "x", "secret": "{malformed}", "options": {{"region": "x"}}}}"#
        ),
        format!(
            r#"{{"provider": "openai", "label": "x", "secret": "{malformed}", "base_url": "http://127.0.0.1/v1"}}"#
        ),
        format!(r#"{{"provider": "openai", "label": "x", "secret": "{malformed}""#),
        format!(r#"{{"provider": 7, "label": "x", "secret": "{malformed}"}}"#),
    ] {
        let response = app
            .operator(Method::POST, &credentials)
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        record(response.text().await.unwrap());
    }

    let (_, platform_key) = app.issue_key(&tenant, "admin").await;
    let as_key = app
        .with_key(&platform_key, Method::GET, &credentials)
        .send()
        .await
        .unwrap();
    record(as_key.text().await.unwrap());

    let logs = captured_logs();
    let database = app.database_bytes();
    assert!(database.len() > 4096, "the database must hold data");
    assert!(
        logs.contains("canary-tenant") || logs.contains("credential connected"),
        "logs were captured"
    );
    let mut needles: Vec<String> = Vec::new();
    for canary in canaries {
        needles.push(canary.to_owned());
        needles.push(STANDARD.encode(canary));
        // A distinctive inner fragment catches partial leaks too.
        needles.push(canary[8..24.min(canary.len())].to_owned());
    }
    needles.push(ADMIN_TOKEN.to_owned());
    needles.push(platform_key.clone());
    needles.push(platform_key[15..].to_owned());
    for needle in &needles {
        assert!(!logs.contains(needle.as_str()), "logs leak {needle}");
        assert!(
            !bodies.contains(needle.as_str()),
            "a response leaks {needle}"
        );
        assert!(!contains(&database, needle), "the database leaks {needle}");
    }
}
