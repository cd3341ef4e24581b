//! The web console's server side: the page and its security headers, sign-in (the sign-in
//! CSRF token, throttling, who may sign in), the session cookie's flags, the admin API reached
//! with a session (CSRF, origin, tenant scope), and the ways a session ends. Both backends for
//! the session store. The browser itself is driven by `tests/console` (Chromium).

use keyward_test_db::TestDb;
use reqwest::header::{HeaderMap, SET_COOKIE};
use reqwest::{Method, Response};
use serde_json::{json, Value};

use crate::harness::TestApp;

async fn backends() -> Vec<TestDb> {
    [Some(TestDb::sqlite()), TestDb::postgres().await]
        .into_iter()
        .flatten()
        .collect()
}

fn set_cookies(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .map(|value| value.to_str().unwrap().to_owned())
        .collect()
}

fn cookie_value(set_cookie: &str) -> String {
    set_cookie
        .split(';')
        .next()
        .and_then(|pair| pair.split_once('='))
        .map(|(_, value)| value.to_owned())
        .unwrap()
}

/// A browser's view of one console session.
struct Browser<'a> {
    app: &'a TestApp,
    session: String,
    csrf: String,
}

impl Browser<'_> {
    fn admin(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.app
            .request(method, path)
            .header("cookie", format!("kw_console={}", self.session))
            .header("x-keyward-csrf", &self.csrf)
    }
}

/// The sign-in CSRF token and its cookie, as the sign-in page gets them.
async fn sign_in_token(app: &TestApp) -> String {
    let response = app
        .request(Method::GET, "/console/api/session")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookies = set_cookies(response.headers());
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["signed_in"], false);
    let cookie = cookies
        .iter()
        .find(|cookie| cookie.starts_with("kw_console_signin="))
        .unwrap();
    assert_eq!(cookie_value(cookie), body["csrf_token"].as_str().unwrap());
    body["csrf_token"].as_str().unwrap().to_owned()
}

async fn post_sign_in(app: &TestApp, csrf: &str, token: &str) -> Response {
    app.request(Method::POST, "/console/api/session")
        .header("cookie", format!("kw_console_signin={csrf}"))
        .header("x-keyward-csrf", csrf)
        .json(&json!({ "token": token }))
        .send()
        .await
        .unwrap()
}

async fn sign_in<'a>(app: &'a TestApp, token: &str) -> Browser<'a> {
    let csrf = sign_in_token(app).await;
    let response = post_sign_in(app, &csrf, token).await;
    assert_eq!(response.status(), 200);
    let cookies = set_cookies(response.headers());
    let session = cookies
        .iter()
        .find(|cookie| cookie.starts_with("kw_console="))
        .unwrap();
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["signed_in"], true);
    Browser {
        app,
        session: cookie_value(session),
        csrf: body["csrf_token"].as_str().unwrap().to_owned(),
    }
}

#[tokio::test]
async fn every_console_response_carries_the_security_headers() {
    let app = TestApp::spawn().await;
    for path in [
        "/console/",
        "/console/usage",
        "/console/assets/console.js",
        "/console/api/session",
    ] {
        let response = app.request(Method::GET, path).send().await.unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let headers = response.headers();
        let csp = headers["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(headers["x-frame-options"], "DENY");
        assert_eq!(headers["referrer-policy"], "no-referrer");
        assert_eq!(headers["x-content-type-options"], "nosniff");
    }
    let page = app.request(Method::GET, "/console/").send().await.unwrap();
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    let script = app
        .request(Method::GET, "/console/assets/console.js")
        .send()
        .await
        .unwrap();
    let etag = script.headers()["etag"].to_str().unwrap().to_owned();
    let again = app
        .request(Method::GET, "/console/assets/console.js")
        .header("if-none-match", &etag)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 304);
    let missing = app
        .request(Method::GET, "/console/assets/../../keyward.db")
        .send()
        .await
        .unwrap();
    assert_ne!(missing.status(), 200);
}

#[tokio::test]
async fn sign_in_needs_its_csrf_token_and_sets_a_strict_session_cookie() {
    for db in backends().await {
        let app = TestApp::spawn_with(&[("KEYWARD_STORE_URL", db.url())]).await;
        let tenant = app.create_tenant("acme").await;
        let (_, admin) = app.issue_key(&tenant, "admin").await;
        let csrf = sign_in_token(&app).await;
        let missing = app
            .request(Method::POST, "/console/api/session")
            .header("cookie", format!("kw_console_signin={csrf}"))
            .json(&json!({ "token": admin }))
            .send()
            .await
            .unwrap();
        assert_eq!(missing.status(), 403);
        let other_site = app
            .request(Method::POST, "/console/api/session")
            .header("cookie", format!("kw_console_signin={csrf}"))
            .header("x-keyward-csrf", &csrf)
            .header("origin", "https://evil.example")
            .json(&json!({ "token": admin }))
            .send()
            .await
            .unwrap();
        assert_eq!(other_site.status(), 403);
        let body: Value = other_site.json().await.unwrap();
        assert!(body["error"]["message"].as_str().unwrap().contains("CSRF"));

        // A key pasted with surrounding whitespace still signs in.
        let response = post_sign_in(&app, &csrf, &format!("  {admin}\n")).await;
        assert_eq!(response.status(), 200);
        let cookies = set_cookies(response.headers());
        let session = cookies
            .iter()
            .find(|cookie| cookie.starts_with("kw_console="))
            .unwrap();
        for flag in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=43200"] {
            assert!(session.contains(flag), "{session} lacks {flag}");
        }
        assert!(!session.contains("Secure"), "plain http without public_url");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["role"], "tenant_admin");
        assert_eq!(body["tenant_id"], tenant.as_str());
        assert!(!body.to_string().contains(&admin));
        // The store keeps only the session's hash.
        if db.url().starts_with("sqlite") {
            let token = cookie_value(session);
            assert!(!crate::harness::contains(&app.database_bytes(), &token));
            assert!(!crate::harness::contains(&app.database_bytes(), &admin));
        }
    }
}

#[tokio::test]
async fn the_cookie_is_secure_behind_an_https_public_url_and_other_origins_are_refused() {
    let app =
        TestApp::spawn_with(&[("KEYWARD_SERVER_PUBLIC_URL", "https://keyward.example.com")]).await;
    let csrf = sign_in_token(&app).await;
    let response = app
        .request(Method::POST, "/console/api/session")
        .header("cookie", format!("kw_console_signin={csrf}"))
        .header("x-keyward-csrf", &csrf)
        .header("origin", "https://keyward.example.com")
        .json(&json!({ "token": crate::harness::ADMIN_TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let cookies = set_cookies(response.headers());
    assert!(cookies
        .iter()
        .any(|cookie| cookie.starts_with("kw_console=") && cookie.ends_with("; Secure")));
    let same_host_other_scheme = app
        .request(Method::POST, "/console/api/session")
        .header("cookie", format!("kw_console_signin={csrf}"))
        .header("x-keyward-csrf", &csrf)
        .header("origin", "http://keyward.example.com")
        .json(&json!({ "token": crate::harness::ADMIN_TOKEN }))
        .send()
        .await
        .unwrap();
    assert_eq!(same_host_other_scheme.status(), 403);
}

#[tokio::test]
async fn a_session_reaches_only_its_tenant_and_only_with_its_csrf_token() {
    for db in backends().await {
        let app = TestApp::spawn_with(&[("KEYWARD_STORE_URL", db.url())]).await;
        let tenant = app.create_tenant("acme").await;
        let other = app.create_tenant("globex").await;
        app.connect_openai(&other, "theirs", "sk-proj-globex-0123456789abcdefXy12")
            .await;
        let (_, admin) = app.issue_key(&tenant, "admin").await;
        let browser = sign_in(&app, &admin).await;
        let own = format!("/admin/v1/tenants/{tenant}/credentials");
        assert_eq!(
            browser
                .admin(Method::GET, &own)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let foreign = format!("/admin/v1/tenants/{other}/credentials");
        let response = browser.admin(Method::GET, &foreign).send().await.unwrap();
        assert_eq!(response.status(), 404);
        assert!(!response.text().await.unwrap().contains("theirs"));
        let tenants: Value = browser
            .admin(Method::GET, "/admin/v1/tenants")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(
            tenants["data"].as_array().unwrap().len(),
            1,
            "only its own tenant"
        );
        assert_eq!(tenants["data"][0]["id"], tenant.as_str());
        // Without the CSRF token, with another session's token, or from another origin: refused,
        // and nothing is created.
        let create = json!({"provider": "openai", "label": "forged", "secret": "sk-proj-forged-0123456789abcdefAb12"});
        let path = format!("/admin/v1/tenants/{tenant}/credentials");
        let no_token = app
            .request(Method::POST, &path)
            .header("cookie", format!("kw_console={}", browser.session))
            .json(&create)
            .send()
            .await
            .unwrap();
        assert_eq!(no_token.status(), 403);
        let wrong = app
            .request(Method::POST, &path)
            .header("cookie", format!("kw_console={}", browser.session))
            .header(
                "x-keyward-csrf",
                keyward_console::csrf::token_for("another"),
            )
            .json(&create)
            .send()
            .await
            .unwrap();
        assert_eq!(wrong.status(), 403);
        let cross_site = browser
            .admin(Method::POST, &path)
            .header("origin", "https://evil.example")
            .json(&create)
            .send()
            .await
            .unwrap();
        assert_eq!(cross_site.status(), 403);
        assert!(app.credentials(&tenant).await.is_empty());
        // With both, the same request works.
        let created = browser
            .admin(Method::POST, &path)
            .json(&create)
            .send()
            .await
            .unwrap();
        assert_eq!(created.status(), 201);
        // A tampered cookie is no session.
        let mut tampered = browser.session.clone().into_bytes();
        tampered[0] = if tampered[0] == b'A' { b'B' } else { b'A' };
        let tampered = String::from_utf8(tampered).unwrap();
        let response = app
            .request(Method::GET, &own)
            .header("cookie", format!("kw_console={tampered}"))
            .header(
                "x-keyward-csrf",
                keyward_console::csrf::token_for(&tampered),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 401);
    }
}

#[tokio::test]
async fn sign_out_revocation_and_idleness_end_a_session() {
    for db in backends().await {
        let app = TestApp::spawn_with(&[
            ("KEYWARD_STORE_URL", db.url()),
            ("KEYWARD_CONSOLE_SESSION_IDLE", "2s"),
        ])
        .await;
        let tenant = app.create_tenant("acme").await;
        let path = format!("/admin/v1/tenants/{tenant}/credentials");
        let (_, admin) = app.issue_key(&tenant, "admin").await;

        let browser = sign_in(&app, &admin).await;
        let out = browser
            .admin(Method::DELETE, "/console/api/session")
            .send()
            .await
            .unwrap();
        assert_eq!(out.status(), 204);
        assert!(set_cookies(out.headers())[0].contains("Max-Age=0"));
        let replayed = browser.admin(Method::GET, &path).send().await.unwrap();
        assert_eq!(replayed.status(), 401, "a signed-out cookie replayed");

        let (key_id, second_admin) = app.issue_key(&tenant, "admin").await;
        let browser = sign_in(&app, &second_admin).await;
        assert_eq!(
            browser
                .admin(Method::GET, &path)
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
        let revoked = app
            .operator(
                Method::POST,
                &format!("/admin/v1/tenants/{tenant}/keys/{key_id}/revoke"),
            )
            .send()
            .await
            .unwrap();
        assert!(revoked.status().is_success());
        assert_eq!(
            browser
                .admin(Method::GET, &path)
                .send()
                .await
                .unwrap()
                .status(),
            401,
            "a revoked key's session ends"
        );

        let browser = sign_in(&app, &admin).await;
        tokio::time::sleep(std::time::Duration::from_millis(2300)).await;
        assert_eq!(
            browser
                .admin(Method::GET, &path)
                .send()
                .await
                .unwrap()
                .status(),
            401,
            "an idle session ends"
        );
    }
}

#[tokio::test]
async fn members_and_wrong_tokens_cannot_sign_in_and_failures_are_throttled() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    let (_, member) = app.issue_key(&tenant, "member").await;
    let csrf = sign_in_token(&app).await;
    let refused = post_sign_in(&app, &csrf, &member).await;
    assert_eq!(refused.status(), 403);
    let body: Value = refused.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("member key"));
    for attempt in 0..4 {
        let wrong = post_sign_in(&app, &csrf, "kw_notakeyatallnotakeyatall").await;
        assert_eq!(wrong.status(), 401, "attempt {attempt}");
    }
    let throttled = post_sign_in(&app, &csrf, crate::harness::ADMIN_TOKEN).await;
    assert_eq!(
        throttled.status(),
        429,
        "the fifth failure was the member key"
    );
    assert!(throttled.headers().contains_key("retry-after"));
    let body: Value = throttled.json().await.unwrap();
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("too many failed sign-ins"));
}

#[tokio::test]
async fn usage_pages_newest_first_with_filters() {
    for db in backends().await {
        let app = TestApp::spawn_with(&[("KEYWARD_STORE_URL", db.url())]).await;
        let tenant = app.create_tenant("acme").await;
        app.connect(
            &tenant,
            &json!({"provider": "openai", "label": "main", "secret": "sk-proj-usage-0123456789abcdefQq12", "base_url": format!("{}/v1", app.mock_origin)}),
        )
        .await;
        let (_, member) = app.issue_key(&tenant, "member").await;
        let department = app
            .operator(
                Method::POST,
                &format!("/admin/v1/tenants/{tenant}/departments"),
            )
            .json(&json!({"name": "sales"}))
            .send()
            .await
            .unwrap();
        assert_eq!(department.status(), 201);
        let seller: Value = app
            .operator(Method::POST, &format!("/admin/v1/tenants/{tenant}/keys"))
            .json(&json!({"role": "member", "department": "sales"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let seller = seller["key"].as_str().unwrap();
        for (model, key) in [
            ("gpt-4o-mini", member.as_str()),
            ("gpt-4o", seller),
            ("gpt-4o-mini", seller),
        ] {
            let response = app
                .with_key(key, Method::POST, "/v1/chat/completions")
                .json(&json!({"model": format!("main/{model}"), "messages": [{"role": "user", "content": "hi"}]}))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
        let usage = format!("/admin/v1/tenants/{tenant}/usage");
        let first: Value = app.operator_get(&format!("{usage}?limit=2")).await;
        let rows = first["data"].as_array().unwrap();
        assert_eq!(rows.len(), 2);
        assert!(rows[0]["request_id"].as_str() > rows[1]["request_id"].as_str());
        let cursor = first["next_cursor"].as_str().unwrap();
        let second: Value = app
            .operator_get(&format!("{usage}?limit=2&cursor={cursor}"))
            .await;
        assert_eq!(second["data"].as_array().unwrap().len(), 1);
        assert!(second["next_cursor"].is_null());
        let filtered: Value = app
            .operator_get(&format!("{usage}?limit=10&model=gpt-4o&status=ok"))
            .await;
        assert_eq!(filtered["data"].as_array().unwrap().len(), 1);
        let by_status: Value = app.operator_get(&format!("{usage}?group_by=status")).await;
        assert_eq!(by_status["data"][0]["group"], "ok");
        assert_eq!(by_status["data"][0]["requests"], 3);
        // Every grouping the database sums agrees with the per-call rows.
        let calls: Value = app.operator_get(&usage).await;
        let calls = calls["data"].as_array().unwrap();
        for by in ["day", "model", "key", "credential", "department", "status"] {
            let mut expected: std::collections::BTreeMap<String, (u64, u64, u64, i64)> =
                std::collections::BTreeMap::new();
            for call in calls {
                let text = |field: &str| call[field].as_str().map(str::to_owned);
                let group = match by {
                    "day" => call["time"].as_str().unwrap()[..10].to_owned(),
                    "model" => text("model_reported").or(text("model_requested")).unwrap(),
                    "key" => text("key_id").unwrap_or("(none)".into()),
                    "credential" => text("credential_label").unwrap(),
                    "department" => text("department").unwrap_or("(none)".into()),
                    _ => text("status").unwrap(),
                };
                let entry = expected.entry(group).or_default();
                entry.0 += 1;
                entry.1 += call["input_tokens"].as_u64().unwrap_or(0);
                entry.2 += call["output_tokens"].as_u64().unwrap_or(0);
                entry.3 += call["cost_micro_usd"].as_i64().unwrap_or(0);
            }
            let groups: Value = app.operator_get(&format!("{usage}?group_by={by}")).await;
            let actual: std::collections::BTreeMap<String, (u64, u64, u64, i64)> = groups["data"]
                .as_array()
                .unwrap()
                .iter()
                .map(|group| {
                    (
                        group["group"].as_str().unwrap().to_owned(),
                        (
                            group["requests"].as_u64().unwrap(),
                            group["input_tokens"].as_u64().unwrap(),
                            group["output_tokens"].as_u64().unwrap(),
                            group["cost_micro_usd"].as_i64().unwrap(),
                        ),
                    )
                })
                .collect();
            assert_eq!(actual, expected, "group_by={by} on {}", db.url());
        }
        assert!(calls.iter().any(|call| call["department"] == "sales"));
        let bad = app
            .operator(Method::GET, &format!("{usage}?model=gpt-4o"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
        let bad = app
            .operator(Method::GET, &format!("{usage}?limit=10&status=fine"))
            .send()
            .await
            .unwrap();
        assert_eq!(bad.status(), 400);
    }
}

#[tokio::test]
async fn a_console_session_manages_documents_but_never_receives_their_text() {
    let app = TestApp::spawn().await;
    let tenant = app.create_tenant("acme").await;
    app.connect(
        &tenant,
        &json!({"provider": "openai", "label": "emb", "secret": "sk-proj-emb-0123456789abcdefQq12", "base_url": format!("{}/v1", app.mock_origin)}),
    )
    .await;
    let department = app
        .operator(
            Method::POST,
            &format!("/admin/v1/tenants/{tenant}/departments"),
        )
        .json(&json!({"name": "hr"}))
        .send()
        .await
        .unwrap();
    assert_eq!(department.status(), 201);
    let kb = app
        .operator(Method::POST, &format!("/admin/v1/tenants/{tenant}/knowledge-bases"))
        .json(&json!({"name": "handbook", "department": "hr", "embedding": {"credential": "emb", "model": "text-embedding-3-small"}}))
        .send()
        .await
        .unwrap();
    assert_eq!(kb.status(), 201);
    let (_, admin) = app.issue_key(&tenant, "admin").await;
    let browser = sign_in(&app, &admin).await;
    let canary = "CANARY-DOCUMENT-4d1f0c2b";
    let added = browser
        .admin(Method::POST, "/v1/knowledge-bases/handbook/documents")
        .json(&json!({"name": "policy.md", "text": format!("# Leave\n\nThirty days of leave. {canary}")}))
        .send()
        .await
        .unwrap();
    assert!(
        added.status().is_success(),
        "{}",
        added.text().await.unwrap()
    );
    let without_csrf = app
        .request(Method::GET, "/v1/knowledge-bases/handbook/documents")
        .header("cookie", format!("kw_console={}", browser.session))
        .send()
        .await
        .unwrap();
    assert_eq!(without_csrf.status(), 403);
    for _ in 0..100 {
        let list: Value = browser
            .admin(Method::GET, "/v1/knowledge-bases/handbook/documents")
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if list["data"][0]["status"] == "ready" {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let query = json!({"query": "How many days of leave?"});
    let console: Value = browser
        .admin(Method::POST, "/v1/knowledge-bases/handbook/search")
        .json(&query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(console["data"][0]["document_name"], "policy.md");
    assert!(
        console["data"][0].get("text").is_none() && console["data"][0].get("heading").is_none()
    );
    assert!(!console.to_string().contains(canary));
    let api: Value = app
        .with_key(&admin, Method::POST, "/v1/knowledge-bases/handbook/search")
        .json(&query)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        api["data"][0]["text"].as_str().unwrap().contains(canary),
        "API clients get the text"
    );
}
