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
            r#"{{"provider": "openai", "label": "x", "secret": "{malformed}", "base_url": "http://169.254.169.254/v1"}}"#
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
    // The audit log records every credential action above; the usage export every call.
    for path in ["audit", "usage", "usage?format=csv"] {
        let response = app
            .operator(Method::GET, &format!("/admin/v1/tenants/{tenant}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        record(response.text().await.unwrap());
    }

    let logs = captured_logs();
    let database = app.database_bytes();
    let metrics = app
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    bodies.push_str(&metrics);
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

#[tokio::test]
async fn no_prompt_or_completion_reaches_logs_or_the_database() {
    let app = TestApp::spawn_with(&[("KEYWARD_EGRESS_FIRST_BYTE_TIMEOUT", "1s")]).await;
    let tenant = app.create_tenant("body-canary").await;
    let openai = json!({"provider": "openai", "label": "oa", "secret": "sk-body-canary-key-000000000", "base_url": format!("{}/v1", app.mock_origin)});
    let anthropic = json!({"provider": "anthropic", "label": "an", "secret": "sk-ant-body-canary-0000000", "base_url": app.mock_origin});
    for body in [openai, anthropic] {
        app.connect(&tenant, &body).await;
    }
    let (_, key) = app.issue_key(&tenant, "member").await;
    let prompt = "PROMPTCANARY-6b1e9f the quarterly numbers are confidential";
    let call = |path: &'static str, body: serde_json::Value| {
        let request = app.with_key(&key, Method::POST, path).json(&body);
        async move {
            request
                .send()
                .await
                .unwrap()
                .text()
                .await
                .unwrap_or_default()
        }
    };
    let mut answers = String::new();
    for stream in [false, true] {
        for model in [
            "oa/gpt-4o-mini",
            "oa/mock-error-429",
            "oa/mock-malformed-sse",
        ] {
            let body = json!({"model": model, "stream": stream, "messages": [{"role": "user", "content": prompt}]});
            answers.push_str(&call("/v1/chat/completions", body).await);
        }
        let body = json!({"model": "an/claude-test", "max_tokens": 50, "stream": stream, "system": prompt, "messages": [{"role": "user", "content": prompt}]});
        answers.push_str(&call("/v1/messages", body).await);
    }
    // Malformed requests carrying the canary.
    for broken in [
        format!("{{\"model\": \"oa/x\", \"messages\": \"{prompt}\""),
        format!("{{\"model\": 7, \"messages\": \"{prompt}\"}}"),
    ] {
        let response = app
            .with_key(&key, Method::POST, "/v1/chat/completions")
            .header("content-type", "application/json")
            .body(broken)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let text = response.text().await.unwrap();
        assert!(
            !text.contains("PROMPTCANARY"),
            "an error message quotes the body: {text}"
        );
    }
    // A client that leaves mid-stream, and a provider that never answers (timeout).
    let mut abandoned = app
        .with_key(&key, Method::POST, "/v1/chat/completions")
        .json(&json!({"model": "oa/mock-slow-stream", "stream": true, "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await
        .unwrap();
    assert!(abandoned.chunk().await.unwrap().is_some());
    drop(abandoned);
    let timed_out = app
        .with_key(&key, Method::POST, "/v1/chat/completions")
        .json(&json!({"model": "oa/mock-stall", "messages": [{"role": "user", "content": prompt}]}))
        .send()
        .await
        .unwrap();
    assert_eq!(timed_out.status(), 504);
    answers.push_str(&timed_out.text().await.unwrap());
    assert!(
        answers.contains("Mockly answers with quokka words."),
        "the calls really ran: {answers}"
    );
    assert!(
        answers.contains("Rate limit reached"),
        "a provider 4xx body was relayed"
    );

    // Wait until every streamed call has settled, then look everywhere Keyward writes.
    let store = app.store().await;
    let tenant_id: keyward_core::TenantId = tenant.parse().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    loop {
        let page = store
            .calls(tenant_id, &keyward_store::PageRequest::default())
            .await
            .unwrap();
        assert_eq!(page.items.len(), 10, "one ledger row per upstream call");
        if page
            .items
            .iter()
            .all(|row| row.status != keyward_store::CallStatus::Pending)
        {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "streams did not settle"
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    let logs = captured_logs();
    let database = app.database_bytes();
    let metrics = app
        .request(Method::GET, "/metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("keyward_upstream_calls_total"),
        "metrics were recorded"
    );
    let mut exports = String::new();
    for path in ["usage", "usage?format=csv", "usage?group_by=model", "audit"] {
        let response = app
            .operator(Method::GET, &format!("/admin/v1/tenants/{tenant}/{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        exports.push_str(&response.text().await.unwrap());
    }
    assert!(
        exports.contains("\"status\":\"ok\""),
        "the export lists the calls"
    );
    // Streamed replies arrive a word per event, so single distinctive words are the needles
    // (quote-free: JSON logs escape quotes).
    for needle in [
        "PROMPTCANARY",
        "quarterly numbers",
        "Mockly",
        "quokka",
        "Rate limit reached",
    ] {
        assert!(!logs.contains(needle), "logs leak {needle}");
        assert!(!contains(&database, needle), "the database leaks {needle}");
        assert!(!metrics.contains(needle), "metrics leak {needle}");
        assert!(
            !exports.contains(needle),
            "the usage export or audit log leaks {needle}"
        );
    }
}
