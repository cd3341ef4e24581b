//! Knowledge bases: a department's documents, chunked, sealed, embedded on the tenant's own
//! key and searched; retrieval-augmented calls (`x-keyward-knowledge-base`).
//!
//! - this module: knowledge bases (create, list, delete) and who may read which one;
//! - [`ingest`]: a document in: chunk, embed in batches, seal, write with `ready`;
//! - [`search`]: the per-process index cache, search, and opening the hits' text;
//! - [`augment`]: numbered sources added to a chat call;
//! - [`rewrap`]: master-key rotation of sealed documents and chunks.
//!
//! Invariants:
//! - Access: a member key reads its own department's knowledge bases, a tenant admin key (or
//!   the operator through a tenant scope) all of its tenant's, a key without a department
//!   none; anything else answers `NotFound`, exactly like a missing one.
//! - Every embedding runs through `embed_for_knowledge` (the knowledge base's credential, a
//!   ledger row tagged `kb=NAME`, budgets); there is no other embedding path.
//! - Document names, metadata, chunk text and queries are `BodyText`: sealed before the store,
//!   never logged or put in an error.

mod augment;
mod ingest;
pub(crate) mod rewrap;
mod search;

use keyward_core::{BodyText, DepartmentId, TenantId, Timestamp};
use keyward_knowledge::ChunkPlan;
use keyward_router::Surface;
use keyward_store::{DocumentRecord, DocumentStatus, KnowledgeBaseRecord};
use keyward_vault::RowBinding;

pub use ingest::{DocumentInput, DocumentSummary};
pub(crate) use search::KnowledgeIndexes;

use crate::inference::Caller;
use crate::{Actor, DomainError, Keyward, TenantScope};

/// Default chunk size and overlap (SPEC), in tokens of `cl100k_base`.
pub const DEFAULT_CHUNK_TOKENS: u32 = 400;
pub const DEFAULT_CHUNK_OVERLAP: u32 = 60;

/// The sealed fields' names in the vault's associated data.
const DOCUMENT_FIELD: &str = "kb_document.name";
const CHUNK_FIELD: &str = "kb_chunk.text";

/// A knowledge base to create.
#[derive(Clone, Debug)]
pub struct KnowledgeBaseInput {
    pub name: String,
    /// The owning department's name or id.
    pub department: String,
    /// The embedding credential's label or id.
    pub credential: String,
    pub model: String,
    pub chunk_tokens: Option<u32>,
    pub chunk_overlap: Option<u32>,
}

/// A knowledge base with the names a reader needs and its counts.
#[derive(Clone, Debug)]
pub struct KnowledgeBaseSummary {
    pub record: KnowledgeBaseRecord,
    pub department: String,
    pub credential_label: String,
    pub documents: u64,
    pub chunks: u64,
}

/// Who reads knowledge bases outside the admin API: a platform key, or a tenant scope (the
/// operator's CLI). Built only by [`Keyward::knowledge_access`] and
/// [`Keyward::knowledge_access_for_scope`].
#[derive(Clone)]
pub struct KnowledgeAccess {
    pub(crate) caller: Caller,
}

impl KnowledgeAccess {
    pub fn tenant(&self) -> TenantId {
        self.caller.tenant
    }
}

/// What a document's name and metadata are sealed to.
pub(crate) fn document_binding(kb: &KnowledgeBaseRecord, document: &str) -> RowBinding {
    RowBinding {
        tenant: kb.tenant_id,
        record: format!("{}/{document}", kb.id),
        field: DOCUMENT_FIELD,
    }
}

/// What a chunk's heading path and text are sealed to.
pub(crate) fn chunk_binding(tenant: TenantId, kb: &str, document: &str, chunk: &str) -> RowBinding {
    RowBinding {
        tenant,
        record: format!("{kb}/{document}/{chunk}"),
        field: CHUNK_FIELD,
    }
}

fn not_found() -> DomainError {
    DomainError::NotFound {
        what: "knowledge base",
    }
}

impl Keyward {
    /// Knowledge access for a platform key (`/v1/knowledge-bases/…`).
    pub async fn knowledge_access(&self, actor: &Actor) -> Result<KnowledgeAccess, DomainError> {
        Ok(KnowledgeAccess {
            caller: self.caller(actor).await?,
        })
    }

    /// Knowledge access for a tenant scope: every knowledge base of the tenant; embedding rows
    /// carry no platform key.
    pub fn knowledge_access_for_scope(&self, scope: &TenantScope) -> KnowledgeAccess {
        KnowledgeAccess {
            caller: Caller::keyless(scope.tenant(), None, None, true),
        }
    }

    pub async fn create_knowledge_base(
        &self,
        scope: &TenantScope,
        input: KnowledgeBaseInput,
    ) -> Result<KnowledgeBaseSummary, DomainError> {
        crate::validate::name("name", &input.name)?;
        let tenant = scope.tenant();
        let department = self.department_named(tenant, &input.department).await?;
        let credential = match input.credential.parse() {
            Ok(id) => self.store.credential(tenant, id).await?,
            Err(_) => {
                self.store
                    .credential_by_label(tenant, &input.credential)
                    .await?
            }
        }
        .ok_or_else(|| {
            DomainError::invalid(
                "embedding.credential",
                "no credential of this tenant has this label or id",
            )
        })?;
        if !keyward_router::supports(Surface::Embeddings, credential.provider) {
            return Err(DomainError::invalid(
                "embedding.credential",
                format!("credential `{}` is a {} credential, which serves no embeddings; use an openai, azure-openai, mistral or openai-compatible credential", credential.label, credential.provider),
            ));
        }
        let model = input.model.trim();
        if model.is_empty() || model.len() > 256 {
            return Err(DomainError::invalid(
                "embedding.model",
                "name the provider's embedding model, e.g. text-embedding-3-small",
            ));
        }
        let plan = ChunkPlan::new(
            input.chunk_tokens.unwrap_or(DEFAULT_CHUNK_TOKENS),
            input.chunk_overlap.unwrap_or(DEFAULT_CHUNK_OVERLAP),
        )
        .map_err(|err| DomainError::invalid("chunk_tokens", err.to_string()))?;
        let record = KnowledgeBaseRecord {
            id: keyward_core::KnowledgeBaseId::generate(),
            tenant_id: tenant,
            department_id: department.id,
            name: input.name,
            credential_id: credential.id,
            embedding_model: model.to_owned(),
            chunk_tokens: plan.chunk_tokens(),
            chunk_overlap: plan.overlap(),
            dimensions: None,
            generation: 0,
            created_at: Timestamp::now(),
        };
        self.store.insert_knowledge_base(&record).await?;
        self.audit(
            scope,
            "knowledge_base.create",
            &record.id.to_string(),
            serde_json::json!({"name": record.name, "department": department.id, "credential": credential.id, "model": record.embedding_model}),
        )
        .await;
        Ok(KnowledgeBaseSummary {
            record,
            department: department.name,
            credential_label: credential.label,
            documents: 0,
            chunks: 0,
        })
    }

    pub async fn knowledge_bases(
        &self,
        scope: &TenantScope,
    ) -> Result<Vec<KnowledgeBaseSummary>, DomainError> {
        let mut summaries = Vec::new();
        for record in self.store.knowledge_bases(scope.tenant(), None).await? {
            summaries.push(self.summarize(record).await?);
        }
        Ok(summaries)
    }

    pub async fn knowledge_base(
        &self,
        scope: &TenantScope,
        kb: &str,
    ) -> Result<KnowledgeBaseSummary, DomainError> {
        let record = self
            .store
            .knowledge_base(scope.tenant(), kb)
            .await?
            .ok_or_else(not_found)?;
        self.summarize(record).await
    }

    /// Deletes a knowledge base: every document's text and every vector at once.
    pub async fn delete_knowledge_base(
        &self,
        scope: &TenantScope,
        kb: &str,
    ) -> Result<(), DomainError> {
        let record = self
            .store
            .knowledge_base(scope.tenant(), kb)
            .await?
            .ok_or_else(not_found)?;
        if !self
            .store
            .delete_knowledge_base(scope.tenant(), record.id, Timestamp::now())
            .await?
        {
            return Err(not_found());
        }
        self.indexes.forget(record.id);
        self.audit(
            scope,
            "knowledge_base.delete",
            &record.id.to_string(),
            serde_json::json!({"name": record.name}),
        )
        .await;
        Ok(())
    }

    /// A knowledge base `access` may read, by name or id; anything else is `NotFound`.
    pub(crate) async fn readable_knowledge_base(
        &self,
        access: &Caller,
        kb: &str,
    ) -> Result<KnowledgeBaseRecord, DomainError> {
        let record = self
            .store
            .knowledge_base(access.tenant, kb)
            .await?
            .ok_or_else(not_found)?;
        let readable = access.admin || access.department == Some(record.department_id);
        if readable {
            Ok(record)
        } else {
            Err(not_found())
        }
    }

    async fn summarize(
        &self,
        record: KnowledgeBaseRecord,
    ) -> Result<KnowledgeBaseSummary, DomainError> {
        let documents = self.store.documents(record.id).await?;
        let ready = documents
            .iter()
            .filter(|document| document.status == DocumentStatus::Ready);
        let department = self
            .store
            .department(record.tenant_id, record.department_id)
            .await?
            .map_or_else(
                || record.department_id.to_string(),
                |department| department.name,
            );
        let credential_label = self
            .store
            .credential(record.tenant_id, record.credential_id)
            .await?
            .map_or_else(
                || record.credential_id.to_string(),
                |credential| credential.label,
            );
        Ok(KnowledgeBaseSummary {
            documents: documents.len() as u64,
            chunks: ready.map(|document| document.chunks).sum(),
            record,
            department,
            credential_label,
        })
    }

    async fn department_named(
        &self,
        tenant: TenantId,
        department: &str,
    ) -> Result<keyward_store::DepartmentRecord, DomainError> {
        let found = match department.parse::<DepartmentId>() {
            Ok(id) => self.store.department(tenant, id).await?,
            Err(_) => self.store.department_by_name(tenant, department).await?,
        };
        found.ok_or_else(|| {
            DomainError::invalid(
                "department",
                "no department of this tenant has this name or id",
            )
        })
    }

    /// Opens a document's name and metadata.
    pub(crate) async fn open_document(
        &self,
        kb: &KnowledgeBaseRecord,
        document: &DocumentRecord,
    ) -> Result<(BodyText, BodyText), DomainError> {
        let Some(sealed) = &document.sealed else {
            return Ok((BodyText::new(String::new()), BodyText::new(String::new())));
        };
        let plain = self
            .vault
            .open(sealed, &document_binding(kb, &document.id.to_string()))
            .await?;
        keyward_knowledge::sealed_form::decode_document(&plain).ok_or(DomainError::Store(
            keyward_store::StoreError::Corrupt {
                table: "kb_documents",
                column: "sealed_blob",
                id: document.id.to_string(),
            },
        ))
    }
}
