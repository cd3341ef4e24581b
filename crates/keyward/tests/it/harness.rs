//! `TestApp`: a real Keyward (config, store file, keyring file, HTTP server on a free port) per
//! test, with every log line captured at TRACE level so tests can grep it. `TEST_LOG=1` echoes
//! the logs to stderr.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};

use keyward::app::Application;
use keyward::config::{Config, LogFormat};
use keyward_mock_provider::{MockHandle, MockProvider};
use keyward_vault::{EnvLookup, FileSource};
use reqwest::{Method, RequestBuilder};
use serde_json::{json, Value};
use tokio::sync::oneshot;
use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

pub const ADMIN_TOKEN: &str = "test-operator-token-5b1f0c9e2d";

static LOGS: OnceLock<Arc<Mutex<Vec<u8>>>> = OnceLock::new();

#[derive(Clone)]
struct CaptureWriter(Arc<Mutex<Vec<u8>>>);

impl Write for CaptureWriter {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        if std::env::var_os("TEST_LOG").is_some() {
            std::io::stderr().write_all(bytes)?;
        }
        self.0
            .lock()
            .map_err(|_| std::io::Error::other("log buffer poisoned"))?
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

fn capture_logs() -> Arc<Mutex<Vec<u8>>> {
    LOGS.get_or_init(|| {
        let buffer = Arc::new(Mutex::new(Vec::new()));
        let writer = CaptureWriter(buffer.clone());
        keyward::telemetry::init(
            LevelFilter::TRACE,
            LogFormat::Json,
            BoxMakeWriter::new(move || writer.clone()),
            None,
        );
        buffer
    })
    .clone()
}

/// Everything any test has logged so far.
pub fn captured_logs() -> String {
    let buffer = capture_logs();
    let bytes = buffer.lock().map(|bytes| bytes.clone()).unwrap_or_default();
    String::from_utf8_lossy(&bytes).into_owned()
}

pub struct TestApp {
    pub address: String,
    pub dir: Arc<tempfile::TempDir>,
    /// The mock provider this app's credentials point at.
    pub mock: MockHandle,
    /// `http://127.0.0.1:PORT`, the mock's origin.
    pub mock_origin: String,
    /// The database this app runs on.
    pub store_url: String,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    _mock_stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(stop) = self._mock_stop.take() {
            let _ = stop.send(());
        }
    }
}

impl TestApp {
    pub async fn spawn() -> Self {
        Self::spawn_with(&[]).await
    }

    pub async fn spawn_with(overrides: &[(&str, &str)]) -> Self {
        Self::spawn_with_env(overrides, &[]).await
    }

    /// A server that also sees these process environment variables (AWS_*, VAULT_*, AZURE_*).
    pub async fn spawn_with_env(overrides: &[(&str, &str)], process_env: &[(&str, &str)]) -> Self {
        let mock = MockProvider::bind(SocketAddr::from(([127, 0, 0, 1], 0)))
            .await
            .unwrap();
        let (mock_stop, mock_stopped) = oneshot::channel::<()>();
        let mock_origin = format!("http://{}", mock.address());
        let handle = mock.handle();
        tokio::spawn(mock.serve(async move {
            let _ = mock_stopped.await;
        }));
        let mut app = Self::start(
            Arc::new(tempfile::tempdir().unwrap()),
            overrides,
            process_env,
            handle,
            mock_origin,
        )
        .await;
        app._mock_stop = Some(mock_stop);
        app
    }

    /// Another server on the same data directory and mock, with other settings (the first
    /// keeps running).
    pub async fn sibling(&self, overrides: &[(&str, &str)]) -> Self {
        self.sibling_with_env(overrides, &[]).await
    }

    pub async fn sibling_with_env(
        &self,
        overrides: &[(&str, &str)],
        process_env: &[(&str, &str)],
    ) -> Self {
        Self::start(
            self.dir.clone(),
            overrides,
            process_env,
            self.mock.clone(),
            self.mock_origin.clone(),
        )
        .await
    }

    async fn start(
        dir: Arc<tempfile::TempDir>,
        overrides: &[(&str, &str)],
        process_env: &[(&str, &str)],
        mock: MockHandle,
        mock_origin: String,
    ) -> Self {
        capture_logs();
        let key_path = dir.path().join("master.key");
        FileSource::new(&key_path).create_if_absent().unwrap();
        let mut env = BTreeMap::from([
            ("KEYWARD_SERVER_LISTEN".to_owned(), "127.0.0.1:0".to_owned()),
            (
                "KEYWARD_SERVER_MAX_BODY_BYTES".to_owned(),
                "65536".to_owned(),
            ),
            ("KEYWARD_SERVER_SHUTDOWN_GRACE".to_owned(), "2s".to_owned()),
            (
                "KEYWARD_STORE_URL".to_owned(),
                format!("sqlite://{}", dir.path().join("keyward.db").display()),
            ),
            (
                "KEYWARD_MASTER_KEY_SOURCE".to_owned(),
                format!("file:{}", key_path.display()),
            ),
            ("KEYWARD_ADMIN_TOKEN".to_owned(), ADMIN_TOKEN.to_owned()),
            ("KEYWARD_LOG_LEVEL".to_owned(), "trace".to_owned()),
            (
                "KEYWARD_EGRESS_ALLOW_PRIVATE".to_owned(),
                "127.0.0.1".to_owned(),
            ),
        ]);
        for (name, value) in overrides {
            env.insert((*name).to_owned(), (*value).to_owned());
        }
        env.retain(|_, value| !value.is_empty());
        let store_url = env["KEYWARD_STORE_URL"].clone();
        let config = Config::from_sources("", Path::new("test.toml"), &env).unwrap();
        let process_env: BTreeMap<String, String> = process_env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        let lookup: EnvLookup = Arc::new(move |name| process_env.get(name).cloned());
        let (alerts, alert_receiver) = match config.webhook {
            Some(_) => {
                let (sender, receiver) = keyward_domain::alert_channel();
                (Some(sender), Some(receiver))
            }
            None => (None, None),
        };
        let keyward = keyward::startup::open_keyward(&config, lookup, alerts)
            .await
            .unwrap();
        let app = Application::build(&config, keyward, alert_receiver, Default::default())
            .await
            .unwrap();
        let address = format!("http://{}", app.local_addr().unwrap());
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(app.run_until_stopped(async move {
            let _ = stopped.await;
        }));
        Self {
            address,
            dir,
            mock,
            mock_origin,
            store_url,
            client: reqwest::Client::new(),
            stop: Some(stop),
            _mock_stop: None,
        }
    }

    /// The store behind this app, for reading ledger rows.
    pub async fn store(&self) -> keyward_store::Store {
        keyward_store::Store::open(&self.store_url).await.unwrap()
    }

    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
    }

    pub fn operator(&self, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(ADMIN_TOKEN)
    }

    /// `GET /metrics` as text (the open endpoint: no `metrics.token` set).
    pub async fn metrics_text(&self) -> String {
        self.request(Method::GET, "/metrics")
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The value of one series on `/metrics` (`name{labels}`, as rendered), 0 when absent.
    pub async fn metric(&self, series: &str) -> u64 {
        self.metrics_text()
            .await
            .lines()
            .find(|line| {
                line.strip_prefix(series)
                    .is_some_and(|rest| rest.starts_with(' '))
            })
            .and_then(|line| line.rsplit(' ').next())
            .and_then(|count| count.parse().ok())
            .unwrap_or(0)
    }

    /// `GET path` with the operator token, as JSON.
    pub async fn operator_get(&self, path: &str) -> Value {
        self.operator(Method::GET, path)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap()
    }

    /// `GET /admin/v1/masterkey` until `done` holds on it or `patience` runs out; returns the
    /// last status (the caller asserts on it).
    pub async fn master_key_status_when(
        &self,
        patience: std::time::Duration,
        done: impl Fn(&Value) -> bool,
    ) -> Value {
        let deadline = std::time::Instant::now() + patience;
        loop {
            let status = self.operator_get("/admin/v1/masterkey").await;
            if done(&status) || std::time::Instant::now() > deadline {
                return status;
            }
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
    }

    pub fn with_key(&self, key: &str, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(key)
    }

    pub async fn create_tenant(&self, name: &str) -> String {
        let response = self
            .operator(Method::POST, "/admin/v1/tenants")
            .json(&json!({ "name": name }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        response.json::<Value>().await.unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn connect_openai(&self, tenant: &str, label: &str, secret: &str) -> Value {
        self.connect(
            tenant,
            &json!({ "provider": "openai", "label": label, "secret": secret }),
        )
        .await
    }

    /// Connects a credential through the admin API (`body` as a client sends it) and returns
    /// the created record; anything but 201 fails the test with the answer.
    pub async fn connect(&self, tenant: &str, body: &Value) -> Value {
        let response = self
            .operator(
                Method::POST,
                &format!("/admin/v1/tenants/{tenant}/credentials"),
            )
            .json(body)
            .send()
            .await
            .unwrap();
        let status = response.status();
        let answer: Value = response.json().await.unwrap();
        assert_eq!(status, 201, "{answer}");
        answer
    }

    /// The tenant's credentials as the admin API lists them.
    pub async fn credentials(&self, tenant: &str) -> Vec<Value> {
        let list = self
            .operator_get(&format!("/admin/v1/tenants/{tenant}/credentials"))
            .await;
        list["data"].as_array().unwrap().clone()
    }

    /// The id of the tenant's credential labelled `label`.
    pub async fn credential_id(&self, tenant: &str, label: &str) -> String {
        self.credentials(tenant)
            .await
            .iter()
            .find(|credential| credential["label"] == label)
            .unwrap_or_else(|| panic!("no credential {label}"))["id"]
            .as_str()
            .unwrap()
            .to_owned()
    }

    pub async fn issue_key(&self, tenant: &str, role: &str) -> (String, String) {
        let response = self
            .operator(Method::POST, &format!("/admin/v1/tenants/{tenant}/keys"))
            .json(&json!({ "role": role }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 201);
        let body: Value = response.json().await.unwrap();
        (
            body["id"].as_str().unwrap().to_owned(),
            body["key"].as_str().unwrap().to_owned(),
        )
    }

    /// Every byte of the SQLite database, its WAL and its shared-memory file.
    pub fn database_bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        for suffix in ["", "-wal", "-shm"] {
            let path = self.dir.path().join(format!("keyward.db{suffix}"));
            if let Ok(content) = std::fs::read(path) {
                bytes.extend(content);
            }
        }
        bytes
    }
}

/// Whether `needle` occurs in `haystack`.
pub fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle.as_bytes())
}
