//! Chat connectors end to end against a loopback fake of Google's side that serves
//! certificates this test generates (openssl) and signs requests with: valid messages are
//! answered from the user's department's knowledge base on the tenant's key; every forged
//! request is refused with no model call. Both backends.

use std::net::SocketAddr;
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::routing::get;
use axum::{Json, Router};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use keyward_test_db::TestDb;
use reqwest::Method;
use serde_json::{json, Value};

use crate::harness::{captured_logs, TestApp};

const PROJECT: &str = "1234567890";

/// Google's side: the Chat service account's certificate map, and the key that signs.
struct FakeGoogle {
    url: String,
    private_pem: Vec<u8>,
    fetches: Arc<AtomicU64>,
}

fn openssl(args: &[&str], dir: &std::path::Path) {
    let output = Command::new("openssl")
        .args(args)
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

impl FakeGoogle {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "key.pem",
            ],
            dir.path(),
        );
        openssl(
            &[
                "req", "-x509", "-key", "key.pem", "-subj", "/CN=chat", "-days", "1", "-out",
                "cert.pem",
            ],
            dir.path(),
        );
        let certificate = std::fs::read_to_string(dir.path().join("cert.pem")).unwrap();
        let fetches = Arc::new(AtomicU64::new(0));
        let counter = fetches.clone();
        let router = Router::new().route(
            "/certs",
            get(move || {
                counter.fetch_add(1, Ordering::Relaxed);
                let map = json!({"google-key-1": certificate.clone()});
                async move { Json(map) }
            }),
        );
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let url = format!("http://{}/certs", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            url,
            private_pem: std::fs::read(dir.path().join("key.pem")).unwrap(),
            fetches,
        }
    }

    fn token(&self, claims: &Value, kid: &str) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some(kid.to_owned());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_rsa_pem(&self.private_pem).unwrap(),
        )
        .unwrap()
    }

    fn valid(&self) -> String {
        self.token(&claims(), "google-key-1")
    }
}

fn now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

fn claims() -> Value {
    json!({"iss": "chat@system.gserviceaccount.com", "aud": PROJECT, "iat": now(), "exp": now() + 600})
}

fn message(email: &str, text: &str) -> Value {
    json!({"type": "MESSAGE", "eventTime": "2026-12-07T10:00:00Z", "space": {"name": "spaces/AAA", "type": "DM"},
           "user": {"name": "users/1", "displayName": "Someone", "email": email},
           "message": {"name": "spaces/AAA/messages/1", "text": format!("@Keyward {text}"), "argumentText": format!(" {text}")}})
}

struct World {
    app: TestApp,
    google: FakeGoogle,
    tenant: String,
    secret: String,
    endpoint: String,
}

async fn world(db: &TestDb) -> World {
    world_with(db, &[]).await
}

async fn world_with(db: &TestDb, overrides: &[(&str, &str)]) -> World {
    world_with_env(db, overrides, &[]).await
}

/// A world whose server also sees these process variables (VAULT_ADDR, …).
async fn world_with_env(db: &TestDb, overrides: &[(&str, &str)], env: &[(&str, &str)]) -> World {
    let google = FakeGoogle::start().await;
    let mut settings = vec![
        ("KEYWARD_STORE_URL", db.url()),
        (
            "KEYWARD_CONNECTORS_GOOGLE_CHAT_CERTS_URL",
            google.url.as_str(),
        ),
    ];
    settings.extend_from_slice(overrides);
    let app = TestApp::spawn_with_env(&settings, env).await;
    let tenant = app.create_tenant("acme").await;
    let secret = format!("sk-chat-{}", keyward_core::RequestId::generate());
    app.connect(&tenant, &json!({"provider": "openai", "label": "team-openai", "secret": secret, "base_url": format!("{}/v1", app.mock_origin)})).await;
    let admin = |method: Method, path: &str, body: Value| {
        app.operator(method, &format!("/admin/v1/tenants/{tenant}{path}"))
            .json(&body)
            .send()
    };
    let mut departments = Vec::new();
    for name in ["hr", "sales"] {
        let created: Value = admin(Method::POST, "/departments", json!({"name": name}))
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        departments.push(created["id"].as_str().unwrap().to_owned());
    }
    let members = admin(
        Method::PUT,
        &format!("/departments/{}/members", departments[0]),
        json!({"identities": ["domain:corp.example", "email:Alice@Corp.Example"]}),
    )
    .await
    .unwrap();
    assert_eq!(members.status(), 200);
    let sales = admin(
        Method::PUT,
        &format!("/departments/{}/members", departments[1]),
        json!({"identities": ["email:bob@corp.example"]}),
    )
    .await
    .unwrap();
    assert_eq!(sales.status(), 200);
    let clash = admin(
        Method::PUT,
        &format!("/departments/{}/members", departments[1]),
        json!({"identities": ["domain:corp.example"]}),
    )
    .await
    .unwrap();
    assert_eq!(clash.status(), 409, "a domain belongs to one department");
    let kb = admin(Method::POST, "/knowledge-bases", json!({"name": "handbook", "department": "hr", "embedding": {"credential": "team-openai", "model": "mock-embed-words"}})).await.unwrap();
    assert_eq!(kb.status(), 201);
    let (_, admin_key) = app.issue_key(&tenant, "admin").await;
    for (name, text) in [
        (
            "leave.md",
            "Parents receive sixteen weeks of paid parental leave.",
        ),
        ("travel.md", "Flights are booked through the travel portal."),
    ] {
        let added = app
            .with_key(
                &admin_key,
                Method::POST,
                "/v1/knowledge-bases/handbook/documents",
            )
            .json(&json!({"name": name, "text": text}))
            .send()
            .await
            .unwrap();
        assert_eq!(added.status(), 201);
    }
    let connector: Value = admin(Method::POST, "/connectors", json!({"kind": "google-chat", "name": "people-chat", "model": "team-openai/gpt-4o-mini", "app_id": PROJECT}))
        .await.unwrap().json().await.unwrap();
    assert_eq!(connector["status"], "active", "{connector}");
    World {
        endpoint: connector["endpoint"].as_str().unwrap().to_owned(),
        app,
        google,
        tenant,
        secret,
    }
}

impl World {
    async fn post(&self, token: Option<&str>, body: &Value) -> (u16, Value) {
        let mut request = self.app.request(Method::POST, &self.endpoint).json(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        (
            response.status().as_u16(),
            response.json().await.unwrap_or(Value::Null),
        )
    }

    fn model_calls(&self) -> u64 {
        self.app.mock.calls(&self.secret)
    }

    async fn department_id(&self, name: &str) -> String {
        let departments = self
            .app
            .operator_get(&format!("/admin/v1/tenants/{}/departments", self.tenant))
            .await;
        departments["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|department| department["name"] == name)
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }
}

#[tokio::test]
async fn a_google_chat_question_is_answered_from_the_department_knowledge_base() {
    for db in [Some(TestDb::sqlite()), TestDb::postgres().await]
        .into_iter()
        .flatten()
    {
        let world = world(&db).await;
        let canary = "CANARYquestion8e2f4a";
        let (status, answer) = world
            .post(
                Some(&world.google.valid()),
                &message(
                    "alice@corp.example",
                    &format!("How many weeks of parental leave? {canary}"),
                ),
            )
            .await;
        assert_eq!(status, 200, "{answer}");
        let text = answer["text"].as_str().unwrap();
        assert!(text.contains("*Sources*\n[1] leave.md"), "{text}");
        // The ledger: the embedding and the chat call, tagged, the user as a hash.
        let usage = world
            .app
            .operator_get(&format!("/admin/v1/tenants/{}/usage", world.tenant))
            .await;
        let chat = usage["data"]
            .as_array()
            .unwrap()
            .iter()
            .find(|row| row["endpoint"] == "/v1/chat/completions")
            .unwrap()
            .clone();
        assert_eq!(chat["tags"]["connector"], "people-chat");
        assert_eq!(chat["tags"]["channel"], "google-chat");
        let end_user = chat["tags"]["end_user"].as_str().unwrap();
        assert_eq!(end_user.len(), 24);
        assert!(!usage.to_string().contains("alice"), "never the identity");
        assert!(
            !captured_logs().contains(canary),
            "nothing of the message is logged"
        );

        // Someone in no department: told to ask their administrator, no model call.
        let before = world.model_calls();
        let (status, answer) = world
            .post(
                Some(&world.google.valid()),
                &message("eve@elsewhere.example", "Hello?"),
            )
            .await;
        assert_eq!(status, 200);
        assert!(
            answer["text"]
                .as_str()
                .unwrap()
                .contains("ask your administrator"),
            "{answer}"
        );
        // An event that is not a message: acknowledged, no model call.
        let (status, _) = world
            .post(
                Some(&world.google.valid()),
                &json!({"type": "ADDED_TO_SPACE", "user": {"email": "alice@corp.example"}}),
            )
            .await;
        assert_eq!(status, 200);
        assert_eq!(world.model_calls(), before);
    }
}

#[tokio::test]
async fn forged_google_chat_requests_are_refused_without_a_model_call() {
    for db in [Some(TestDb::sqlite()), TestDb::postgres().await]
        .into_iter()
        .flatten()
    {
        let world = world(&db).await;
        let body = message("alice@corp.example", "How many weeks of parental leave?");
        let before = world.model_calls();
        let with = |change: &dyn Fn(&mut Value)| {
            let mut forged = claims();
            change(&mut forged);
            world.google.token(&forged, "google-key-1")
        };
        let hmac = {
            let mut header = Header::new(Algorithm::HS256);
            header.kid = Some("google-key-1".to_owned());
            jsonwebtoken::encode(&header, &claims(), &EncodingKey::from_secret(b"guessable"))
                .unwrap()
        };
        let forgeries = [
            ("wrong audience", with(&|c| c["aud"] = json!("999"))),
            (
                "wrong issuer",
                with(&|c| c["iss"] = json!("someone@example.com")),
            ),
            ("expired", with(&|c| c["exp"] = json!(now() - 600))),
            ("unknown key", world.google.token(&claims(), "google-key-9")),
            ("hmac", hmac),
            ("garbage", "not.a.token".to_owned()),
        ];
        for (what, token) in &forgeries {
            let (status, answer) = world.post(Some(token), &body).await;
            assert_eq!(status, 401, "{what}: {answer}");
        }
        let (status, _) = world.post(None, &body).await;
        assert_eq!(status, 401, "no token");
        assert_eq!(
            world.model_calls(),
            before,
            "no forged request reached a model"
        );
        let refused = world.app.metrics_text().await;
        assert!(refused.contains("keyward_connector_requests_refused_total{channel=\"google-chat\",reason=\"audience\"} 1"), "{refused}");
        // An unknown key id refreshes the certificates at most twice a minute.
        assert!(world.google.fetches.load(Ordering::Relaxed) <= 2);

        // A disabled connector answers nobody; an unknown one is not found.
        let id = world.endpoint.split('/').nth(2).unwrap().to_owned();
        let disabled = world
            .app
            .operator(
                Method::POST,
                &format!("/admin/v1/tenants/{}/connectors/{id}/disable", world.tenant),
            )
            .send()
            .await
            .unwrap();
        assert_eq!(disabled.status(), 200);
        let (status, _) = world.post(Some(&world.google.valid()), &body).await;
        assert_eq!(status, 403);
        let unknown = world
            .app
            .request(
                Method::POST,
                "/connectors/0192f5c4-7b7e-7cc0-9d1e-5f3a2b1c0d4e/messages",
            )
            .bearer_auth(world.google.valid())
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(unknown.status(), 404);
        assert_eq!(world.model_calls(), before);
    }
}

/// Microsoft's side: OpenID metadata, the JWKS (keys endorsed for `msteams`), the token
/// endpoint, and a Bot Connector `serviceUrl` that records the replies it receives.
struct FakeMicrosoft {
    origin: String,
    private_pem: Vec<u8>,
    replies: Arc<std::sync::Mutex<Vec<(String, Value)>>>,
    token_requests: Arc<AtomicU64>,
    /// Entra tenants single-tenant bots asked for a token.
    tenant_tokens: Arc<std::sync::Mutex<Vec<String>>>,
}

impl FakeMicrosoft {
    async fn start(app_id: &'static str, app_secret: &'static str) -> Self {
        use axum::extract::{Form, Path};
        use axum::http::HeaderMap;
        use axum::routing::post;
        let dir = tempfile::tempdir().unwrap();
        openssl(
            &[
                "genpkey",
                "-algorithm",
                "RSA",
                "-pkeyopt",
                "rsa_keygen_bits:2048",
                "-out",
                "key.pem",
            ],
            dir.path(),
        );
        let modulus = Command::new("openssl")
            .args(["rsa", "-in", "key.pem", "-noout", "-modulus"])
            .current_dir(dir.path())
            .output()
            .unwrap();
        let hex = String::from_utf8(modulus.stdout)
            .unwrap()
            .trim()
            .trim_start_matches("Modulus=")
            .to_owned();
        let bytes: Vec<u8> = (0..hex.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap())
            .collect();
        use base64::Engine;
        let n = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes);
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let replies = Arc::new(std::sync::Mutex::new(Vec::new()));
        let token_requests = Arc::new(AtomicU64::new(0));
        let tenant_tokens = Arc::new(std::sync::Mutex::new(Vec::new()));
        let asked = tenant_tokens.clone();
        let (jwks_uri, recorded, tokens) = (
            format!("{origin}/keys"),
            replies.clone(),
            token_requests.clone(),
        );
        let router = Router::new()
            .route("/openid", get(move || { let uri = jwks_uri.clone(); async move { Json(json!({"issuer": "https://api.botframework.com", "jwks_uri": uri})) } }))
            .route("/keys", get(move || { let n = n.clone(); async move { Json(json!({"keys": [{"kty": "RSA", "use": "sig", "kid": "ms-1", "n": n, "e": "AQAB", "endorsements": ["msteams"]}]})) } }))
            .route("/token", post(move |Form(form): Form<std::collections::HashMap<String, String>>| {
                tokens.fetch_add(1, Ordering::Relaxed);
                let ok = form.get("client_id").map(String::as_str) == Some(app_id)
                    && form.get("client_secret").map(String::as_str) == Some(app_secret)
                    && form.get("grant_type").map(String::as_str) == Some("client_credentials");
                async move {
                    if ok {
                        (axum::http::StatusCode::OK, Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "bot-token-1"})))
                    } else {
                        (axum::http::StatusCode::UNAUTHORIZED, Json(json!({"error": "invalid_client"})))
                    }
                }
            }))
            .route("/tenants/{tenant}/token", post(move |Path(tenant): Path<String>| {
                asked.lock().unwrap().push(tenant);
                async move { Json(json!({"token_type": "Bearer", "expires_in": 3600, "access_token": "tenant-token-1"})) }
            }))
            .route("/v3/conversations/{conversation}/activities/{activity}", post(move |Path((_, activity)): Path<(String, String)>, headers: HeaderMap, Json(body): Json<Value>| {
                let bearer = headers.get("authorization").and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
                recorded.lock().unwrap().push((bearer, json!({"activity": activity, "body": body})));
                async move { Json(json!({"id": "reply-1"})) }
            }));
        tokio::spawn(async move { axum::serve(listener, router).await });
        Self {
            origin,
            private_pem: std::fs::read(dir.path().join("key.pem")).unwrap(),
            replies,
            token_requests,
            tenant_tokens,
        }
    }

    fn token(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::RS256);
        header.kid = Some("ms-1".to_owned());
        jsonwebtoken::encode(
            &header,
            claims,
            &EncodingKey::from_rsa_pem(&self.private_pem).unwrap(),
        )
        .unwrap()
    }

    fn service_url(&self) -> String {
        format!("{}/", self.origin)
    }

    fn claims(&self) -> Value {
        json!({"iss": "https://api.botframework.com", "aud": TEAMS_APP, "exp": now() + 600, "nbf": now() - 10, "serviceurl": self.service_url()})
    }

    async fn replies_after(&self, count: usize) -> Vec<(String, Value)> {
        for _ in 0..200 {
            if self.replies.lock().unwrap().len() >= count {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        self.replies.lock().unwrap().clone()
    }
}

const TEAMS_APP: &str = "6f1c8a52-teams-app";
const TEAMS_SECRET: &str = "CANARYteamsAppPassword7b2e";

fn activity(fake: &FakeMicrosoft, id: &str, channel: &str, object: &str, text: &str) -> Value {
    json!({"type": "message", "id": id, "channelId": channel, "serviceUrl": fake.service_url(),
           "timestamp": "2026-12-07T10:00:00Z", "conversation": {"id": "a:1conversation;messageid=1"},
           "from": {"id": "29:user", "aadObjectId": object}, "recipient": {"id": "28:bot"},
           "channelData": {"tenant": {"id": "contoso-tenant"}}, "text": format!("<at>Keyward</at> {text}")})
}

#[tokio::test]
async fn a_teams_question_is_answered_in_the_conversation_and_forgeries_are_refused() {
    for db in [Some(TestDb::sqlite()), TestDb::postgres().await]
        .into_iter()
        .flatten()
    {
        let fake = FakeMicrosoft::start(TEAMS_APP, TEAMS_SECRET).await;
        let world = world_with(
            &db,
            &[
                (
                    "KEYWARD_CONNECTORS_TEAMS_OPENID_METADATA_URL",
                    &format!("{}/openid", fake.origin),
                ),
                (
                    "KEYWARD_CONNECTORS_TEAMS_TOKEN_URL",
                    &format!("{}/token", fake.origin),
                ),
                (
                    "KEYWARD_CONNECTORS_TEAMS_TENANT_TOKEN_URL",
                    &format!("{}/tenants/{{tenant}}/token", fake.origin),
                ),
                ("KEYWARD_CONNECTORS_TEAMS_SERVICE_URL_ALLOW", "127.0.0.1"),
            ],
        )
        .await;
        let hr = world.department_id("hr").await;
        let members = world
            .app
            .operator(
                Method::PUT,
                &format!(
                    "/admin/v1/tenants/{}/departments/{hr}/members",
                    world.tenant
                ),
            )
            .json(&json!({"identities": ["aad:contoso-tenant/obj-alice", "domain:corp.example"]}))
            .send()
            .await
            .unwrap();
        assert_eq!(members.status(), 200);
        let created = world.app.operator(Method::POST, &format!("/admin/v1/tenants/{}/connectors", world.tenant))
            .json(&json!({"kind": "teams", "name": "people-bot", "model": "team-openai/gpt-4o-mini", "app_id": TEAMS_APP, "app_secret": TEAMS_SECRET}))
            .send().await.unwrap();
        assert_eq!(created.status(), 201);
        let created_text = created.text().await.unwrap();
        assert!(
            !created_text.contains(TEAMS_SECRET),
            "the app password is never shown again"
        );
        let endpoint = serde_json::from_str::<Value>(&created_text).unwrap()["endpoint"]
            .as_str()
            .unwrap()
            .to_owned();
        let post = |token: Option<String>, body: Value| {
            let mut request = world.app.request(Method::POST, &endpoint).json(&body);
            if let Some(token) = token {
                request = request.bearer_auth(token);
            }
            request.send()
        };

        let question = activity(
            &fake,
            "act-1",
            "msteams",
            "obj-alice",
            "How many weeks of parental leave?",
        );
        let accepted = post(Some(fake.token(&fake.claims())), question.clone())
            .await
            .unwrap();
        assert_eq!(accepted.status(), 202);
        let replies = fake.replies_after(1).await;
        assert_eq!(replies.len(), 1, "one reply");
        let (bearer, reply) = &replies[0];
        assert_eq!(bearer, "Bearer bot-token-1");
        assert_eq!(reply["activity"], "act-1");
        assert_eq!(reply["body"]["replyToId"], "act-1");
        assert_eq!(
            reply["body"]["conversation"]["id"],
            "a:1conversation;messageid=1"
        );
        assert_eq!(reply["body"]["from"]["id"], "28:bot");
        assert_eq!(reply["body"]["recipient"]["id"], "29:user");
        assert!(
            reply["body"]["text"]
                .as_str()
                .unwrap()
                .contains("[1] leave.md"),
            "{reply}"
        );

        // A replay is acknowledged once more, answered not again.
        let calls = world.model_calls();
        let replay = post(Some(fake.token(&fake.claims())), question)
            .await
            .unwrap();
        assert_eq!(replay.status(), 200);
        let second = activity(&fake, "act-2", "msteams", "obj-alice", "And the per diem?");
        assert_eq!(
            post(Some(fake.token(&fake.claims())), second)
                .await
                .unwrap()
                .status(),
            202
        );
        assert_eq!(fake.replies_after(2).await.len(), 2);
        assert_eq!(
            fake.token_requests.load(Ordering::Relaxed),
            1,
            "the app's token is cached"
        );
        let calls_after_second = world.model_calls();
        assert!(calls_after_second > calls);

        // Forgeries: 401, no model call, no reply.
        let forged = |change: &dyn Fn(&mut Value)| {
            let mut claims = fake.claims();
            change(&mut claims);
            fake.token(&claims)
        };
        let cases = [
            (
                "audience",
                Some(forged(&|c| c["aud"] = json!("another-bot"))),
                activity(&fake, "f1", "msteams", "obj-alice", "q"),
            ),
            (
                "serviceurl claim",
                Some(forged(&|c| {
                    c["serviceurl"] = json!("https://evil.example/")
                })),
                activity(&fake, "f2", "msteams", "obj-alice", "q"),
            ),
            (
                "endorsement",
                Some(fake.token(&fake.claims())),
                activity(&fake, "f3", "skype", "obj-alice", "q"),
            ),
            (
                "expired",
                Some(forged(&|c| c["exp"] = json!(now() - 600))),
                activity(&fake, "f4", "msteams", "obj-alice", "q"),
            ),
            (
                "no token",
                None,
                activity(&fake, "f5", "msteams", "obj-alice", "q"),
            ),
        ];
        for (what, token, body) in cases {
            let response = post(token, body).await.unwrap();
            assert_eq!(response.status(), 401, "{what}");
        }
        // A serviceUrl outside the allow-list, even correctly signed for it.
        let mut outside = activity(&fake, "f6", "msteams", "obj-alice", "q");
        outside["serviceUrl"] = json!("https://smba.evil.example/");
        let mut claims = fake.claims();
        claims["serviceurl"] = json!("https://smba.evil.example/");
        assert_eq!(
            post(Some(fake.token(&claims)), outside)
                .await
                .unwrap()
                .status(),
            401
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        assert_eq!(
            world.model_calls(),
            calls_after_second,
            "no forged request reached a model"
        );
        assert_eq!(
            fake.replies.lock().unwrap().len(),
            2,
            "nobody else got a reply"
        );

        // A single-tenant bot gets its token from its own Entra tenant's endpoint.
        let single: Value = world.app.operator(Method::POST, &format!("/admin/v1/tenants/{}/connectors", world.tenant))
            .json(&json!({"kind": "teams", "name": "single-bot", "model": "team-openai/gpt-4o-mini", "app_id": TEAMS_APP,
                          "app_secret": TEAMS_SECRET, "app_tenant_id": "contoso-tenant-guid"}))
            .send().await.unwrap().json().await.unwrap();
        assert_eq!(single["app_tenant_id"], "contoso-tenant-guid", "{single}");
        let reply = world
            .app
            .request(Method::POST, single["endpoint"].as_str().unwrap())
            .bearer_auth(fake.token(&fake.claims()))
            .json(&activity(
                &fake,
                "act-9",
                "msteams",
                "obj-alice",
                "What about travel?",
            ))
            .send()
            .await
            .unwrap();
        assert_eq!(reply.status(), 202);
        let replies = fake.replies_after(3).await;
        assert_eq!(replies.len(), 3);
        assert_eq!(replies[2].0, "Bearer tenant-token-1");
        assert_eq!(*fake.tenant_tokens.lock().unwrap(), ["contoso-tenant-guid"]);

        // The app password is sealed: never in the database files, logs or responses.
        assert!(!captured_logs().contains(TEAMS_SECRET));
        if !db.is_postgres() {
            assert!(!crate::harness::contains(
                &world.app.database_bytes(),
                TEAMS_SECRET
            ));
        }
        let listed = world
            .app
            .operator_get(&format!("/admin/v1/tenants/{}/connectors", world.tenant))
            .await;
        assert!(!listed.to_string().contains(TEAMS_SECRET));
    }
}

/// A Teams app password held in Vault (`app_secret_ref`) is fetched when a token is needed and
/// never stored; a tenant admin may not point at a secret outside its prefixes.
#[tokio::test]
async fn a_teams_app_password_held_in_vault_is_fetched_for_its_token() {
    let Some(km) = crate::custody::key_managers() else {
        return;
    };
    let path = crate::custody::unique("teams");
    crate::custody::bao_kv_put(
        &km,
        &format!("{path}/bot"),
        json!({"password": TEAMS_SECRET}),
    )
    .await;
    let fake = FakeMicrosoft::start(TEAMS_APP, TEAMS_SECRET).await;
    let db = TestDb::sqlite();
    let urls = [
        format!("{}/openid", fake.origin),
        format!("{}/token", fake.origin),
    ];
    let world = world_with_env(
        &db,
        &[
            (
                "KEYWARD_CONNECTORS_TEAMS_OPENID_METADATA_URL",
                urls[0].as_str(),
            ),
            ("KEYWARD_CONNECTORS_TEAMS_TOKEN_URL", urls[1].as_str()),
            ("KEYWARD_CONNECTORS_TEAMS_SERVICE_URL_ALLOW", "127.0.0.1"),
        ],
        &[
            ("VAULT_ADDR", km.bao.as_str()),
            ("VAULT_TOKEN", km.bao_token.as_str()),
        ],
    )
    .await;
    let hr = world.department_id("hr").await;
    let members = world
        .app
        .operator(
            Method::PUT,
            &format!(
                "/admin/v1/tenants/{}/departments/{hr}/members",
                world.tenant
            ),
        )
        .json(&json!({"identities": ["aad:contoso-tenant/obj-alice"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(members.status(), 200);
    let path_to_connectors = format!("/admin/v1/tenants/{}/connectors", world.tenant);
    let reference = format!("vault://secret/{path}/bot#password");
    let both = world
        .app
        .operator(Method::POST, &path_to_connectors)
        .json(&json!({"kind": "teams", "name": "both", "model": "team-openai/gpt-4o-mini", "app_id": TEAMS_APP, "app_secret": TEAMS_SECRET, "app_secret_ref": reference}))
        .send()
        .await
        .unwrap();
    assert_eq!(both.status(), 400);
    let (_, admin) = world.app.issue_key(&world.tenant, "admin").await;
    let by_tenant = world
        .app
        .with_key(&admin, Method::POST, &path_to_connectors)
        .json(&json!({"kind": "teams", "name": "theirs", "model": "team-openai/gpt-4o-mini", "app_id": TEAMS_APP, "app_secret_ref": reference}))
        .send()
        .await
        .unwrap();
    assert_eq!(
        by_tenant.status(),
        400,
        "no tenant reference prefixes on this server"
    );
    assert!(by_tenant.text().await.unwrap().contains("app_secret_ref"));
    let created: Value = world
        .app
        .operator(Method::POST, &path_to_connectors)
        .json(&json!({"kind": "teams", "name": "vault-bot", "model": "team-openai/gpt-4o-mini", "app_id": TEAMS_APP, "app_secret_ref": reference}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(created["app_secret_ref"], reference.as_str(), "{created}");
    let reply = world
        .app
        .request(Method::POST, created["endpoint"].as_str().unwrap())
        .bearer_auth(fake.token(&fake.claims()))
        .json(&activity(
            &fake,
            "act-v1",
            "msteams",
            "obj-alice",
            "What is the leave policy?",
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 202);
    let replies = fake.replies_after(1).await;
    assert_eq!(
        replies.len(),
        1,
        "the token came from the password in Vault"
    );
    assert_eq!(replies[0].0, "Bearer bot-token-1");
    assert!(!crate::harness::contains(
        &world.app.database_bytes(),
        TEAMS_SECRET
    ));
    assert!(!captured_logs().contains(TEAMS_SECRET));
}
