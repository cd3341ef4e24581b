//! A fake of the two Azure endpoints Keyward uses — Microsoft Entra ID's client-credentials
//! token endpoint and Key Vault's Get Secret — written from their documented REST shapes
//! (learn.microsoft.com: "Microsoft identity platform and the OAuth 2.0 client credentials
//! flow"; Key Vault REST "Get Secret", api-version 7.5; error bodies as the Azure SDKs'
//! recorded service answers show them). Azure has no offline emulator of Key Vault, so the
//! Azure tests run against this; AWS and Vault tests use the real moto and OpenBao servers.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Form, Json, Router};
use serde_json::json;

pub const TENANT_ID: &str = "00000000-1111-2222-3333-444444444444";
pub const CLIENT_ID: &str = "keyward-test-client";
pub const CLIENT_SECRET: &str = "azure-client-secret-canary-7f3a";
const ACCESS_TOKEN: &str = "azure-access-token-canary-19be";

#[derive(Default)]
struct Inner {
    /// (vault, name) → value
    secrets: Mutex<HashMap<(String, String), String>>,
    token_requests: AtomicU64,
    secret_requests: AtomicU64,
}

#[derive(Clone, Default)]
pub struct FakeAzure {
    inner: Arc<Inner>,
    pub origin: String,
}

impl FakeAzure {
    pub async fn start() -> Self {
        let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let origin = format!("http://{}", listener.local_addr().unwrap());
        let fake = Self {
            inner: Arc::default(),
            origin,
        };
        let router = Router::new()
            .route("/{tenant}/oauth2/v2.0/token", post(token))
            .route("/{vault}/secrets/{name}", get(secret))
            .with_state(fake.inner.clone());
        tokio::spawn(async move { axum::serve(listener, router).await });
        fake
    }

    /// The environment Keyward's Azure client reads to reach this fake's Entra ID.
    pub fn env(&self) -> Vec<(String, String)> {
        vec![
            ("AZURE_TENANT_ID".to_owned(), TENANT_ID.to_owned()),
            ("AZURE_CLIENT_ID".to_owned(), CLIENT_ID.to_owned()),
            ("AZURE_CLIENT_SECRET".to_owned(), CLIENT_SECRET.to_owned()),
            ("AZURE_AUTHORITY_HOST".to_owned(), self.origin.clone()),
        ]
    }

    pub fn set(&self, vault: &str, name: &str, value: &str) {
        self.inner
            .secrets
            .lock()
            .unwrap()
            .insert((vault.to_owned(), name.to_owned()), value.to_owned());
    }

    pub fn remove(&self, vault: &str, name: &str) {
        self.inner
            .secrets
            .lock()
            .unwrap()
            .remove(&(vault.to_owned(), name.to_owned()));
    }

    pub fn token_requests(&self) -> u64 {
        self.inner.token_requests.load(Ordering::SeqCst)
    }

    /// Get Secret requests answered so far (any vault, any name).
    pub fn secret_requests(&self) -> u64 {
        self.inner.secret_requests.load(Ordering::SeqCst)
    }
}

async fn token(
    State(inner): State<Arc<Inner>>,
    Path(tenant): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Response {
    inner.token_requests.fetch_add(1, Ordering::SeqCst);
    let field = |name: &str| form.get(name).map(String::as_str).unwrap_or_default();
    let valid = tenant == TENANT_ID
        && field("grant_type") == "client_credentials"
        && field("client_id") == CLIENT_ID
        && field("client_secret") == CLIENT_SECRET
        && field("scope") == "https://vault.azure.net/.default";
    if !valid {
        return (
            StatusCode::UNAUTHORIZED,
            Json(json!({
                "error": "invalid_client",
                "error_description": "AADSTS7000215: Invalid client secret provided.",
                "error_codes": [7000215],
            })),
        )
            .into_response();
    }
    Json(json!({
        "token_type": "Bearer",
        "expires_in": 3599,
        "ext_expires_in": 3599,
        "access_token": ACCESS_TOKEN,
    }))
    .into_response()
}

async fn secret(
    State(inner): State<Arc<Inner>>,
    Path((vault, name)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Response {
    inner.secret_requests.fetch_add(1, Ordering::SeqCst);
    let bearer = headers
        .get("authorization")
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    if bearer != Some(ACCESS_TOKEN) {
        return (
            StatusCode::UNAUTHORIZED,
            [(
                "www-authenticate",
                "Bearer authorization=\"https://login.windows.net/tenant\", resource=\"https://vault.azure.net\"",
            )],
            Json(json!({"error": {"code": "Unauthorized", "message": "AKV10000: Request is missing a Bearer or PoP token."}})),
        )
            .into_response();
    }
    if !query.contains_key("api-version") {
        return (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": {"code": "BadParameter", "message": "The request URI contains an invalid or missing api-version."}})),
        )
            .into_response();
    }
    let value = inner
        .secrets
        .lock()
        .unwrap()
        .get(&(vault.clone(), name.clone()))
        .cloned();
    match value {
        Some(value) => Json(json!({
            "value": value,
            "id": format!("https://{vault}.vault.azure.net/secrets/{name}/4387e9f3d6e14c459867679a90fd0f79"),
            "attributes": {"enabled": true, "created": 1_493_938_410, "updated": 1_493_938_410, "recoveryLevel": "Recoverable+Purgeable"},
        }))
        .into_response(),
        None => (
            StatusCode::NOT_FOUND,
            Json(json!({"error": {"code": "SecretNotFound", "message": format!("A secret with (name/id) {name} was not found in this key vault.")}})),
        )
            .into_response(),
    }
}
