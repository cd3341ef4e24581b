//! Opening Keyward's state the same way for `serve` and for every CLI command: data directory,
//! master keyring (created on a zero-config first start), database, and the key check.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context};
use keyward_custody::{Managers, SecretResolver};
use keyward_domain::{AlertSender, Keyward, Parts, PriceBook};
use keyward_router::{EgressClient, EgressConfig, Router, StreamBudget};
use keyward_store::{Store, StoreOptions};
use keyward_vault::{parse_source, EnvLookup, FileSource, LayeredSource, MasterKeySource, Vault};

use crate::config::Config;

/// Opens the store and the vault and checks that the keyring matches the database.
pub async fn open_keyward(
    config: &Config,
    env: EnvLookup,
    alerts: Option<AlertSender>,
) -> anyhow::Result<Keyward> {
    let options = StoreOptions {
        max_connections: config.store_max_connections,
        ..StoreOptions::default()
    };
    let store = if config.store_url.starts_with("sqlite://") {
        let db_path = sqlite_path(&config.store_url);
        if let Some(parent) = db_path
            .parent()
            .filter(|parent| !parent.as_os_str().is_empty())
        {
            ensure_private_dir(parent)?;
        }
        Store::open_with(&config.store_url, &options)
            .await
            .with_context(|| {
                format!(
                    "cannot open the database at {}; check that the directory is writable by Keyward",
                    db_path.display()
                )
            })?
    } else {
        Store::open_with(&config.store_url, &options)
            .await
            .with_context(|| {
                format!(
                    "cannot open the PostgreSQL database at {}; check store.url, that the server is reachable, and the role's privileges",
                    keyward_store::redact_url(&config.store_url)
                )
            })?
    };
    let initialised = !store.master_keys().await?.is_empty();
    let managers = crate::custody::managers(config, &env)?;
    let source = master_key_source(config, env.clone(), &managers, &store, initialised)?;
    let vault = Vault::load(source).await.with_context(|| {
        format!(
            "cannot load the master keyring from {} (Keyward does not fall back to another key)",
            config.master_key_source
        )
    })?;
    let egress = EgressClient::new(&EgressConfig {
        policy: config.egress.clone(),
        connect_timeout: config.connect_timeout,
        first_byte_timeout: config.first_byte_timeout,
        idle_timeout: config.idle_timeout,
        stream_budget: StreamBudget {
            bytes: config.max_stream_bytes,
            duration: config.max_stream_duration,
        },
    })?;
    Keyward::start(Parts {
        store,
        vault: Arc::new(vault),
        egress: config.egress.clone(),
        router: Arc::new(Router::new(egress, config.max_response_bytes)),
        ledger_mode: config.ledger_mode,
        prices: Arc::new(price_book(config)?),
        default_max_output_tokens: config.default_max_output_tokens,
        alerts,
        secrets: Arc::new(SecretResolver::new(managers, config.secrets_cache_ttl)),
        tenant_reference_prefixes: config.tenant_reference_prefixes.clone(),
        connectors: config.connectors.clone(),
    })
    .await
    .context("the master keyring does not match this database")
}

/// The price book: `prices.path`'s file when set (refused with its line), else the built-in one.
pub fn price_book(config: &Config) -> anyhow::Result<PriceBook> {
    match &config.prices_path {
        Some(path) => PriceBook::load(path)
            .context("prices.path is refused; fix the file or unset prices.path"),
        None => PriceBook::shipped().context("the shipped price book is invalid"),
    }
}

fn sqlite_path(url: &str) -> PathBuf {
    let path = url.strip_prefix("sqlite://").unwrap_or(url);
    PathBuf::from(path.split('?').next().unwrap_or(path))
}

/// The configured keyring source, with any decrypt-only previous sources layered under it.
fn master_key_source(
    config: &Config,
    env: EnvLookup,
    managers: &Managers,
    store: &Store,
    database_initialised: bool,
) -> anyhow::Result<Arc<dyn MasterKeySource>> {
    let primary =
        match crate::custody::envelope_source(&config.master_key_source, managers, store, true)? {
            Some(source) => source,
            None => local_source(config, env.clone(), database_initialised)?,
        };
    if config.master_key_previous_sources.is_empty() {
        return Ok(primary);
    }
    let mut previous = Vec::new();
    for spec in &config.master_key_previous_sources {
        let source = match crate::custody::envelope_source(spec, managers, store, false)? {
            Some(source) => source,
            None => {
                if let Some(path) = spec.strip_prefix("file:") {
                    if !Path::new(path).exists() {
                        bail!("master_key.previous_sources names {spec}, which does not exist; restore it, or remove it from the list once no row uses its versions");
                    }
                }
                parse_source(spec, env.clone()).context("invalid master_key.previous_sources")?
            }
        };
        previous.push(source);
    }
    Ok(Arc::new(LayeredSource::new(primary, previous)))
}

/// A `file:` or `env:` keyring. The default file is generated on a first start only: once a
/// database has been sealed, a missing key file is restored, never replaced.
fn local_source(
    config: &Config,
    env: EnvLookup,
    database_initialised: bool,
) -> anyhow::Result<Arc<dyn MasterKeySource>> {
    if let Some(path) = config.master_key_source.strip_prefix("file:") {
        let source = FileSource::new(path);
        let may_generate = source.path().exists() || !database_initialised;
        if config.master_key_is_default && may_generate {
            if let Some(parent) = Path::new(path).parent() {
                ensure_private_dir(parent)?;
            }
            if source
                .create_if_absent()
                .context("cannot create the master key file")?
            {
                tracing::warn!(
                    path,
                    "generated a new master key next to the database; for production keep the key on another volume, in an env var, or in a KMS (master_key.source)"
                );
            }
        } else if !source.path().exists() {
            if database_initialised {
                bail!(
                    "master key file {path} is missing, but this database was initialised with it; restore the file from your backup (a new key cannot open secrets sealed with the old one)"
                );
            }
            bail!(
                "master key file {path} does not exist; restore it, or create a new keyring with one line `1:BASE64` (32 random bytes) for a new installation"
            );
        }
        return Ok(Arc::new(source));
    }
    parse_source(&config.master_key_source, env).context("invalid master_key.source")
}

fn ensure_private_dir(path: &Path) -> anyhow::Result<()> {
    if path.is_dir() {
        return Ok(());
    }
    std::fs::create_dir_all(path).with_context(|| {
        format!(
            "cannot create the data directory {}; create it yourself or run Keyward where it may write",
            path.display()
        )
    })?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
            .with_context(|| format!("cannot restrict permissions of {}", path.display()))?;
    }
    Ok(())
}
