//! Configuration: one TOML file plus `KEYWARD_<SECTION>_<KEY>` environment overrides, read in
//! two steps — raw text values, then a validated [`Config`] with typed fields. Every bad key is
//! reported at once; messages name the key, never its value (values can be secrets).
//!
//! [`KEYS`] is the single list of keys: the parser, the env mapping and the generated
//! `docs/configuration.md` all come from it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use keyward_core::egress_policy::EgressPolicy;
use keyward_core::secret::AdminToken;
use keyward_domain::LedgerMode;

/// One configuration key.
pub struct KeySpec {
    pub section: &'static str,
    pub key: &'static str,
    pub default: &'static str,
    pub doc: &'static str,
}

impl KeySpec {
    pub fn dotted(&self) -> String {
        format!("{}.{}", self.section, self.key)
    }

    pub fn env_name(&self) -> String {
        format!("KEYWARD_{}_{}", self.section, self.key)
            .replace('.', "_")
            .to_ascii_uppercase()
    }
}

pub const DEFAULT_DATA_DIR: &str = "./keyward-data";
pub const DEFAULT_STORE_URL: &str = "sqlite://./keyward-data/keyward.db";
pub const DEFAULT_MASTER_KEY_SOURCE: &str = "file:./keyward-data/master.key";

pub const KEYS: &[KeySpec] = &[
    KeySpec { section: "server", key: "listen", default: "127.0.0.1:8080", doc: "Address and port to serve on." },
    KeySpec { section: "server", key: "max_body_bytes", default: "10485760", doc: "Largest request body accepted, in bytes (10 MiB); larger bodies get `invalid_request`." },
    KeySpec { section: "server", key: "shutdown_grace", default: "10s", doc: "On SIGTERM/SIGINT, how long in-flight requests may finish before exit." },
    KeySpec { section: "server", key: "header_read_timeout", default: "10s", doc: "Time a connection has to send a request's headers, counted from its start or the end of the previous response (so also the keep-alive idle time): slow or idle clients are closed." },
    KeySpec { section: "server", key: "body_read_timeout", default: "60s", doc: "Time a model call's body has to arrive in full; a slower client gets `invalid_request`." },
    KeySpec { section: "server", key: "max_connections", default: "4096", doc: "Most connections open at once; one more is closed at accept (keep it below the process's file limit)." },
    KeySpec { section: "server", key: "max_connections_per_address", default: "256", doc: "Most connections open at once from one client address (behind a load balancer, its address: raise it)." },
    KeySpec { section: "server", key: "public_url", default: "", doc: "The URL people reach Keyward at (e.g. `https://keyward.example.com`): the web console accepts requests from this origin only, and its cookie is `Secure` when it is `https://`. Unset: the request's own host, and `Secure` only when a TLS proxy says `x-forwarded-proto: https`." },
    KeySpec { section: "console", key: "session_idle", default: "30m", doc: "A web console session ends after this long without a request (sign in again)." },
    KeySpec { section: "console", key: "session_absolute", default: "12h", doc: "A web console session ends this long after sign-in, however active." },
    KeySpec { section: "store", key: "url", default: DEFAULT_STORE_URL, doc: "Database URL: `sqlite://PATH` (one server, WAL mode) or `postgres://USER:PASSWORD@HOST:PORT/DB` (several replicas on one database; `?sslmode=require` for TLS)." },
    KeySpec { section: "store", key: "max_connections", default: "8", doc: "Most database connections this process holds (per replica, with PostgreSQL: keep replicas × this below the server's `max_connections`)." },
    KeySpec { section: "master_key", key: "source", default: DEFAULT_MASTER_KEY_SOURCE, doc: "Master keyring: `file:PATH` or `env:VAR` (lines `VERSION:BASE64`; the default file is created 0600 if absent), or `aws-kms:KEY_ID` / `vault-transit:[MOUNT/]KEY` (data keys wrapped by the key manager, stored wrapped in the database, unwrapped at startup). See docs/key-custody.md." },
    KeySpec { section: "master_key", key: "previous_sources", default: "", doc: "Comma list of sources whose versions still open rows but never seal, while moving between sources (e.g. `file:/etc/keyward/master.key` after switching `source` to `aws-kms:…`). Remove an entry once `keyward masterkey status` shows 0 rows on its versions." },
    KeySpec { section: "admin", key: "token", default: "", doc: "Operator token for the admin API. Unset: the operator API is off (tenant admin keys still work)." },
    KeySpec { section: "metrics", key: "token", default: "", doc: "Bearer token `/metrics` requires (at least 16 characters; compared in constant time). Unset: `/metrics` is open on the listener — the series carry tenant ids, so set it (or keep the listener private)." },
    KeySpec { section: "egress", key: "allow_private", default: "", doc: "Comma list of CIDRs (a bare IP means /32 or /128) that credentials' `base_url` may reach although private, loopback or link-local." },
    KeySpec { section: "egress", key: "connect_timeout", default: "10s", doc: "Longest TCP + TLS connect to a provider; past it the call fails with `upstream_error`." },
    KeySpec { section: "egress", key: "first_byte_timeout", default: "300s", doc: "Longest wait for a provider's response headers; past it the call fails with `upstream_timeout`." },
    KeySpec { section: "egress", key: "idle_timeout", default: "120s", doc: "Longest silence between two reads of a provider's response body (streams included)." },
    KeySpec { section: "egress", key: "max_response_bytes", default: "33554432", doc: "Largest non-streaming provider response accepted (32 MiB); larger answers fail with `upstream_error`." },
    KeySpec { section: "egress", key: "max_stream_bytes", default: "67108864", doc: "The most one streamed answer may take from a provider (64 MiB); past it the stream ends as a provider failure, charged its reservation." },
    KeySpec { section: "egress", key: "max_stream_duration", default: "30m", doc: "The longest one streamed answer may last, however the provider paces its events; past it the stream ends as a provider failure." },
    KeySpec { section: "ledger", key: "mode", default: "strict", doc: "`strict`: no ledger row, no upstream call. `best_effort`: call even when the ledger cannot record. (Used by the routing layer.)" },
    KeySpec { section: "ledger", key: "default_max_output_tokens", default: "4096", doc: "Output tokens assumed for a call's worst-case cost when the client sets no `max_tokens`; budgets reserve that much before the call. A call that outputs more is still charged its real cost." },
    KeySpec { section: "telemetry", key: "otlp_endpoint", default: "", doc: "OTLP/HTTP collector base URL (e.g. `http://127.0.0.1:4318`) that receives one span per model call with the OpenTelemetry GenAI attributes (metadata only). The standard `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`), `OTEL_EXPORTER_OTLP_HEADERS`, `OTEL_EXPORTER_OTLP_PROTOCOL` (`http/protobuf` or `http/json`) and `OTEL_SERVICE_NAME` take precedence. Unset: no trace export." },
    KeySpec { section: "prices", key: "path", default: "", doc: "A price file in the format of the shipped `prices/prices.toml` that replaces the built-in price book: read at startup (a bad file stops the start, naming its line) and again on SIGHUP (a bad file is refused with its line in the log and the book in force stays). `keyward prices check FILE` validates one. Unset: the book built into the binary." },
    KeySpec { section: "alerts", key: "webhook_url", default: "", doc: "URL that receives alerts (soft budget limits, credentials rejected by their provider) as JSON POSTs, signed with `alerts.webhook_secret`; retried with backoff, never blocking a call. Unset: alerts go to the audit log only." },
    KeySpec { section: "alerts", key: "webhook_secret", default: "", doc: "HMAC-SHA256 key (at least 16 characters) for the `x-keyward-signature` header of webhook deliveries: `t=UNIX,v1=hex(HMAC(secret, \"UNIX.BODY\"))`. Required with `alerts.webhook_url`." },
    KeySpec { section: "connectors.teams", key: "openid_metadata_url", default: "https://login.botframework.com/v1/.well-known/openidconfiguration", doc: "Bot Framework's OpenID metadata: its `jwks_uri` lists the keys Teams requests are signed with (cached; fetched again for an unknown key id)." },
    KeySpec { section: "connectors.teams", key: "token_url", default: "https://login.microsoftonline.com/botframework.com/oauth2/v2.0/token", doc: "Where a Teams connector gets a client-credentials token (its app id and password) to send replies." },
    KeySpec { section: "connectors.teams", key: "tenant_token_url", default: "https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token", doc: "Where a single-tenant Teams bot (a connector with `app_tenant_id`) gets its token; `{tenant}` stands for that Entra tenant." },
    KeySpec { section: "connectors.teams", key: "service_url_allow", default: "smba.trafficmanager.net,*.botframework.com", doc: "Comma list of host names (`*.` for any subdomain) a Teams activity's `serviceUrl` may have; others are refused like a forged request and never receive a reply." },
    KeySpec { section: "connectors.google_chat", key: "certs_url", default: "https://www.googleapis.com/service_accounts/v1/metadata/x509/chat@system.gserviceaccount.com", doc: "The Google Chat service account's certificates, which sign its requests (cached; fetched again for an unknown key id)." },
    KeySpec { section: "secrets", key: "cache_ttl", default: "60s", doc: "How long a secret fetched for a credential's reference (`vault://`, `aws-sm://`, `azure-kv://`) may be held in memory; `0s` fetches on every call. `credential verify` always fetches anew." },
    KeySpec { section: "secrets", key: "tenant_reference_prefixes", default: "", doc: "Comma list of reference prefixes a tenant admin may use, `{tenant}` standing for the tenant id (e.g. `vault://secret/tenants/{tenant}/`). Empty: only the operator connects credentials by reference, since Keyward's identity could read other tenants' secrets." },
    KeySpec { section: "secrets", key: "azure_vault_url", default: "https://{vault}.vault.azure.net", doc: "URL of an Azure Key Vault named `{vault}` in `azure-kv://VAULT/NAME` (change for sovereign clouds, e.g. `https://{vault}.vault.azure.cn`). Credentials come from `AZURE_TENANT_ID`, `AZURE_CLIENT_ID`, `AZURE_CLIENT_SECRET` (`AZURE_AUTHORITY_HOST` optional)." },
    KeySpec { section: "vault", key: "role_id", default: "", doc: "AppRole role id for logging in to Vault / OpenBao at `VAULT_ADDR` (with `vault.secret_id_file`). Unset: `VAULT_TOKEN` is used. The token is renewed or the login repeated before its lease ends." },
    KeySpec { section: "vault", key: "secret_id_file", default: "", doc: "File holding the AppRole secret id (read at startup; keep it 0600)." },
    KeySpec { section: "vault", key: "approle_mount", default: "approle", doc: "Where the AppRole auth method is mounted." },
    KeySpec { section: "log", key: "level", default: "info", doc: "`error`, `warn`, `info`, `debug` or `trace`. Bodies and secrets are never logged at any level." },
    KeySpec { section: "log", key: "format", default: "json", doc: "`json` (one object per line on stdout) or `text`." },
];

/// Environment variables that are not config keys but belong to Keyward.
const OTHER_ENV: &[&str] = &["KEYWARD_CONFIG"];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LogFormat {
    Json,
    Text,
}

#[derive(Debug)]
pub struct Config {
    pub listen: SocketAddr,
    pub max_body_bytes: usize,
    pub shutdown_grace: Duration,
    pub header_read_timeout: Duration,
    pub body_read_timeout: Duration,
    pub max_connections: usize,
    pub max_connections_per_address: usize,
    pub store_url: String,
    pub store_max_connections: u32,
    pub master_key_source: String,
    /// Whether `master_key.source` is the default (created if absent).
    pub master_key_is_default: bool,
    pub admin_token: Option<std::sync::Arc<AdminToken>>,
    /// `metrics.token`: `None` leaves `/metrics` open.
    pub metrics_token: Option<std::sync::Arc<AdminToken>>,
    pub egress: EgressPolicy,
    pub connect_timeout: Duration,
    pub first_byte_timeout: Duration,
    pub idle_timeout: Duration,
    pub max_response_bytes: usize,
    pub max_stream_bytes: u64,
    pub max_stream_duration: Duration,
    pub ledger_mode: LedgerMode,
    pub default_max_output_tokens: u64,
    /// Where alerts are POSTed, with the HMAC key that signs them.
    pub webhook: Option<Webhook>,
    pub secrets_cache_ttl: Duration,
    /// Decrypt-only master-key sources.
    pub master_key_previous_sources: Vec<String>,
    pub tenant_reference_prefixes: Vec<String>,
    /// The chat platforms' endpoints (`connectors.*`).
    pub connectors: keyward_domain::ConnectorsConfig,
    pub azure_vault_url: String,
    pub vault_role_id: Option<String>,
    pub vault_secret_id_file: Option<PathBuf>,
    pub vault_approle_mount: String,
    pub log_level: tracing::level_filters::LevelFilter,
    pub log_format: LogFormat,
    /// `server.public_url`.
    pub public_url: Option<url::Url>,
    /// `prices.path`: a price file replacing the built-in book.
    pub prices_path: Option<PathBuf>,
    /// `telemetry.otlp_endpoint` as written (the `OTEL_*` variables take precedence).
    pub otlp_endpoint: Option<String>,
    /// `console.session_idle` and `console.session_absolute`.
    pub console_sessions: keyward_domain::SessionLimits,
}

/// The alert webhook.
#[derive(Debug)]
pub struct Webhook {
    pub url: String,
    pub secret: std::sync::Arc<AdminToken>,
}

/// Everything wrong with a configuration, one line per problem.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration:\n{}", .problems.iter().map(|problem| format!("  - {problem}")).collect::<Vec<_>>().join("\n"))]
pub struct ConfigError {
    pub problems: Vec<String>,
}

/// Reads the environment; injected so tests never touch the process environment.
pub trait EnvSource {
    fn get(&self, name: &str) -> Option<String>;
    fn names(&self) -> Vec<String>;
}

/// The real process environment.
pub struct ProcessEnv;

impl EnvSource for ProcessEnv {
    fn get(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }

    fn names(&self) -> Vec<String> {
        std::env::vars_os()
            .filter_map(|(name, _)| name.into_string().ok())
            .collect()
    }
}

impl EnvSource for BTreeMap<String, String> {
    fn get(&self, name: &str) -> Option<String> {
        BTreeMap::get(self, name).cloned()
    }

    fn names(&self) -> Vec<String> {
        self.keys().cloned().collect()
    }
}

impl Config {
    /// Loads `path` (or `./keyward.toml` if present), then env overrides.
    pub fn load(path: Option<&Path>, env: &dyn EnvSource) -> Result<Self, ConfigError> {
        let (text, origin) = match path {
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => (text, path.to_path_buf()),
                Err(err) => {
                    return Err(ConfigError {
                        problems: vec![format!(
                            "cannot read config file {}: {err}",
                            path.display()
                        )],
                    })
                }
            },
            None => {
                let default = PathBuf::from("keyward.toml");
                match std::fs::read_to_string(&default) {
                    Ok(text) => (text, default),
                    Err(_) => (String::new(), default),
                }
            }
        };
        Self::from_sources(&text, &origin, env)
    }

    pub fn from_sources(
        toml_text: &str,
        origin: &Path,
        env: &dyn EnvSource,
    ) -> Result<Self, ConfigError> {
        let mut problems = Vec::new();
        let mut raw: BTreeMap<String, String> = BTreeMap::new();
        read_toml(toml_text, origin, &mut raw, &mut problems);
        read_env(env, &mut raw, &mut problems);
        let config = build(&raw, &mut problems);
        match config {
            Some(config) if problems.is_empty() => Ok(config),
            _ => Err(ConfigError { problems }),
        }
    }
}

fn spec(dotted: &str) -> Option<&'static KeySpec> {
    KEYS.iter().find(|spec| spec.dotted() == dotted)
}

fn read_toml(
    text: &str,
    origin: &Path,
    raw: &mut BTreeMap<String, String>,
    problems: &mut Vec<String>,
) {
    if text.trim().is_empty() {
        return;
    }
    let table: toml::Table = match text.parse() {
        Ok(table) => table,
        Err(err) => {
            let line = err
                .span()
                .map(|span| text[..span.start.min(text.len())].lines().count().max(1));
            problems.push(match line {
                Some(line) => format!("{}: line {line}: not valid TOML", origin.display()),
                None => format!("{}: not valid TOML", origin.display()),
            });
            return;
        }
    };
    // `[connectors.teams]` is the section `connectors.teams`: one level of nesting.
    let mut sections: Vec<(String, toml::Value)> = Vec::new();
    for (section, value) in table {
        match value.as_table() {
            Some(entries)
                if !KEYS.iter().any(|spec| spec.section == section)
                    && KEYS
                        .iter()
                        .any(|spec| spec.section.starts_with(&format!("{section}."))) =>
            {
                for (inner, value) in entries {
                    sections.push((format!("{section}.{inner}"), value.clone()));
                }
            }
            _ => sections.push((section, value)),
        }
    }
    for (section, value) in sections {
        let Some(entries) = value.as_table() else {
            problems.push(format!("`{section}`: expected a [{section}] table"));
            continue;
        };
        if !KEYS.iter().any(|spec| spec.section == section) {
            problems.push(format!(
                "unknown section `[{section}]` in {}",
                origin.display()
            ));
            continue;
        }
        for (key, value) in entries {
            let dotted = format!("{section}.{key}");
            if spec(&dotted).is_none() {
                problems.push(format!("unknown key `{dotted}` in {}", origin.display()));
                continue;
            }
            let text = match value {
                toml::Value::String(text) => text.clone(),
                toml::Value::Integer(number) => number.to_string(),
                toml::Value::Boolean(flag) => flag.to_string(),
                toml::Value::Array(items) => {
                    let mut parts = Vec::new();
                    for item in items {
                        match item.as_str() {
                            Some(part) => parts.push(part.to_owned()),
                            None => {
                                problems.push(format!("`{dotted}`: list items must be strings"))
                            }
                        }
                    }
                    parts.join(",")
                }
                _ => {
                    problems.push(format!("`{dotted}`: expected a string or number"));
                    continue;
                }
            };
            raw.insert(dotted, text);
        }
    }
}

/// `connectors.teams.*` and `connectors.google_chat.*`.
fn connector_keys(keys: &mut Keys) -> Option<keyward_domain::ConnectorsConfig> {
    let url = "an https:// URL (http:// only to 127.0.0.1 or localhost)";
    let openid = keys.text(
        "connectors.teams.openid_metadata_url",
        https_or_loopback,
        url,
    );
    let token = keys.text("connectors.teams.token_url", https_or_loopback, url);
    let tenant_token = keys.text(
        "connectors.teams.tenant_token_url",
        |value| value.contains("{tenant}") && https_or_loopback(value),
        "an https:// URL containing {tenant} (http:// only to 127.0.0.1 or localhost)",
    );
    let allow = keys.list(
        "connectors.teams.service_url_allow",
        |host| !host.is_empty() && !host.contains('/') && !host.contains(':'),
        "a comma list of host names, `*.` for any subdomain (e.g. smba.trafficmanager.net, *.botframework.com)",
    );
    let certs = keys.text("connectors.google_chat.certs_url", https_or_loopback, url);
    Some(keyward_domain::ConnectorsConfig {
        teams_openid_metadata_url: openid?,
        teams_token_url: token?,
        teams_tenant_token_url: tenant_token?,
        teams_service_url_allow: allow?,
        google_chat_certs_url: certs?,
    })
}

fn read_env(env: &dyn EnvSource, raw: &mut BTreeMap<String, String>, problems: &mut Vec<String>) {
    // The variable named by an `env:` keyring source is Keyward's too, but not a config key.
    let keyring_var = env
        .get("KEYWARD_MASTER_KEY_SOURCE")
        .or_else(|| raw.get("master_key.source").cloned())
        .and_then(|source| source.strip_prefix("env:").map(str::to_owned));
    for name in env.names() {
        if !name.starts_with("KEYWARD_")
            || OTHER_ENV.contains(&name.as_str())
            || keyring_var.as_deref() == Some(name.as_str())
        {
            continue;
        }
        match KEYS.iter().find(|spec| spec.env_name() == name) {
            Some(spec) => {
                if let Some(value) = env.get(&name) {
                    raw.insert(spec.dotted(), value);
                }
            }
            None => problems.push(format!(
                "unknown environment variable {name}: config overrides are KEYWARD_<SECTION>_<KEY>, e.g. KEYWARD_SERVER_LISTEN"
            )),
        }
    }
}

fn value<'a>(raw: &'a BTreeMap<String, String>, dotted: &str) -> &'a str {
    raw.get(dotted)
        .map(String::as_str)
        .or_else(|| spec(dotted).map(|spec| spec.default))
        .unwrap_or_default()
}

/// Reads validated values out of the merged keys, noting every bad one so that all of them are
/// reported at once.
struct Keys<'a> {
    raw: &'a BTreeMap<String, String>,
    problems: &'a mut Vec<String>,
}

impl<'a> Keys<'a> {
    fn get(&self, key: &str) -> &'a str {
        value(self.raw, key)
    }

    fn expected<T>(&mut self, key: &str, expected: &str) -> Option<T> {
        self.problems.push(format!("`{key}`: expected {expected}"));
        None
    }

    /// A number within `range`.
    fn number<T: std::str::FromStr + PartialOrd>(
        &mut self,
        key: &str,
        range: std::ops::RangeInclusive<T>,
        expected: &str,
    ) -> Option<T> {
        self.get(key)
            .parse::<T>()
            .ok()
            .filter(|number| range.contains(number))
            .or_else(|| self.expected(key, expected))
    }

    /// A duration such as `10s`; with `nonzero`, `0s` is refused.
    fn duration(&mut self, key: &str, nonzero: bool, expected: &str) -> Option<Duration> {
        parse_duration(self.get(key))
            .filter(|duration| !(nonzero && duration.is_zero()))
            .or_else(|| self.expected(key, expected))
    }

    /// The text, when `valid` accepts it.
    fn text(&mut self, key: &str, valid: impl Fn(&str) -> bool, expected: &str) -> Option<String> {
        Some(self.get(key).to_owned())
            .filter(|text| valid(text))
            .or_else(|| self.expected(key, expected))
    }

    /// A comma list whose every item `valid` accepts.
    fn list(
        &mut self,
        key: &str,
        valid: impl Fn(&str) -> bool,
        expected: &str,
    ) -> Option<Vec<String>> {
        Some(comma_list(self.get(key)))
            .filter(|items| items.iter().all(|item| valid(item)))
            .or_else(|| self.expected(key, expected))
    }
}

fn build(raw: &BTreeMap<String, String>, problems: &mut Vec<String>) -> Option<Config> {
    let mut keys = Keys { raw, problems };
    let server = server_keys(&mut keys);
    let store_url = keys.text("store.url", is_database_url, "a database URL such as sqlite://./keyward-data/keyward.db or postgres://keyward@db.internal/keyward");
    let store_max_connections = keys.number(
        "store.max_connections",
        1..=1000,
        "a whole number from 1 to 1000",
    );
    let (master_key_source, master_key_previous_sources) = master_key_keys(&mut keys);
    let tenant_reference_prefixes = keys.list("secrets.tenant_reference_prefixes", is_tenant_prefix, "a comma list of vault://, aws-sm:// or azure-kv:// prefixes, each with `{tenant}` followed by `/`, `#` or `-` (e.g. vault://secret/tenants/{tenant}/), so that no tenant's prefix covers another's");
    let azure_vault_url = keys.text(
        "secrets.azure_vault_url",
        |url| url.contains("{vault}") && https_or_loopback(url),
        "an https:// URL containing {vault} (http:// only to 127.0.0.1 or localhost)",
    );
    let (vault_role_id, vault_secret_id_file, vault_approle_mount) = vault_login(&mut keys);
    let admin_token = token(&mut keys, "admin.token");
    let metrics_token = token(&mut keys, "metrics.token");
    let egress = egress_keys(&mut keys);
    let ledger_mode = LedgerMode::parse(keys.get("ledger.mode"))
        .or_else(|| keys.expected("ledger.mode", "`strict` or `best_effort`"));
    let default_max_output_tokens = keys.number(
        "ledger.default_max_output_tokens",
        1..=10_000_000,
        "a token count between 1 and 10000000",
    );
    let webhook = webhook(&mut keys);
    let secrets_cache_ttl =
        keys.duration("secrets.cache_ttl", false, "a duration such as 60s, or 0s");
    let (log_level, log_format) = log_settings(&mut keys);
    let connectors = connector_keys(&mut keys);
    let (public_url, console_sessions, prices_path, otlp_endpoint) = site_keys(&mut keys);
    let (server, egress, master_key_source) = (server?, egress?, master_key_source?);
    Some(Config {
        listen: server.listen,
        max_body_bytes: server.max_body_bytes,
        shutdown_grace: server.shutdown_grace,
        header_read_timeout: server.header_read_timeout,
        body_read_timeout: server.body_read_timeout,
        max_connections: server.max_connections,
        max_connections_per_address: server.max_connections_per_address,
        store_url: store_url?,
        store_max_connections: store_max_connections?,
        master_key_is_default: master_key_source == DEFAULT_MASTER_KEY_SOURCE,
        master_key_source,
        admin_token: admin_token?,
        metrics_token: metrics_token?,
        egress: egress.policy,
        connect_timeout: egress.connect_timeout,
        first_byte_timeout: egress.first_byte_timeout,
        idle_timeout: egress.idle_timeout,
        max_response_bytes: egress.max_response_bytes,
        max_stream_bytes: egress.max_stream_bytes,
        max_stream_duration: egress.max_stream_duration,
        ledger_mode: ledger_mode?,
        default_max_output_tokens: default_max_output_tokens?,
        webhook: webhook?,
        secrets_cache_ttl: secrets_cache_ttl?,
        master_key_previous_sources: master_key_previous_sources?,
        tenant_reference_prefixes: tenant_reference_prefixes?,
        azure_vault_url: azure_vault_url?,
        vault_role_id: vault_role_id?,
        vault_secret_id_file: vault_secret_id_file?,
        vault_approle_mount: vault_approle_mount?,
        log_level: log_level?,
        log_format: log_format?,
        connectors: connectors?,
        public_url: public_url?,
        console_sessions: console_sessions?,
        prices_path,
        otlp_endpoint,
    })
}

/// `master_key.source` and `master_key.previous_sources`.
fn master_key_keys(keys: &mut Keys<'_>) -> (Option<String>, Option<Vec<String>>) {
    let source = keys.text(
        "master_key.source",
        is_master_key_source,
        "file:PATH, env:VAR, aws-kms:KEY_ID or vault-transit:KEY",
    );
    let previous = keys.list(
        "master_key.previous_sources",
        is_master_key_source,
        "a comma list of file:PATH, env:VAR, aws-kms:KEY_ID or vault-transit:KEY",
    );
    (source, previous)
}

/// `server.public_url`, `console.*` and `prices.path`.
fn site_keys(
    keys: &mut Keys<'_>,
) -> (
    Option<Option<url::Url>>,
    Option<keyward_domain::SessionLimits>,
    Option<PathBuf>,
    Option<String>,
) {
    let prices_path = Some(keys.get("prices.path"))
        .filter(|path| !path.trim().is_empty())
        .map(PathBuf::from);
    let otlp_endpoint = Some(keys.get("telemetry.otlp_endpoint").trim().to_owned())
        .filter(|endpoint| !endpoint.is_empty());
    let public_url = match keys.get("server.public_url") {
        "" => Some(None),
        text => url::Url::parse(text)
            .ok()
            .filter(|url| {
                matches!(url.scheme(), "http" | "https")
                    && url.host().is_some()
                    && url.username().is_empty()
                    && url.password().is_none()
            })
            .map(Some)
            .or_else(|| {
                keys.expected(
                    "server.public_url",
                    "an http:// or https:// URL such as https://keyward.example.com",
                )
            }),
    };
    let idle = keys.duration("console.session_idle", true, "a duration such as 30m");
    let absolute = keys.duration("console.session_absolute", true, "a duration such as 12h");
    let limits = match (idle, absolute) {
        (Some(idle), Some(absolute)) => Some(keyward_domain::SessionLimits { idle, absolute }),
        _ => None,
    };
    (public_url, limits, prices_path, otlp_endpoint)
}

/// `server.*`: where to listen, the largest body, the shutdown grace, the bounds on clients.
struct ServerKeys {
    listen: SocketAddr,
    max_body_bytes: usize,
    shutdown_grace: Duration,
    header_read_timeout: Duration,
    body_read_timeout: Duration,
    max_connections: usize,
    max_connections_per_address: usize,
}

fn server_keys(keys: &mut Keys<'_>) -> Option<ServerKeys> {
    let listen = keys
        .get("server.listen")
        .parse::<SocketAddr>()
        .ok()
        .or_else(|| {
            keys.expected(
                "server.listen",
                "an address and port such as 127.0.0.1:8080 or [::]:8080",
            )
        });
    let max_body_bytes = keys.number(
        "server.max_body_bytes",
        1024..=1 << 30,
        "a byte count between 1024 and 1073741824",
    );
    let shutdown_grace = keys.duration(
        "server.shutdown_grace",
        false,
        "a duration such as 10s or 500ms",
    );
    let header_read_timeout =
        keys.duration("server.header_read_timeout", true, "a duration such as 10s");
    let body_read_timeout =
        keys.duration("server.body_read_timeout", true, "a duration such as 60s");
    let max_connections = keys.number(
        "server.max_connections",
        1..=1_000_000,
        "a whole number from 1 to 1000000",
    );
    let max_connections_per_address = keys.number(
        "server.max_connections_per_address",
        1..=1_000_000,
        "a whole number from 1 to 1000000",
    );
    Some(ServerKeys {
        listen: listen?,
        max_body_bytes: max_body_bytes?,
        shutdown_grace: shutdown_grace?,
        header_read_timeout: header_read_timeout?,
        body_read_timeout: body_read_timeout?,
        max_connections: max_connections?,
        max_connections_per_address: max_connections_per_address?,
    })
}

/// `egress.*`: the address policy, the timeouts, the largest answer and stream.
struct EgressKeys {
    policy: EgressPolicy,
    connect_timeout: Duration,
    first_byte_timeout: Duration,
    idle_timeout: Duration,
    max_response_bytes: usize,
    max_stream_bytes: u64,
    max_stream_duration: Duration,
}

fn egress_keys(keys: &mut Keys<'_>) -> Option<EgressKeys> {
    let policy = match EgressPolicy::parse_list(keys.get("egress.allow_private")) {
        Ok(policy) => Some(policy),
        Err(err) => {
            keys.problems.push(format!("`egress.allow_private`: {err}"));
            None
        }
    };
    let connect_timeout = keys.duration("egress.connect_timeout", true, "a duration such as 10s");
    let first_byte_timeout =
        keys.duration("egress.first_byte_timeout", true, "a duration such as 300s");
    let idle_timeout = keys.duration("egress.idle_timeout", true, "a duration such as 120s");
    let max_response_bytes = keys.number(
        "egress.max_response_bytes",
        1024..=1 << 31,
        "a byte count between 1024 and 2147483648",
    );
    let max_stream_bytes = keys.number(
        "egress.max_stream_bytes",
        1024..=1 << 40,
        "a byte count between 1024 and 1099511627776",
    );
    let max_stream_duration =
        keys.duration("egress.max_stream_duration", true, "a duration such as 30m");
    Some(EgressKeys {
        max_stream_bytes: max_stream_bytes?,
        max_stream_duration: max_stream_duration?,
        policy: policy?,
        connect_timeout: connect_timeout?,
        first_byte_timeout: first_byte_timeout?,
        idle_timeout: idle_timeout?,
        max_response_bytes: max_response_bytes?,
    })
}

fn is_database_url(url: &str) -> bool {
    ["sqlite://", "postgres://", "postgresql://"]
        .iter()
        .any(|scheme| url.starts_with(scheme) && url.len() > scheme.len())
}

/// `vault.role_id`, `vault.secret_id_file` (both or neither) and `vault.approle_mount`.
fn vault_login(
    keys: &mut Keys<'_>,
) -> (
    Option<Option<String>>,
    Option<Option<PathBuf>>,
    Option<String>,
) {
    let role_id = keys.get("vault.role_id");
    let vault_role_id = Some((!role_id.is_empty()).then(|| role_id.to_owned()));
    let vault_secret_id_file = match (role_id, keys.get("vault.secret_id_file")) {
        ("", "") => Some(None),
        (role, file) if !role.is_empty() && !file.is_empty() => Some(Some(PathBuf::from(file))),
        _ => keys.expected(
            "vault.secret_id_file",
            "set together with vault.role_id (both or neither)",
        ),
    };
    let mount = keys.get("vault.approle_mount").trim_matches('/');
    let vault_approle_mount = Some(mount.to_owned())
        .filter(|mount| !mount.is_empty())
        .or_else(|| keys.expected("vault.approle_mount", "a mount path such as approle"));
    (vault_role_id, vault_secret_id_file, vault_approle_mount)
}

/// An optional bearer token (`admin.token`, `metrics.token`): unset, or 16 characters or more.
fn token(keys: &mut Keys<'_>, key: &str) -> Option<Option<std::sync::Arc<AdminToken>>> {
    match keys.get(key) {
        "" => Some(None),
        token if token.len() >= 16 => {
            Some(Some(std::sync::Arc::new(AdminToken::new(token.to_owned()))))
        }
        _ => keys.expected(key, "at least 16 characters (use a long random token)"),
    }
}

/// `alerts.webhook_url` and `alerts.webhook_secret`, set together or not at all.
fn webhook(keys: &mut Keys<'_>) -> Option<Option<Webhook>> {
    let is_http = |url: &str| url.starts_with("https://") || url.starts_with("http://");
    match (
        keys.get("alerts.webhook_url"),
        keys.get("alerts.webhook_secret"),
    ) {
        ("", "") => Some(None),
        (url, secret) if is_http(url) && url.len() <= 2048 && secret.len() >= 16 => {
            Some(Some(Webhook {
                url: url.to_owned(),
                secret: std::sync::Arc::new(AdminToken::new(secret.to_owned())),
            }))
        }
        (url, _) if !is_http(url) => keys.expected(
            "alerts.webhook_url",
            "an http:// or https:// URL (set together with alerts.webhook_secret)",
        ),
        _ => keys.expected(
            "alerts.webhook_secret",
            "at least 16 characters, set together with alerts.webhook_url",
        ),
    }
}

fn log_settings(
    keys: &mut Keys<'_>,
) -> (
    Option<tracing::level_filters::LevelFilter>,
    Option<LogFormat>,
) {
    use tracing::level_filters::LevelFilter;
    let level = match keys.get("log.level") {
        "error" => Some(LevelFilter::ERROR),
        "warn" => Some(LevelFilter::WARN),
        "info" => Some(LevelFilter::INFO),
        "debug" => Some(LevelFilter::DEBUG),
        "trace" => Some(LevelFilter::TRACE),
        _ => keys.expected("log.level", "error, warn, info, debug or trace"),
    };
    let format = match keys.get("log.format") {
        "json" => Some(LogFormat::Json),
        "text" => Some(LogFormat::Text),
        _ => keys.expected("log.format", "`json` or `text`"),
    };
    (level, format)
}

fn is_master_key_source(source: &str) -> bool {
    ["file:", "env:", "aws-kms:", "vault-transit:"]
        .iter()
        .any(|scheme| {
            source
                .strip_prefix(scheme)
                .is_some_and(|rest| !rest.is_empty())
        })
}

/// A prefix that names exactly one tenant: `{tenant}` followed by a separator, so that the
/// prefix of one tenant can never cover another's references.
fn is_tenant_prefix(prefix: &str) -> bool {
    let scheme_ok = ["vault://", "aws-sm://", "azure-kv://"]
        .iter()
        .any(|scheme| prefix.starts_with(scheme) && prefix.len() > scheme.len());
    let bounded = prefix.match_indices("{tenant}").any(|(at, placeholder)| {
        matches!(
            prefix[at + placeholder.len()..].chars().next(),
            Some('/' | '#' | '-')
        )
    });
    scheme_ok && bounded
}

/// `https://…`, or `http://` to this machine only (tests, a local proxy): a bearer token must
/// not cross a network in the clear.
pub fn https_or_loopback(url: &str) -> bool {
    url.starts_with("https://")
        || ["http://127.0.0.1", "http://localhost", "http://[::1]"]
            .iter()
            .any(|origin| {
                url.strip_prefix(origin)
                    .is_some_and(|rest| rest.is_empty() || rest.starts_with([':', '/']))
            })
}

fn comma_list(text: &str) -> Vec<String> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `500ms`, `10s`, `2m`, `1h`, or `0`.
pub fn parse_duration(text: &str) -> Option<Duration> {
    let text = text.trim();
    if text == "0" {
        return Some(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().ok()?;
    match unit {
        "ms" => Some(Duration::from_millis(number)),
        "s" => Some(Duration::from_secs(number)),
        "m" => number.checked_mul(60).map(Duration::from_secs),
        "h" => number.checked_mul(3600).map(Duration::from_secs),
        _ => None,
    }
}

/// The configuration reference in Markdown, rendered from [`KEYS`] (kept in
/// `docs/configuration.md` by a test that fails when the file is stale).
pub fn reference_markdown() -> String {
    let mut text = String::from(
        "# Configuration reference\n\n\
         <!-- Generated from crates/keyward/src/config.rs by the `configuration_reference_is_current` test; do not edit. -->\n\n\
         Keyward reads one TOML file (`--config PATH`, or `./keyward.toml` if present) and then \
         environment overrides named `KEYWARD_<SECTION>_<KEY>`. Unknown keys and unknown \
         `KEYWARD_*` variables are refused, every problem is reported at once, and messages \
         name keys, never values.\n\n\
         | key | environment | default | meaning |\n| --- | --- | --- | --- |\n",
    );
    for spec in KEYS {
        let default = if spec.default.is_empty() {
            "(unset)".to_owned()
        } else {
            format!("`{}`", spec.default)
        };
        text.push_str(&format!(
            "| `{}` | `{}` | {} | {} |\n",
            spec.dotted(),
            spec.env_name(),
            default,
            spec.doc
        ));
    }
    text.push_str(
        "\nDurations take a unit: `500ms`, `10s`, `2m`, `1h` (or `0`).\n\n\
         Example `keyward.toml`:\n\n```toml\n[server]\nlisten = \"0.0.0.0:8080\"\n\n\
         [master_key]\nsource = \"file:/etc/keyward/master.key\"\n\n\
         [egress]\nallow_private = \"10.20.0.0/16\"\n```\n",
    );
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(toml_text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
        let env: BTreeMap<String, String> = env
            .iter()
            .map(|(name, value)| ((*name).to_owned(), (*value).to_owned()))
            .collect();
        Config::from_sources(toml_text, Path::new("keyward.toml"), &env)
    }

    #[test]
    fn zero_config_gives_the_spec_defaults() {
        let config = load("", &[]).unwrap();
        assert_eq!(config.listen.to_string(), "127.0.0.1:8080");
        assert_eq!(config.max_body_bytes, 10 * 1024 * 1024);
        assert_eq!(config.store_url, "sqlite://./keyward-data/keyward.db");
        assert!(config.master_key_is_default);
        assert!(config.admin_token.is_none());
        assert_eq!(config.ledger_mode, LedgerMode::Strict);
        assert_eq!(config.secrets_cache_ttl, Duration::from_secs(60));
        assert_eq!(config.shutdown_grace, Duration::from_secs(10));
        assert_eq!(config.log_format, LogFormat::Json);
    }

    #[test]
    fn env_overrides_the_file() {
        let config = load(
            "[server]\nlisten = \"127.0.0.1:9000\"\n[log]\nlevel = \"debug\"\n",
            &[
                ("KEYWARD_SERVER_LISTEN", "0.0.0.0:7000"),
                ("KEYWARD_EGRESS_ALLOW_PRIVATE", "10.0.0.0/8,127.0.0.1"),
            ],
        )
        .unwrap();
        assert_eq!(config.listen.to_string(), "0.0.0.0:7000");
        assert_eq!(config.log_level, tracing::level_filters::LevelFilter::DEBUG);
        assert_eq!(config.egress.allowed_networks().len(), 2);
    }

    #[test]
    fn every_problem_is_reported_at_once_without_values() {
        let canary = "hunter2-canary-value";
        let err = load(
            &format!(
                "[server]\nlisten = \"{canary}\"\nlisen = 1\n[stor]\nurl = \"x\"\n[log]\nlevel = \"{canary}\"\n"
            ),
            &[("KEYWARD_ADMIN_TOKEN", "short"), ("KEYWARD_SERVER_LISTN", canary)],
        )
        .unwrap_err();
        let message = err.to_string();
        for expected in [
            "`server.listen`",
            "unknown key `server.lisen`",
            "unknown section `[stor]`",
            "`log.level`",
            "`admin.token`",
            "KEYWARD_SERVER_LISTN",
        ] {
            assert!(
                message.contains(expected),
                "missing {expected} in {message}"
            );
        }
        assert_eq!(err.problems.len(), 6, "{message}");
        assert!(!message.contains("hunter2"), "{message}");
    }

    #[test]
    fn connector_sections_nest_and_take_their_env_overrides() {
        let config = load(
            "[connectors.teams]\nservice_url_allow = \"smba.trafficmanager.net, *.example.org\"\n",
            &[(
                "KEYWARD_CONNECTORS_GOOGLE_CHAT_CERTS_URL",
                "http://127.0.0.1:9/certs",
            )],
        )
        .unwrap();
        assert_eq!(
            config.connectors.teams_service_url_allow,
            ["smba.trafficmanager.net", "*.example.org"]
        );
        assert_eq!(
            config.connectors.google_chat_certs_url,
            "http://127.0.0.1:9/certs"
        );
        assert!(config
            .connectors
            .teams_token_url
            .starts_with("https://login.microsoftonline.com/"));
        let err = load(
            "[connectors.teams]\ntoken_url = \"http://evil.example/token\"\n",
            &[],
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("connectors.teams.token_url"),
            "{err}"
        );
    }

    #[test]
    fn the_env_keyring_variable_is_not_an_unknown_key() {
        let config = load(
            "",
            &[
                ("KEYWARD_MASTER_KEY_SOURCE", "env:KEYWARD_MASTER_KEY"),
                ("KEYWARD_MASTER_KEY", "1:abc"),
            ],
        )
        .unwrap();
        assert_eq!(config.master_key_source, "env:KEYWARD_MASTER_KEY");
    }

    #[test]
    fn key_custody_settings_are_checked() {
        let config = load(
            "[master_key]\nsource = \"aws-kms:alias/keyward\"\nprevious_sources = \"file:/k, vault-transit:kw\"\n\
             [secrets]\ntenant_reference_prefixes = \"vault://secret/t/{tenant}/, aws-sm://prod/{tenant}-\"\n",
            &[],
        )
        .unwrap();
        assert_eq!(config.master_key_source, "aws-kms:alias/keyward");
        assert_eq!(
            config.master_key_previous_sources,
            ["file:/k", "vault-transit:kw"]
        );
        assert_eq!(config.tenant_reference_prefixes.len(), 2);
        // A prefix must name one tenant, bounded, or every tenant could reach every secret.
        for prefix in [
            "vault://secret/shared/",
            "vault://secret/{tenant}",
            "vault://secret/{tenant}x/",
            "s3://b/{tenant}/",
        ] {
            let err = load(
                &format!("[secrets]\ntenant_reference_prefixes = \"{prefix}\"\n"),
                &[],
            )
            .unwrap_err();
            assert!(
                err.to_string().contains("tenant_reference_prefixes"),
                "{prefix}"
            );
        }
        // A bearer token never crosses a network in the clear.
        for url in ["http://{vault}.vault.azure.net", "https://vault.example"] {
            let err = load(&format!("[secrets]\nazure_vault_url = \"{url}\"\n"), &[]).unwrap_err();
            assert!(err.to_string().contains("azure_vault_url"), "{url}");
        }
        assert!(load(
            "[secrets]\nazure_vault_url = \"http://127.0.0.1:8443/{vault}\"\n",
            &[]
        )
        .is_ok());
        assert!(!https_or_loopback("http://localhost.evil.example/"));
        let err = load("[vault]\nrole_id = \"r\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("vault.secret_id_file"));
        let err = load("[master_key]\nsource = \"kms:x\"\n", &[]).unwrap_err();
        assert!(err.to_string().contains("aws-kms:KEY_ID"));
    }

    #[test]
    fn durations_parse_with_units() {
        assert_eq!(parse_duration("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_duration("2m"), Some(Duration::from_secs(120)));
        assert_eq!(parse_duration("0"), Some(Duration::ZERO));
        assert_eq!(parse_duration("10"), None);
        assert_eq!(parse_duration("s"), None);
    }

    #[test]
    fn malformed_toml_names_the_line_not_the_text() {
        let err = load("[server]\nlisten = \"unterminated-secret\n", &[]).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("not valid TOML"), "{message}");
        assert!(!message.contains("unterminated-secret"), "{message}");
    }
}
