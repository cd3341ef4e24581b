//! Vectors as the store keeps them: little-endian `f32`, unit length so a dot product is the
//! cosine similarity.

/// A vector a provider returned that cannot be used.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum VectorError {
    #[error("the embedding has {got} dimensions where {expected} were expected")]
    Dimensions { expected: usize, got: usize },
    #[error("the embedding is all zeros or not a finite number")]
    Degenerate,
    #[error("a stored vector is not a whole number of 4-byte floats")]
    Corrupt,
}

/// Scales `vector` to unit length.
pub fn normalize(vector: &mut [f32]) -> Result<(), VectorError> {
    let norm = vector
        .iter()
        .map(|value| f64::from(*value) * f64::from(*value))
        .sum::<f64>()
        .sqrt();
    if !norm.is_finite() || norm == 0.0 {
        return Err(VectorError::Degenerate);
    }
    for value in vector.iter_mut() {
        *value = (f64::from(*value) / norm) as f32;
    }
    Ok(())
}

pub fn encode(vector: &[f32]) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(vector.len() * 4);
    for value in vector {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes
}

/// Appends a stored vector's values to `into`, checking its length.
pub fn decode_into(
    bytes: &[u8],
    dimensions: usize,
    into: &mut Vec<f32>,
) -> Result<(), VectorError> {
    if !bytes.len().is_multiple_of(4) {
        return Err(VectorError::Corrupt);
    }
    if bytes.len() / 4 != dimensions {
        return Err(VectorError::Dimensions {
            expected: dimensions,
            got: bytes.len() / 4,
        });
    }
    into.extend(
        bytes
            .chunks_exact(4)
            .map(|word| f32::from_le_bytes([word[0], word[1], word[2], word[3]])),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vectors_round_trip_normalized() {
        let mut vector = vec![3.0, 4.0];
        normalize(&mut vector).unwrap();
        let mut back = Vec::new();
        decode_into(&encode(&vector), 2, &mut back).unwrap();
        assert_eq!(back, vec![0.6, 0.8]);
        assert_eq!(normalize(&mut [0.0, 0.0]), Err(VectorError::Degenerate));
        assert_eq!(normalize(&mut [f32::NAN]), Err(VectorError::Degenerate));
        assert_eq!(
            decode_into(&[0; 12], 2, &mut back),
            Err(VectorError::Dimensions {
                expected: 2,
                got: 3
            })
        );
        assert_eq!(
            decode_into(&[0; 5], 2, &mut back),
            Err(VectorError::Corrupt)
        );
    }
}
