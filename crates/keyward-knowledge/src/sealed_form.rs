//! The plaintext the vault seals for a knowledge-base row: a document's name and metadata, a
//! chunk's heading path and text. Each is one sealed value (one AES-GCM operation per row);
//! the first part is prefixed by its length (4 bytes, big-endian) so the two never mix.
//!
//! Invariant: encoded buffers are wiped on drop; decoding checks the layout and the UTF-8 of
//! both parts.

use keyward_core::BodyText;
use zeroize::Zeroizing;

fn encode(first: &str, second: &str) -> Zeroizing<Vec<u8>> {
    let mut bytes = Zeroizing::new(Vec::with_capacity(4 + first.len() + second.len()));
    let len = u32::try_from(first.len()).unwrap_or(u32::MAX);
    bytes.extend_from_slice(&len.to_be_bytes());
    bytes.extend_from_slice(first.as_bytes());
    bytes.extend_from_slice(second.as_bytes());
    bytes
}

fn decode(bytes: &[u8]) -> Option<(BodyText, BodyText)> {
    let len_bytes: [u8; 4] = bytes.get(..4)?.try_into().ok()?;
    let len = usize::try_from(u32::from_be_bytes(len_bytes)).ok()?;
    let first = bytes.get(4..4usize.checked_add(len)?)?;
    let second = bytes.get(4 + len..)?;
    Some((
        BodyText::from_utf8(first.to_vec()).ok()?,
        BodyText::from_utf8(second.to_vec()).ok()?,
    ))
}

/// A chunk's sealed plaintext: heading path, then text.
pub fn encode_chunk(heading: &BodyText, text: &BodyText) -> Zeroizing<Vec<u8>> {
    encode(heading.expose(), text.expose())
}

/// `(heading, text)` of an opened chunk, or `None` if the plaintext is not in this layout.
pub fn decode_chunk(bytes: &[u8]) -> Option<(BodyText, BodyText)> {
    decode(bytes)
}

/// A document's sealed plaintext: name, then metadata (a JSON object's text, or empty).
pub fn encode_document(name: &BodyText, metadata: &BodyText) -> Zeroizing<Vec<u8>> {
    encode(name.expose(), metadata.expose())
}

/// `(name, metadata)` of an opened document.
pub fn decode_document(bytes: &[u8]) -> Option<(BodyText, BodyText)> {
    decode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_round_trip_and_garbage_is_refused() {
        let bytes = encode_chunk(
            &BodyText::new("A > B".into()),
            &BodyText::new("text é".into()),
        );
        let (heading, text) = decode_chunk(&bytes).unwrap();
        assert_eq!((heading.expose(), text.expose()), ("A > B", "text é"));
        assert!(decode_chunk(&[0, 0, 0, 9, b'x']).is_none());
        assert!(decode_chunk(&[0, 0]).is_none());
        let (name, metadata) = decode_document(&encode_document(
            &BodyText::new("n".into()),
            &BodyText::new(String::new()),
        ))
        .unwrap();
        assert_eq!((name.expose(), metadata.expose()), ("n", ""));
    }
}
