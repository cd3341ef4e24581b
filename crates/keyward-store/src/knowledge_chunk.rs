//! Chunks of knowledge-base documents: written with the document's `ready` status, read as
//! vectors for the index and as sealed text for answers, deleted with their document; the
//! sealed rows' master-key re-wrap; the retrievals meter. (See `knowledge` for the invariants.)

use keyward_core::{
    ChunkId, DocumentId, KeyVersion, KnowledgeBaseId, SealedSecret, TenantId, Timestamp,
};
use sqlx::Row;

use crate::credential::sealed;
use crate::knowledge::{ChunkRecord, KnowledgeTable, NewChunk, SealedKnowledgeRow};
use crate::{Store, StoreError};

/// Rows per multi-row INSERT: few round trips, far below PostgreSQL's parameter limit.
const INSERT_BATCH: usize = 100;

/// The outcome of finishing an ingestion.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Finished {
    Ready,
    /// The document was deleted (or its knowledge base) while it was ingesting.
    Gone,
    /// The knowledge base's vectors have other dimensions.
    DimensionsDiffer {
        expected: u32,
    },
}

impl Store {
    /// Writes a document's chunks and marks it `ready` in one transaction, if it is still
    /// ingesting and its knowledge base's dimensions agree (fixing them on the first document).
    pub async fn finish_document(
        &self,
        tenant: TenantId,
        kb: KnowledgeBaseId,
        document: DocumentId,
        chunks: &[NewChunk],
        dimensions: u32,
    ) -> Result<Finished, StoreError> {
        // The first statement writes, so the transaction holds SQLite's write lock from its
        // start (a deferred transaction that reads first can fail to upgrade, SQLITE_BUSY).
        let mut tx = self.pool.begin().await?;
        let now = Timestamp::now().unix_millis();
        let marked = sqlx::query(
            "UPDATE kb_documents SET status = 'ready', chunks = $2, embedded = $2,
                 instance_id = NULL, updated_at = $3
             WHERE id = $1 AND kb_id = $4 AND status = 'ingesting'",
        )
        .bind(document.to_string())
        .bind(i64::try_from(chunks.len()).unwrap_or(i64::MAX))
        .bind(now)
        .bind(kb.to_string())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        if marked != 1 {
            return Ok(Finished::Gone);
        }
        let kb_dimensions: Option<Option<i64>> = sqlx::query_scalar(
            "SELECT dimensions FROM knowledge_bases WHERE tenant_id = $1 AND id = $2",
        )
        .bind(tenant.to_string())
        .bind(kb.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        let Some(kb_dimensions) = kb_dimensions else {
            return Ok(Finished::Gone);
        };
        if let Some(expected) = kb_dimensions.and_then(|value| u32::try_from(value).ok()) {
            if expected != dimensions {
                return Ok(Finished::DimensionsDiffer { expected });
            }
        }
        for batch in chunks.chunks(INSERT_BATCH) {
            insert_chunks(&mut tx, tenant, kb, document, batch).await?;
        }
        sqlx::query(
            "UPDATE knowledge_bases SET generation = generation + 1, dimensions = $2 WHERE id = $1",
        )
        .bind(kb.to_string())
        .bind(i64::from(dimensions))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Finished::Ready)
    }

    /// Deletes a document's chunks and makes it a tombstone, at once.
    pub async fn delete_document(
        &self,
        kb: KnowledgeBaseId,
        document: DocumentId,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query(
            "UPDATE kb_documents SET status = 'deleted', sealed_blob = NULL,
                 sealed_key_version = NULL, deleted_at = $3, updated_at = $3, instance_id = NULL
             WHERE kb_id = $1 AND id = $2 AND deleted_at IS NULL",
        )
        .bind(kb.to_string())
        .bind(document.to_string())
        .bind(now.unix_millis())
        .execute(&mut *tx)
        .await?
        .rows_affected();
        sqlx::query("DELETE FROM kb_chunks WHERE document_id = $1")
            .bind(document.to_string())
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE knowledge_bases SET generation = generation + 1 WHERE id = $1")
            .bind(kb.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// One page of a knowledge base's vectors, in chunk id order after `after`:
    /// `(document, chunk, little-endian f32s)`. Read page by page, an index load never holds
    /// more than a page of raw vectors besides the index.
    pub async fn knowledge_vectors(
        &self,
        kb: KnowledgeBaseId,
        after: Option<ChunkId>,
        limit: u32,
    ) -> Result<Vec<(DocumentId, ChunkId, Vec<u8>)>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, document_id, vector FROM kb_chunks
             WHERE kb_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3",
        )
        .bind(kb.to_string())
        .bind(after.map(|id| id.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let corrupt = |column| StoreError::corrupt("kb_chunks", column, &id);
                let document: String = row.try_get("document_id")?;
                Ok((
                    document.parse().map_err(|_| corrupt("document_id"))?,
                    id.parse().map_err(|_| corrupt("id"))?,
                    row.try_get("vector")?,
                ))
            })
            .collect()
    }

    /// The sealed chunks of `ids` in a knowledge base, with their vectors (any order; ids not
    /// found are left out). One statement.
    pub async fn knowledge_chunks(
        &self,
        kb: KnowledgeBaseId,
        ids: &[ChunkId],
    ) -> Result<Vec<ChunkRecord>, StoreError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let placeholders: Vec<String> = (0..ids.len())
            .map(|index| format!("${}", index + 2))
            .collect();
        let sql = format!(
            "SELECT id, document_id, kb_id, position, sealed_blob, sealed_key_version, vector
             FROM kb_chunks WHERE kb_id = $1 AND id IN ({})",
            placeholders.join(", ")
        );
        let mut query = sqlx::query(&sql).bind(kb.to_string());
        for id in ids {
            query = query.bind(id.to_string());
        }
        let rows = query.fetch_all(&self.pool).await?;
        rows.iter().map(chunk_from_row).collect()
    }

    /// Counts one retrieval (one knowledge base searched) for the platform meter.
    pub async fn count_retrieval(
        &self,
        tenant: TenantId,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO kb_retrievals (tenant_id, day, retrievals) VALUES ($1, $2, 1)
             ON CONFLICT (tenant_id, day) DO UPDATE SET retrievals = kb_retrievals.retrievals + 1",
        )
        .bind(tenant.to_string())
        .bind(now.utc_date())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Retrievals of a tenant per UTC day in `[from_day, to_day]` (`YYYY-MM-DD`).
    pub async fn retrievals_between(
        &self,
        tenant: TenantId,
        from_day: &str,
        to_day: &str,
    ) -> Result<Vec<(String, u64)>, StoreError> {
        let rows: Vec<(String, i64)> = sqlx::query_as(
            "SELECT day, retrievals FROM kb_retrievals
             WHERE tenant_id = $1 AND day >= $2 AND day <= $3 ORDER BY day",
        )
        .bind(tenant.to_string())
        .bind(from_day)
        .bind(to_day)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(day, count)| (day, u64::try_from(count).unwrap_or(0)))
            .collect())
    }

    /// When each of a tenant's documents (failed ones excepted) was stored and deleted.
    pub async fn document_lifetimes(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<(Timestamp, Option<Timestamp>)>, StoreError> {
        let rows: Vec<(i64, Option<i64>)> = sqlx::query_as(
            "SELECT created_at, deleted_at FROM kb_documents
             WHERE tenant_id = $1 AND status <> 'failed'",
        )
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(created, deleted)| {
                (
                    Timestamp::from_unix_millis(created),
                    deleted.map(Timestamp::from_unix_millis),
                )
            })
            .collect())
    }

    /// Sealed knowledge rows under a version below `primary`, in id order after `after`.
    pub async fn knowledge_rewrap_candidates(
        &self,
        table: KnowledgeTable,
        primary: KeyVersion,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<SealedKnowledgeRow>, StoreError> {
        let name = table.name();
        let document = table.document_column();
        let rows = sqlx::query(&format!(
            "SELECT id, tenant_id, kb_id, {document} AS document_id, sealed_blob, sealed_key_version
             FROM {name} WHERE sealed_key_version < $1 AND ($2 IS NULL OR id > $2)
             ORDER BY id LIMIT $3"
        ))
        .bind(i64::from(primary.get()))
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                let id: String = row.try_get("id")?;
                let corrupt = |column| StoreError::corrupt(name, column, &id);
                let text = |column: &'static str| row.try_get::<String, _>(column);
                Ok(SealedKnowledgeRow {
                    tenant_id: text("tenant_id")?
                        .parse()
                        .map_err(|_| corrupt("tenant_id"))?,
                    kb_id: text("kb_id")?.parse().map_err(|_| corrupt("kb_id"))?,
                    document_id: text("document_id")?
                        .parse()
                        .map_err(|_| corrupt("document_id"))?,
                    sealed: sealed(
                        row.try_get("sealed_blob")?,
                        row.try_get("sealed_key_version")?,
                        corrupt,
                    )?
                    .ok_or_else(|| corrupt("sealed_blob"))?,
                    id,
                })
            })
            .collect()
    }

    /// Compare-and-swap of a sealed knowledge row (a delete or rewrite meanwhile wins).
    pub async fn swap_knowledge_sealed(
        &self,
        table: KnowledgeTable,
        id: &str,
        expected: &SealedSecret,
        new: &SealedSecret,
    ) -> Result<bool, StoreError> {
        let column = match table {
            KnowledgeTable::Documents => crate::sealed_swap::SealedColumn::Document,
            KnowledgeTable::Chunks => crate::sealed_swap::SealedColumn::Chunk,
        };
        self.swap_sealed(column, id, expected, new).await
    }
}

async fn insert_chunks(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    tenant: TenantId,
    kb: KnowledgeBaseId,
    document: DocumentId,
    batch: &[NewChunk],
) -> Result<(), StoreError> {
    let mut sql = String::from(
        "INSERT INTO kb_chunks (id, tenant_id, kb_id, document_id, position, sealed_blob,
             sealed_key_version, vector) VALUES ",
    );
    for index in 0..batch.len() {
        let base = index * 8;
        if index > 0 {
            sql.push_str(", ");
        }
        sql.push('(');
        for column in 1..=8 {
            if column > 1 {
                sql.push_str(", ");
            }
            sql.push_str(&format!("${}", base + column));
        }
        sql.push(')');
    }
    let mut query = sqlx::query(&sql);
    for chunk in batch {
        query = query
            .bind(chunk.id.to_string())
            .bind(tenant.to_string())
            .bind(kb.to_string())
            .bind(document.to_string())
            .bind(i64::from(chunk.position))
            .bind(chunk.sealed.blob.clone())
            .bind(i64::from(chunk.sealed.key_version.get()))
            .bind(chunk.vector.clone());
    }
    query.execute(&mut **tx).await?;
    Ok(())
}

fn chunk_from_row(row: &sqlx::any::AnyRow) -> Result<ChunkRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |column| StoreError::corrupt("kb_chunks", column, &id);
    let document: String = row.try_get("document_id")?;
    let kb: String = row.try_get("kb_id")?;
    let position: i64 = row.try_get("position")?;
    Ok(ChunkRecord {
        document_id: document.parse().map_err(|_| corrupt("document_id"))?,
        kb_id: kb.parse().map_err(|_| corrupt("kb_id"))?,
        position: u32::try_from(position).map_err(|_| corrupt("position"))?,
        sealed: sealed(
            row.try_get("sealed_blob")?,
            row.try_get("sealed_key_version")?,
            corrupt,
        )?
        .ok_or_else(|| corrupt("sealed_blob"))?,
        vector: row.try_get("vector")?,
        id: id.parse().map_err(|_| corrupt("id"))?,
    })
}
