//! Master-key rotation of sealed knowledge: documents' names and metadata, chunks' text. The
//! same compare-and-swap re-seal as a credential's secret, batch by batch.

use keyward_core::KeyVersion;
use keyward_store::{KnowledgeTable, SealedKnowledgeRow};
use keyward_vault::RowBinding;

use super::{chunk_binding, DOCUMENT_FIELD};
use crate::{DomainError, Keyward};

/// What one batch did.
#[derive(Default)]
pub(crate) struct BatchResult {
    pub found: usize,
    pub done: u64,
    pub failed: u64,
    /// The last id read: where the next batch starts.
    pub last: Option<String>,
}

fn binding(table: KnowledgeTable, row: &SealedKnowledgeRow) -> RowBinding {
    match table {
        KnowledgeTable::Documents => RowBinding {
            tenant: row.tenant_id,
            record: format!("{}/{}", row.kb_id, row.document_id),
            field: DOCUMENT_FIELD,
        },
        KnowledgeTable::Chunks => chunk_binding(
            row.tenant_id,
            &row.kb_id.to_string(),
            &row.document_id.to_string(),
            &row.id,
        ),
    }
}

impl Keyward {
    /// Re-seals one batch of `table`'s rows behind `target`, after `cursor`.
    pub(crate) async fn rewrap_knowledge_batch(
        &self,
        table: KnowledgeTable,
        target: KeyVersion,
        cursor: Option<&str>,
        limit: u32,
    ) -> Result<BatchResult, DomainError> {
        let rows = self
            .store
            .knowledge_rewrap_candidates(table, target, cursor, limit)
            .await?;
        let mut result = BatchResult {
            found: rows.len(),
            last: rows.last().map(|row| row.id.clone()),
            ..BatchResult::default()
        };
        for row in rows {
            match self
                .vault
                .reseal(&row.sealed, &binding(table, &row), target)
                .await
            {
                Ok(resealed) => {
                    if self
                        .store
                        .swap_knowledge_sealed(table, &row.id, &row.sealed, &resealed)
                        .await?
                    {
                        result.done += 1;
                    }
                }
                Err(err) => {
                    result.failed += 1;
                    tracing::error!(table = ?table, row = %row.id, tenant = %row.tenant_id, error = %err, "re-wrap could not open a row; it stays on its old version");
                }
            }
        }
        Ok(result)
    }
}
