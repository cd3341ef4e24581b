//! One model call, end to end: authorize the model, pick the credential, commit the ledger row,
//! call the provider through the router, handle a rejected key, settle the row.
//!
//! One attempt is a pipeline, each step in its own module and written once:
//! [`targets`] (who calls, where the model may go) → [`attempt`]'s `open_target` (the one
//! status check, the secret) → [`admit`] (the pending row: ledger mode, budgets, metric) → the
//! router → [`settle`] (one settlement builder per kind of ending, one `settle` for every
//! path) → [`rejection`] when the provider refused the key (park the credential, or retry once
//! on the value a key manager now holds). [`verify`] runs the same admission and settlement
//! for a credential check.
//!
//! Invariants:
//! - Nothing goes upstream without a committed `pending` ledger row (strict mode), and every
//!   row is settled once the call ends — for streams by a tracked task that waits for the
//!   stream's outcome, whether it completed, broke off or the client left.
//! - A credential that is disabled or was rejected by the provider produces no upstream
//!   traffic: the call fails before the row is written.
//! - This module handles bodies only as opaque router types; it never reads them.

mod admit;
mod attempt;
mod count;
mod embed;
mod rejection;
mod settle;
mod targets;
mod trace;
mod verify;

pub(crate) use verify::ModelLists;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use tracing::Instrument as _;

use keyward_core::RequestId;
use keyward_router::{
    ClientHeaders, CompletionBody, CompletionStream, PromptBody, RouteRequest, RouterError, Surface,
};

use crate::rate_limit::LimitRefusal;
use crate::{Actor, DomainError, Keyward};

pub use admit::LedgerMode;
use attempt::{AttemptResult, AttemptRow};
pub(crate) use targets::{allowed, Caller};
use targets::{unusable, Attempt};

/// The ledger's `endpoint` for credential verification calls.
pub(crate) const VERIFY_ENDPOINT: &str = "verify";
/// The ledger `endpoint` of a model-list call made for `GET /v1/models`.
pub(crate) const MODELS_ENDPOINT: &str = "models";
/// The ledger's `endpoint` for embeddings Keyward makes for a knowledge base (SPEC); client
/// calls keep their path, so the platform meter counts only theirs as requests routed.
pub(crate) const KNOWLEDGE_ENDPOINT: &str = "embeddings";

/// Per-call metadata from the HTTP layer.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// Also the ledger row's id and the `x-keyward-request-id` header.
    pub request_id: RequestId,
    /// From `x-keyward-tags`.
    pub tags: BTreeMap<String, String>,
    /// Headers the provider must see as the client sent them.
    pub client_headers: ClientHeaders,
    /// Retrieval asked for with `x-keyward-knowledge-base`.
    pub knowledge: Option<KnowledgeRequest>,
}

/// What an augmented call cited.
pub struct Citations {
    /// `x-keyward-citations`: `DOCUMENT_ID#CHUNK_ID, …` in rank order.
    pub header: String,
    /// The cited documents' names, in rank order, each once.
    pub documents: Vec<keyward_core::BodyText>,
}

/// Knowledge bases to search before a chat call, and how many chunks to give the model.
#[derive(Clone, Debug)]
pub struct KnowledgeRequest {
    /// Names or ids, as the client sent them.
    pub knowledge_bases: Vec<String>,
    pub top_k: usize,
}

/// Sets its flag when dropped: the request's future is gone, so the client is too.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// Which fallback target answered, when it was not the first.
#[derive(Clone, Debug)]
pub struct ServedBy {
    /// `label/model` of the target.
    pub target: String,
    /// The ledger row of the attempt that answered.
    pub request_id: RequestId,
}

/// What goes back to the client.
pub enum InferenceReply {
    /// A whole body: the provider's success, or its 4xx error relayed unchanged.
    Complete {
        status: u16,
        content_type: Option<String>,
        retry_after: Option<String>,
        body: CompletionBody,
        served_by: Option<ServedBy>,
        /// The sources given to the model, in rank order.
        citations: Option<Citations>,
    },
    Streaming {
        status: u16,
        content_type: Option<String>,
        stream: Box<CompletionStream>,
        served_by: Option<ServedBy>,
        citations: Option<Citations>,
    },
}

impl InferenceReply {
    fn with_served_by(mut self, target: Option<ServedBy>) -> Self {
        match &mut self {
            Self::Complete { served_by, .. } | Self::Streaming { served_by, .. } => {
                *served_by = target
            }
        }
        self
    }

    fn with_citations(mut self, sources: Option<Citations>) -> Self {
        match &mut self {
            Self::Complete { citations, .. } | Self::Streaming { citations, .. } => {
                *citations = sources
            }
        }
        self
    }

    pub fn citations(&self) -> Option<&Citations> {
        match self {
            Self::Complete { citations, .. } | Self::Streaming { citations, .. } => {
                citations.as_ref()
            }
        }
    }

    pub fn served_by(&self) -> Option<&ServedBy> {
        match self {
            Self::Complete { served_by, .. } | Self::Streaming { served_by, .. } => {
                served_by.as_ref()
            }
        }
    }
}

/// Everything one call carries from attempt to attempt; the body stays opaque.
pub(crate) struct Call {
    pub caller: Caller,
    pub surface: Surface,
    /// The ledger row's `endpoint`: the surface's path for a client's call,
    /// [`KNOWLEDGE_ENDPOINT`] for Keyward's own embedding calls.
    pub ledger_endpoint: &'static str,
    pub prompt: PromptBody,
    pub route: RouteRequest,
    pub context: CallContext,
    /// Set when the client's request future is dropped.
    pub client_gone: Arc<AtomicBool>,
}

impl Call {
    fn client_gone(&self) -> bool {
        self.client_gone.load(Ordering::Relaxed)
    }
}

/// The answer so far while a route's targets are tried in order.
#[derive(Default)]
struct Outcome {
    last: Option<Result<InferenceReply, DomainError>>,
}

impl Outcome {
    /// A relayable 429 stays the answer unless a later target answers: a later target's
    /// failure does not replace it.
    fn failed(&mut self, error: DomainError) {
        if !matches!(self.last, Some(Ok(_))) {
            self.last = Some(Err(error));
        }
    }

    fn finish(self) -> Result<InferenceReply, DomainError> {
        self.last.unwrap_or(Err(DomainError::NoCredential {
            reason: "the route has no target".to_owned(),
        }))
    }
}

impl Keyward {
    /// Runs one model call for a platform key. `label/model` names one credential; a bare
    /// name follows the tenant's route, whose later targets are fallbacks tried in order
    /// when a target is unusable, unreachable, times out, or answers 429 or 5xx.
    pub async fn infer(
        &self,
        actor: &Actor,
        surface: Surface,
        prompt: PromptBody,
        context: CallContext,
    ) -> Result<InferenceReply, DomainError> {
        let caller = self.caller(actor).await?;
        if caller.key.is_none() {
            return Err(DomainError::InvalidPlatformKey);
        }
        self.infer_for(caller, surface, prompt, context).await
    }

    /// A model call for a resolved caller: a platform key's, or a chat connector's (no key,
    /// the user's department). Per-key limits apply when there is a key.
    pub(crate) async fn infer_for(
        &self,
        caller: Caller,
        surface: Surface,
        prompt: PromptBody,
        context: CallContext,
    ) -> Result<InferenceReply, DomainError> {
        let mut route = prompt.route_request(surface).map_err(RouterError::from)?;
        if surface != Surface::Embeddings {
            // The ceiling reserved for is the ceiling sent: a client that sets none gets the
            // default, written into the upstream request by the router.
            route
                .max_tokens
                .get_or_insert(self.default_max_output_tokens);
        }
        let attempts = self.attempts(&caller, &route.model).await?;
        if let Some(key) = caller.key {
            match self.limits.admit(key, caller.limits).await {
                Ok(()) => {}
                Err(LimitRefusal::Limited(refused)) => {
                    self.metrics.record_rate_limited(caller.tenant.to_string());
                    return Err(DomainError::RateLimited(refused));
                }
                Err(LimitRefusal::Unavailable(err)) => {
                    tracing::error!(key = %key, error = %err, "the shared rate limit cannot be read; call refused");
                    return Err(DomainError::LedgerUnavailable);
                }
            }
        }
        let mut prompt = prompt;
        let citations = match &context.knowledge {
            Some(request) => {
                let citations = self.augment(&caller, surface, &mut prompt, request).await?;
                // The sources grew the input: reserve for what is sent.
                let augmented = prompt.route_request(surface).map_err(RouterError::from)?;
                route.input_bytes = augmented.input_bytes;
                route.input_bound = augmented.input_bound;
                Some(citations)
            }
            None => None,
        };
        // The calls run on a tracked task: if the client goes away (and with it this future),
        // the upstream call still finishes and its row is settled, as `client_cancelled`.
        let client_gone = Arc::new(AtomicBool::new(false));
        let _guard = SetOnDrop(client_gone.clone());
        let call = Call {
            caller,
            surface,
            ledger_endpoint: surface.endpoint(),
            prompt,
            route,
            context,
            client_gone,
        };
        let keyward = self.clone();
        // The task continues the request's span, so a call's spans join the client's trace.
        let run = self.tasks.spawn(
            async move { keyward.run_attempts(call, attempts).await }
                .instrument(tracing::Span::current()),
        );
        let reply = run.await.map_err(|_| DomainError::CallAborted)??;
        Ok(reply.with_citations(citations))
    }

    /// Tries the targets in order until one answers; each attempt that reaches the admission
    /// gets its own ledger row, the first carrying the request's id and later ones linked to it.
    async fn run_attempts(
        &self,
        call: Call,
        attempts: Vec<Attempt>,
    ) -> Result<InferenceReply, DomainError> {
        let mut outcome = Outcome::default();
        let mut first_row: Option<RequestId> = None;
        let total = attempts.len();
        for (index, attempt) in attempts.into_iter().enumerate() {
            if call.client_gone() {
                // Nobody is waiting: no further target is called on the tenant's key.
                break;
            }
            let credential = &attempt.credential;
            if let Some(error) = unusable(credential, call.surface) {
                outcome.failed(error);
                continue;
            }
            let row = match first_row {
                None => AttemptRow {
                    request_id: call.context.request_id,
                    fallback_of: None,
                },
                Some(first) => AttemptRow {
                    request_id: RequestId::generate(),
                    fallback_of: Some(first),
                },
            };
            let result = self.attempt(&call, &attempt, row).await?;
            if !matches!(result, AttemptResult::Skipped(_)) {
                first_row.get_or_insert(call.context.request_id);
            }
            let served_by = row.fallback_of.map(|_| ServedBy {
                target: format!("{}/{}", credential.label, attempt.upstream_model),
                request_id: row.request_id,
            });
            match result {
                AttemptResult::Done(reply) => return Ok(reply.with_served_by(served_by)),
                AttemptResult::Relayable(reply) => {
                    outcome.last = Some(Ok(reply.with_served_by(served_by)))
                }
                AttemptResult::Failed(error) | AttemptResult::Skipped(error) => {
                    outcome.failed(error)
                }
            }
            if index + 1 < total {
                tracing::warn!(request_id = %row.request_id, credential = %credential.id, "target failed; trying the route's next target");
            }
        }
        outcome.finish()
    }
}
