//! Key custody outside Keyward (#8) against real key managers: AWS KMS and Secrets Manager
//! (moto in server mode), Vault Transit / KV v2 / AppRole (the OpenBao dev server), and Azure
//! Key Vault (the documented-shape fake in `fake_azure`). `scripts/with-key-managers.sh`
//! starts the real ones; without them these tests skip with a notice, unless
//! `TEST_KEY_MANAGERS_REQUIRED=1` (the README's test command), where they fail.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use keyward::config::Config;
use keyward_custody::aws::KMS;
use keyward_custody::{AwsClient, ManagerHttp};
use keyward_vault::EnvLookup;
use reqwest::Method;
use serde_json::{json, Value};

use crate::fake_azure::{self, FakeAzure};
use crate::harness::{captured_logs, contains, TestApp};

pub(crate) struct KeyManagers {
    pub moto: String,
    pub bao: String,
    pub bao_token: String,
}

pub(crate) fn key_managers() -> Option<KeyManagers> {
    let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
    match (
        var("TEST_MOTO_URL"),
        var("TEST_BAO_ADDR"),
        var("TEST_BAO_TOKEN"),
    ) {
        (Some(moto), Some(bao), Some(bao_token)) => Some(KeyManagers {
            moto,
            bao,
            bao_token,
        }),
        _ if var("TEST_KEY_MANAGERS_REQUIRED").as_deref() == Some("1") => {
            panic!("TEST_KEY_MANAGERS_REQUIRED=1 but moto / OpenBao are not running; use scripts/with-key-managers.sh")
        }
        _ => {
            eprintln!("skipped: no key managers (run under scripts/with-key-managers.sh)");
            None
        }
    }
}

pub(crate) fn unique(prefix: &str) -> String {
    // The tail of a v7 id is random (its head is the clock).
    let id = keyward_core::RequestId::generate().to_string();
    format!("{prefix}-{}", &id[id.len() - 10..])
}

/// The AWS environment a deployment on moto has.
pub(crate) fn aws_env(endpoint: &str) -> Vec<(String, String)> {
    vec![
        ("AWS_ENDPOINT_URL".into(), endpoint.into()),
        ("AWS_ACCESS_KEY_ID".into(), "testing".into()),
        ("AWS_SECRET_ACCESS_KEY".into(), "testing".into()),
        ("AWS_REGION".into(), "us-east-1".into()),
    ]
}

pub(crate) fn refs(pairs: &[(String, String)]) -> Vec<(&str, &str)> {
    pairs
        .iter()
        .map(|(name, value)| (name.as_str(), value.as_str()))
        .collect()
}

/// A process environment holding exactly `pairs`.
fn env_lookup(pairs: Vec<(String, String)>) -> EnvLookup {
    Arc::new(move |name| {
        pairs
            .iter()
            .find(|(var, _)| var == name)
            .map(|(_, value)| value.clone())
    })
}

fn aws(endpoint: &str) -> Arc<AwsClient> {
    AwsClient::new(ManagerHttp::new().unwrap(), env_lookup(aws_env(endpoint)))
}

pub(crate) async fn aws_call(
    km: &KeyManagers,
    service: keyward_custody::aws::Service,
    operation: &str,
    body: Value,
) -> Result<Value, String> {
    match aws(&km.moto)
        .call(service, operation, "us-east-1", &body)
        .await
        .unwrap()
    {
        Ok(answer) => Ok(serde_json::from_slice(&answer).unwrap()),
        Err(fault) => Err(fault.kind),
    }
}

async fn create_kms_key(km: &KeyManagers) -> String {
    let created = aws_call(km, KMS, "CreateKey", json!({"Description": "keyward test"}))
        .await
        .unwrap();
    created["KeyMetadata"]["Arn"].as_str().unwrap().to_owned()
}

pub(crate) async fn bao(
    km: &KeyManagers,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, format!("{}/v1/{path}", km.bao))
        .header("x-vault-token", &km.bao_token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// Enables an engine or auth method once (parallel tests race to it; "already in use" is fine).
async fn bao_enable(km: &KeyManagers, path: &str, kind: &str) {
    let (status, body) = bao(km, Method::POST, path, Some(json!({"type": kind}))).await;
    assert!(
        status == 204 || body.to_string().contains("already in use"),
        "{path}: {status} {body}"
    );
}

pub(crate) async fn bao_kv_put(km: &KeyManagers, path: &str, data: Value) {
    let (status, body) = bao(
        km,
        Method::POST,
        &format!("secret/data/{path}"),
        Some(json!({ "data": data })),
    )
    .await;
    assert_eq!(status, 200, "{body}");
}

/// A tenant with a member key and an OpenAI credential whose secret is `secret` or `secret_ref`.
pub(crate) async fn connect(app: &TestApp, tenant: &str, label: &str, secret: Value) -> Value {
    let mut body = json!({"provider": "openai", "label": label, "base_url": format!("{}/v1", app.mock_origin)});
    for (field, value) in secret.as_object().unwrap() {
        body[field] = value.clone();
    }
    let response = app
        .operator(
            Method::POST,
            &format!("/admin/v1/tenants/{tenant}/credentials"),
        )
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = response.status();
    let text = response.text().await.unwrap();
    assert_eq!(status, 201, "{text}");
    serde_json::from_str(&text).unwrap()
}

pub(crate) async fn chat(app: &TestApp, key: &str, label: &str) -> (u16, Value) {
    let response = app
        .with_key(key, Method::POST, "/v1/chat/completions")
        .json(&json!({"model": format!("{label}/gpt-4o-mini"), "messages": [{"role": "user", "content": "hi"}]}))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

/// A deployment on master-key `source`: tenant `acme` with an OpenAI credential `oa` holding
/// `secret`, and a member key whose first call through it succeeds.
async fn serving(source: &str, env: &[(String, String)], secret: &str) -> TestApp {
    let app = TestApp::spawn_with_env(&[("KEYWARD_MASTER_KEY_SOURCE", source)], &refs(env)).await;
    let tenant = app.create_tenant("acme").await;
    connect(&app, &tenant, "oa", json!({ "secret": secret })).await;
    let (_, key) = app.issue_key(&tenant, "member").await;
    let (status, answer) = chat(&app, &key, "oa").await;
    assert_eq!(status, 200, "{answer}");
    app
}

/// Opens Keyward on a data directory the way `serve` does, for startup failures.
async fn open(
    dir: &Path,
    master_key_source: &str,
    process_env: &[(String, String)],
) -> anyhow::Result<keyward_domain::Keyward> {
    let env = std::collections::BTreeMap::from([
        (
            "KEYWARD_STORE_URL".to_owned(),
            format!("sqlite://{}", dir.join("keyward.db").display()),
        ),
        (
            "KEYWARD_MASTER_KEY_SOURCE".to_owned(),
            master_key_source.to_owned(),
        ),
    ]);
    let config = Config::from_sources("", Path::new("test.toml"), &env).unwrap();
    keyward::startup::open_keyward(&config, env_lookup(process_env.to_vec()), None).await
}

/// Copies a stopped deployment's data directory (database, WAL, the harness's key file).
fn copy_dir(from: &Path) -> tempfile::TempDir {
    let to = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.file_type().unwrap().is_file() {
            std::fs::copy(entry.path(), to.path().join(entry.file_name())).unwrap();
        }
    }
    to
}

fn every_file(dir: &Path) -> Vec<u8> {
    let mut bytes = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            bytes.extend(std::fs::read(path).unwrap());
        }
    }
    bytes
}

/// A TCP relay to `target` that can be cut, standing for a key manager that goes away.
pub(crate) async fn relay(target: String) -> (String, tokio::sync::oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .await
        .unwrap();
    let address = format!("http://{}", listener.local_addr().unwrap());
    let target = target.trim_start_matches("http://").to_owned();
    let (cut, mut cut_signal) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(async move {
        let mut connections = tokio::task::JoinSet::new();
        loop {
            tokio::select! {
                _ = &mut cut_signal => break,
                accepted = listener.accept() => {
                    let Ok((mut inbound, _)) = accepted else { break };
                    let target = target.clone();
                    connections.spawn(async move {
                        if let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await {
                            let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                        }
                    });
                }
            }
        }
        // Dropping the set aborts every open connection; dropping the listener refuses new ones.
    });
    (address, cut)
}

#[tokio::test]
async fn a_kms_deployment_keeps_only_wrapped_data_keys_and_a_dump_with_its_key_file_opens_nothing()
{
    let Some(km) = key_managers() else { return };
    let arn = create_kms_key(&km).await;
    let env = aws_env(&km.moto);
    let source = format!("aws-kms:{arn}");
    let canary = "sk-kms-canary-0123456789abcdef";
    let app = serving(&source, &env, canary).await;
    assert_eq!(app.mock.calls(canary), 1);

    // What the database holds: the data key wrapped by this KMS key, for this deployment.
    let store = app.store().await;
    let wrapped = store.wrapped_data_keys().await.unwrap();
    assert_eq!(wrapped.len(), 1);
    assert_eq!(wrapped[0].wrapper, source);
    assert_eq!(wrapped[0].version.get(), 1);
    let deployment = store.deployment_id("not-this-one").await.unwrap();
    let decrypt = |deployment: &str, version: &str| {
        aws_call(
            &km,
            KMS,
            "Decrypt",
            json!({
                "CiphertextBlob": wrapped[0].wrapped,
                "KeyId": arn,
                "EncryptionContext": {"keyward:deployment": deployment, "keyward:key-version": version},
            }),
        )
    };
    let data_key = decrypt(&deployment, "1").await.unwrap()["Plaintext"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(STANDARD.decode(&data_key).unwrap().len(), 32);
    // KMS binds it to its context: another deployment, or the blob relabelled as another
    // version, does not unwrap.
    assert_eq!(
        decrypt("another-deployment", "1").await.unwrap_err(),
        "InvalidCiphertextException"
    );
    assert_eq!(
        decrypt(&deployment, "2").await.unwrap_err(),
        "InvalidCiphertextException"
    );

    // Stop the deployment and take everything an attacker with the disk would have.
    let dir = app.dir.clone();
    drop(store);
    drop(app);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let dump = copy_dir(dir.path());
    let bytes = every_file(dump.path());
    assert!(
        !contains(&bytes, canary),
        "the provider key is in the clear"
    );
    assert!(
        !contains(&bytes, &data_key),
        "the data key is in the clear (base64)"
    );
    let raw = STANDARD.decode(&data_key).unwrap();
    assert!(
        !bytes
            .windows(raw.len())
            .any(|window| window == raw.as_slice()),
        "the data key is in the clear (raw)"
    );
    assert!(dump.path().join("master.key").exists());

    // The key file found beside the database is not the key that sealed it.
    let key_file = format!("file:{}", dump.path().join("master.key").display());
    let err = format!("{:#}", open(dump.path(), &key_file, &[]).await.unwrap_err());
    assert!(
        err.contains("not the key that sealed this database"),
        "{err}"
    );
    // Without KMS: no fallback, and the message names the key.
    let unreachable = aws_env("http://127.0.0.1:9");
    let err = format!(
        "{:#}",
        open(dump.path(), &source, &unreachable).await.unwrap_err()
    );
    assert!(
        err.contains(&arn) && err.contains("cannot be reached"),
        "{err}"
    );
    assert!(err.contains("does not fall back"), "{err}");
    // Another KMS key (Keyward's identity has no access to the right one): version 1 stays
    // missing, so the server refuses to start rather than fail per call.
    let other = format!("aws-kms:{}", create_kms_key(&km).await);
    let err = format!("{:#}", open(dump.path(), &other, &env).await.unwrap_err());
    assert!(err.contains("version 1"), "{err}");
    // With KMS and the right key, the same dump opens and the credential reads.
    let opened = open(dump.path(), &source, &env).await.unwrap();
    drop(opened);
}

#[tokio::test]
async fn a_kms_that_goes_away_after_startup_leaves_the_unwrapped_key_working() {
    let Some(km) = key_managers() else { return };
    let arn = create_kms_key(&km).await;
    let (endpoint, cut) = relay(km.moto.clone()).await;
    let env = aws_env(&endpoint);
    let source = format!("aws-kms:{arn}");
    let app = TestApp::spawn_with_env(&[("KEYWARD_MASTER_KEY_SOURCE", &source)], &refs(&env)).await;
    let tenant = app.create_tenant("acme").await;
    connect(
        &app,
        &tenant,
        "before",
        json!({"secret": "sk-before-cut-000000000001"}),
    )
    .await;
    let (_, key) = app.issue_key(&tenant, "member").await;

    cut.send(()).unwrap();
    tokio::time::sleep(Duration::from_millis(100)).await;
    // Sealing and opening need no KMS call: the data key was unwrapped once, at startup.
    connect(
        &app,
        &tenant,
        "after",
        json!({"secret": "sk-after-cut-0000000000002"}),
    )
    .await;
    for label in ["before", "after"] {
        let (status, answer) = chat(&app, &key, label).await;
        assert_eq!(status, 200, "{label}: {answer}");
    }
    // A restart, though, cannot unwrap it: clear error naming the key, no fallback.
    let err = format!(
        "{:#}",
        open(app.dir.path(), &source, &env).await.unwrap_err()
    );
    assert!(
        err.contains(&arn) && err.contains("cannot be reached"),
        "{err}"
    );
    // A key id KMS does not know is named as such.
    let missing =
        "aws-kms:arn:aws:kms:us-east-1:123456789012:key/00000000-0000-0000-0000-000000000000";
    let fresh = tempfile::tempdir().unwrap();
    let err = format!(
        "{:#}",
        open(fresh.path(), missing, &aws_env(&km.moto))
            .await
            .unwrap_err()
    );
    assert!(
        err.contains("does not exist") && err.contains("00000000-0000"),
        "{err}"
    );
}

#[tokio::test]
async fn moving_from_a_key_file_to_kms_rewraps_every_row_online() {
    let Some(km) = key_managers() else { return };
    let arn = create_kms_key(&km).await;
    let env = aws_env(&km.moto);
    let app = TestApp::spawn_with_env(&[], &refs(&env)).await;
    let tenant = app.create_tenant("acme").await;
    let secrets = [
        "sk-move-one-000000000000001",
        "sk-move-two-000000000000002",
        "sk-move-three-0000000000003",
    ];
    for (index, secret) in secrets.iter().enumerate() {
        connect(
            &app,
            &tenant,
            &format!("c{index}"),
            json!({"secret": secret}),
        )
        .await;
    }
    let (_, key) = app.issue_key(&tenant, "member").await;
    let key_file = format!("file:{}", app.dir.path().join("master.key").display());
    let source = format!("aws-kms:{arn}");

    // Switch the source; the old file stays readable until the re-wrap is done.
    let moved = app
        .sibling_with_env(
            &[
                ("KEYWARD_MASTER_KEY_SOURCE", &source),
                ("KEYWARD_MASTER_KEY_PREVIOUS_SOURCES", &key_file),
            ],
            &refs(&env),
        )
        .await;
    // (`app` keeps serving the mock the siblings call; it is not used again.)
    let status = moved
        .master_key_status_when(Duration::from_secs(20), |status| {
            status["versions"][0]["rows"] == 0 && status["rewrap"]["done"] == 3
        })
        .await;
    assert_eq!(status["primary"], 2, "{status}");
    assert_eq!(status["versions"][0]["rows"], 0, "{status}");
    assert_eq!(status["versions"][1]["rows"], 3, "{status}");
    assert_eq!(status["rewrap"]["failed"], 0, "{status}");

    // The file is no longer needed: KMS alone opens every credential.
    let kms_only = moved
        .sibling_with_env(&[("KEYWARD_MASTER_KEY_SOURCE", &source)], &refs(&env))
        .await;
    for (index, secret) in secrets.iter().enumerate() {
        let (status, answer) = chat(&kms_only, &key, &format!("c{index}")).await;
        assert_eq!(status, 200, "{answer}");
        assert_eq!(kms_only.mock.calls(secret), 1);
    }
    std::fs::remove_file(kms_only.dir.path().join("master.key")).unwrap();
    let restarted = open(kms_only.dir.path(), &source, &env).await;
    assert!(restarted.is_ok(), "{:?}", restarted.err());
    drop(restarted);

    // Rotating within KMS: a new data key from KMS, the same online re-wrap.
    let rotated = kms_only
        .operator(Method::POST, "/admin/v1/masterkey/rotate")
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(rotated.status(), 202);
    let status = kms_only
        .master_key_status_when(Duration::from_secs(20), |status| {
            status["versions"][2]["rows"] == 3
        })
        .await;
    assert_eq!(status["primary"], 3, "{status}");
    assert_eq!(status["versions"][2]["rows"], 3, "{status}");
    let store = kms_only.store().await;
    let wrapped = store.wrapped_data_keys().await.unwrap();
    assert_eq!(
        wrapped
            .iter()
            .map(|key| key.version.get())
            .collect::<Vec<_>>(),
        [2, 3]
    );
    let (status, answer) = chat(&kms_only, &key, "c0").await;
    assert_eq!(status, 200, "{answer}");
}

/// A Transit key, and an AppRole whose policy allows exactly that key and one KV subtree.
async fn transit_with_approle(km: &KeyManagers, key: &str, kv_prefix: &str) -> (String, String) {
    bao_enable(km, "sys/mounts/transit", "transit").await;
    bao_enable(km, "sys/auth/approle", "approle").await;
    let (status, body) = bao(
        km,
        Method::POST,
        &format!("transit/keys/{key}"),
        Some(json!({"type": "aes256-gcm96"})),
    )
    .await;
    assert!(status == 200 || status == 204, "{body}");
    let policy = format!(
        "path \"transit/encrypt/{key}\" {{ capabilities = [\"update\"] }}\n\
         path \"transit/decrypt/{key}\" {{ capabilities = [\"update\"] }}\n\
         path \"secret/data/{kv_prefix}/*\" {{ capabilities = [\"read\"] }}\n"
    );
    let (status, body) = bao(
        km,
        Method::PUT,
        &format!("sys/policies/acl/{key}"),
        Some(json!({ "policy": policy })),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (status, body) = bao(
        km,
        Method::POST,
        &format!("auth/approle/role/{key}"),
        Some(json!({"token_policies": [key], "token_ttl": "1h", "token_max_ttl": "4h"})),
    )
    .await;
    assert_eq!(status, 204, "{body}");
    let (_, role) = bao(
        km,
        Method::GET,
        &format!("auth/approle/role/{key}/role-id"),
        None,
    )
    .await;
    let (_, secret) = bao(
        km,
        Method::POST,
        &format!("auth/approle/role/{key}/secret-id"),
        None,
    )
    .await;
    (
        role["data"]["role_id"].as_str().unwrap().to_owned(),
        secret["data"]["secret_id"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn vault_transit_wraps_the_master_key_and_kv_holds_a_referenced_secret_via_approle() {
    let Some(km) = key_managers() else { return };
    let key = unique("kw-transit");
    let kv_prefix = unique("acme");
    let (role_id, secret_id) = transit_with_approle(&km, &key, &kv_prefix).await;
    let canary = "sk-vault-kv-canary-00000000001";
    bao_kv_put(
        &km,
        &format!("{kv_prefix}/openai"),
        json!({"api_key": canary, "note": "other field"}),
    )
    .await;

    let secret_id_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(secret_id_file.path(), &secret_id).unwrap();
    let secret_id_path = secret_id_file.path().display().to_string();
    let source = format!("vault-transit:{key}");
    let env = vec![("VAULT_ADDR".to_owned(), km.bao.clone())];
    let app = TestApp::spawn_with_env(
        &[
            ("KEYWARD_MASTER_KEY_SOURCE", &source),
            ("KEYWARD_VAULT_ROLE_ID", &role_id),
            ("KEYWARD_VAULT_SECRET_ID_FILE", &secret_id_path),
        ],
        &refs(&env),
    )
    .await;
    let tenant = app.create_tenant("acme").await;
    let reference = format!("vault://secret/{kv_prefix}/openai#api_key");
    let view = connect(&app, &tenant, "vkv", json!({ "secret_ref": reference })).await;
    assert_eq!(view["secret_ref"], reference.as_str());
    assert_eq!(view["fingerprint"], "(held elsewhere)");
    connect(
        &app,
        &tenant,
        "sealed",
        json!({"secret": "sk-sealed-under-transit-000001"}),
    )
    .await;
    let (_, member) = app.issue_key(&tenant, "member").await;
    for label in ["vkv", "sealed"] {
        let (status, answer) = chat(&app, &member, label).await;
        assert_eq!(status, 200, "{label}: {answer}");
    }
    assert_eq!(app.mock.calls(canary), 1);
    // A path outside the AppRole's policy: refused by Vault, reported with the path, and the
    // session is kept (a denial is not a dead token).
    let outside = format!("vault://secret/{}/openai#api_key", unique("other"));
    connect(&app, &tenant, "outside", json!({ "secret_ref": outside })).await;
    for _ in 0..2 {
        let (status, answer) = chat(&app, &member, "outside").await;
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["error"]["code"], "credential_unreadable");
    }
    assert!(captured_logs().contains("Vault denied read on secret/data/other-"));
    let (status, answer) = chat(&app, &member, "vkv").await;
    assert_eq!(status, 200, "{answer}");

    let store = app.store().await;
    let wrapped = store.wrapped_data_keys().await.unwrap();
    assert_eq!(wrapped[0].wrapper, source);
    assert!(
        wrapped[0].wrapped.starts_with("vault:v1:"),
        "{}",
        wrapped[0].wrapped
    );
    let credential = store
        .credential(
            tenant.parse().unwrap(),
            view["id"].as_str().unwrap().parse().unwrap(),
        )
        .await
        .unwrap()
        .unwrap();
    assert!(
        credential.secret.is_none(),
        "a referenced secret is never stored"
    );
    // Vault refuses the wrapped key for another deployment (the associated data differs).
    let (status, body) = bao(
        &km,
        Method::POST,
        &format!("transit/decrypt/{key}"),
        Some(json!({"ciphertext": wrapped[0].wrapped, "associated_data": STANDARD.encode("keyward:deployment=elsewhere;keyward:key-version=1")})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    // The same AppRole may not use another Transit key: denied, naming key and permission.
    let other = unique("kw-transit-other");
    bao(
        &km,
        Method::POST,
        &format!("transit/keys/{other}"),
        Some(json!({"type": "aes256-gcm96"})),
    )
    .await;
    let fresh = tempfile::tempdir().unwrap();
    let env_config = std::collections::BTreeMap::from([
        (
            "KEYWARD_STORE_URL".to_owned(),
            format!("sqlite://{}", fresh.path().join("keyward.db").display()),
        ),
        (
            "KEYWARD_MASTER_KEY_SOURCE".to_owned(),
            format!("vault-transit:{other}"),
        ),
        ("KEYWARD_VAULT_ROLE_ID".to_owned(), role_id.clone()),
        (
            "KEYWARD_VAULT_SECRET_ID_FILE".to_owned(),
            secret_id_path.clone(),
        ),
    ]);
    let config = Config::from_sources("", Path::new("test.toml"), &env_config).unwrap();
    let vault_addr = km.bao.clone();
    let lookup: EnvLookup =
        Arc::new(move |name| (name == "VAULT_ADDR").then(|| vault_addr.clone()));
    let err = format!(
        "{:#}",
        keyward::startup::open_keyward(&config, lookup, None)
            .await
            .unwrap_err()
    );
    assert!(
        err.contains("denied") && err.contains(&format!("transit/encrypt/{other}")),
        "{err}"
    );
    let everything = format!("{err}{}", captured_logs());
    assert!(!everything.contains(&secret_id) && !everything.contains(canary));
}

#[tokio::test]
async fn references_are_fetched_at_call_time_cached_at_most_the_ttl_and_refreshed_by_verify() {
    let Some(km) = key_managers() else { return };
    let azure = FakeAzure::start().await;
    let path = unique("refs");
    let vault_one = "sk-ref-vault-one-00000000001";
    let vault_two = "sk-ref-vault-two-00000000002";
    let vault_three = "sk-ref-vault-three-000000003";
    let aws_secret = "sk-ref-aws-sm-0000000000001";
    let azure_secret = "sk-ref-azure-kv-000000000001";
    bao_kv_put(
        &km,
        &format!("{path}/openai"),
        json!({"api_key": vault_one}),
    )
    .await;
    let secret_name = unique("keyward/acme/openai");
    aws_call(
        &km,
        keyward_custody::aws::SECRETS_MANAGER,
        "CreateSecret",
        json!({"Name": secret_name, "SecretString": json!({"api_key": aws_secret, "other": "x"}).to_string()}),
    )
    .await
    .unwrap();
    azure.set("acme-keys", "openai-key", azure_secret);

    let mut env = aws_env(&km.moto);
    env.extend([
        ("VAULT_ADDR".to_owned(), km.bao.clone()),
        ("VAULT_TOKEN".to_owned(), km.bao_token.clone()),
    ]);
    env.extend(azure.env());
    let vault_url = format!("{}/{{vault}}", azure.origin);
    let app = TestApp::spawn_with_env(
        &[
            ("KEYWARD_SECRETS_CACHE_TTL", "3s"),
            ("KEYWARD_SECRETS_AZURE_VAULT_URL", &vault_url),
        ],
        &refs(&env),
    )
    .await;
    let tenant = app.create_tenant("acme").await;
    let vault_ref = format!("vault://secret/{path}/openai#api_key");
    let aws_ref = format!("aws-sm://{secret_name}#api_key");
    let azure_ref = "azure-kv://acme-keys/openai-key".to_owned();
    let vault_view = connect(&app, &tenant, "v", json!({ "secret_ref": vault_ref })).await;
    connect(&app, &tenant, "a", json!({ "secret_ref": aws_ref })).await;
    connect(&app, &tenant, "z", json!({ "secret_ref": azure_ref })).await;
    let (_, member) = app.issue_key(&tenant, "member").await;
    for label in ["v", "a", "z"] {
        let (status, answer) = chat(&app, &member, label).await;
        assert_eq!(status, 200, "{label}: {answer}");
    }
    assert_eq!(app.mock.calls(vault_one), 1);
    assert_eq!(app.mock.calls(aws_secret), 1);
    assert_eq!(app.mock.calls(azure_secret), 1);

    // Rotated in Vault: within the TTL the cached value is still used...
    bao_kv_put(
        &km,
        &format!("{path}/openai"),
        json!({"api_key": vault_two}),
    )
    .await;
    chat(&app, &member, "v").await;
    assert_eq!(
        app.mock.calls(vault_one),
        2,
        "a fetch within the TTL is cached"
    );
    // ...`verify` fetches anew, and the next call uses the new secret.
    let id = vault_view["id"].as_str().unwrap();
    let verified = app
        .operator(
            Method::POST,
            &format!("/admin/v1/tenants/{tenant}/credentials/{id}/verify"),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(verified.status(), 200);
    assert_eq!(app.mock.calls(vault_two), 1, "verify used the new secret");
    chat(&app, &member, "v").await;
    assert_eq!(app.mock.calls(vault_two), 2);
    // Rotated again: picked up once the TTL has passed, without touching Keyward.
    bao_kv_put(
        &km,
        &format!("{path}/openai"),
        json!({"api_key": vault_three}),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(3_300)).await;
    chat(&app, &member, "v").await;
    assert_eq!(app.mock.calls(vault_three), 1, "the TTL expired");
    chat(&app, &member, "z").await;
    assert_eq!(
        azure.token_requests(),
        1,
        "the Entra ID token is reused until it expires"
    );

    // References that cannot be resolved answer credential_unreadable, naming the reference.
    let missing_vault = format!("vault://secret/{path}/missing#api_key");
    let missing_aws = format!("aws-sm://{}", unique("no-such-secret"));
    let missing_azure = "azure-kv://acme-keys/not-there".to_owned();
    for (label, reference) in [
        ("mv", &missing_vault),
        ("ma", &missing_aws),
        ("mz", &missing_azure),
    ] {
        connect(&app, &tenant, label, json!({ "secret_ref": reference })).await;
        let (status, answer) = chat(&app, &member, label).await;
        assert_eq!(status, 503, "{answer}");
        assert_eq!(answer["error"]["code"], "credential_unreadable", "{answer}");
        let message = answer["error"]["message"].as_str().unwrap();
        assert!(message.contains(reference.as_str()), "{message}");
    }
    // The operator's log says why, with the manager's own reason.
    let logs = captured_logs();
    assert!(
        logs.contains("ResourceNotFoundException"),
        "AWS's reason is logged"
    );
    assert!(logs.contains("SecretNotFound"), "Azure's reason is logged");

    // A tenant admin may not point Keyward at arbitrary secrets (none are allowed here).
    let (_, admin) = app.issue_key(&tenant, "admin").await;
    let refused = app
        .with_key(
            &admin,
            Method::POST,
            &format!("/admin/v1/tenants/{tenant}/credentials"),
        )
        .json(&json!({"provider": "openai", "label": "mine", "secret_ref": vault_ref}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 400);
    assert!(refused.text().await.unwrap().contains("only the operator"));

    // No fetched secret, nor the managers' own credentials, in logs or the database.
    let everything = [captured_logs().into_bytes(), app.database_bytes()].concat();
    for secret in [
        vault_one,
        vault_two,
        vault_three,
        aws_secret,
        azure_secret,
        fake_azure::CLIENT_SECRET,
        km.bao_token.as_str(),
    ] {
        assert!(!contains(&everything, secret), "{secret} leaked");
    }
    assert!(
        contains(&app.database_bytes(), &vault_ref),
        "the reference itself is stored"
    );
}

#[tokio::test]
async fn a_tenant_admin_may_use_references_under_its_own_prefix_only() {
    let Some(km) = key_managers() else { return };
    let env = vec![
        ("VAULT_ADDR".to_owned(), km.bao.clone()),
        ("VAULT_TOKEN".to_owned(), km.bao_token.clone()),
    ];
    let app = TestApp::spawn_with_env(
        &[(
            "KEYWARD_SECRETS_TENANT_REFERENCE_PREFIXES",
            "vault://secret/tenants/{tenant}/",
        )],
        &refs(&env),
    )
    .await;
    let acme = app.create_tenant("acme").await;
    let globex = app.create_tenant("globex").await;
    let (_, admin) = app.issue_key(&acme, "admin").await;
    let attempt = |reference: String| {
        app.with_key(
            &admin,
            Method::POST,
            &format!("/admin/v1/tenants/{acme}/credentials"),
        )
        .json(&json!({"provider": "openai", "label": unique("c"), "secret_ref": reference}))
        .send()
    };
    let own = attempt(format!("vault://secret/tenants/{acme}/openai#api_key"))
        .await
        .unwrap();
    assert_eq!(own.status(), 201);
    let foreign = attempt(format!("vault://secret/tenants/{globex}/openai#api_key"))
        .await
        .unwrap();
    assert_eq!(foreign.status(), 400);
    let sneaky = attempt(format!("vault://secret/tenants/{acme}x/openai#api_key"))
        .await
        .unwrap();
    assert_eq!(sneaky.status(), 400);
}

#[tokio::test]
async fn an_eks_web_identity_is_exchanged_with_sts_for_the_kms_calls() {
    let Some(km) = key_managers() else { return };
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(
        &token_file,
        "eyJhbGciOiJSUzI1NiJ9.projected-service-account-token.sig",
    )
    .unwrap();
    // No keys anywhere: no env keys, an empty HOME, no container endpoint, no instance role.
    let env = vec![
        ("AWS_ENDPOINT_URL".to_owned(), km.moto.clone()),
        ("AWS_REGION".to_owned(), "us-east-1".to_owned()),
        ("HOME".to_owned(), dir.path().display().to_string()),
        ("AWS_EC2_METADATA_DISABLED".to_owned(), "true".to_owned()),
        (
            "AWS_WEB_IDENTITY_TOKEN_FILE".to_owned(),
            token_file.display().to_string(),
        ),
        (
            "AWS_ROLE_ARN".to_owned(),
            "arn:aws:iam::123456789012:role/keyward".to_owned(),
        ),
    ];
    let client = AwsClient::new(ManagerHttp::new().unwrap(), env_lookup(env.clone()));
    let created = client
        .call(KMS, "CreateKey", "us-east-1", &json!({}))
        .await
        .unwrap()
        .unwrap();
    let created: Value = serde_json::from_slice(&created).unwrap();
    let arn = created["KeyMetadata"]["Arn"].as_str().unwrap().to_owned();

    // The same identity runs a KMS deployment end to end.
    serving(
        &format!("aws-kms:{arn}"),
        &env,
        "sk-irsa-0000000000000000001",
    )
    .await;
    assert!(!captured_logs().contains("projected-service-account-token"));

    // Without the token file there is no identity, and the message says which file.
    let mut broken = env.clone();
    broken[4].1 = dir.path().join("missing").display().to_string();
    let client = AwsClient::new(ManagerHttp::new().unwrap(), env_lookup(broken));
    let err = client
        .call(KMS, "ListKeys", "us-east-1", &json!({}))
        .await
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("AWS_WEB_IDENTITY_TOKEN_FILE") && err.contains("missing"),
        "{err}"
    );
}
