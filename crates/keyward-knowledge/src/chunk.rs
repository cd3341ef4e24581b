//! Chunking by structure under a token budget: markdown splits at headings first, then
//! paragraphs, sentences and words; plain text at paragraphs, sentences and words
//! (`text-splitter`). Sizes are counted in tokens of [`TOKENIZER`], and consecutive chunks
//! share up to `overlap` tokens so a sentence cut at a boundary is whole in one of them.
//!
//! Invariants: chunks are non-empty, in document order (`position` 0, 1, …), none larger than
//! `chunk_tokens`; a markdown chunk's heading path is the headings above its first byte.

use std::ops::Range;
use std::sync::OnceLock;

use keyward_core::BodyText;
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use text_splitter::{ChunkConfig, MarkdownSplitter, TextSplitter};
use tiktoken_rs::CoreBPE;

use crate::ContentKind;

/// The BPE tokenizer chunk sizes are counted in (OpenAI's `text-embedding-3-*` use it).
pub const TOKENIZER: &str = "cl100k_base";

/// Chunk sizes a knowledge base may choose: an embedding model's input limit is 8,191 tokens.
pub const CHUNK_TOKENS: Range<u32> = 32..8192;

/// How a knowledge base cuts documents.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChunkPlan {
    chunk_tokens: u32,
    overlap: u32,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ChunkPlanError {
    #[error("`chunk_tokens` must be between 32 and 8191 (tokens of cl100k_base)")]
    Size,
    #[error("`chunk_overlap` must be smaller than half of `chunk_tokens`")]
    Overlap,
    #[error("the tokenizer could not be loaded")]
    Tokenizer,
}

/// One piece of a document.
pub struct Chunk {
    /// 0-based order in the document.
    pub position: u32,
    /// Byte offset of the chunk in the document.
    pub byte_offset: usize,
    pub text: BodyText,
    /// Headings above the chunk, outermost first, joined by ` > ` (empty for plain text).
    pub heading: BodyText,
    pub tokens: u32,
}

fn tokenizer() -> Result<&'static CoreBPE, ChunkPlanError> {
    static BPE: OnceLock<Option<CoreBPE>> = OnceLock::new();
    BPE.get_or_init(|| tiktoken_rs::cl100k_base().ok())
        .as_ref()
        .ok_or(ChunkPlanError::Tokenizer)
}

/// Tokens of `text` in [`TOKENIZER`].
pub fn count_tokens(text: &str) -> Result<usize, ChunkPlanError> {
    Ok(tokenizer()?.encode_ordinary(text).len())
}

impl ChunkPlan {
    pub fn new(chunk_tokens: u32, overlap: u32) -> Result<Self, ChunkPlanError> {
        if !CHUNK_TOKENS.contains(&chunk_tokens) {
            return Err(ChunkPlanError::Size);
        }
        if overlap.saturating_mul(2) >= chunk_tokens {
            return Err(ChunkPlanError::Overlap);
        }
        Ok(Self {
            chunk_tokens,
            overlap,
        })
    }

    pub fn chunk_tokens(&self) -> u32 {
        self.chunk_tokens
    }

    pub fn overlap(&self) -> u32 {
        self.overlap
    }

    /// Cuts `text` into chunks.
    pub fn chunk(&self, text: &BodyText, kind: ContentKind) -> Result<Vec<Chunk>, ChunkPlanError> {
        let bpe = tokenizer()?;
        let config = ChunkConfig::new(self.chunk_tokens as usize)
            .with_overlap(self.overlap as usize)
            .map_err(|_| ChunkPlanError::Overlap)?
            .with_sizer(bpe);
        let text = text.expose();
        let pieces: Vec<(usize, &str)> = match kind {
            ContentKind::Markdown => MarkdownSplitter::new(config).chunk_indices(text).collect(),
            ContentKind::Plain => TextSplitter::new(config).chunk_indices(text).collect(),
        };
        let headings = match kind {
            ContentKind::Markdown => headings(text),
            ContentKind::Plain => Vec::new(),
        };
        let mut chunks = Vec::with_capacity(pieces.len());
        for (offset, piece) in pieces {
            if piece.trim().is_empty() {
                continue;
            }
            let tokens = u32::try_from(bpe.encode_ordinary(piece).len()).unwrap_or(u32::MAX);
            chunks.push(Chunk {
                position: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
                byte_offset: offset,
                text: BodyText::new(piece.to_owned()),
                heading: BodyText::new(heading_path(&headings, offset)),
                tokens,
            });
        }
        Ok(chunks)
    }
}

/// A markdown heading: where it starts, its level and its text.
struct Heading {
    offset: usize,
    level: HeadingLevel,
    text: String,
}

/// The document's headings in order (code blocks and other text that merely looks like a
/// heading are not headings: the markdown parser decides).
fn headings(text: &str) -> Vec<Heading> {
    let mut found = Vec::new();
    let mut current: Option<Heading> = None;
    for (event, range) in Parser::new(text).into_offset_iter() {
        match event {
            Event::Start(Tag::Heading { level, .. }) => {
                current = Some(Heading {
                    offset: range.start,
                    level,
                    text: String::new(),
                });
            }
            Event::Text(part) | Event::Code(part) => {
                if let Some(heading) = current.as_mut() {
                    heading.text.push_str(&part);
                }
            }
            Event::End(TagEnd::Heading(_)) => {
                if let Some(heading) = current.take() {
                    found.push(heading);
                }
            }
            _ => {}
        }
    }
    found
}

/// The path of headings in force at `offset`: each heading replaces those at its level and
/// below.
fn heading_path(headings: &[Heading], offset: usize) -> String {
    let mut stack: Vec<&Heading> = Vec::new();
    for heading in headings
        .iter()
        .take_while(|heading| heading.offset <= offset)
    {
        stack.retain(|outer| outer.level < heading.level);
        stack.push(heading);
    }
    stack
        .iter()
        .map(|heading| heading.text.trim())
        .collect::<Vec<_>>()
        .join(" > ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn texts(chunks: &[Chunk]) -> Vec<(&str, &str)> {
        chunks
            .iter()
            .map(|chunk| (chunk.heading.expose(), chunk.text.expose()))
            .collect()
    }

    #[test]
    fn plan_bounds_are_checked() {
        assert_eq!(ChunkPlan::new(8, 0), Err(ChunkPlanError::Size));
        assert_eq!(ChunkPlan::new(100, 50), Err(ChunkPlanError::Overlap));
        assert!(ChunkPlan::new(400, 60).is_ok());
    }

    #[test]
    fn markdown_chunks_carry_their_heading_path() {
        let doc = "# Travel\n\nIntro text about travel, which explains who may travel and when \
                   a manager has to approve a trip before it is booked.\n\n## Expenses\n\nKeep every receipt. \
                   Submit within 30 days.\n\n```\n# not a heading\n```\n\n## Booking\n\nUse the portal.\n";
        let plan = ChunkPlan::new(32, 0).unwrap();
        let chunks = plan
            .chunk(&BodyText::new(doc.to_owned()), ContentKind::Markdown)
            .unwrap();
        let found = texts(&chunks);
        assert!(found.len() >= 2, "{found:?}");
        let expenses = found
            .iter()
            .find(|(_, text)| text.contains("Keep every receipt"))
            .unwrap();
        assert_eq!(expenses.0, "Travel > Expenses");
        // The parser decides what a heading is: a `#` line in a code block is not one.
        let names: Vec<String> = headings(doc).into_iter().map(|h| h.text).collect();
        assert_eq!(names, ["Travel", "Expenses", "Booking"]);
        let at_booking = doc.find("## Booking").unwrap();
        assert_eq!(heading_path(&headings(doc), at_booking), "Travel > Booking");
        for (position, chunk) in chunks.iter().enumerate() {
            assert_eq!(chunk.position as usize, position);
            assert!(chunk.tokens <= 32);
        }
    }

    #[test]
    fn long_plain_text_is_cut_within_budget_with_overlap() {
        let sentence = "The quarterly report covers revenue, cost and headcount in detail. ";
        let doc = sentence.repeat(200);
        let plan = ChunkPlan::new(64, 16).unwrap();
        let chunks = plan
            .chunk(&BodyText::new(doc.clone()), ContentKind::Plain)
            .unwrap();
        assert!(chunks.len() > 10);
        for chunk in &chunks {
            assert!(chunk.tokens <= 64 && chunk.tokens > 0);
            assert!(chunk.heading.is_empty());
            assert_eq!(
                &doc[chunk.byte_offset..][..chunk.text.len()],
                chunk.text.expose()
            );
        }
        // With an overlap, consecutive chunks share text.
        let overlapping = chunks
            .windows(2)
            .filter(|pair| pair[1].byte_offset < pair[0].byte_offset + pair[0].text.len())
            .count();
        assert!(overlapping > 0);
    }
}
