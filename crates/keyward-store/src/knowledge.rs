//! Knowledge bases, their documents and chunks, and the retrievals meter.
//!
//! Invariants:
//! - Document names, metadata and chunk text arrive and leave sealed ([`SealedSecret`]);
//!   vectors are little-endian `f32` bytes.
//! - A chunk row exists only for a `ready` document: chunks are written in the transaction that
//!   marks the document ready, and only if it is still `ingesting` (a delete meanwhile wins).
//! - Deleting a document or a knowledge base removes chunk rows (text and vectors) in one
//!   transaction and bumps the knowledge base's `generation`, which every process compares
//!   before searching its in-memory index.
//! - A deleted document stays as a tombstone with its sealed name removed (the platform meter
//!   counts documents stored per day).

use keyward_core::{
    ChunkId, CredentialId, DepartmentId, DocumentId, KnowledgeBaseId, SealedSecret, TenantId,
    Timestamp,
};
use sqlx::Row;

use crate::credential::sealed;
use crate::{Store, StoreError};

#[derive(Clone, Debug)]
pub struct KnowledgeBaseRecord {
    pub id: KnowledgeBaseId,
    pub tenant_id: TenantId,
    pub department_id: DepartmentId,
    pub name: String,
    pub credential_id: CredentialId,
    pub embedding_model: String,
    pub chunk_tokens: u32,
    pub chunk_overlap: u32,
    pub dimensions: Option<u32>,
    pub generation: i64,
    pub created_at: Timestamp,
}

/// Where a document is in its life.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DocumentStatus {
    Ingesting,
    Ready,
    Failed,
    Deleted,
}

impl DocumentStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Ingesting => "ingesting",
            Self::Ready => "ready",
            Self::Failed => "failed",
            Self::Deleted => "deleted",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "ingesting" => Self::Ingesting,
            "ready" => Self::Ready,
            "failed" => Self::Failed,
            "deleted" => Self::Deleted,
            _ => return None,
        })
    }
}

#[derive(Clone, Debug)]
pub struct DocumentRecord {
    pub id: DocumentId,
    pub tenant_id: TenantId,
    pub kb_id: KnowledgeBaseId,
    /// Name and metadata, sealed; `None` once deleted.
    pub sealed: Option<SealedSecret>,
    pub content_type: String,
    pub bytes: u64,
    pub chunks: u64,
    /// Chunks embedded so far (progress while ingesting).
    pub embedded: u64,
    pub status: DocumentStatus,
    /// Why it failed: sizes, ids and codes, never content.
    pub error: Option<String>,
    pub instance_id: Option<String>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A chunk to write.
pub struct NewChunk {
    pub id: ChunkId,
    pub position: u32,
    pub sealed: SealedSecret,
    pub vector: Vec<u8>,
}

/// A chunk as read for a search answer.
#[derive(Clone, Debug)]
pub struct ChunkRecord {
    pub id: ChunkId,
    pub document_id: DocumentId,
    pub kb_id: KnowledgeBaseId,
    pub position: u32,
    pub sealed: SealedSecret,
    /// Little-endian `f32`s: the exact vector, for re-scoring.
    pub vector: Vec<u8>,
}

/// A sealed knowledge-base row behind the primary master-key version.
#[derive(Clone, Debug)]
pub struct SealedKnowledgeRow {
    pub id: String,
    pub tenant_id: TenantId,
    pub kb_id: KnowledgeBaseId,
    pub document_id: DocumentId,
    pub sealed: SealedSecret,
}

/// The two tables whose rows hold sealed knowledge.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KnowledgeTable {
    Documents,
    Chunks,
}

impl KnowledgeTable {
    pub(crate) fn name(self) -> &'static str {
        match self {
            Self::Documents => "kb_documents",
            Self::Chunks => "kb_chunks",
        }
    }

    pub(crate) fn document_column(self) -> &'static str {
        match self {
            Self::Documents => "id",
            Self::Chunks => "document_id",
        }
    }
}

const KB_COLUMNS: &str = "id, tenant_id, department_id, name, credential_id, embedding_model, \
    chunk_tokens, chunk_overlap, dimensions, generation, created_at";
const DOCUMENT_COLUMNS: &str = "id, tenant_id, kb_id, sealed_blob, sealed_key_version, \
    content_type, bytes, chunks, embedded, status, error, instance_id, created_at, updated_at";

fn parse<T: std::str::FromStr>(
    text: &str,
    table: &'static str,
    column: &'static str,
    id: &str,
) -> Result<T, StoreError> {
    text.parse()
        .map_err(|_| StoreError::corrupt(table, column, id))
}

fn kb_from_row(row: &sqlx::any::AnyRow) -> Result<KnowledgeBaseRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let table = "knowledge_bases";
    let number = |column: &'static str| -> Result<u32, StoreError> {
        let value: i64 = row.try_get(column)?;
        u32::try_from(value).map_err(|_| StoreError::corrupt(table, column, &id))
    };
    let dimensions: Option<i64> = row.try_get("dimensions")?;
    Ok(KnowledgeBaseRecord {
        tenant_id: parse(
            &row.try_get::<String, _>("tenant_id")?,
            table,
            "tenant_id",
            &id,
        )?,
        department_id: parse(
            &row.try_get::<String, _>("department_id")?,
            table,
            "department_id",
            &id,
        )?,
        name: row.try_get("name")?,
        credential_id: parse(
            &row.try_get::<String, _>("credential_id")?,
            table,
            "credential_id",
            &id,
        )?,
        embedding_model: row.try_get("embedding_model")?,
        chunk_tokens: number("chunk_tokens")?,
        chunk_overlap: number("chunk_overlap")?,
        dimensions: dimensions
            .map(|value| {
                u32::try_from(value).map_err(|_| StoreError::corrupt(table, "dimensions", &id))
            })
            .transpose()?,
        generation: row.try_get("generation")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        id: parse(&id, table, "id", &id)?,
    })
}

fn document_from_row(row: &sqlx::any::AnyRow) -> Result<DocumentRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let table = "kb_documents";
    let corrupt = |column| StoreError::corrupt(table, column, &id);
    let count = |column: &'static str| -> Result<u64, StoreError> {
        let value: i64 = row.try_get(column)?;
        u64::try_from(value).map_err(|_| corrupt(column))
    };
    let status: String = row.try_get("status")?;
    Ok(DocumentRecord {
        tenant_id: parse(
            &row.try_get::<String, _>("tenant_id")?,
            table,
            "tenant_id",
            &id,
        )?,
        kb_id: parse(&row.try_get::<String, _>("kb_id")?, table, "kb_id", &id)?,
        sealed: sealed(
            row.try_get("sealed_blob")?,
            row.try_get("sealed_key_version")?,
            corrupt,
        )?,
        content_type: row.try_get("content_type")?,
        bytes: count("bytes")?,
        chunks: count("chunks")?,
        embedded: count("embedded")?,
        status: DocumentStatus::parse(&status).ok_or_else(|| corrupt("status"))?,
        error: row.try_get("error")?,
        instance_id: row.try_get("instance_id")?,
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        updated_at: Timestamp::from_unix_millis(row.try_get("updated_at")?),
        id: parse(&id, table, "id", &id)?,
    })
}

impl Store {
    pub async fn insert_knowledge_base(&self, kb: &KnowledgeBaseRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO knowledge_bases ({KB_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)"
        ))
        .bind(kb.id.to_string())
        .bind(kb.tenant_id.to_string())
        .bind(kb.department_id.to_string())
        .bind(&kb.name)
        .bind(kb.credential_id.to_string())
        .bind(&kb.embedding_model)
        .bind(i64::from(kb.chunk_tokens))
        .bind(i64::from(kb.chunk_overlap))
        .bind(kb.dimensions.map(i64::from))
        .bind(kb.generation)
        .bind(kb.created_at.unix_millis())
        .execute(&self.pool)
        .await
        .map_err(|err| StoreError::from_write(err, "knowledge base", "name"))?;
        Ok(())
    }

    /// A tenant's knowledge bases, by name; only `department`'s when given.
    pub async fn knowledge_bases(
        &self,
        tenant: TenantId,
        department: Option<DepartmentId>,
    ) -> Result<Vec<KnowledgeBaseRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {KB_COLUMNS} FROM knowledge_bases
             WHERE tenant_id = $1 AND ($2 IS NULL OR department_id = $2) ORDER BY name"
        ))
        .bind(tenant.to_string())
        .bind(department.map(|id| id.to_string()))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(kb_from_row).collect()
    }

    /// A knowledge base by id or by name.
    pub async fn knowledge_base(
        &self,
        tenant: TenantId,
        id_or_name: &str,
    ) -> Result<Option<KnowledgeBaseRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {KB_COLUMNS} FROM knowledge_bases
             WHERE tenant_id = $1 AND (id = $2 OR name = $2)"
        ))
        .bind(tenant.to_string())
        .bind(id_or_name)
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(kb_from_row).transpose()
    }

    /// The knowledge base's generation: bumped by every change to what search can return.
    pub async fn knowledge_base_generation(
        &self,
        kb: KnowledgeBaseId,
    ) -> Result<Option<i64>, StoreError> {
        Ok(
            sqlx::query_scalar("SELECT generation FROM knowledge_bases WHERE id = $1")
                .bind(kb.to_string())
                .fetch_optional(&self.pool)
                .await?,
        )
    }

    /// Deletes a knowledge base with every chunk (text and vector) at once; documents become
    /// tombstones.
    pub async fn delete_knowledge_base(
        &self,
        tenant: TenantId,
        kb: KnowledgeBaseId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM knowledge_bases WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(kb.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM kb_chunks WHERE kb_id = $1")
            .bind(kb.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query(
            "UPDATE kb_documents SET status = 'deleted', sealed_blob = NULL,
                 sealed_key_version = NULL, deleted_at = $2, updated_at = $2
             WHERE kb_id = $1 AND deleted_at IS NULL",
        )
        .bind(kb.to_string())
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    pub async fn insert_document(&self, document: &DocumentRecord) -> Result<(), StoreError> {
        let sealed = document.sealed.as_ref();
        sqlx::query(&format!(
            "INSERT INTO kb_documents ({DOCUMENT_COLUMNS})
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(document.id.to_string())
        .bind(document.tenant_id.to_string())
        .bind(document.kb_id.to_string())
        .bind(sealed.map(|sealed| sealed.blob.clone()))
        .bind(sealed.map(|sealed| i64::from(sealed.key_version.get())))
        .bind(&document.content_type)
        .bind(i64::try_from(document.bytes).unwrap_or(i64::MAX))
        .bind(i64::try_from(document.chunks).unwrap_or(i64::MAX))
        .bind(i64::try_from(document.embedded).unwrap_or(i64::MAX))
        .bind(document.status.as_str())
        .bind(document.error.as_deref())
        .bind(document.instance_id.as_deref())
        .bind(document.created_at.unix_millis())
        .bind(document.updated_at.unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The live (not deleted) documents of a knowledge base, oldest first.
    pub async fn documents(&self, kb: KnowledgeBaseId) -> Result<Vec<DocumentRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM kb_documents
             WHERE kb_id = $1 AND deleted_at IS NULL ORDER BY id"
        ))
        .bind(kb.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(document_from_row).collect()
    }

    pub async fn document(
        &self,
        kb: KnowledgeBaseId,
        id: DocumentId,
    ) -> Result<Option<DocumentRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {DOCUMENT_COLUMNS} FROM kb_documents
             WHERE kb_id = $1 AND id = $2 AND deleted_at IS NULL"
        ))
        .bind(kb.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?;
        row.as_ref().map(document_from_row).transpose()
    }

    /// Records ingestion progress of a document still ingesting; `false` if it is not (it was
    /// deleted meanwhile).
    pub async fn set_document_progress(
        &self,
        id: DocumentId,
        chunks: u64,
        embedded: u64,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE kb_documents SET chunks = $2, embedded = $3, updated_at = $4
             WHERE id = $1 AND status = 'ingesting'",
        )
        .bind(id.to_string())
        .bind(i64::try_from(chunks).unwrap_or(i64::MAX))
        .bind(i64::try_from(embedded).unwrap_or(i64::MAX))
        .bind(Timestamp::now().unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Ends an ingestion that failed, with a reason that names no content.
    pub async fn fail_document(&self, id: DocumentId, reason: &str) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE kb_documents SET status = 'failed', error = $2, instance_id = NULL,
                 updated_at = $3
             WHERE id = $1 AND status = 'ingesting'",
        )
        .bind(id.to_string())
        .bind(reason)
        .bind(Timestamp::now().unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Documents whose ingesting process is gone (not in `live_instances`): they end `failed`.
    pub async fn fail_orphaned_documents(
        &self,
        live_instances: &[String],
        reason: &str,
    ) -> Result<u64, StoreError> {
        let ingesting: Vec<(String, Option<String>)> =
            sqlx::query_as("SELECT id, instance_id FROM kb_documents WHERE status = 'ingesting'")
                .fetch_all(&self.pool)
                .await?;
        let mut failed = 0;
        for (id, instance) in ingesting {
            if instance.is_some_and(|instance| live_instances.contains(&instance)) {
                continue;
            }
            if let Ok(id) = id.parse::<DocumentId>() {
                self.fail_document(id, reason).await?;
                failed += 1;
            }
        }
        Ok(failed)
    }
}
