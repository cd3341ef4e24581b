//! Chunking by structure under a token budget: markdown splits at headings first, then
//! paragraphs, sentences and words; plain text at paragraphs, sentences and words
//! (`text-splitter`). Sizes are counted in tokens of [`TOKENIZER`], and consecutive chunks
//! share up to `overlap` tokens so a sentence cut at a boundary is whole in one of them.
//!
//! Invariants: chunks are non-empty slices of the document, in order (`position` 0, 1, …),
//! together covering all of it but whitespace, none larger than `chunk_tokens` tokenized
//! alone; a markdown chunk's heading path is the headings above where its own text starts.

use std::ops::Range;
use std::sync::OnceLock;

use keyward_core::BodyText;
use pulldown_cmark::{Event, HeadingLevel, Parser, Tag, TagEnd};
use text_splitter::{ChunkCapacity, ChunkConfig, ChunkSizer, MarkdownSplitter, TextSplitter};
use tiktoken_rs::CoreBPE;

use crate::ContentKind;

/// The BPE tokenizer chunk sizes are counted in (OpenAI's `text-embedding-3-*` use it).
pub const TOKENIZER: &str = "cl100k_base";

/// Tokens kept free for the edges of a chunk (see `ChunkPlan::chunk`).
const EDGE_TOKENS: u32 = 2;

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
    /// Tokens of the document inside the chunk (tokenized alone it may differ by one at an
    /// edge; never above `chunk_tokens`).
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

    /// Cuts `text` into chunks. The document is tokenized once; the splitter sizes each
    /// candidate by the tokens it overlaps ([`DocumentTokens`]) within the budget left after
    /// the overlap, and each chunk after the first then starts up to `overlap` tokens earlier,
    /// inside the chunk before it. A chunk's `tokens` is counted the same way.
    pub fn chunk(&self, text: &BodyText, kind: ContentKind) -> Result<Vec<Chunk>, ChunkPlanError> {
        let bpe = tokenizer()?;
        let text = text.expose();
        let tokens = DocumentTokens::of(bpe, text);
        // Two tokens below the budget: a chunk tokenized alone can differ from its slice of the
        // document's tokens by one at each edge (a token that straddles a character).
        let budget = (self.chunk_tokens - self.overlap - EDGE_TOKENS) as usize;
        // A range rather than one size: the splitter takes the largest semantic unit that lands
        // in it instead of searching for the exact maximum.
        let capacity = ChunkCapacity::new(budget * 3 / 4)
            .with_max(budget)
            .map_err(|_| ChunkPlanError::Size)?;
        let config = ChunkConfig::new(capacity).with_sizer(&tokens);
        let pieces: Vec<(usize, &str)> = match kind {
            ContentKind::Markdown => MarkdownSplitter::new(config).chunk_indices(text).collect(),
            ContentKind::Plain => TextSplitter::new(config).chunk_indices(text).collect(),
        };
        let headings = match kind {
            ContentKind::Markdown => headings(text),
            ContentKind::Plain => Vec::new(),
        };
        let mut chunks: Vec<Chunk> = Vec::with_capacity(pieces.len());
        let mut previous_start = 0;
        for (offset, piece) in pieces {
            if piece.trim().is_empty() {
                continue;
            }
            let start = if chunks.is_empty() {
                offset
            } else {
                tokens.start_before(text, offset, self.overlap as usize, previous_start)
            };
            let end = offset + piece.len();
            let trimmed = text[start..end].trim_start();
            let start = end - trimmed.len();
            previous_start = offset;
            chunks.push(Chunk {
                position: u32::try_from(chunks.len()).unwrap_or(u32::MAX),
                byte_offset: start,
                text: BodyText::new(trimmed.to_owned()),
                heading: BodyText::new(heading_path(&headings, offset)),
                tokens: u32::try_from(tokens.size(trimmed)).unwrap_or(u32::MAX),
            });
        }
        Ok(chunks)
    }
}

/// One document's tokens, found once: a slice of the document is sized by the tokens it
/// overlaps (a token cut by the slice's edge counts whole, so the count errs high), which
/// spares the splitter from tokenizing every candidate again. A string that is not a slice of
/// the document is tokenized.
struct DocumentTokens<'a> {
    bpe: &'a CoreBPE,
    /// Address and length of the document the offsets belong to.
    base: usize,
    len: usize,
    starts: Vec<usize>,
    ends: Vec<usize>,
}

impl<'a> DocumentTokens<'a> {
    fn of(bpe: &'a CoreBPE, text: &str) -> Self {
        let tokens = bpe.encode_ordinary(text);
        let mut starts = Vec::with_capacity(tokens.len());
        let mut ends = Vec::with_capacity(tokens.len());
        let mut offset = 0;
        for token in tokens {
            let width = bpe.decode_bytes(&[token]).map_or(1, |bytes| bytes.len());
            starts.push(offset);
            offset += width;
            ends.push(offset);
        }
        Self {
            bpe,
            base: text.as_ptr() as usize,
            len: text.len(),
            starts,
            ends,
        }
    }
}

impl DocumentTokens<'_> {
    /// Where a chunk starting at `offset` begins once it takes up to `overlap` tokens of the
    /// text before it, never before `floor` (the previous chunk's start) and on a character
    /// boundary.
    fn start_before(&self, text: &str, offset: usize, overlap: usize, floor: usize) -> usize {
        let first = self.starts.partition_point(|start| *start < offset);
        let mut start = self
            .starts
            .get(first.saturating_sub(overlap))
            .copied()
            .unwrap_or(offset)
            .clamp(floor, offset);
        while !text.is_char_boundary(start) {
            start += 1;
        }
        start
    }
}

impl ChunkSizer for DocumentTokens<'_> {
    fn size(&self, chunk: &str) -> usize {
        let start = (chunk.as_ptr() as usize).wrapping_sub(self.base);
        if start > self.len || self.len - start < chunk.len() {
            return self.bpe.encode_ordinary(chunk).len();
        }
        let end = start + chunk.len();
        let first = self.ends.partition_point(|token_end| *token_end <= start);
        let past = self
            .starts
            .partition_point(|token_start| *token_start < end);
        past.saturating_sub(first)
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

    fn document() -> impl proptest::strategy::Strategy<Value = String> {
        use proptest::prelude::*;
        let word = prop_oneof![
            "[a-z]{1,12}",
            "[A-Z][a-z]{2,8}",
            "[0-9]{1,6}",
            Just("é".to_owned()),
            Just("日本語".to_owned()),
            Just("🙂".to_owned()),
        ];
        let sentence =
            proptest::collection::vec(word, 1..25).prop_map(|words| words.join(" ") + ".");
        let paragraph =
            proptest::collection::vec(sentence, 1..8).prop_map(|sentences| sentences.join(" "));
        let block = prop_oneof![
            3 => paragraph,
            1 => "[A-Za-z ]{1,30}".prop_map(|title| format!("## {title}")),
            1 => "[a-z ]{1,40}".prop_map(|code| format!("```\n{code}\n```")),
        ];
        proptest::collection::vec(block, 1..30).prop_map(|blocks| blocks.join("\n\n"))
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]
        #[test]
        fn chunks_cover_the_document_within_budget(
            doc in document(),
            markdown in proptest::bool::ANY,
            overlap in 0u32..20,
        ) {
            let plan = ChunkPlan::new(48, overlap).unwrap();
            let kind = if markdown { ContentKind::Markdown } else { ContentKind::Plain };
            let chunks = plan.chunk(&BodyText::new(doc.clone()), kind).unwrap();
            let mut covered = vec![false; doc.len()];
            for (position, chunk) in chunks.iter().enumerate() {
                proptest::prop_assert_eq!(chunk.position as usize, position);
                proptest::prop_assert!(!chunk.text.is_blank());
                proptest::prop_assert_eq!(&doc[chunk.byte_offset..][..chunk.text.len()], chunk.text.expose());
                let exact = count_tokens(chunk.text.expose()).unwrap();
                proptest::prop_assert!(exact <= 48, "{} tokens", exact);
                proptest::prop_assert!(chunk.tokens as usize + 2 >= exact && exact + 2 >= chunk.tokens as usize);
                covered[chunk.byte_offset..chunk.byte_offset + chunk.text.len()].fill(true);
            }
            // Nothing but whitespace is left out.
            for (offset, character) in doc.char_indices() {
                proptest::prop_assert!(covered[offset] || character.is_whitespace(), "byte {} not in any chunk", offset);
            }
        }
    }
}
