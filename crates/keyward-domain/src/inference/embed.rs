//! Embedding calls Keyward makes itself for a knowledge base — a document's chunks at
//! ingestion, the question at search time — run as one attempt of the same pipeline as a
//! client's call: the knowledge base's credential (the tenant's own key), the status check,
//! the admission with budgets and its ledger row (`endpoint` `embeddings`, tag
//! `kb=NAME`), the settlement, and a rejected key handled as for any call.
//!
//! Invariant: there is no other embedding path: no operator or built-in model, no fallback.

use std::collections::BTreeMap;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::Instant;

use keyward_core::{BodyText, RequestId};
use keyward_router::{ClientHeaders, PromptBody, RouterError, Surface};
use keyward_store::KnowledgeBaseRecord;

use super::attempt::{AttemptResult, AttemptRow};
use super::targets::{unusable, Attempt, Caller};
use super::{Call, CallContext, InferenceReply};
use crate::{DomainError, Keyward};

impl Keyward {
    /// Embeds `texts` on `kb`'s embedding credential for `caller`; one vector per text, in
    /// order, as the provider returned them (not yet normalized).
    pub(crate) async fn embed_for_knowledge(
        &self,
        caller: &Caller,
        kb: &KnowledgeBaseRecord,
        texts: &[&BodyText],
        purpose: &str,
    ) -> Result<Vec<Vec<f32>>, DomainError> {
        let credential = self
            .store
            .credential(kb.tenant_id, kb.credential_id)
            .await?
            .ok_or_else(|| DomainError::EmbeddingFailed {
                kb: kb.name.clone(),
                reason: "its embedding credential was deleted; create the knowledge base again with another credential".to_owned(),
            })?;
        if let Some(error) = unusable(&credential, Surface::Embeddings) {
            return Err(error);
        }
        let model = format!("{}/{}", credential.label, kb.embedding_model);
        let prompt = PromptBody::embeddings_request(&model, texts);
        let route = prompt
            .route_request(Surface::Embeddings)
            .map_err(RouterError::from)?;
        let request_id = RequestId::generate();
        let tags = BTreeMap::from([
            ("kb".to_owned(), kb.name.clone()),
            ("purpose".to_owned(), purpose.to_owned()),
        ]);
        let call = Call {
            caller: caller.clone(),
            surface: Surface::Embeddings,
            ledger_endpoint: super::KNOWLEDGE_ENDPOINT,
            prompt,
            route,
            context: CallContext {
                request_id,
                tags,
                client_headers: ClientHeaders::default(),
                knowledge: None,
            },
            client_gone: Arc::new(AtomicBool::new(false)),
        };
        let attempt = Attempt {
            credential,
            upstream_model: kb.embedding_model.clone(),
            read_at: Instant::now(),
        };
        let row = AttemptRow {
            request_id,
            fallback_of: None,
        };
        let failed = |reason: String| DomainError::EmbeddingFailed {
            kb: kb.name.clone(),
            reason,
        };
        match self.attempt(&call, &attempt, row).await? {
            AttemptResult::Done(InferenceReply::Complete {
                status: 200, body, ..
            }) => {
                body.embedding_vectors(texts.len())
                    .map_err(|err| failed(format!("{err}; check that `{}` is an embedding model", kb.embedding_model)))
            }
            AttemptResult::Done(InferenceReply::Complete { status, .. })
            | AttemptResult::Relayable(InferenceReply::Complete { status, .. }) => Err(failed(format!(
                "the provider answered status {status} (request {request_id}); check that `{}` is an embedding model the credential can use",
                kb.embedding_model
            ))),
            AttemptResult::Done(InferenceReply::Streaming { .. })
            | AttemptResult::Relayable(InferenceReply::Streaming { .. }) => {
                Err(failed("the provider answered with a stream".to_owned()))
            }
            AttemptResult::Failed(error) | AttemptResult::Skipped(error) => Err(error),
        }
    }
}
