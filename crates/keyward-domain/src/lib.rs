//! Keyward's business rules: tenants, departments, credentials, platform keys, who may touch
//! what, and master-key rotation.
//!
//! Invariants:
//! - Every operation on a tenant's objects takes a [`TenantScope`], which only
//!   [`Keyward::scope`] can create after checking the actor; a tenant admin asking for another
//!   tenant's objects gets `NotFound`, exactly as for a missing one.
//! - Plaintext secrets exist only inside `ProviderSecret` values: sealed before they reach the
//!   store, opened only by [`Keyward::open_credential_secret`] for an outbound call.
//! - There is no operator-level provider key: every secret belongs to one tenant's credential.
//! - Error messages name ids, labels and fields, never a secret or a request body.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

mod access;
mod alert;
mod audit;
mod budget;
mod connector;
mod console;
mod credential;
mod department;
mod error;
mod inference;
pub mod instance;
mod knowledge;
mod master_key;
mod metrics;
mod platform_key;
mod price;
mod rate_limit;
mod reconcile;
mod record_cache;
mod route;
mod tenant;
mod usage;
mod usage_days;
mod validate;

use std::sync::Arc;

use keyward_core::egress_policy::EgressPolicy;
use keyward_router::Router;
use keyward_store::Store;
use keyward_vault::Vault;
use tokio_util::task::TaskTracker;

pub use access::{Actor, ActorName, TenantScope};
pub use alert::{alert_channel, Alert, AlertReceiver, AlertSender};
pub use audit::AuditVerification;
pub use budget::{BudgetInput, BudgetStatus};
pub use connector::{
    ChatAnswer, ChatResponse, ConnectorInput, ConnectorRefusal, ConnectorsConfig, TeamsAccepted,
};
pub use console::SessionLimits;
pub use credential::{CredentialInput, OpenedCredential};
pub use department::DepartmentInput;
pub use error::DomainError;
pub use inference::{
    CallContext, Citations, InferenceReply, KnowledgeRequest, LedgerMode, ServedBy,
};
pub use keyward_store::TenantPriceRecord;
pub use keyward_store::{
    AuditRecord, BudgetRecord, CallFilter, CallRecord, CallStatus, ConnectorRecord,
    CredentialRecord, CredentialStatus, DepartmentRecord, Page, PageRequest, PlatformKeyRecord,
    RewrapJob, RewrapState, Role, RouteRecord, TenantRecord,
};
pub use knowledge::{
    DocumentInput, DocumentSummary, KnowledgeAccess, KnowledgeBaseInput, KnowledgeBaseSummary,
};
pub use master_key::{MasterKeyStatus, RewrapProgress, VersionState, VersionStatus};
pub use metrics::Metrics;
pub use platform_key::{IssuedPlatformKey, PlatformKeyInput};
pub use price::{PriceBook, PriceBookError, TenantPriceInput};
pub use rate_limit::{KeyLimits, LimitKind, RateLimited};
pub use reconcile::{
    Difference, ExportError, LedgerLine, LineStatus, ProviderLine, ProviderStatement,
    ReconciledLine, Reconciliation, TokenCounts, UnattributedCost,
};
pub use route::RouteTargetInput;
pub use usage::{
    usage_range, GroupBy, PlatformInvoiceDay, UsageAggregator, UsageGroup, USAGE_PAGE,
};

/// The router types a caller of [`Keyward::infer`] hands in; nothing else of the router is
/// reachable through the domain (the architecture test holds the list).
pub mod router {
    pub use keyward_router::{ClientHeaders, PromptBody, Surface};
}

/// What the HTTP layer needs of the knowledge crate to read a document upload and answer a
/// search (the architecture test holds the list).
pub mod kb {
    pub use keyward_knowledge::document::{decode, kind_of_upload};
    pub use keyward_knowledge::{ContentKind, DocumentError, SearchAnswer};
}

/// What the domain is built from.
pub struct Parts {
    pub store: Store,
    pub vault: Arc<Vault>,
    pub egress: EgressPolicy,
    pub router: Arc<Router>,
    pub ledger_mode: LedgerMode,
    pub prices: Arc<PriceBook>,
    /// The output cap assumed for a call's worst-case cost when the client sets none.
    pub default_max_output_tokens: u64,
    /// Where alerts go besides the audit log (the webhook sender); `None` for the CLI.
    pub alerts: Option<AlertSender>,
    /// Fetches secrets that credentials reference in external managers.
    pub secrets: Arc<keyward_custody::SecretResolver>,
    /// Reference prefixes a tenant admin may use, `{tenant}` standing for the tenant id
    /// (`secrets.tenant_reference_prefixes`); the operator may use any reference.
    pub tenant_reference_prefixes: Vec<String>,
    /// The chat platforms' endpoints (`connectors.*`).
    pub connectors: ConnectorsConfig,
}

/// The domain facade shared by the HTTP layer and the CLI. One shared allocation: handlers
/// clone it several times per request, so a clone is a single reference-count increment.
#[derive(Clone)]
pub struct Keyward {
    inner: Arc<KeywardInner>,
}

impl std::ops::Deref for Keyward {
    type Target = KeywardInner;

    fn deref(&self) -> &KeywardInner {
        &self.inner
    }
}

/// The facade's state, reached through [`Keyward`].
pub struct KeywardInner {
    store: Store,
    vault: Arc<Vault>,
    egress: EgressPolicy,
    router: Arc<Router>,
    ledger_mode: LedgerMode,
    /// Work that outlives a request (settling a stream's ledger row); drained at shutdown.
    tasks: TaskTracker,
    metrics: Arc<Metrics>,
    /// The price book in force: the shipped one or `prices.path`'s, replaced whole on reload.
    prices: std::sync::RwLock<Arc<PriceBook>>,
    default_max_output_tokens: u64,
    alerts: Option<AlertSender>,
    /// Per-key RPM/TPM limits: in memory on SQLite, shared through PostgreSQL.
    limits: rate_limit::Limits,
    tenant_rates: Arc<price::TenantRates>,
    instance: Arc<instance::Instance>,
    secrets: Arc<keyward_custody::SecretResolver>,
    tenant_reference_prefixes: Arc<[String]>,
    /// The newest version a keyring reload last failed to find, and when: a replica that
    /// cannot obtain a newer version (old configuration) retries it only now and then.
    missed_reload: Arc<std::sync::Mutex<Option<(keyward_core::KeyVersion, std::time::Instant)>>>,
    records: Arc<record_cache::RecordCaches>,
    /// This process's knowledge-base search indexes.
    indexes: Arc<knowledge::KnowledgeIndexes>,
    /// The chat platforms' endpoints and their cached signing keys.
    connectors: ConnectorsConfig,
    platform_keys: Arc<connector::PlatformKeys>,
    teams_tokens: Arc<connector::TeamsTokens>,
    /// Usage totals of closed days (they no longer change).
    closed_days: Arc<usage_days::ClosedDays>,
    /// Providers' model lists, for `GET /v1/models`.
    model_lists: Arc<inference::ModelLists>,
}

impl std::fmt::Debug for Keyward {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Keyward").finish_non_exhaustive()
    }
}

impl Keyward {
    /// Checks the keyring against the keys this database was sealed with (fail fast on a wrong
    /// or missing key) and returns the facade.
    pub async fn start(parts: Parts) -> Result<Self, DomainError> {
        let instance = instance::Instance {
            id: keyward_core::RequestId::generate().to_string().into(),
            host: instance::host_name(),
        };
        let inner = KeywardInner {
            store: parts.store.for_instance(&instance.id),
            instance: Arc::new(instance),
            vault: parts.vault,
            egress: parts.egress,
            router: parts.router,
            ledger_mode: parts.ledger_mode,
            tasks: TaskTracker::new(),
            limits: rate_limit::Limits::for_store(&parts.store),
            tenant_rates: Arc::default(),
            metrics: Arc::new(Metrics::default()),
            prices: std::sync::RwLock::new(parts.prices),
            default_max_output_tokens: parts.default_max_output_tokens,
            alerts: parts.alerts,
            secrets: parts.secrets,
            tenant_reference_prefixes: parts.tenant_reference_prefixes.into(),
            missed_reload: Arc::default(),
            records: Arc::default(),
            indexes: Arc::default(),
            connectors: parts.connectors,
            platform_keys: Arc::default(),
            teams_tokens: Arc::default(),
            closed_days: Arc::default(),
            model_lists: Arc::default(),
        };
        let keyward = Self {
            inner: Arc::new(inner),
        };
        keyward.verify_master_keys().await?;
        keyward
            .rewrap_rows_behind(keyward.vault.keyring().primary())
            .await?;
        keyward.register_instance().await?;
        Ok(keyward)
    }

    /// Wipes referenced secrets held longer than `secrets.cache_ttl`.
    pub fn purge_expired_secrets(&self) {
        self.secrets.purge_expired();
    }

    /// Whether the database answers a trivial query (`/readyz`).
    pub async fn ping_store(&self) -> Result<(), DomainError> {
        Ok(self.store.ping().await?)
    }

    /// Stops the ledger writer after what is queued and closes every database connection;
    /// the last step of a shutdown, after [`Keyward::deregister`].
    pub async fn close_store(&self) {
        self.store.close().await;
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// The price book in force.
    pub fn price_book(&self) -> Arc<PriceBook> {
        self.prices
            .read()
            .unwrap_or_else(|poison| poison.into_inner())
            .clone()
    }

    /// Puts `book` in force for every call priced from now on (`prices.path` reloaded on
    /// SIGHUP); rows already written keep the cost they were settled with.
    pub fn replace_price_book(&self, book: PriceBook) {
        let entries = book.entries().count();
        let origin = book.origin().to_owned();
        *self
            .prices
            .write()
            .unwrap_or_else(|poison| poison.into_inner()) = Arc::new(book);
        tracing::info!(entries, origin = %origin, "price book in force");
    }

    /// Background work started by requests; close and wait on it at shutdown.
    pub fn tasks(&self) -> &TaskTracker {
        &self.tasks
    }
}
