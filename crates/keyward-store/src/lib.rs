//! Keyward's persistent state behind typed repositories.
//!
//! Invariants:
//! - The store never sees plaintext secrets: sealed values arrive and leave as
//!   [`keyward_core::SealedSecret`], platform keys as SHA-256 hashes.
//! - Every query on a tenant's objects filters by `tenant_id`; no method returns another
//!   tenant's row.
//! - SQL is portable (`$N` placeholders, TEXT ids, BIGINT milliseconds, no booleans), so a
//!   PostgreSQL backend runs the same statements; nothing SQLite-specific leaves this crate.
//!   SQLite's ledger writes run the same statement texts (`ledger_sql`) on the group-commit
//!   writer's own connection.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

mod audit;
mod budget;
mod connect;
mod connector;
mod console_session;
mod credential;
mod custody;
mod department;
mod error;
mod group_commit;
mod instance;
mod knowledge;
mod knowledge_chunk;
mod ledger;
mod ledger_sql;
mod ledger_sqlite;
mod master_key;
mod page;
mod platform_key;
mod rate_bucket;
mod route;
mod sealed_swap;
mod tenant;
mod tenant_price;
mod wal_pacing;

pub use audit::{verify_chain, AuditRecord, ChainBreak, NewAuditEntry, GENESIS_HASH};
pub use budget::{BudgetRecord, BudgetScopeKind, WindowSpend};
pub use connect::{redact_url, Backend, Store, StoreOptions};
pub use connector::{ConnectorKind, ConnectorRecord};
pub use console_session::ConsoleSessionRecord;
pub use credential::{CredentialRecord, CredentialStatus, NewCredential, RewrapCandidate};
pub use custody::WrappedDataKeyRecord;
pub use department::DepartmentRecord;
pub use error::{SqliteError, StoreError};
pub use instance::InstanceRecord;
pub use knowledge::{
    ChunkRecord, DocumentRecord, DocumentStatus, KnowledgeBaseRecord, KnowledgeTable, NewChunk,
    SealedKnowledgeRow,
};
pub use knowledge_chunk::Finished;
pub use ledger::{
    Admission, CallFilter, CallRecord, CallStatus, CallTotals, PendingCall, RoutedRequests,
    Settled, Settlement, SoftLimitCrossed, TotalsColumn,
};
pub use master_key::{RewrapJob, RewrapState};
pub use page::{Page, PageRequest};
pub use platform_key::{NewPlatformKey, PlatformKeyRecord, Role};
pub use rate_bucket::{BucketChange, BucketState};
pub use route::{RouteRecord, RouteTarget};
pub use tenant::TenantRecord;
pub use tenant_price::TenantPriceRecord;
