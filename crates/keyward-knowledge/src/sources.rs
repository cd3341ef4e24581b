//! What retrieval hands on: the numbered sources and the instruction to cite them that a model
//! is given, the `x-keyward-citations` value, and the search route's JSON answer.
//!
//! Invariant: the sources text and the JSON answer are built into [`BodyText`] / bytes that
//! only go to the model or the client who asked; nothing here is logged.

use keyward_core::{BodyText, ChunkId, DocumentId};
use serde_json::json;

/// A retrieved chunk with its opened text.
pub struct SourceChunk {
    pub document_id: DocumentId,
    pub document_name: BodyText,
    pub chunk_id: ChunkId,
    pub heading: BodyText,
    pub text: BodyText,
    pub score: f32,
}

/// The instruction placed before the sources.
const INSTRUCTION: &str = "Answer using the numbered sources below when they are relevant. \
Cite each source you use by its number in square brackets, for example [1]. If the sources do \
not contain the answer, say so rather than guessing.";

/// The system text given to the model: the instruction, then `[n] name — heading` and the
/// chunk's text for each source, in rank order.
pub fn sources_prompt(sources: &[SourceChunk]) -> BodyText {
    let mut text = String::from(INSTRUCTION);
    text.push_str("\n\nSources:");
    for (number, source) in sources.iter().enumerate() {
        text.push_str(&format!(
            "\n\n[{}] {}",
            number + 1,
            source.document_name.expose()
        ));
        if !source.heading.is_blank() {
            text.push_str(" — ");
            text.push_str(source.heading.expose());
        }
        text.push('\n');
        text.push_str(source.text.expose());
    }
    BodyText::new(text)
}

/// `DOCUMENT_ID#CHUNK_ID, …` in rank order: ids only, safe for a header.
pub fn citations(sources: &[SourceChunk]) -> String {
    sources
        .iter()
        .map(|source| format!("{}#{}", source.document_id, source.chunk_id))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The search route's answer: `{"data": [{document_id, document_name, chunk_id, score, text}]}`.
pub struct SearchAnswer;

impl SearchAnswer {
    pub fn to_json(sources: &[SourceChunk]) -> Vec<u8> {
        Self::render(sources, true)
    }

    /// The answer without the chunks' headings and text: which documents matched, and how
    /// well (what the web console shows: it never receives document text).
    pub fn to_json_without_text(sources: &[SourceChunk]) -> Vec<u8> {
        Self::render(sources, false)
    }

    fn render(sources: &[SourceChunk], with_text: bool) -> Vec<u8> {
        let data: Vec<serde_json::Value> = sources
            .iter()
            .map(|source| {
                let mut hit = json!({
                    "document_id": source.document_id,
                    "document_name": source.document_name.expose(),
                    "chunk_id": source.chunk_id,
                    "score": source.score,
                });
                if with_text {
                    hit["heading"] = json!(source.heading.expose());
                    hit["text"] = json!(source.text.expose());
                }
                hit
            })
            .collect();
        serde_json::to_vec(&json!({"object": "list", "data": data})).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sources_are_numbered_in_rank_order() {
        let source = |name: &str, text: &str| SourceChunk {
            document_id: DocumentId::generate(),
            document_name: BodyText::new(name.into()),
            chunk_id: ChunkId::generate(),
            heading: BodyText::new(String::new()),
            text: BodyText::new(text.into()),
            score: 0.5,
        };
        let sources = [
            source("travel.md", "Keep receipts."),
            source("hr.md", "Ask HR."),
        ];
        let prompt = sources_prompt(&sources);
        let first = prompt
            .expose()
            .find("[1] travel.md\nKeep receipts.")
            .unwrap();
        let second = prompt.expose().find("[2] hr.md\nAsk HR.").unwrap();
        assert!(first < second);
        assert_eq!(citations(&sources).matches('#').count(), 2);
        let json: serde_json::Value =
            serde_json::from_slice(&SearchAnswer::to_json(&sources)).unwrap();
        assert_eq!(json["data"][1]["text"], "Ask HR.");
    }
}
