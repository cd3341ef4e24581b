//! Knowledge bases: what turns a tenant's document into searchable, citable pieces, and what
//! turns search hits into the sources a model is given.
//!
//! - [`document`]: an uploaded or posted document read into [`BodyText`] (UTF-8 text or
//!   markdown; anything else is refused with the reason).
//! - [`chunk`]: structure-aware chunking (markdown headings, paragraphs, sentences) with a
//!   token budget of the `cl100k_base` BPE tokenizer and an overlap; each chunk keeps its
//!   position and heading path for citations.
//! - [`sealed_form`]: the plaintext layout of what the vault seals for a document (name,
//!   metadata) and a chunk (heading path, text).
//! - [`vector`]: vectors as stored (little-endian `f32`), normalized for cosine scoring.
//! - [`index`]: the in-process search index of one knowledge base.
//! - [`sources`]: the numbered sources and citation instruction given to a model, and the
//!   search route's JSON answer.
//!
//! Invariants:
//! - Document and chunk text, names and queries are [`BodyText`]: nothing here prints, logs or
//!   puts them in an error. Errors name positions, sizes and kinds, never content.
//! - No I/O: the domain stores, seals and embeds; this crate computes.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

pub mod chunk;
pub mod document;
pub mod index;
pub mod sealed_form;
pub mod sources;
pub mod vector;

pub use chunk::{Chunk, ChunkPlan, ChunkPlanError, TOKENIZER};
pub use document::{ContentKind, DocumentError};
pub use index::{Hit, IndexEntry, VectorIndex};
pub use sources::{SearchAnswer, SourceChunk};
pub use vector::VectorError;
