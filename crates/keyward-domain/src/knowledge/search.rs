//! Search: each process keeps one in-memory index per knowledge base, reloaded from the store
//! when the knowledge base's `generation` moved (a document became ready or was deleted here
//! or on another replica); hits are opened from the vault in rank order.
//!
//! Invariants:
//! - A search never answers from an index older than the generation it read just before, so a
//!   deleted document is never returned after its delete committed.
//! - The question is embedded on the knowledge base's credential (ledger row `kb=NAME`,
//!   `purpose=search`) and counted once in the retrievals meter per knowledge base searched.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyward_core::{BodyText, DocumentId, KnowledgeBaseId, Timestamp};
use keyward_knowledge::{sealed_form, IndexEntry, SourceChunk, VectorIndex};
use keyward_store::{DocumentStatus, KnowledgeBaseRecord};

use super::{chunk_binding, KnowledgeAccess};
use crate::inference::Caller;
use crate::{DomainError, Keyward};

/// The most chunks one search may return.
pub const MAX_TOP_K: usize = 50;
/// Vectors read per query while loading an index.
const LOAD_PAGE: u32 = 4_096;
/// Candidates the compact index returns per hit wanted, re-scored with their exact vectors.
const RESCORE_PER_HIT: usize = 3;

/// A loaded index and the generation it reflects.
struct LoadedIndex {
    generation: i64,
    index: VectorIndex,
}

/// This process's indexes, by knowledge base.
#[derive(Default)]
pub(crate) struct KnowledgeIndexes {
    loaded: Mutex<HashMap<KnowledgeBaseId, Arc<LoadedIndex>>>,
}

impl KnowledgeIndexes {
    fn get(&self, kb: KnowledgeBaseId, generation: i64) -> Option<Arc<LoadedIndex>> {
        let loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loaded
            .get(&kb)
            .filter(|index| index.generation == generation)
            .cloned()
    }

    fn put(&self, kb: KnowledgeBaseId, index: Arc<LoadedIndex>) {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loaded.insert(kb, index);
    }

    /// Drops a knowledge base's index (deleted, or changed here).
    pub(crate) fn forget(&self, kb: KnowledgeBaseId) {
        let mut loaded = self
            .loaded
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        loaded.remove(&kb);
    }
}

impl Keyward {
    /// `POST /v1/knowledge-bases/{kb}/search`: the `top_k` chunks most similar to `query`.
    pub async fn search_knowledge(
        &self,
        access: &KnowledgeAccess,
        kb: &str,
        query: BodyText,
        top_k: usize,
    ) -> Result<Vec<SourceChunk>, DomainError> {
        if query.is_blank() {
            return Err(DomainError::invalid("query", "send a non-empty question"));
        }
        if !(1..=MAX_TOP_K).contains(&top_k) {
            return Err(DomainError::invalid("top_k", "use 1 to 50"));
        }
        let kb = self.readable_knowledge_base(&access.caller, kb).await?;
        self.retrieve(&access.caller, &kb, &query, top_k).await
    }

    /// Embeds `query`, searches `kb` and opens the hits, best first.
    pub(crate) async fn retrieve(
        &self,
        caller: &Caller,
        kb: &KnowledgeBaseRecord,
        query: &BodyText,
        top_k: usize,
    ) -> Result<Vec<SourceChunk>, DomainError> {
        let index = self.searchable_index(kb).await?;
        self.store
            .count_retrieval(kb.tenant_id, Timestamp::now())
            .await?;
        if index.index.is_empty() {
            // Nothing to find: no embedding call is spent on the question.
            return Ok(Vec::new());
        }
        let vectors = self
            .embed_for_knowledge(caller, kb, &[query], "search")
            .await?;
        let Some(query_vector) = vectors.into_iter().next() else {
            return Ok(Vec::new());
        };
        let candidates = index
            .index
            .search(&query_vector, top_k * RESCORE_PER_HIT)
            .map_err(|err| DomainError::EmbeddingFailed {
                kb: kb.name.clone(),
                reason: format!("{err}; the embedding model must not change (create a new knowledge base for another model)"),
            })?;
        self.open_hits(kb, &query_vector, &candidates, top_k).await
    }

    /// The current index of `kb`, loading it if this process's copy is stale. A knowledge base
    /// whose documents are all still ingesting answers `KnowledgeNotReady`.
    async fn searchable_index(
        &self,
        kb: &KnowledgeBaseRecord,
    ) -> Result<Arc<LoadedIndex>, DomainError> {
        let generation =
            self.store
                .knowledge_base_generation(kb.id)
                .await?
                .ok_or(DomainError::NotFound {
                    what: "knowledge base",
                })?;
        if let Some(index) = self.indexes.get(kb.id, generation) {
            if !index.index.is_empty() {
                return Ok(index);
            }
        }
        let documents = self.store.documents(kb.id).await?;
        let ready = documents
            .iter()
            .any(|document| document.status == DocumentStatus::Ready);
        let ingesting = documents
            .iter()
            .filter(|document| document.status == DocumentStatus::Ingesting)
            .count() as u64;
        if !ready && ingesting > 0 {
            return Err(DomainError::KnowledgeNotReady {
                kb: kb.name.clone(),
                ingesting,
            });
        }
        let dimensions = kb.dimensions.unwrap_or(0) as usize;
        let mut index = VectorIndex::new(dimensions);
        let mut after = None;
        loop {
            let page = self
                .store
                .knowledge_vectors(kb.id, after, LOAD_PAGE)
                .await?;
            let Some(last) = page.last() else { break };
            after = Some(last.1);
            for (document, chunk, bytes) in page {
                index
                    .push_stored(IndexEntry { document, chunk }, &bytes)
                    .map_err(|_| {
                        DomainError::Store(keyward_store::StoreError::Corrupt {
                            table: "kb_chunks",
                            column: "vector",
                            id: chunk.to_string(),
                        })
                    })?;
            }
        }
        let loaded = Arc::new(LoadedIndex { generation, index });
        self.indexes.put(kb.id, loaded.clone());
        Ok(loaded)
    }

    /// Re-scores the candidates with their exact stored vectors, keeps the best `top_k` and
    /// opens their chunks and their documents' names, best first; a candidate whose chunk was
    /// deleted since the index was read is left out.
    async fn open_hits(
        &self,
        kb: &KnowledgeBaseRecord,
        query: &[f32],
        candidates: &[keyward_knowledge::Hit],
        top_k: usize,
    ) -> Result<Vec<SourceChunk>, DomainError> {
        let ids: Vec<_> = candidates.iter().map(|hit| hit.entry.chunk).collect();
        let mut query = query.to_vec();
        keyward_knowledge::vector::normalize(&mut query).map_err(|err| {
            DomainError::EmbeddingFailed {
                kb: kb.name.clone(),
                reason: err.to_string(),
            }
        })?;
        let mut records: Vec<(f32, keyward_store::ChunkRecord)> = Vec::new();
        for record in self.store.knowledge_chunks(kb.id, &ids).await? {
            let mut values = Vec::with_capacity(query.len());
            if keyward_knowledge::vector::decode_into(&record.vector, query.len(), &mut values)
                .is_ok()
            {
                records.push((keyward_knowledge::index::cosine(&query, &values), record));
            }
        }
        records.sort_by(|left, right| right.0.total_cmp(&left.0));
        records.truncate(top_k);
        let mut names: HashMap<DocumentId, BodyText> = HashMap::new();
        let mut sources = Vec::with_capacity(records.len());
        for (score, record) in records {
            let binding = chunk_binding(
                kb.tenant_id,
                &kb.id.to_string(),
                &record.document_id.to_string(),
                &record.id.to_string(),
            );
            let plain = self.vault.open(&record.sealed, &binding).await?;
            let Some((heading, text)) = sealed_form::decode_chunk(&plain) else {
                continue;
            };
            let document_name = match names.get(&record.document_id) {
                Some(name) => name.duplicate(),
                None => {
                    let Some(document) = self.store.document(kb.id, record.document_id).await?
                    else {
                        continue;
                    };
                    let name = self.open_document(kb, &document).await?.0;
                    names.insert(record.document_id, name.duplicate());
                    name
                }
            };
            sources.push(SourceChunk {
                document_id: record.document_id,
                document_name,
                chunk_id: record.id,
                heading,
                text,
                score,
            });
        }
        Ok(sources)
    }
}
