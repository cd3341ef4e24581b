//! Keyward's vocabulary: identifiers, units, the SPEC's error codes and provider ids, and the
//! types that hold secrets.
//!
//! Invariants kept here:
//! - No I/O, no async runtime, no HTTP framework: every other crate can depend on this one.
//! - Every string the SPEC fixes (error codes, provider ids) is spelled in exactly one place,
//!   an enum's `as_str()` in this crate.
//! - Secret types zeroize on drop, print as `[redacted]`, and implement neither `Serialize`
//!   nor `PartialEq`.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

pub mod body_text;
pub mod egress_policy;
pub mod error_code;
pub mod id;
pub mod period;
pub mod provider;
pub mod sealed;
pub mod secret;
pub mod sigv4;
pub mod timestamp;

pub use body_text::BodyText;
pub use error_code::ErrorCode;
pub use id::{
    BudgetId, ChunkId, ConnectorId, CredentialId, DepartmentId, DocumentId, KnowledgeBaseId,
    PlatformKeyId, RequestId, TenantId,
};
pub use period::{format_usd, parse_usd, BudgetPeriod, Window};
pub use provider::ProviderId;
pub use sealed::{KeyVersion, SealedSecret};
pub use timestamp::Timestamp;
