//! The search index of one knowledge base, held in memory: every ready chunk's unit vector in
//! one contiguous buffer, scored by dot product (cosine similarity) in a single pass, the best
//! `k` kept in a small sorted list.
//!
//! Invariants: every vector has the index's dimensions and unit length; an entry's position in
//! `entries` is its vector's position in the buffer. The buffer is the vectors' raw bytes and
//! nothing more (no graph), so the memory it adds is the vectors' size.

use keyward_core::{ChunkId, DocumentId};

use crate::vector::{self, VectorError};

/// Which chunk a vector belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub document: DocumentId,
    pub chunk: ChunkId,
}

/// A search result: a chunk and its cosine similarity to the query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub entry: IndexEntry,
    pub score: f32,
}

#[derive(Debug, Default)]
pub struct VectorIndex {
    dimensions: usize,
    entries: Vec<IndexEntry>,
    vectors: Vec<f32>,
}

impl VectorIndex {
    pub fn new(dimensions: usize) -> Self {
        Self {
            dimensions,
            entries: Vec::new(),
            vectors: Vec::new(),
        }
    }

    pub fn with_capacity(dimensions: usize, chunks: usize) -> Self {
        Self {
            dimensions,
            entries: Vec::with_capacity(chunks),
            vectors: Vec::with_capacity(chunks.saturating_mul(dimensions)),
        }
    }

    pub fn dimensions(&self) -> usize {
        self.dimensions
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds a stored (unit, little-endian) vector.
    pub fn push_stored(&mut self, entry: IndexEntry, bytes: &[u8]) -> Result<(), VectorError> {
        vector::decode_into(bytes, self.dimensions, &mut self.vectors)?;
        self.entries.push(entry);
        Ok(())
    }

    /// The `k` chunks most similar to `query` (any length; normalized here), best first.
    pub fn search(&self, query: &[f32], k: usize) -> Result<Vec<Hit>, VectorError> {
        if query.len() != self.dimensions {
            return Err(VectorError::Dimensions {
                expected: self.dimensions,
                got: query.len(),
            });
        }
        let mut query = query.to_vec();
        vector::normalize(&mut query)?;
        let mut best: Vec<Hit> = Vec::with_capacity(k + 1);
        if k == 0 || self.dimensions == 0 {
            return Ok(best);
        }
        for (entry, candidate) in self
            .entries
            .iter()
            .zip(self.vectors.chunks_exact(self.dimensions))
        {
            let score = dot(&query, candidate);
            if best.len() == k && best.last().is_some_and(|worst| worst.score >= score) {
                continue;
            }
            let at = best.partition_point(|hit| hit.score >= score);
            best.insert(
                at,
                Hit {
                    entry: *entry,
                    score,
                },
            );
            best.truncate(k);
        }
        Ok(best)
    }
}

/// Dot product in eight independent lanes, which the compiler turns into SIMD.
fn dot(left: &[f32], right: &[f32]) -> f32 {
    let mut lanes = [0.0f32; 8];
    let left_chunks = left.chunks_exact(8);
    let right_chunks = right.chunks_exact(8);
    let tail: f32 = left_chunks
        .remainder()
        .iter()
        .zip(right_chunks.remainder())
        .map(|(a, b)| a * b)
        .sum();
    for (a, b) in left_chunks.zip(right_chunks) {
        for lane in 0..8 {
            lanes[lane] += a[lane] * b[lane];
        }
    }
    lanes.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry() -> IndexEntry {
        IndexEntry {
            document: DocumentId::generate(),
            chunk: ChunkId::generate(),
        }
    }

    fn unit(values: &[f32]) -> Vec<u8> {
        let mut values = values.to_vec();
        vector::normalize(&mut values).unwrap();
        vector::encode(&values)
    }

    #[test]
    fn best_matches_come_first_and_k_is_respected() {
        let mut index = VectorIndex::new(3);
        let (x, y, xy) = (entry(), entry(), entry());
        index.push_stored(x, &unit(&[1.0, 0.0, 0.0])).unwrap();
        index.push_stored(y, &unit(&[0.0, 1.0, 0.0])).unwrap();
        index.push_stored(xy, &unit(&[1.0, 1.0, 0.0])).unwrap();
        let hits = index.search(&[2.0, 0.1, 0.0], 2).unwrap();
        assert_eq!(
            hits.iter().map(|hit| hit.entry).collect::<Vec<_>>(),
            vec![x, xy]
        );
        assert!(hits[0].score > hits[1].score);
        assert!((hits[0].score - 0.99875).abs() < 1e-3);
        assert!(index.search(&[1.0, 0.0], 2).is_err());
        assert!(index.push_stored(entry(), &unit(&[1.0, 0.0])).is_err());
        assert_eq!(index.len(), 3);
    }

    proptest::proptest! {
        #[test]
        fn search_agrees_with_a_full_sort(
            vectors in proptest::collection::vec(proptest::collection::vec(-1.0f32..1.0, 11), 1..40),
            query in proptest::collection::vec(-1.0f32..1.0, 11),
            k in 1usize..10,
        ) {
            let mut index = VectorIndex::new(11);
            let mut expected = Vec::new();
            let mut unit_query = query.clone();
            if vector::normalize(&mut unit_query).is_err() {
                return Ok(());
            }
            for values in &vectors {
                let mut values = values.clone();
                if vector::normalize(&mut values).is_err() { continue; }
                let item = entry();
                index.push_stored(item, &vector::encode(&values)).unwrap();
                expected.push(dot(&unit_query, &values));
            }
            expected.sort_by(|a, b| b.total_cmp(a));
            expected.truncate(k);
            let found: Vec<f32> = index.search(&query, k).unwrap().iter().map(|hit| hit.score).collect();
            proptest::prop_assert_eq!(found.len(), expected.len());
            for (a, b) in found.iter().zip(&expected) {
                proptest::prop_assert!((a - b).abs() < 1e-5);
            }
        }
    }
}
