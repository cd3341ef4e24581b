//! Knowledge-base benchmarks, in process, excluding the provider's embedding time:
//!
//! - `kb-search STORE_URL CHUNKS DIMS QUERIES`: writes CHUNKS sealed chunks with random unit
//!   vectors of DIMS dimensions into one knowledge base (through the store, 1,000 per document),
//!   loads the index as a server does, and times QUERIES searches: the index, then reading and
//!   opening the hits' chunks (what a search does after its embedding call). Prints the
//!   percentiles (µs), the resident memory the index added and the raw vector bytes.
//! - `kb-ingest STORE_URL DOCUMENTS`: chunks DOCUMENTS markdown documents (about 8 KiB each,
//!   400-token chunks), seals every chunk and writes it with its (precomputed) vector: the
//!   ingestion work besides the embedding call. Prints chunks per second.

use std::sync::Arc;
use std::time::Instant;

use keyward_core::{
    BodyText, ChunkId, CredentialId, DepartmentId, DocumentId, KnowledgeBaseId, TenantId,
    Timestamp,
};
use keyward_knowledge::{sealed_form, vector, ChunkPlan, ContentKind, IndexEntry, VectorIndex};
use keyward_store::{DocumentRecord, DocumentStatus, KnowledgeBaseRecord, NewChunk, Store, TenantRecord};
use keyward_vault::{FileSource, RowBinding, Vault};
use serde_json::json;

use crate::{percentiles, rss_kib, Error};

struct Fixture {
    store: Store,
    vault: Vault,
    kb: KnowledgeBaseRecord,
    _dir: tempfile::TempDir,
}

/// A small deterministic generator (xorshift), so runs are comparable.
struct Random(u64);

impl Random {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn unit_vector(&mut self, dims: usize) -> Vec<f32> {
        let mut values: Vec<f32> = (0..dims)
            .map(|_| (self.next() % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        vector::normalize(&mut values).expect("a non-zero vector");
        values
    }
}

async fn fixture(url: &str, dims: u32) -> Result<Fixture, Error> {
    let dir = tempfile::tempdir()?;
    let source = Arc::new(FileSource::new(dir.path().join("master.key")));
    source.create_if_absent()?;
    let vault = Vault::load(source).await?;
    let store = Store::open(url).await?;
    let tenant = TenantRecord {
        id: TenantId::generate(),
        name: format!("bench-{}", TenantId::generate()),
        created_at: Timestamp::now(),
    };
    store.insert_tenant(&tenant).await?;
    let kb = KnowledgeBaseRecord {
        id: KnowledgeBaseId::generate(),
        tenant_id: tenant.id,
        department_id: DepartmentId::generate(),
        name: format!("kb-{}", KnowledgeBaseId::generate()),
        credential_id: CredentialId::generate(),
        embedding_model: "bench".to_owned(),
        chunk_tokens: 400,
        chunk_overlap: 60,
        dimensions: Some(dims),
        generation: 0,
        created_at: Timestamp::now(),
    };
    store.insert_knowledge_base(&kb).await?;
    Ok(Fixture {
        store,
        vault,
        kb,
        _dir: dir,
    })
}

fn chunk_binding(kb: &KnowledgeBaseRecord, document: DocumentId, chunk: ChunkId) -> RowBinding {
    RowBinding {
        tenant: kb.tenant_id,
        record: format!("{}/{document}/{chunk}", kb.id),
        field: "kb_chunk.text",
    }
}

async fn new_document(fixture: &Fixture, bytes: u64) -> Result<DocumentId, Error> {
    let id = DocumentId::generate();
    let now = Timestamp::now();
    fixture
        .store
        .insert_document(&DocumentRecord {
            id,
            tenant_id: fixture.kb.tenant_id,
            kb_id: fixture.kb.id,
            sealed: None,
            content_type: "text/markdown".to_owned(),
            bytes,
            chunks: 0,
            embedded: 0,
            status: DocumentStatus::Ingesting,
            error: None,
            instance_id: None,
            created_at: now,
            updated_at: now,
        })
        .await?;
    Ok(id)
}

fn sealed_chunk(
    fixture: &Fixture,
    document: DocumentId,
    position: u32,
    heading: &BodyText,
    text: &BodyText,
    values: &[f32],
) -> Result<NewChunk, Error> {
    let id = ChunkId::generate();
    let sealed = fixture.vault.seal(
        &sealed_form::encode_chunk(heading, text),
        &chunk_binding(&fixture.kb, document, id),
    )?;
    Ok(NewChunk {
        id,
        position,
        sealed,
        vector: vector::encode(values),
    })
}

pub async fn search(url: &str, chunks: usize, dims: usize, queries: usize) -> Result<serde_json::Value, Error> {
    let fixture = fixture(url, dims as u32).await?;
    let seed = 0x9e37_79b9_7f4a_7c15;
    let mut random = Random(seed);
    let mut written_ids = Vec::with_capacity(chunks);
    let text = BodyText::new("A chunk of about the usual size. ".repeat(50));
    let heading = BodyText::new("Handbook > Section".to_owned());
    let mut written = 0;
    while written < chunks {
        let batch = (chunks - written).min(1_000);
        let document = new_document(&fixture, 0).await?;
        let mut rows = Vec::with_capacity(batch);
        for position in 0..batch {
            let values = random.unit_vector(dims);
            let row = sealed_chunk(&fixture, document, position as u32, &heading, &text, &values)?;
            written_ids.push(row.id);
            rows.push(row);
        }
        let finished = fixture
            .store
            .finish_document(fixture.kb.tenant_id, fixture.kb.id, document, &rows, dims as u32)
            .await?;
        assert_eq!(finished, keyward_store::Finished::Ready);
        written += batch;
    }
    let pid = std::process::id();
    let before = rss_kib(pid);
    let started = Instant::now();
    let mut index = VectorIndex::new(dims);
    let mut after = None;
    loop {
        let page = fixture.store.knowledge_vectors(fixture.kb.id, after, 4_096).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.1);
        for (document, chunk, bytes) in &page {
            index.push_stored(IndexEntry { document: *document, chunk: *chunk }, bytes)?;
        }
    }
    let load_ms = started.elapsed().as_millis();
    let after = rss_kib(pid);
    // The same vectors again (same seed), to know each query's true nearest chunk. A query is
    // a stored vector moved by noise as large as itself: a paraphrase, not a copy.
    let mut replay = Random(seed);
    let stored: Vec<Vec<f32>> = (0..chunks).map(|_| replay.unit_vector(dims)).collect();
    let mut timings = Vec::with_capacity(queries);
    let mut index_timings = Vec::with_capacity(queries);
    let mut exact_top = Vec::with_capacity(queries);
    for _ in 0..queries {
        let near = &stored[random.next() as usize % chunks];
        let noise = random.unit_vector(dims);
        let mut query: Vec<f32> = near.iter().zip(&noise).map(|(a, b)| a + b).collect();
        vector::normalize(&mut query)?;
        let started = Instant::now();
        // As a search does: 15 candidates from the compact index, re-scored with their exact
        // vectors, the best 5 opened.
        let candidates = index.search(&query, 15)?;
        index_timings.push(started.elapsed().as_micros() as u64);
        let ids: Vec<ChunkId> = candidates.iter().map(|hit| hit.entry.chunk).collect();
        let mut records: Vec<(f32, keyward_store::ChunkRecord)> = Vec::new();
        for record in fixture.store.knowledge_chunks(fixture.kb.id, &ids).await? {
            let mut values = Vec::with_capacity(dims);
            vector::decode_into(&record.vector, dims, &mut values)?;
            records.push((keyward_knowledge::index::cosine(&query, &values), record));
        }
        records.sort_by(|left, right| right.0.total_cmp(&left.0));
        records.truncate(5);
        for (_, record) in &records {
            let plain = fixture
                .vault
                .open(&record.sealed, &chunk_binding(&fixture.kb, record.document_id, record.id))
                .await?;
            std::hint::black_box(sealed_form::decode_chunk(&plain));
        }
        timings.push(started.elapsed().as_micros() as u64);
        let best = stored
            .iter()
            .map(|values| keyward_knowledge::index::cosine(&query, values))
            .enumerate()
            .max_by(|left, right| left.1.total_cmp(&right.1))
            .map(|(position, _)| written_ids[position]);
        exact_top.push(best == records.first().map(|(_, record)| record.id));
    }
    let found = exact_top.iter().filter(|hit| **hit).count();
    Ok(json!({
        "recall_at_1": found as f64 / queries as f64,
        "chunks": chunks, "dimensions": dims, "queries": queries,
        "search_us": percentiles(timings),
        "index_only_us": percentiles(index_timings),
        "index_load_ms": load_ms,
        "index_rss_kib": after.saturating_sub(before),
        "raw_vector_kib": chunks * dims * 4 / 1024,
    }))
}

pub async fn ingest(url: &str, documents: usize) -> Result<serde_json::Value, Error> {
    let dims = 1536;
    let fixture = fixture(url, dims as u32).await?;
    let mut random = Random(0x2545_f491_4f6c_dd1d);
    let plan = ChunkPlan::new(400, 60)?;
    let section = "Employees book travel through the portal. Economy class applies to flights under six hours, and receipts are kept for every expense. ";
    let document_text: String = (0..6)
        .map(|index| format!("## Section {index}\n\n{}\n\n", section.repeat(10)))
        .collect();
    // The vectors a provider would have returned, made before the clock starts.
    let vectors: Vec<Vec<f32>> = (0..64).map(|_| random.unit_vector(dims)).collect();
    let started = Instant::now();
    let mut chunks_written = 0usize;
    let (mut chunking, mut sealing, mut writing) = (0.0, 0.0, 0.0);
    for _ in 0..documents {
        let step = Instant::now();
        let text = BodyText::new(format!("# Handbook\n\n{document_text}"));
        let chunks = plan.chunk(&text, ContentKind::Markdown)?;
        chunking += step.elapsed().as_secs_f64();
        let step = Instant::now();
        let document = new_document(&fixture, text.len() as u64).await?;
        let mut rows = Vec::with_capacity(chunks.len());
        for (index, chunk) in chunks.iter().enumerate() {
            let values = &vectors[index % vectors.len()];
            rows.push(sealed_chunk(&fixture, document, chunk.position, &chunk.heading, &chunk.text, values)?);
        }
        sealing += step.elapsed().as_secs_f64();
        let step = Instant::now();
        fixture
            .store
            .finish_document(fixture.kb.tenant_id, fixture.kb.id, document, &rows, dims as u32)
            .await?;
        writing += step.elapsed().as_secs_f64();
        chunks_written += rows.len();
    }
    let seconds = started.elapsed().as_secs_f64();
    Ok(json!({
        "documents": documents, "chunks": chunks_written, "seconds": seconds,
        "chunks_per_second": chunks_written as f64 / seconds,
        "seconds_chunking": chunking, "seconds_sealing": sealing, "seconds_writing": writing,
    }))
}
