//! The ledger as finance and auditors use it: hard budgets under concurrency, soft-limit
//! alerts on a signed webhook, tenant rates, usage export, the platform meter and the audit log.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{Hmac, Mac};
use keyward_core::RequestId;
use reqwest::Method;
use serde_json::{json, Value};
use sha2::Sha256;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::harness::TestApp;

pub struct Setup {
    pub app: TestApp,
    /// More servers on the same database; calls go round-robin over `app` and these.
    pub replicas: Vec<TestApp>,
    next_replica: std::sync::atomic::AtomicUsize,
    pub tenant: String,
    pub key: String,
    pub secret: String,
}

pub async fn setup(overrides: &[(&str, &str)]) -> Setup {
    let app = TestApp::spawn_with(overrides).await;
    let tenant = app.create_tenant("acme").await;
    let secret = format!("sk-mock-{}", RequestId::generate());
    app.connect(
        &tenant,
        &json!({"provider": "openai", "label": "team-openai",
            "secret": secret,
            "base_url": format!("{}/v1", app.mock_origin)}),
    )
    .await;
    let (_, key) = app.issue_key(&tenant, "member").await;
    Setup {
        app,
        replicas: Vec::new(),
        next_replica: std::sync::atomic::AtomicUsize::new(0),
        tenant,
        key,
        secret,
    }
}

impl Setup {
    /// Adds `count` replicas: more servers on the same database and mock.
    pub async fn with_replicas(mut self, count: usize, overrides: &[(&str, &str)]) -> Self {
        for _ in 0..count {
            let replica = self.app.sibling(overrides).await;
            self.replicas.push(replica);
        }
        self
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let mut request = self
            .app
            .operator(method, &format!("/admin/v1/tenants/{}{path}", self.tenant));
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let text = response.text().await.unwrap();
        assert!(status.is_success(), "{path}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    }

    pub async fn chat(&self, body: &Value) -> reqwest::Response {
        let turn = self
            .next_replica
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            % (1 + self.replicas.len());
        let app = if turn == 0 {
            &self.app
        } else {
            &self.replicas[turn - 1]
        };
        app.with_key(&self.key, Method::POST, "/v1/chat/completions")
            .json(body)
            .send()
            .await
            .unwrap()
    }

    /// A negotiated rate of $0 input and $1,000 output per million tokens for gpt-4o-mini:
    /// a call with `max_tokens` 6 reserves 6 × 1,000 = 6,000 micro-dollars, and the mock's
    /// six-token reply costs exactly that.
    pub async fn set_exact_rate(&self) {
        let price = self
            .admin(
                Method::PUT,
                "/prices",
                Some(json!({"provider": "openai", "model": "gpt-4o-mini", "effective": "2020-01-01", "input": "0", "output": "1000"})),
            )
            .await;
        assert_eq!(price["id"], "tenant:openai/gpt-4o-mini/2020-01-01");
    }
}

pub fn six_token_call() -> Value {
    json!({"model": "team-openai/gpt-4o-mini", "max_tokens": 6,
        "messages": [{"role": "user", "content": "Hello there, mock!"}]})
}

#[tokio::test]
async fn a_hard_cap_admits_exactly_the_calls_that_fit_among_200_concurrent_ones() {
    a_cap_that_fits_37_calls_admits_exactly_37_of_200(setup(&[]).await).await;
}

/// 200 concurrent calls (spread over the setup's replicas) against a cap with room for
/// exactly 37: exactly 37 go upstream, the rest get `budget_exceeded`, spend equals the cap.
pub async fn a_cap_that_fits_37_calls_admits_exactly_37_of_200(setup: Setup) {
    setup.set_exact_rate().await;
    // Room for exactly 37 calls of 6,000 micro-dollars.
    let budget = setup
        .admin(
            Method::PUT,
            "/budgets",
            Some(json!({"scope": "tenant", "period": "day", "hard_limit_usd": "0.222"})),
        )
        .await;
    assert_eq!(budget["hard_limit_usd"], "0.222000");
    assert_eq!(budget["spent_usd"], "0.000000");

    let setup = Arc::new(setup);
    let mut calls = tokio::task::JoinSet::new();
    for _ in 0..200 {
        let setup = setup.clone();
        calls.spawn(async move {
            let response = setup.chat(&six_token_call()).await;
            let status = response.status().as_u16();
            (status, response.json::<Value>().await.unwrap())
        });
    }
    let (mut admitted, mut refused) = (0, 0);
    while let Some(result) = calls.join_next().await {
        let (status, body) = result.unwrap();
        match status {
            200 => admitted += 1,
            429 => {
                assert_eq!(body["error"]["code"], "budget_exceeded");
                assert_eq!(body["error"]["type"], "insufficient_quota");
                refused += 1;
            }
            other => panic!("unexpected status {other}: {body}"),
        }
    }
    assert_eq!((admitted, refused), (37, 163));
    // Nothing refused went upstream.
    assert_eq!(setup.app.mock.calls(&setup.secret), 37);
    let budgets = setup.admin(Method::GET, "/budgets", None).await;
    assert_eq!(budgets["data"][0]["spent_usd"], "0.222000");
    assert_eq!(budgets["data"][0]["reserved_usd"], "0.000000");
    let usage = setup
        .admin(Method::GET, "/usage?group_by=model", None)
        .await;
    assert_eq!(usage["data"][0]["requests"], 37);
    assert_eq!(usage["data"][0]["cost_micro_usd"], 222_000);
}

/// A one-shot HTTP receiver: answers the first `failures` requests with 500, then 200, and
/// keeps every request's headers and body.
async fn webhook_receiver(failures: usize) -> (String, Arc<Mutex<Vec<(String, Vec<u8>)>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let received = Arc::new(Mutex::new(Vec::new()));
    let seen = received.clone();
    tokio::spawn(async move {
        let mut served = 0;
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut buffer = Vec::new();
            let mut chunk = [0_u8; 4096];
            let (head, body) = loop {
                let read = socket.read(&mut chunk).await.unwrap();
                if read == 0 {
                    break (String::new(), Vec::new());
                }
                buffer.extend_from_slice(&chunk[..read]);
                let Some(end) = buffer.windows(4).position(|window| window == b"\r\n\r\n") else {
                    continue;
                };
                let head = String::from_utf8_lossy(&buffer[..end]).to_lowercase();
                let length: usize = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .map_or(0, |value| value.trim().parse().unwrap());
                while buffer.len() < end + 4 + length {
                    let read = socket.read(&mut chunk).await.unwrap();
                    buffer.extend_from_slice(&chunk[..read]);
                }
                break (head, buffer[end + 4..end + 4 + length].to_vec());
            };
            let status = if served < failures {
                "500 Internal Server Error"
            } else {
                "200 OK"
            };
            served += 1;
            seen.lock().unwrap().push((head, body));
            let reply =
                format!("HTTP/1.1 {status}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
            let _ = socket.write_all(reply.as_bytes()).await;
        }
    });
    (url, received)
}

#[tokio::test]
async fn crossing_a_soft_limit_is_audited_and_posted_to_the_signed_webhook_with_retries() {
    const SECRET: &str = "whsec-test-0123456789abcdef";
    let (url, received) = webhook_receiver(1).await;
    let setup = setup(&[
        ("KEYWARD_ALERTS_WEBHOOK_URL", url.as_str()),
        ("KEYWARD_ALERTS_WEBHOOK_SECRET", SECRET),
    ])
    .await;
    setup.set_exact_rate().await;
    // The soft limit is crossed by the second call (12,000 ≥ 10,000), once per window.
    setup
        .admin(
            Method::PUT,
            "/budgets",
            Some(json!({"scope": "tenant", "period": "month", "soft_limit_usd": "0.01"})),
        )
        .await;
    for _ in 0..3 {
        assert_eq!(setup.chat(&six_token_call()).await.status(), 200);
    }

    let deadline = Instant::now() + Duration::from_secs(15);
    while received.lock().unwrap().len() < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let deliveries = received.lock().unwrap().clone();
    // The first delivery got a 500 and was retried with the same delivery id and body.
    assert_eq!(deliveries.len(), 2, "one failed delivery and its retry");
    let header = |head: &str, name: &str| {
        head.lines()
            .find_map(|line| line.strip_prefix(&format!("{name}:")))
            .unwrap()
            .trim()
            .to_owned()
    };
    let (head, body) = &deliveries[1];
    assert_eq!(
        header(head, "x-keyward-delivery"),
        header(&deliveries[0].0, "x-keyward-delivery")
    );
    assert_eq!(header(head, "x-keyward-event"), "budget.soft_limit_crossed");
    let signature = header(head, "x-keyward-signature");
    let (timestamp, mac) = signature
        .strip_prefix("t=")
        .unwrap()
        .split_once(",v1=")
        .unwrap();
    let mut expected = <Hmac<Sha256> as Mac>::new_from_slice(SECRET.as_bytes()).unwrap();
    expected.update(format!("{timestamp}.").as_bytes());
    expected.update(body);
    assert_eq!(mac, hex::encode(expected.finalize().into_bytes()));
    let alert: Value = serde_json::from_slice(body).unwrap();
    assert_eq!(alert["tenant_id"], setup.tenant);
    assert_eq!(alert["details"]["spent_usd"], "0.012000");
    assert_eq!(alert["details"]["soft_limit_usd"], "0.010000");

    // Exactly one alert for the window, and it is in the tenant's audit log.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(received.lock().unwrap().len(), 2);
    let audit = setup.admin(Method::GET, "/audit", None).await;
    let alerts: Vec<&Value> = audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|entry| entry["action"] == "budget.soft_limit_crossed")
        .collect();
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0]["actor"], "keyward");
}

#[tokio::test]
async fn usage_exports_per_call_and_grouped_in_json_and_csv() {
    let setup = setup(&[]).await;
    for (model, team) in [
        ("gpt-4o-mini", "red"),
        ("gpt-4o-mini", "blue"),
        ("gpt-4o", "red"),
    ] {
        let response = setup
            .app
            .with_key(&setup.key, Method::POST, "/v1/chat/completions")
            .header("x-keyward-tags", format!("team={team}"))
            .json(
                &json!({"model": format!("team-openai/{model}"), "user": "u-42",
                "messages": [{"role": "user", "content": "Hello there, mock!"}]}),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let rows = setup.admin(Method::GET, "/usage", None).await;
    let rows = rows["data"].as_array().unwrap();
    assert_eq!(rows.len(), 3);
    // gpt-4o-mini at $0.15 / $0.60: 5 × 0.15 + 6 × 0.60 = 4.35 → 4 micro-dollars.
    assert_eq!(rows[0]["cost_micro_usd"], 4);
    assert_eq!(rows[0]["price_id"], "openai/gpt-4o-mini/2024-07-18");
    assert_eq!(rows[0]["tags"], json!({"team": "red", "user": "u-42"}));
    assert_eq!(rows[0]["status"], "ok");

    let by_team = setup
        .admin(Method::GET, "/usage?group_by=tag:team", None)
        .await;
    let groups: Vec<(String, u64)> = by_team["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|group| {
            (
                group["group"].as_str().unwrap().to_owned(),
                group["requests"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(groups, vec![("blue".to_owned(), 1), ("red".to_owned(), 2)]);

    let csv = setup.admin(Method::GET, "/usage?format=csv", None).await;
    let csv = csv.as_str().unwrap();
    let mut lines = csv.lines();
    assert_eq!(
        lines.next().unwrap(),
        "request_id,time,tenant_id,key_id,department,credential_id,credential_label,provider,endpoint,model_requested,model_reported,provider_request_id,status,stream,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,reasoning_tokens,cost_micro_usd,price_id,latency_ms,ttfb_ms,tags,fallback_of"
    );
    assert_eq!(lines.count(), 3);
    assert!(
        csv.contains(",\"{\"\"team\"\":\"\"red\"\",\"\"user\"\":\"\"u-42\"\"}\","),
        "{csv}"
    );

    let by_day = setup
        .admin(Method::GET, "/usage?group_by=day&format=csv", None)
        .await;
    let today = keyward_core::Timestamp::now().to_rfc3339()[..10].to_owned();
    assert!(by_day.as_str().unwrap().contains(&format!("\n{today},3,")));

    // An empty range is an empty list, and a bad parameter a clear 400.
    let empty = setup
        .admin(Method::GET, "/usage?from=2001-01-01&to=2001-01-02", None)
        .await;
    assert_eq!(empty, json!({"data": [], "next_cursor": null}));
    let bad = setup
        .app
        .operator(
            Method::GET,
            &format!("/admin/v1/tenants/{}/usage?group_by=colour", setup.tenant),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400);

    // The platform meter counts requests routed, and nothing about tokens or dollars.
    let invoice = setup.admin(Method::GET, "/platform-invoice", None).await;
    assert_eq!(invoice["total_requests_routed"], 3);
    assert_eq!(
        invoice["days"],
        json!([{"date": today, "requests_routed": 3, "documents_stored": 0, "retrievals_issued": 0}])
    );
    let text = invoice.to_string();
    assert!(!text.contains("token") && !text.contains("usd"), "{text}");
}

#[tokio::test]
async fn admin_actions_land_in_the_hash_chained_audit_log_without_secrets() {
    let setup = setup(&[]).await;
    setup
        .admin(
            Method::PUT,
            "/budgets",
            Some(json!({"scope": "tenant", "period": "total", "hard_limit_usd": "100"})),
        )
        .await;
    let audit = setup.admin(Method::GET, "/audit", None).await;
    let entries = audit["data"].as_array().unwrap();
    let actions: Vec<&str> = entries
        .iter()
        .map(|entry| entry["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        vec!["tenant.create", "credential.add", "key.issue", "budget.set"]
    );
    for pair in entries.windows(2) {
        assert_eq!(pair[1]["prev_hash"], pair[0]["hash"]);
        assert_eq!(
            pair[1]["seq"].as_i64().unwrap(),
            pair[0]["seq"].as_i64().unwrap() + 1
        );
    }
    assert_eq!(entries[1]["actor"], "operator");
    let text = audit.to_string();
    // Fingerprints and display prefixes only: never the secret or the key.
    assert!(
        !text.contains(&setup.secret) && !text.contains(&setup.key),
        "{text}"
    );

    // Another tenant's actions are not in this tenant's log.
    setup.app.create_tenant("other").await;
    let again = setup.admin(Method::GET, "/audit", None).await;
    assert_eq!(again["data"].as_array().unwrap().len(), 4);
}

#[tokio::test]
async fn per_key_rpm_and_tpm_limits_answer_429_with_retry_after_before_any_upstream_call() {
    let setup = setup(&[]).await;
    let keys = format!("/admin/v1/tenants/{}/keys", setup.tenant);
    let issue = |body: Value| {
        let app = &setup.app;
        let keys = keys.clone();
        async move {
            let response = app
                .operator(Method::POST, &keys)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 201);
            let issued: Value = response.json().await.unwrap();
            (
                issued["id"].as_str().unwrap().to_owned(),
                issued["key"].as_str().unwrap().to_owned(),
            )
        }
    };
    let call = |key: String, path: &'static str| {
        let app = &setup.app;
        async move {
            let body = if path == "/v1/messages" {
                json!({"model": "team-openai/gpt-4o-mini", "max_tokens": 6, "messages": [{"role": "user", "content": "hi"}]})
            } else {
                json!({"model": "team-openai/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]})
            };
            app.with_key(&key, Method::POST, path)
                .json(&body)
                .send()
                .await
                .unwrap()
        }
    };

    // Three requests a minute: the fourth is refused on both API shapes, with retry-after.
    let (rpm_id, rpm_key) = issue(json!({"role": "member", "rpm_limit": 3})).await;
    for _ in 0..3 {
        assert_eq!(
            call(rpm_key.clone(), "/v1/chat/completions").await.status(),
            200
        );
    }
    let refused = call(rpm_key.clone(), "/v1/chat/completions").await;
    assert_eq!(refused.status(), 429);
    let retry_after: u64 = refused.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((19..=20).contains(&retry_after), "{retry_after}");
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("3 requests per minute"));
    let refused = call(rpm_key.clone(), "/v1/messages").await;
    assert_eq!(refused.status(), 429);
    assert!(refused.headers().contains_key("retry-after"));
    let body: Value = refused.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(body["error"]["code"], "rate_limited");
    assert_eq!(setup.app.mock.calls(&setup.secret), 3);

    // Raising the limit takes effect on the next request, without a new key.
    let raised = setup
        .admin(
            Method::PUT,
            &format!("/keys/{rpm_id}/limits"),
            Some(json!({"rpm_limit": 100})),
        )
        .await;
    assert_eq!(raised["rpm_limit"], 100);
    assert_eq!(raised["tpm_limit"], Value::Null);
    assert_eq!(call(rpm_key, "/v1/chat/completions").await.status(), 200);

    // Twenty tokens a minute: each mock call is 1 input + 6 output tokens, so the third call
    // leaves the key in debt and the fourth waits.
    let (_, tpm_key) = issue(json!({"role": "member", "tpm_limit": 20})).await;
    for _ in 0..3 {
        assert_eq!(
            call(tpm_key.clone(), "/v1/chat/completions").await.status(),
            200
        );
    }
    let refused = call(tpm_key, "/v1/chat/completions").await;
    assert_eq!(refused.status(), 429);
    let body: Value = refused.json().await.unwrap();
    assert!(
        body["error"]["message"]
            .as_str()
            .unwrap()
            .contains("20 tokens per minute"),
        "{body}"
    );
    assert_eq!(setup.app.mock.calls(&setup.secret), 7);

    // A limit of 0 is refused with the field named; the change is audited.
    let response = setup
        .app
        .operator(Method::PUT, &format!("{keys}/{rpm_id}/limits"))
        .json(&json!({"rpm_limit": 0}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let audit = setup.admin(Method::GET, "/audit", None).await;
    assert!(audit["data"]
        .as_array()
        .unwrap()
        .iter()
        .any(|entry| entry["action"] == "key.limits" && entry["details"]["rpm_limit"] == 100));
}
