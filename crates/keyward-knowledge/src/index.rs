//! The search index of one knowledge base, held in memory and compact: every ready chunk's
//! unit vector as 8-bit codes with one scale (a quarter of the raw `f32` bytes), plus its signs
//! as bits (a thirty-second). A search over a large index first ranks every vector by the
//! Hamming distance of its signs to the query's (a few bytes each), keeps the best
//! [`PREFILTER_PER_HIT`] per result asked for, scores those by their 8-bit dot product, and
//! returns the best `k`; a small index is scored entirely. The domain then re-scores the hits
//! with their exact stored vectors.
//!
//! Invariants: every vector has the index's dimensions and unit length; entry `i` owns codes
//! `i*dims..`, scale `i` and sign words `i*words..`. Scores are approximate cosines, within
//! about 1% of the exact ones.

use keyward_core::{ChunkId, DocumentId};

use crate::vector::{self, VectorError};

/// From this many vectors on, a search ranks by sign bits before scoring codes.
pub const PREFILTER_FROM: usize = 20_000;
/// How many sign-ranked candidates are scored per result asked for (at least 400 in all).
pub const PREFILTER_PER_HIT: usize = 80;

/// Which chunk a vector belongs to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct IndexEntry {
    pub document: DocumentId,
    pub chunk: ChunkId,
}

/// A search result: a chunk and its (approximate) cosine similarity to the query.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Hit {
    pub entry: IndexEntry,
    pub score: f32,
}

#[derive(Debug, Default)]
pub struct VectorIndex {
    dimensions: usize,
    words: usize,
    entries: Vec<IndexEntry>,
    codes: Vec<i8>,
    scales: Vec<f32>,
    signs: Vec<u64>,
}

/// A vector as the index keeps it.
struct Quantized {
    codes: Vec<i8>,
    scale: f32,
    signs: Vec<u64>,
}

fn quantize(values: &[f32]) -> Quantized {
    let largest = values
        .iter()
        .fold(0.0f32, |max, value| max.max(value.abs()));
    let scale = if largest > 0.0 { largest / 127.0 } else { 1.0 };
    let codes = values
        .iter()
        .map(|value| (value / scale).round().clamp(-127.0, 127.0) as i8)
        .collect();
    let mut signs = vec![0u64; values.len().div_ceil(64)];
    for (position, value) in values.iter().enumerate() {
        if *value > 0.0 {
            signs[position / 64] |= 1 << (position % 64);
        }
    }
    Quantized {
        codes,
        scale,
        signs,
    }
}

impl VectorIndex {
    pub fn new(dimensions: usize) -> Self {
        Self::with_capacity(dimensions, 0)
    }

    pub fn with_capacity(dimensions: usize, chunks: usize) -> Self {
        let words = dimensions.div_ceil(64);
        Self {
            dimensions,
            words,
            entries: Vec::with_capacity(chunks),
            codes: Vec::with_capacity(chunks.saturating_mul(dimensions)),
            scales: Vec::with_capacity(chunks),
            signs: Vec::with_capacity(chunks.saturating_mul(words)),
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
        let mut values = Vec::with_capacity(self.dimensions);
        vector::decode_into(bytes, self.dimensions, &mut values)?;
        let quantized = quantize(&values);
        self.codes.extend_from_slice(&quantized.codes);
        self.scales.push(quantized.scale);
        self.signs.extend_from_slice(&quantized.signs);
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
        if k == 0 || self.is_empty() {
            return Ok(Vec::new());
        }
        let query = quantize(&query);
        let wanted = (k * PREFILTER_PER_HIT).max(400);
        let candidates: Vec<usize> = if self.len() >= PREFILTER_FROM && wanted < self.len() {
            self.nearest_signs(&query.signs, wanted)
        } else {
            (0..self.len()).collect()
        };
        let mut scored: Vec<Hit> = candidates
            .into_iter()
            .map(|index| Hit {
                entry: self.entries[index],
                score: self.code_score(&query, index),
            })
            .collect();
        let keep = k.min(scored.len());
        if keep < scored.len() {
            scored.select_nth_unstable_by(keep, |left, right| right.score.total_cmp(&left.score));
            scored.truncate(keep);
        }
        scored.sort_by(|left, right| right.score.total_cmp(&left.score));
        Ok(scored)
    }

    /// The approximate cosine of entry `index` with the quantized query.
    fn code_score(&self, query: &Quantized, index: usize) -> f32 {
        let codes = &self.codes[index * self.dimensions..(index + 1) * self.dimensions];
        dot_i8(&query.codes, codes) as f32 * query.scale * self.scales[index]
    }

    /// The `wanted` entries whose signs differ least from `signs`.
    fn nearest_signs(&self, signs: &[u64], wanted: usize) -> Vec<usize> {
        let mut distances: Vec<(u32, u32)> = self
            .signs
            .chunks_exact(self.words)
            .enumerate()
            .map(|(index, words)| {
                let distance: u32 = words
                    .iter()
                    .zip(signs)
                    .map(|(word, query)| (word ^ query).count_ones())
                    .sum();
                (distance, index as u32)
            })
            .collect();
        distances.select_nth_unstable(wanted);
        distances.truncate(wanted);
        distances
            .into_iter()
            .map(|(_, index)| index as usize)
            .collect()
    }
}

/// Dot product of 8-bit codes in 32-bit lanes, which the compiler vectorizes.
fn dot_i8(left: &[i8], right: &[i8]) -> i32 {
    let mut lanes = [0i32; 16];
    let left_chunks = left.chunks_exact(16);
    let right_chunks = right.chunks_exact(16);
    let tail: i32 = left_chunks
        .remainder()
        .iter()
        .zip(right_chunks.remainder())
        .map(|(a, b)| i32::from(*a) * i32::from(*b))
        .sum();
    for (a, b) in left_chunks.zip(right_chunks) {
        for lane in 0..16 {
            lanes[lane] += i32::from(a[lane]) * i32::from(b[lane]);
        }
    }
    lanes.iter().sum::<i32>() + tail
}

/// Exact cosine of two unit vectors (the domain's re-scoring).
pub fn cosine(left: &[f32], right: &[f32]) -> f32 {
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
        assert!((hits[0].score - 0.99875).abs() < 1e-2);
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
                expected.push(cosine(&unit_query, &values));
            }
            expected.sort_by(|a, b| b.total_cmp(a));
            expected.truncate(k);
            let found: Vec<f32> = index.search(&query, k).unwrap().iter().map(|hit| hit.score).collect();
            proptest::prop_assert_eq!(found.len(), expected.len());
            for (a, b) in found.iter().zip(&expected) {
                proptest::prop_assert!((a - b).abs() < 0.03, "{a} vs {b}");
            }
        }
    }

    /// A deterministic unit vector (xorshift), so the test needs no random crate.
    fn pseudo_random(seed: &mut u64, dims: usize) -> Vec<f32> {
        let mut values: Vec<f32> = (0..dims)
            .map(|_| {
                *seed ^= *seed << 13;
                *seed ^= *seed >> 7;
                *seed ^= *seed << 17;
                (*seed % 2001) as f32 / 1000.0 - 1.0
            })
            .collect();
        vector::normalize(&mut values).unwrap();
        values
    }

    #[test]
    fn a_large_index_finds_the_nearest_vector_through_its_sign_prefilter() {
        let dims = 256;
        let count = PREFILTER_FROM + 5_000;
        let mut seed = 0x9e37_79b9_7f4a_7c15;
        let mut index = VectorIndex::with_capacity(dims, count);
        let mut stored = Vec::with_capacity(count);
        for _ in 0..count {
            let values = pseudo_random(&mut seed, dims);
            let item = entry();
            index.push_stored(item, &vector::encode(&values)).unwrap();
            stored.push((item, values));
        }
        for probe in 0..40 {
            // A stored vector moved by noise as large as itself.
            let (target, values) = &stored[(probe * 613) % count];
            let noise = pseudo_random(&mut seed, dims);
            let query: Vec<f32> = values.iter().zip(&noise).map(|(a, b)| a + b).collect();
            let hits = index.search(&query, 3).unwrap();
            assert_eq!(hits.len(), 3);
            assert_eq!(hits[0].entry, *target, "probe {probe}");
            assert!(hits[0].score > hits[1].score);
        }
    }
}
