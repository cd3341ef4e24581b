//! A document as it arrives: JSON text, or a file part of a multipart upload. Only UTF-8 text
//! and markdown are accepted; the decision is made on the declared type, the file name and the
//! bytes themselves, and a refusal says which and what to do.

use keyward_core::BodyText;

/// How a document is chunked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContentKind {
    /// `text/plain`: paragraphs and sentences.
    Plain,
    /// `text/markdown`: headings, then paragraphs and sentences; headings become the chunks'
    /// heading paths.
    Markdown,
}

impl ContentKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Plain => "text/plain",
            Self::Markdown => "text/markdown",
        }
    }

    /// A declared media type (parameters such as `charset=utf-8` ignored), if supported.
    pub fn from_media_type(media_type: &str) -> Option<Self> {
        let essence = media_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match essence.as_str() {
            "text/plain" => Some(Self::Plain),
            "text/markdown" | "text/x-markdown" => Some(Self::Markdown),
            _ => None,
        }
    }

    /// The kind a file name's extension implies, if it is a supported one.
    pub fn from_file_name(name: &str) -> Option<Self> {
        let extension = name.rsplit_once('.')?.1.to_ascii_lowercase();
        match extension.as_str() {
            "txt" | "text" => Some(Self::Plain),
            "md" | "markdown" | "mdown" | "mkd" => Some(Self::Markdown),
            _ => None,
        }
    }
}

/// A document that cannot be indexed. Messages name sizes, offsets and types, never content.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocumentError {
    #[error("the document is empty or only whitespace; send a document with text in it")]
    Empty,
    #[error("the document is not valid UTF-8 (first invalid byte at offset {offset}); convert it to UTF-8 text or markdown")]
    NotUtf8 { offset: usize },
    #[error("the document looks binary (a NUL byte at offset {offset}); only text and markdown documents can be indexed")]
    Binary { offset: usize },
    #[error("documents of type `{media_type}` cannot be indexed; send text/plain or text/markdown (a .txt or .md file)")]
    UnsupportedType { media_type: String },
    #[error("the document name must be 1 to 512 characters")]
    BadName,
}

/// Reads a document's bytes as text of `kind`. The bytes are wiped if refused.
pub fn decode(bytes: Vec<u8>, kind: ContentKind) -> Result<(BodyText, ContentKind), DocumentError> {
    if let Some(offset) = bytes.iter().position(|byte| *byte == 0) {
        drop(BodyText::from_utf8(bytes));
        return Err(DocumentError::Binary { offset });
    }
    let text = BodyText::from_utf8(bytes).map_err(|offset| DocumentError::NotUtf8 { offset })?;
    if text.is_blank() {
        return Err(DocumentError::Empty);
    }
    Ok((text, kind))
}

/// The kind of an uploaded file: its declared type when that is a supported one, else its
/// extension; `application/octet-stream` (what many clients send) defers to the extension.
pub fn kind_of_upload(
    declared: Option<&str>,
    file_name: Option<&str>,
) -> Result<ContentKind, DocumentError> {
    if let Some(kind) = declared.and_then(ContentKind::from_media_type) {
        return Ok(kind);
    }
    if let Some(kind) = file_name.and_then(ContentKind::from_file_name) {
        return Ok(kind);
    }
    Err(DocumentError::UnsupportedType {
        media_type: declared
            .map(|declared| declared.chars().take(100).collect())
            .unwrap_or_else(|| "unknown".to_owned()),
    })
}

/// Checks a document name's length (it is sealed, never validated for content).
pub fn check_name(name: &BodyText) -> Result<(), DocumentError> {
    let chars = name.expose().chars().count();
    if name.is_blank() || chars > 512 {
        return Err(DocumentError::BadName);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_binary_invalid_and_blank_documents() {
        assert_eq!(
            decode(b"ab\0c".to_vec(), ContentKind::Plain).err(),
            Some(DocumentError::Binary { offset: 2 })
        );
        assert_eq!(
            decode(b"ok \xc3".to_vec(), ContentKind::Plain).err(),
            Some(DocumentError::NotUtf8 { offset: 3 })
        );
        assert_eq!(
            decode(b" \n\t ".to_vec(), ContentKind::Markdown).err(),
            Some(DocumentError::Empty)
        );
        let (text, kind) = decode(b"# Title\nbody".to_vec(), ContentKind::Markdown).unwrap();
        assert_eq!(
            (text.expose(), kind),
            ("# Title\nbody", ContentKind::Markdown)
        );
    }

    #[test]
    fn upload_kind_comes_from_type_then_extension() {
        assert_eq!(
            kind_of_upload(Some("text/markdown; charset=utf-8"), None),
            Ok(ContentKind::Markdown)
        );
        assert_eq!(
            kind_of_upload(Some("application/octet-stream"), Some("notes.MD")),
            Ok(ContentKind::Markdown)
        );
        assert_eq!(kind_of_upload(None, Some("a.txt")), Ok(ContentKind::Plain));
        assert!(matches!(
            kind_of_upload(Some("application/pdf"), Some("report.pdf")),
            Err(DocumentError::UnsupportedType { media_type }) if media_type == "application/pdf"
        ));
    }
}
