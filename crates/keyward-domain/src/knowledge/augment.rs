//! Retrieval-augmented calls: `x-keyward-knowledge-base` on chat completions and messages.
//! The last user message is embedded on each named knowledge base's credential, the best
//! chunks across them are given to the model as numbered sources with an instruction to cite
//! them, and the answer carries `x-keyward-citations`.
//!
//! Invariant: the sources are added before the call's admission, so its reservation counts
//! them; each knowledge base searched has its own embedding ledger row.

use keyward_knowledge::sources;
use keyward_router::{PromptBody, Surface};

use keyward_core::BodyText;

use crate::inference::{Caller, Citations, KnowledgeRequest};
use crate::{DomainError, Keyward};

/// The most knowledge bases one call may search.
const MAX_KNOWLEDGE_BASES: usize = 8;

impl Keyward {
    /// Searches the requested knowledge bases and adds the sources to `prompt`; returns what
    /// was cited.
    pub(crate) async fn augment(
        &self,
        caller: &Caller,
        surface: Surface,
        prompt: &mut PromptBody,
        request: &KnowledgeRequest,
    ) -> Result<Citations, DomainError> {
        if !matches!(surface, Surface::ChatCompletions | Surface::Messages) {
            return Err(DomainError::invalid(
                "x-keyward-knowledge-base",
                "knowledge bases augment /v1/chat/completions and /v1/messages only",
            ));
        }
        if request.knowledge_bases.is_empty() || request.knowledge_bases.len() > MAX_KNOWLEDGE_BASES
        {
            return Err(DomainError::invalid(
                "x-keyward-knowledge-base",
                "name 1 to 8 knowledge bases, separated by commas",
            ));
        }
        if !(1..=super::search::MAX_TOP_K).contains(&request.top_k) {
            return Err(DomainError::invalid("x-keyward-top-k", "use 1 to 50"));
        }
        let query = prompt.last_user_text().ok_or_else(|| {
            DomainError::invalid(
                "messages",
                "a knowledge-base search needs a last user message with text",
            )
        })?;
        let mut found = Vec::new();
        for name in &request.knowledge_bases {
            let kb = self.readable_knowledge_base(caller, name).await?;
            found.extend(self.retrieve(caller, &kb, &query, request.top_k).await?);
        }
        found.sort_by(|left, right| right.score.total_cmp(&left.score));
        found.truncate(request.top_k);
        prompt.add_sources(surface, &sources::sources_prompt(&found));
        let mut documents: Vec<BodyText> = Vec::new();
        for source in &found {
            if !documents
                .iter()
                .any(|known| known.expose() == source.document_name.expose())
            {
                documents.push(source.document_name.duplicate());
            }
        }
        Ok(Citations {
            header: sources::citations(&found),
            documents,
        })
    }
}
