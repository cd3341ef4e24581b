//! The admin API over real HTTP: lifecycles, error shapes, authentication, master keys.

use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestApp;

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    assert!(response.headers().contains_key("x-keyward-request-id"));
    (
        status,
        response.json::<Value>().await.unwrap()["error"].clone(),
    )
}

#[tokio::test]
async fn credential_lifecycle_never_returns_the_secret() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let secret = "sk-proj-lifecycle-0123456789abcdefA1b9";
    let created = app.connect_openai(&tenant, "team-openai", secret).await;
    assert_eq!(created["fingerprint"], "sk-…A1b9");
    assert_eq!(created["status"], "active");
    assert_eq!(created["provider"], "openai");
    assert!(!created.to_string().contains("lifecycle"));
    let id = created["id"].as_str().unwrap();
    let path = format!("/admin/v1/tenants/{tenant}/credentials/{id}");

    let rotated: Value = app
        .operator(Method::POST, &format!("{path}/rotate"))
        .json(&json!({"secret": "sk-proj-rotated-9876543210zyxwvuZz99"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(rotated["fingerprint"], "sk-…Zz99");
    assert!(rotated["rotated_at"].is_string());

    let disabled: Value = app
        .operator(Method::POST, &format!("{path}/disable"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(disabled["status"], "disabled");
    let enabled: Value = app
        .operator(Method::POST, &format!("{path}/enable"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(enabled["status"], "active");

    let listed: Value = app
        .operator(
            Method::GET,
            &format!("/admin/v1/tenants/{tenant}/credentials"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["data"].as_array().unwrap().len(), 1);
    assert!(listed["next_cursor"].is_null());
    assert!(!listed.to_string().contains("rotated-9876"));

    let deleted = app.operator(Method::DELETE, &path).send().await.unwrap();
    assert_eq!(deleted.status(), 204);
    let (status, error) = error_of(app.operator(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));
}

#[tokio::test]
async fn client_mistakes_are_4xx_in_openai_error_shape() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let credentials = format!("/admin/v1/tenants/{tenant}/credentials");
    let send = |body: String| {
        app.operator(Method::POST, &credentials)
            .header("content-type", "application/json")
            .body(body)
            .send()
    };

    let (status, error) = error_of(send("{\"provider\": ".into()).await.unwrap()).await;
    assert_eq!(status, 400);
    assert_eq!(error["code"], "invalid_request");
    assert_eq!(error["type"], "invalid_request_error");
    assert!(
        error["message"].as_str().unwrap().contains("JSON"),
        "{error}"
    );

    let (status, error) = error_of(
        send(r#"{"provider":"openai","label":"a","secret":"sk-x0123456789","colour":1}"#.into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("unknown field `colour`"),
        "{error}"
    );

    let (status, error) = error_of(
        send(r#"{"provider":"openia","label":"a","secret":"sk-x0123456789"}"#.into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["param"].as_str()), (400, Some("provider")));

    let huge = format!(
        r#"{{"provider":"openai","label":"a","secret":"{}"}}"#,
        "x".repeat(70_000)
    );
    let (status, error) = error_of(send(huge).await.unwrap()).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_request"))
    );
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("max_body_bytes"),
        "{error}"
    );

    app.connect_openai(&tenant, "dup", "sk-dup-0123456789abcdef")
        .await;
    let (status, error) = error_of(
        send(r#"{"provider":"openai","label":"dup","secret":"sk-dup-0123456789abcdef"}"#.into())
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["code"].as_str()), (409, Some("conflict")));

    let (status, error) = error_of(
        app.operator(Method::GET, "/admin/v1/nope")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!((status, error["code"].as_str()), (404, Some("not_found")));

    let (status, _) = error_of(
        app.operator(Method::GET, &format!("{credentials}?limit=0"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn authentication_accepts_bearer_or_x_api_key_and_refuses_everything_else() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (_, admin_key) = app.issue_key(&tenant, "admin").await;
    let path = format!("/admin/v1/tenants/{tenant}/credentials");

    let by_bearer = app
        .with_key(&admin_key, Method::GET, &path)
        .send()
        .await
        .unwrap();
    assert_eq!(by_bearer.status(), 200);
    let by_header = app
        .request(Method::GET, &path)
        .header("x-api-key", &admin_key)
        .send()
        .await
        .unwrap();
    assert_eq!(by_header.status(), 200);

    let (status, error) = error_of(app.request(Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("unauthenticated"))
    );
    let (status, _) = error_of(
        app.with_key("not-the-token", Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let forged = format!("kw_{}", "A".repeat(55));
    let (status, error) = error_of(
        app.with_key(&forged, Method::GET, &path)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_platform_key"))
    );
}

#[tokio::test]
async fn a_revoked_key_stops_working_on_the_next_request() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (key_id, key) = app.issue_key(&tenant, "admin").await;
    let path = format!("/admin/v1/tenants/{tenant}/keys");
    let listed: Value = app
        .with_key(&key, Method::GET, &path)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed_text = listed.to_string();
    assert!(
        !listed_text.contains(&key[10..]),
        "the key must not be listed"
    );
    assert_eq!(
        listed["data"][0]["prefix"].as_str().unwrap(),
        format!("{}…", &key[..9])
    );

    let revoked: Value = app
        .operator(Method::POST, &format!("{path}/{key_id}/revoke"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(revoked["status"], "revoked");
    let (status, error) =
        error_of(app.with_key(&key, Method::GET, &path).send().await.unwrap()).await;
    assert_eq!(
        (status, error["code"].as_str()),
        (401, Some("invalid_platform_key"))
    );
}

#[tokio::test]
async fn lists_page_with_a_cursor() {
    let app = TestApp::spawn().await;
    for index in 0..3 {
        app.create_tenant(&format!("tenant-{index}")).await;
    }
    let first: Value = app
        .operator(Method::GET, "/admin/v1/tenants?limit=2")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(first["data"].as_array().unwrap().len(), 2);
    let cursor = first["next_cursor"].as_str().unwrap();
    let second: Value = app
        .operator(
            Method::GET,
            &format!("/admin/v1/tenants?limit=2&cursor={cursor}"),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(second["data"].as_array().unwrap().len(), 1);
    assert!(second["next_cursor"].is_null());
}

#[tokio::test]
async fn master_key_rotation_over_the_api_rewraps_in_the_background() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    for index in 0..3 {
        app.connect_openai(
            &tenant,
            &format!("c{index}"),
            &format!("sk-mk-{index}-0123456789abcdef"),
        )
        .await;
    }
    let before: Value = app
        .operator(Method::GET, "/admin/v1/masterkey")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(before["primary"], 1);
    assert_eq!(
        before["versions"],
        json!([{"version": 1, "state": "primary", "rows": 3, "check_value": before["versions"][0]["check_value"]}])
    );

    let started = app
        .operator(Method::POST, "/admin/v1/masterkey/rotate")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    let deadline = Instant::now() + Duration::from_secs(15);
    let status = loop {
        let status: Value = app
            .operator(Method::GET, "/admin/v1/masterkey")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if status["rewrap"]["state"] == "done" || Instant::now() > deadline {
            break status;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(status["primary"], 2, "{status}");
    assert_eq!(status["rewrap"]["state"], "done", "{status}");
    assert_eq!(
        (
            status["rewrap"]["done"].as_u64(),
            status["rewrap"]["total"].as_u64()
        ),
        (Some(3), Some(3))
    );
    assert_eq!(status["versions"][0]["state"], "decrypt-only");
    assert_eq!(status["versions"][0]["rows"], 0);
    assert_eq!(status["versions"][1]["rows"], 3);

    let (status, error) = error_of(
        app.operator(Method::POST, "/admin/v1/masterkey/rotate")
            .json(&json!({"x": 1}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        (status, error["code"].as_str()),
        (400, Some("invalid_request"))
    );
}

#[tokio::test]
async fn without_an_admin_token_the_operator_api_is_off() {
    let app = TestApp::spawn_with(&[("KEYWARD_ADMIN_TOKEN", "")]).await;
    let (status, _) = error_of(
        app.request(Method::GET, "/admin/v1/tenants")
            .bearer_auth("")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
    let (status, _) = error_of(
        app.with_key(
            crate::harness::ADMIN_TOKEN,
            Method::GET,
            "/admin/v1/tenants",
        )
        .send()
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn health_readiness_and_openapi_are_served() {
    let app = TestApp::spawn().await;
    let health = app.request(Method::GET, "/healthz").send().await.unwrap();
    assert_eq!(health.status(), 200);
    let ready: Value = app
        .request(Method::GET, "/readyz")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["status"], "ready");
    let openapi: Value = app
        .request(Method::GET, "/admin/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(openapi["openapi"].as_str().unwrap().starts_with("3."));
    let paths = openapi["paths"].as_object().unwrap();
    for spec_path in [
        "/admin/v1/tenants",
        "/admin/v1/tenants/{tenant}/departments",
        "/admin/v1/tenants/{tenant}/credentials",
        "/admin/v1/tenants/{tenant}/credentials/{id}",
        "/admin/v1/tenants/{tenant}/credentials/{id}/rotate",
        "/admin/v1/tenants/{tenant}/credentials/{id}/disable",
        "/admin/v1/tenants/{tenant}/credentials/{id}/enable",
        "/admin/v1/tenants/{tenant}/keys",
        "/admin/v1/tenants/{tenant}/keys/{id}/revoke",
        "/admin/v1/masterkey",
        "/admin/v1/masterkey/rotate",
        "/admin/v1/openapi.json",
    ] {
        assert!(
            paths.contains_key(spec_path),
            "{spec_path} missing from the OpenAPI document"
        );
    }
}

/// `/metrics` carries tenant ids: with `metrics.token` set it answers only that token (#23,
/// SPEC `metrics.token`); unset, it stays open on the listener.
#[tokio::test]
async fn metrics_answer_only_the_metrics_token_when_one_is_set() {
    let token = "metrics-token-5d1e7a9c03b2";
    let app = TestApp::spawn_with(&[("KEYWARD_METRICS_TOKEN", token)]).await;
    let get = |bearer: Option<&str>| {
        let mut request = app.request(Method::GET, "/metrics");
        if let Some(bearer) = bearer {
            request = request.bearer_auth(bearer);
        }
        request.send()
    };
    for refused in [
        None,
        Some("wrong-token-0000000000"),
        Some(crate::harness::ADMIN_TOKEN),
    ] {
        let response = get(refused).await.unwrap();
        assert_eq!(response.status(), 401, "{refused:?}");
        assert!(!response.text().await.unwrap().contains("keyward_"));
    }
    let response = get(Some(token)).await.unwrap();
    assert_eq!(response.status(), 200);
    let text = response.text().await.unwrap();
    for series in [
        "keyward_http_requests_total",
        &format!(
            "keyward_build_info{{version=\"{}\",commit=\"",
            env!("CARGO_PKG_VERSION")
        ),
        "process_resident_memory_bytes ",
        "process_open_fds ",
        "keyward_ledger_admitted_total 0",
        "keyward_ledger_settle_seconds_count 0",
    ] {
        assert!(text.contains(series), "{series} missing");
    }
    // Wrong tokens are throttled per address, like failed console sign-ins: the fifth failure
    // above and below makes this address wait, even with the right token.
    for _ in 0..2 {
        assert_eq!(
            get(Some("wrong-token-0000000000")).await.unwrap().status(),
            401
        );
    }
    let throttled = get(Some(token)).await.unwrap();
    assert_eq!(throttled.status(), 429);
    assert!(throttled.headers().contains_key("retry-after"));
    let open = TestApp::spawn().await;
    let response = open.request(Method::GET, "/metrics").send().await.unwrap();
    assert_eq!(response.status(), 200);
}

/// The ledger's lag on `/metrics`: rows admitted, rows settled, and the time from a call's end
/// to its settlement's commit.
#[tokio::test]
async fn metrics_show_the_ledger_lag() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.connect(
        &tenant,
        &json!({"provider": "openai", "label": "main", "secret": "sk-proj-lag-0123456789abcdefQq12", "base_url": format!("{}/v1", app.mock_origin)}),
    )
    .await;
    let (_, member) = app.issue_key(&tenant, "member").await;
    for _ in 0..3 {
        let response = app
            .with_key(&member, Method::POST, "/v1/chat/completions")
            .json(&json!({"model": "main/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let mut settled = 0;
    for _ in 0..50 {
        settled = app.metric("keyward_ledger_settled_total").await;
        if settled == 3 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(app.metric("keyward_ledger_admitted_total").await, 3);
    assert_eq!(settled, 3);
    assert_eq!(app.metric("keyward_ledger_settle_seconds_count").await, 3);
}

fn price_file(input: &str, output: &str) -> String {
    format!(
        "[[price]]\nid = \"openai/gpt-4o-mini/2024-01-01\"\nprovider = \"openai\"\nmodel = \"gpt-4o-mini\"\neffective = \"2024-01-01\"\ninput = \"{input}\"\noutput = \"{output}\"\nsource = \"https://example.com/pricing\"\nread_on = \"2026-12-08\"\n"
    )
}

/// `prices.path` replaces the built-in book; SIGHUP reads it again: a good file prices the
/// next call (earlier rows keep their cost), a bad one is refused and the book stays.
#[tokio::test]
async fn a_price_file_reloaded_on_sighup_prices_the_next_call_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("prices.toml");
    std::fs::write(&path, price_file("1.00", "2.00")).unwrap();
    let app = TestApp::spawn_with(&[("KEYWARD_PRICES_PATH", path.to_str().unwrap())]).await;
    let book = app.operator_get("/admin/v1/prices").await;
    assert_eq!(book["origin"], path.to_str().unwrap());
    assert_eq!(
        book["data"].as_array().unwrap().len(),
        1,
        "the file replaces the built-in book"
    );
    assert_eq!(book["data"][0]["output"], "2.000000");
    let tenant = app.create_tenant("acme").await;
    app.connect(
        &tenant,
        &json!({"provider": "openai", "label": "main", "secret": "sk-proj-prices-0123456789abcdefQq12", "base_url": format!("{}/v1", app.mock_origin)}),
    )
    .await;
    let (_, member) = app.issue_key(&tenant, "member").await;
    let call = || async {
        let response = app
            .with_key(&member, Method::POST, "/v1/chat/completions")
            .json(&json!({"model": "main/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.headers()["x-keyward-request-id"]
            .to_str()
            .unwrap()
            .to_owned()
    };
    let cost = |request_id: String| {
        let app = &app;
        let tenant = tenant.clone();
        async move {
            for _ in 0..100 {
                let rows: Value = app
                    .operator_get(&format!("/admin/v1/tenants/{tenant}/usage"))
                    .await;
                if let Some(row) = rows["data"].as_array().unwrap().iter().find(|row| {
                    row["request_id"] == request_id.as_str() && row["status"] != "pending"
                }) {
                    return (
                        row["cost_micro_usd"].as_i64().unwrap(),
                        row["input_tokens"].as_i64().unwrap(),
                        row["output_tokens"].as_i64().unwrap(),
                    );
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            }
            panic!("row {request_id} not settled");
        }
    };
    let first = call().await;
    let (first_cost, input, output) = cost(first.clone()).await;
    assert_eq!(
        first_cost,
        input + 2 * output,
        "$1 and $2 per million tokens"
    );

    let reload = || {
        rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::HUP)
            .unwrap()
    };
    std::fs::write(&path, price_file("10.00", "20.00")).unwrap();
    reload();
    let mut rate = Value::Null;
    for _ in 0..100 {
        rate = app.operator_get("/admin/v1/prices").await["data"][0]["output"].clone();
        if rate == "20.000000" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    assert_eq!(rate, "20.000000");
    let second = call().await;
    assert_eq!(cost(second).await.0, 10 * input + 20 * output);
    assert_eq!(
        cost(first.clone()).await.0,
        first_cost,
        "an earlier row keeps its cost"
    );

    // A broken file: refused, the book in force stays.
    std::fs::write(&path, price_file("-5", "20.00")).unwrap();
    reload();
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert_eq!(
        app.operator_get("/admin/v1/prices").await["data"][0]["output"],
        "20.000000"
    );
    let third = call().await;
    assert_eq!(cost(third).await.0, 10 * input + 20 * output);
    assert!(crate::harness::captured_logs().contains("the price file is refused"));
}
