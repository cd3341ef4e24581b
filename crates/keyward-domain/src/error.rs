//! Domain errors, each with the user-facing [`ErrorCode`] it maps to. Messages say what is wrong
//! and how to fix it, naming fields, labels and ids — never secrets or bodies.

use keyward_core::{CredentialId, ErrorCode, KeyVersion};
use keyward_store::StoreError;
use keyward_vault::VaultError;

#[derive(Debug, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {reason}")]
    InvalidInput { field: String, reason: String },
    #[error("{what} not found")]
    NotFound { what: &'static str },
    #[error("a {what} with this {field} already exists; choose another {field}")]
    Conflict {
        what: &'static str,
        field: &'static str,
    },
    #[error("{0}")]
    Forbidden(&'static str),
    #[error("missing or invalid credentials: send `Authorization: Bearer <KEYWARD_ADMIN_TOKEN or tenant admin kw_ key>`")]
    Unauthenticated,
    #[error("the platform key is missing, unknown, expired or revoked; send `Authorization: Bearer kw_…` with a key issued by your tenant admin")]
    InvalidPlatformKey,
    #[error("credential `{label}` ({id}) cannot be opened with the configured master key; the operator must restore master key version {version} (see server logs)")]
    CredentialUnreadable {
        id: CredentialId,
        label: String,
        version: KeyVersion,
        #[source]
        source: VaultError,
    },
    #[error("credential `{label}` ({id}): its secret at {reference} cannot be read from {manager}; the operator has the details in the server logs")]
    CredentialReferenceUnreadable {
        id: CredentialId,
        label: String,
        reference: String,
        manager: &'static str,
        #[source]
        source: Box<keyward_custody::CustodyError>,
    },
    #[error("master key version {version} from {location} is not the key that sealed this database (key check value {actual}, recorded {recorded}); point master_key.source at the keyring this database was created with")]
    MasterKeyMismatch {
        version: KeyVersion,
        location: String,
        actual: String,
        recorded: String,
    },
    #[error("this database holds {rows} secret(s) sealed with master key version {version}, which is not in the keyring at {location}; add that version's `{version}:BASE64` line back")]
    MasterKeyMissing {
        version: KeyVersion,
        rows: u64,
        location: String,
    },
    #[error("no new master key version to rotate to: the keyring at {location} still has version {primary} as its highest; for env: sources append a `{next}:BASE64` line on every replica first")]
    NothingToRotate {
        location: String,
        primary: KeyVersion,
        next: u64,
    },
    #[error("no credential can serve this model: {reason}")]
    NoCredential { reason: String },
    #[error("model `{model}` is not in this {by}'s allow-list; ask your tenant admin to allow it")]
    ModelNotAllowed { model: String, by: &'static str },
    #[error("model `{model}` has no price for provider {provider}, and a hard spending cap ({scope}) applies to this call, so its cost could not be counted against it; a tenant admin can set a rate (PUT /admin/v1/tenants/{{tenant}}/prices; 0 is allowed, e.g. for a self-hosted model)")]
    ModelUnpriced {
        model: String,
        provider: &'static str,
        scope: String,
    },
    #[error("`{field}` makes this call's input impossible to bound before it is sent, and a hard spending cap ({scope}) applies to it, so its cost could not be counted against the cap; send the content itself in the request instead")]
    InputUnbounded { field: &'static str, scope: String },
    #[error("credential `{label}` is disabled in Keyward; a tenant admin can enable it")]
    CredentialDisabled { label: String },
    #[error("the provider rejected credential `{label}` as invalid (revoked or expired); a tenant admin must rotate it (POST …/credentials/{{id}}/rotate) before calls resume")]
    ProviderCredentialRejected { label: String },
    #[error("{0}")]
    BudgetExceeded(Box<BudgetRefusal>),
    #[error("this platform key's limit of {} {} is reached; retry in {} s, or ask your tenant admin to raise it", .0.limit, .0.kind.describe(), .0.retry_after_secs)]
    RateLimited(crate::RateLimited),
    #[error(
        "the usage ledger cannot record this call, so it was not sent upstream; retry shortly"
    )]
    LedgerUnavailable,
    #[error("the provider behind credential `{label}` failed with status {status}; retry later")]
    UpstreamFailed { status: u16, label: String },
    #[error("{0}")]
    Router(keyward_router::RouterError),
    #[error("{0}")]
    Document(#[from] keyward_knowledge::DocumentError),
    #[error("knowledge base `{kb}`: the embedding call failed: {reason}")]
    EmbeddingFailed { kb: String, reason: String },
    #[error("knowledge base `{kb}` has no searchable document yet ({ingesting} still ingesting); retry when ingestion has finished (GET /v1/knowledge-bases/{kb}/documents shows progress)")]
    KnowledgeNotReady { kb: String, ingesting: u64 },
    #[error("the call was aborted inside Keyward (the server is shutting down, or a bug); its ledger row records what happened upstream")]
    CallAborted,
    #[error(transparent)]
    Vault(VaultError),
    #[error(transparent)]
    Store(StoreError),
}

/// Why a hard budget refused a call: which budget, and the amounts.
#[derive(Debug, thiserror::Error)]
#[error("the {period} budget of {scope} does not leave room for this call's worst-case cost ({needed_usd} USD; {left_usd} USD left of {limit_usd} in window {window}); lower max_tokens, wait for the next window, or ask your tenant admin to raise the budget")]
pub struct BudgetRefusal {
    pub scope: String,
    pub period: &'static str,
    pub window: String,
    pub needed_usd: String,
    pub left_usd: String,
    pub limit_usd: String,
}

impl DomainError {
    pub(crate) fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::InvalidInput {
            field: field.into(),
            reason: reason.into(),
        }
    }

    pub fn code(&self) -> ErrorCode {
        match self {
            Self::InvalidInput { .. } => ErrorCode::InvalidRequest,
            Self::NotFound { .. } => ErrorCode::NotFound,
            Self::Conflict { .. } => ErrorCode::Conflict,
            Self::Forbidden(_) => ErrorCode::Forbidden,
            Self::Unauthenticated => ErrorCode::Unauthenticated,
            Self::InvalidPlatformKey => ErrorCode::InvalidPlatformKey,
            Self::CredentialUnreadable { .. } | Self::CredentialReferenceUnreadable { .. } => {
                ErrorCode::CredentialUnreadable
            }
            Self::MasterKeyMismatch { .. }
            | Self::MasterKeyMissing { .. }
            | Self::NothingToRotate { .. } => ErrorCode::Conflict,
            Self::NoCredential { .. } => ErrorCode::NoCredential,
            Self::ModelNotAllowed { .. } => ErrorCode::ModelNotAllowed,
            Self::ModelUnpriced { .. } => ErrorCode::ModelUnpriced,
            Self::InputUnbounded { .. } => ErrorCode::InvalidRequest,
            Self::CredentialDisabled { .. } => ErrorCode::CredentialDisabled,
            Self::ProviderCredentialRejected { .. } => ErrorCode::ProviderCredentialRejected,
            Self::LedgerUnavailable => ErrorCode::LedgerUnavailable,
            Self::BudgetExceeded(_) => ErrorCode::BudgetExceeded,
            Self::RateLimited(_) => ErrorCode::RateLimited,
            Self::UpstreamFailed { .. } => ErrorCode::UpstreamError,
            Self::Router(err) => err.code(),
            Self::Document(_) => ErrorCode::InvalidRequest,
            Self::EmbeddingFailed { .. } => ErrorCode::UpstreamError,
            Self::KnowledgeNotReady { .. } => ErrorCode::Conflict,
            Self::CallAborted => ErrorCode::Internal,
            Self::Vault(_) => ErrorCode::Internal,
            Self::Store(StoreError::Conflict { .. }) => ErrorCode::Conflict,
            Self::Store(StoreError::Unavailable(_) | StoreError::Sqlite(_)) => {
                ErrorCode::ServiceUnavailable
            }
            Self::Store(_) => ErrorCode::Internal,
        }
    }
}

impl From<StoreError> for DomainError {
    fn from(err: StoreError) -> Self {
        match err {
            StoreError::Conflict { what, field } => Self::Conflict { what, field },
            other => Self::Store(other),
        }
    }
}

impl From<VaultError> for DomainError {
    fn from(err: VaultError) -> Self {
        Self::Vault(err)
    }
}

impl From<keyward_router::RouterError> for DomainError {
    fn from(err: keyward_router::RouterError) -> Self {
        Self::Router(err)
    }
}
