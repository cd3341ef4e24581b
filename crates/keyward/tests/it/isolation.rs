//! Tenant isolation on every admin route. The route list is checked against the OpenAPI
//! document, so a new route without an isolation case fails this test.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::TestApp;

struct Route {
    method: Method,
    path: &'static str,
    body: Option<Value>,
    operator_only: bool,
}

fn routes() -> Vec<Route> {
    let route =
        |method: Method, path: &'static str, body: Option<Value>, operator_only: bool| Route {
            method,
            path,
            body,
            operator_only,
        };
    vec![
        route(
            Method::POST,
            "/admin/v1/tenants",
            Some(json!({"name": "intruder"})),
            true,
        ),
        route(Method::GET, "/admin/v1/tenants", None, false),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/departments",
            Some(json!({"name": "ops"})),
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/departments",
            None,
            false,
        ),
        route(
            Method::PUT,
            "/admin/v1/tenants/{tenant}/budgets",
            Some(json!({"scope": "tenant", "period": "day", "hard_limit_usd": "0"})),
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/budgets",
            None,
            false,
        ),
        route(
            Method::PUT,
            "/admin/v1/tenants/{tenant}/prices",
            Some(json!({"provider": "openai", "model": "gpt-4o", "input": "0", "output": "0"})),
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/prices",
            None,
            false,
        ),
        route(Method::GET, "/admin/v1/tenants/{tenant}/usage", None, false),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/platform-invoice",
            None,
            false,
        ),
        route(Method::GET, "/admin/v1/tenants/{tenant}/audit", None, false),
        route(
            Method::PUT,
            "/admin/v1/tenants/{tenant}/keys/{key}/limits",
            Some(json!({"rpm_limit": 1})),
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/reconciliations",
            Some(json!({"provider": "openai", "exports": [{"data": []}]})),
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/credentials",
            Some(
                json!({"provider": "openai", "label": "planted", "secret": "sk-planted-0123456789abc"}),
            ),
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/credentials",
            None,
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/credentials/{credential}",
            None,
            false,
        ),
        route(
            Method::DELETE,
            "/admin/v1/tenants/{tenant}/credentials/{credential}",
            None,
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/credentials/{credential}/rotate",
            Some(json!({"secret": "sk-hijack-0123456789abcdef"})),
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/credentials/{credential}/disable",
            None,
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/credentials/{credential}/enable",
            None,
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/credentials/{credential}/verify",
            None,
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/keys",
            Some(json!({"role": "admin"})),
            false,
        ),
        route(Method::GET, "/admin/v1/tenants/{tenant}/keys", None, false),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/keys/{key}/revoke",
            None,
            false,
        ),
        route(
            Method::PUT,
            "/admin/v1/tenants/{tenant}/routes/{model}",
            Some(json!({"targets": [{"credential": "main", "model": "gpt-4o"}]})),
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/routes",
            None,
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/knowledge-bases",
            Some(
                json!({"name": "stolen", "department": "ops", "embedding": {"credential": "main", "model": "text-embedding-3-small"}}),
            ),
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/knowledge-bases",
            None,
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/knowledge-bases/{kb}",
            None,
            false,
        ),
        route(
            Method::DELETE,
            "/admin/v1/tenants/{tenant}/knowledge-bases/{kb}",
            None,
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/connectors",
            Some(
                json!({"kind": "google-chat", "name": "stolen", "model": "main/gpt-4o", "app_id": "1"}),
            ),
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/connectors",
            None,
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/connectors/{connector}",
            None,
            false,
        ),
        route(
            Method::DELETE,
            "/admin/v1/tenants/{tenant}/connectors/{connector}",
            None,
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/connectors/{connector}/disable",
            None,
            false,
        ),
        route(
            Method::POST,
            "/admin/v1/tenants/{tenant}/connectors/{connector}/enable",
            None,
            false,
        ),
        route(
            Method::PUT,
            "/admin/v1/tenants/{tenant}/departments/{department}/members",
            Some(json!({"identities": ["email:mallory@evil.example"]})),
            false,
        ),
        route(
            Method::GET,
            "/admin/v1/tenants/{tenant}/departments/{department}/members",
            None,
            false,
        ),
        route(Method::GET, "/admin/v1/masterkey", None, true),
        route(Method::GET, "/admin/v1/audit/verify", None, true),
        route(Method::GET, "/admin/v1/prices", None, true),
        route(
            Method::POST,
            "/admin/v1/masterkey/rotate",
            Some(json!({})),
            true,
        ),
    ]
}

/// `{credential}` and `{key}` both appear as `{id}` in the OpenAPI document.
fn openapi_form(path: &str) -> String {
    path.replace("{credential}", "{id}")
        .replace("{key}", "{id}")
        .replace("{connector}", "{id}")
}

#[tokio::test]
async fn the_isolation_table_covers_every_documented_route() {
    let app = TestApp::spawn().await;
    let openapi: Value = app
        .request(Method::GET, "/admin/v1/openapi.json")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut documented = BTreeSet::new();
    for (path, item) in openapi["paths"].as_object().unwrap() {
        for method in item.as_object().unwrap().keys() {
            if path != "/admin/v1/openapi.json" {
                documented.insert(format!("{} {path}", method.to_uppercase()));
            }
        }
    }
    let covered: BTreeSet<String> = routes()
        .iter()
        .map(|route| format!("{} {}", route.method, openapi_form(route.path)))
        .collect();
    assert_eq!(documented, covered);
}

struct World {
    app: TestApp,
    tenant_a: String,
    credential_a: String,
    key_a: String,
    admin_b: String,
    member_a: String,
}

async fn world() -> World {
    let app = TestApp::spawn().await;
    let tenant_a = app.create_tenant("tenant-a").await;
    let tenant_b = app.create_tenant("tenant-b").await;
    let credential_a = app
        .connect_openai(&tenant_a, "main", "sk-tenant-a-0123456789abcdef")
        .await["id"]
        .as_str()
        .unwrap()
        .to_owned();
    let (key_a, _) = app.issue_key(&tenant_a, "admin").await;
    let (_, admin_b) = app.issue_key(&tenant_b, "admin").await;
    let (_, member_a) = app.issue_key(&tenant_a, "member").await;
    World {
        app,
        tenant_a,
        credential_a,
        key_a,
        admin_b,
        member_a,
    }
}

fn fill(path: &str, tenant: &str, credential: &str, key: &str) -> String {
    path.replace("{tenant}", tenant)
        .replace("{credential}", credential)
        .replace("{key}", key)
        .replace("{kb}", "handbook")
        .replace("{connector}", "0192f5c4-7b7e-7cc0-9d1e-5f3a2b1c0d4f")
        .replace("{department}", "0192f5c4-7b7e-7cc0-9d1e-5f3a2b1c0d50")
}

async fn call(app: &TestApp, token: &str, route: &Route, path: &str) -> (u16, Value) {
    let mut request = app.with_key(token, route.method.clone(), path);
    if let Some(body) = &route.body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

#[tokio::test]
async fn another_tenants_admin_gets_exactly_what_a_missing_tenant_gives() {
    let world = world().await;
    let missing_tenant = "0192f5c4-7b7e-7cc0-9d1e-5f3a2b1c0d4e";
    for route in routes()
        .iter()
        .filter(|route| route.path.contains("{tenant}"))
    {
        let foreign = fill(
            route.path,
            &world.tenant_a,
            &world.credential_a,
            &world.key_a,
        );
        let missing = fill(
            route.path,
            missing_tenant,
            &world.credential_a,
            &world.key_a,
        );
        let (status, body) = call(&world.app, &world.admin_b, route, &foreign).await;
        let (missing_status, missing_body) =
            call(&world.app, &world.admin_b, route, &missing).await;
        assert_eq!(status, 404, "{} {}: {body}", route.method, route.path);
        assert_eq!(
            (status, &body),
            (missing_status, &missing_body),
            "{} {}",
            route.method,
            route.path
        );
    }
    // Tenant A's objects are untouched.
    let credential: Value = world
        .app
        .operator(
            Method::GET,
            &format!(
                "/admin/v1/tenants/{}/credentials/{}",
                world.tenant_a, world.credential_a
            ),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(credential["status"], "active");
    assert_eq!(credential["fingerprint"], "sk-…cdef");
    let keys: Value = world
        .app
        .operator(
            Method::GET,
            &format!("/admin/v1/tenants/{}/keys", world.tenant_a),
        )
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(keys["data"]
        .as_array()
        .unwrap()
        .iter()
        .all(|key| key["status"] == "active"));
}

#[tokio::test]
async fn member_keys_get_403_on_every_admin_route() {
    let world = world().await;
    for route in routes() {
        let path = fill(
            route.path,
            &world.tenant_a,
            &world.credential_a,
            &world.key_a,
        );
        let (status, body) = call(&world.app, &world.member_a, &route, &path).await;
        assert_eq!(status, 403, "{} {}: {body}", route.method, route.path);
        assert_eq!(body["error"]["code"], "forbidden");
    }
}

#[tokio::test]
async fn tenant_admins_get_403_on_operator_routes_and_see_only_their_tenant() {
    let world = world().await;
    for route in routes().iter().filter(|route| route.operator_only) {
        let (status, body) = call(&world.app, &world.admin_b, route, route.path).await;
        assert_eq!(status, 403, "{} {}: {body}", route.method, route.path);
    }
    let tenants: Value = world
        .app
        .with_key(&world.admin_b, Method::GET, "/admin/v1/tenants")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = tenants["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["tenant-b"]);
}
