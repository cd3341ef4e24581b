//! A document in: chunk it by structure, embed the chunks in batches on the knowledge base's
//! credential, seal each chunk, and write the chunks with the document's `ready` status in one
//! transaction.
//!
//! Invariants:
//! - The document row exists (`ingesting`, with progress) before the first embedding call, so
//!   a listing shows it and a process that dies leaves a row the instance sweep ends `failed`.
//! - No chunk is searchable before all of them are embedded and written: a failure halfway
//!   (provider, budget, rejected key, a delete meanwhile) ends the document `failed` with the
//!   reason — never a half-indexed `ready` one. Failed documents are uploaded again to retry.
//! - Every embedding call has its own ledger row (tag `kb=NAME`, `purpose=ingest`).

use keyward_core::{BodyText, ChunkId, DocumentId, Timestamp};
use keyward_knowledge::{sealed_form, vector, Chunk, ChunkPlan, ContentKind, DocumentError};
use keyward_store::{DocumentRecord, DocumentStatus, Finished, KnowledgeBaseRecord, NewChunk};

use super::{chunk_binding, document_binding, KnowledgeAccess};
use crate::inference::Caller;
use crate::{DomainError, Keyward};

/// Chunks per embedding call, and the tokens one call may carry (providers cap both).
const BATCH_CHUNKS: usize = 64;
const BATCH_TOKENS: u32 = 100_000;

/// A document to add. `metadata` is a JSON object's text, or empty.
pub struct DocumentInput {
    pub name: BodyText,
    pub text: BodyText,
    pub kind: ContentKind,
    pub metadata: BodyText,
}

/// A document with its opened name and metadata (never its text).
pub struct DocumentSummary {
    pub record: DocumentRecord,
    pub name: BodyText,
    pub metadata: BodyText,
}

impl Keyward {
    /// Adds a document to a knowledge base and indexes it; answers once it is `ready`, or with
    /// the reason it `failed` (the document's row keeps that reason).
    pub async fn add_document(
        &self,
        access: &KnowledgeAccess,
        kb: &str,
        input: DocumentInput,
    ) -> Result<DocumentSummary, DomainError> {
        let kb = self.readable_knowledge_base(&access.caller, kb).await?;
        keyward_knowledge::document::check_name(&input.name)?;
        if input.text.is_blank() {
            return Err(DocumentError::Empty.into());
        }
        let plan = ChunkPlan::new(kb.chunk_tokens, kb.chunk_overlap)
            .map_err(|err| DomainError::invalid("chunk_tokens", err.to_string()))?;
        let bytes = input.text.len() as u64;
        let (text, kind) = (input.text, input.kind);
        let chunks = tokio::task::spawn_blocking(move || plan.chunk(&text, kind))
            .await
            .map_err(|_| DomainError::CallAborted)?
            .map_err(|err| DomainError::invalid("text", err.to_string()))?;
        let id = DocumentId::generate();
        let sealed = self.vault.seal(
            &sealed_form::encode_document(&input.name, &input.metadata),
            &document_binding(&kb, &id.to_string()),
        )?;
        let now = Timestamp::now();
        let mut record = DocumentRecord {
            id,
            tenant_id: kb.tenant_id,
            kb_id: kb.id,
            sealed: Some(sealed),
            content_type: kind.as_str().to_owned(),
            bytes,
            chunks: chunks.len() as u64,
            embedded: 0,
            status: DocumentStatus::Ingesting,
            error: None,
            instance_id: Some(self.instance.id.to_string()),
            created_at: now,
            updated_at: now,
        };
        self.store.insert_document(&record).await?;
        match self.index_document(&access.caller, &kb, id, &chunks).await {
            Ok(()) => {
                record.status = DocumentStatus::Ready;
                record.embedded = record.chunks;
                record.instance_id = None;
                tracing::info!(tenant = %kb.tenant_id, kb = %kb.id, document = %id, chunks = record.chunks, "document indexed");
                Ok(DocumentSummary {
                    record,
                    name: input.name,
                    metadata: input.metadata,
                })
            }
            Err(error) => {
                // The reason names sizes, ids and codes only (DomainError never carries text).
                let reason = format!("the document could not be indexed: {error}");
                self.store.fail_document(id, &reason).await?;
                tracing::warn!(tenant = %kb.tenant_id, kb = %kb.id, document = %id, code = error.code().as_str(), "document ingestion failed");
                Err(error)
            }
        }
    }

    /// Embeds and seals every chunk, then writes them with the `ready` status.
    async fn index_document(
        &self,
        caller: &Caller,
        kb: &KnowledgeBaseRecord,
        document: DocumentId,
        chunks: &[Chunk],
    ) -> Result<(), DomainError> {
        let mut written = Vec::with_capacity(chunks.len());
        let mut dimensions = kb.dimensions.map(|dimensions| dimensions as usize);
        for batch in batches(chunks) {
            let texts: Vec<&BodyText> = batch.iter().map(|chunk| &chunk.text).collect();
            let vectors = self
                .embed_for_knowledge(caller, kb, &texts, "ingest")
                .await?;
            for (chunk, mut values) in batch.iter().zip(vectors) {
                let expected = *dimensions.get_or_insert(values.len());
                if values.len() != expected {
                    return Err(dimension_error(kb, expected, values.len()));
                }
                vector::normalize(&mut values).map_err(|err| DomainError::EmbeddingFailed {
                    kb: kb.name.clone(),
                    reason: err.to_string(),
                })?;
                written.push(self.seal_chunk(kb, document, chunk, &values)?);
            }
            let still_ingesting = self
                .store
                .set_document_progress(document, chunks.len() as u64, written.len() as u64)
                .await?;
            if !still_ingesting {
                return Err(deleted_meanwhile());
            }
        }
        let dimensions = u32::try_from(dimensions.unwrap_or(0)).unwrap_or(u32::MAX);
        match self
            .store
            .finish_document(kb.tenant_id, kb.id, document, &written, dimensions)
            .await?
        {
            Finished::Ready => Ok(()),
            Finished::Gone => Err(deleted_meanwhile()),
            Finished::DimensionsDiffer { expected } => {
                Err(dimension_error(kb, expected as usize, dimensions as usize))
            }
        }
    }

    fn seal_chunk(
        &self,
        kb: &KnowledgeBaseRecord,
        document: DocumentId,
        chunk: &Chunk,
        values: &[f32],
    ) -> Result<NewChunk, DomainError> {
        let id = ChunkId::generate();
        let binding = chunk_binding(
            kb.tenant_id,
            &kb.id.to_string(),
            &document.to_string(),
            &id.to_string(),
        );
        let sealed = self.vault.seal(
            &sealed_form::encode_chunk(&chunk.heading, &chunk.text),
            &binding,
        )?;
        Ok(NewChunk {
            id,
            position: chunk.position,
            sealed,
            vector: vector::encode(values),
        })
    }

    /// The live documents of a knowledge base, with their names and metadata.
    pub async fn documents(
        &self,
        access: &KnowledgeAccess,
        kb: &str,
    ) -> Result<Vec<DocumentSummary>, DomainError> {
        let kb = self.readable_knowledge_base(&access.caller, kb).await?;
        let mut summaries = Vec::new();
        for record in self.store.documents(kb.id).await? {
            let (name, metadata) = self.open_document(&kb, &record).await?;
            summaries.push(DocumentSummary {
                record,
                name,
                metadata,
            });
        }
        Ok(summaries)
    }

    pub async fn document(
        &self,
        access: &KnowledgeAccess,
        kb: &str,
        id: DocumentId,
    ) -> Result<DocumentSummary, DomainError> {
        let kb = self.readable_knowledge_base(&access.caller, kb).await?;
        let record = self
            .store
            .document(kb.id, id)
            .await?
            .ok_or(DomainError::NotFound { what: "document" })?;
        let (name, metadata) = self.open_document(&kb, &record).await?;
        Ok(DocumentSummary {
            record,
            name,
            metadata,
        })
    }

    /// Deletes a document: its text and vectors leave search at once.
    pub async fn delete_document(
        &self,
        access: &KnowledgeAccess,
        kb: &str,
        id: DocumentId,
    ) -> Result<(), DomainError> {
        let kb = self.readable_knowledge_base(&access.caller, kb).await?;
        if !self
            .store
            .delete_document(kb.id, id, Timestamp::now())
            .await?
        {
            return Err(DomainError::NotFound { what: "document" });
        }
        self.indexes.forget(kb.id);
        tracing::info!(tenant = %kb.tenant_id, kb = %kb.id, document = %id, "document deleted");
        Ok(())
    }
}

/// Consecutive chunks, at most [`BATCH_CHUNKS`] and about [`BATCH_TOKENS`] per call.
fn batches(chunks: &[Chunk]) -> Vec<&[Chunk]> {
    let mut batches = Vec::new();
    let mut start = 0;
    let mut tokens = 0u32;
    for (index, chunk) in chunks.iter().enumerate() {
        let full = index - start == BATCH_CHUNKS
            || (index > start && tokens.saturating_add(chunk.tokens) > BATCH_TOKENS);
        if full {
            batches.push(&chunks[start..index]);
            start = index;
            tokens = 0;
        }
        tokens = tokens.saturating_add(chunk.tokens);
    }
    if start < chunks.len() {
        batches.push(&chunks[start..]);
    }
    batches
}

fn deleted_meanwhile() -> DomainError {
    DomainError::NotFound {
        what: "document (it or its knowledge base was deleted while it was ingesting)",
    }
}

fn dimension_error(kb: &KnowledgeBaseRecord, expected: usize, got: usize) -> DomainError {
    DomainError::EmbeddingFailed {
        kb: kb.name.clone(),
        reason: format!(
            "the provider returned vectors of {got} dimensions where this knowledge base holds {expected}; the embedding model must not change (create a new knowledge base for another model)"
        ),
    }
}
