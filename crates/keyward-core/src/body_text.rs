//! [`BodyText`]: text that is a body — a document, a chunk of one, a document's name, a chat
//! message, a search query. It travels between the crates that may read it (the router, the
//! knowledge crate, the vault when sealing) without ever being printable.
//!
//! Invariants: no `Debug`, `Display`, `Clone`, `Serialize` or `PartialEq` (only `Deserialize`,
//! to read it from a client's JSON); the memory is wiped
//! when the value is dropped. Reading it takes an explicit [`BodyText::expose`].

use zeroize::Zeroizing;

/// Body text. Cannot be printed, logged, serialized or compared by accident.
pub struct BodyText(Zeroizing<String>);

impl BodyText {
    pub fn new(text: String) -> Self {
        Self(Zeroizing::new(text))
    }

    /// Text from bytes that must be UTF-8; on failure, the byte offset of the first invalid
    /// sequence (the bytes are wiped either way).
    pub fn from_utf8(bytes: Vec<u8>) -> Result<Self, usize> {
        match String::from_utf8(bytes) {
            Ok(text) => Ok(Self::new(text)),
            Err(err) => {
                let offset = err.utf8_error().valid_up_to();
                drop(Zeroizing::new(err.into_bytes()));
                Err(offset)
            }
        }
    }

    /// The text, for the code whose job is to read it.
    pub fn expose(&self) -> &str {
        &self.0
    }

    /// Length in bytes.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// Empty, or only whitespace.
    pub fn is_blank(&self) -> bool {
        self.0.trim().is_empty()
    }

    /// An explicit copy, for the code that must hand the same text to two places.
    pub fn duplicate(&self) -> Self {
        Self::new(self.0.as_str().to_owned())
    }
}

/// Read from a client's JSON (a document's text, a query). Deserialization only: a body is
/// never serialized by accident.
impl<'de> serde::Deserialize<'de> for BodyText {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        String::deserialize(deserializer).map(Self::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    static_assertions::assert_not_impl_any!(BodyText: std::fmt::Debug, std::fmt::Display, Clone, PartialEq);

    #[test]
    fn invalid_utf8_names_its_offset() {
        assert_eq!(BodyText::from_utf8(b"ab\xffcd".to_vec()).err(), Some(2));
        let text = BodyText::from_utf8("héllo".as_bytes().to_vec())
            .ok()
            .unwrap();
        assert_eq!(text.expose(), "héllo");
        assert!(BodyText::new(" \n\t".into()).is_blank());
    }
}
