//! The inference path. This crate alone reads prompt and completion bodies: it parses what a
//! client sent, rewrites what it must (the model name, a usage request), calls the provider on
//! the tenant's own credential, forwards the answer chunk by chunk, and reports only metadata
//! (tokens, model, request id, outcome) to the rest of Keyward.
//!
//! Invariants:
//! - [`PromptBody`], [`CompletionBody`] and [`CompletionStream`] have private fields and no
//!   `Debug`, `Display`, `Clone` or `Serialize` (pinned at compile time); nothing outside this
//!   crate can read them.
//! - Errors never carry body text: decode errors name a JSON path or position, provider
//!   failures a status and a provider request id.
//! - Every outbound request goes through [`egress::EgressClient`]: no redirects, no proxy from
//!   the environment, the SSRF policy applied to the address actually dialled, auth headers
//!   marked sensitive.
//! - Parsers of provider bytes are bounded: no event, line or body grows without limit.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

pub mod aws;
#[cfg(feature = "bench-internals")]
#[doc(hidden)]
pub mod bench_internals;
pub mod body;
pub mod egress;
mod error;
pub mod input_bound;
pub mod platform;
pub mod provider;
pub mod retrieval;
mod sse;
pub mod stream;
mod translate;
pub mod usage;

pub use body::{BodyError, ClientHeaders, CompletionBody, PromptBody, RouteRequest, Surface};
pub use egress::{EgressClient, EgressConfig};
pub use error::RouterError;
pub use input_bound::InputBound;
pub use provider::{
    supports, CompleteReply, Router, StreamingReply, Target, UpstreamReply, Verification,
};
pub use retrieval::EmbeddingShapeError;
pub use stream::{CompletionStream, StreamBudget, StreamEnd, StreamOutcome};
pub use usage::UsageReport;
