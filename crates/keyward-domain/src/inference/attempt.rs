//! One upstream attempt with its own ledger row: open the target, admit the row, send through
//! the router, settle however the reply ends.
//!
//! Invariants:
//! - `open_target` is the authoritative status check: a record older than [`FRESH_RECORD`] is
//!   read again, so a disable or a rejection by a concurrent call stops the attempt before its
//!   row is written ([`AttemptResult::Skipped`]).
//! - The opened secret lives only in the router's `Target`, dropped as soon as the request is
//!   sent.
//! - A reply the provider gave on a rejected key marks the credential with the sealed secret
//!   that was used, so a rotation that happened meanwhile is not undone.

use std::time::{Duration, Instant};

use keyward_core::{RequestId, SealedSecret, Timestamp};
use keyward_router::{CompleteReply, StreamingReply, Surface, Target, UpstreamReply};
use keyward_store::{CredentialRecord, PendingCall};
use tracing::Instrument as _;

use super::settle::{self, Pricing};
use super::targets::{unusable, Attempt};
use super::{Call, InferenceReply};
use crate::credential::Freshness;
use crate::price::Price;
use crate::{DomainError, Keyward, OpenedCredential};

/// A credential record read less than this long ago is not read again before its call.
const FRESH_RECORD: Duration = Duration::from_millis(50);

/// The ledger row an attempt writes.
#[derive(Clone, Copy)]
pub(super) struct AttemptRow {
    pub request_id: RequestId,
    /// The route's first row, when this attempt is a fallback.
    pub fallback_of: Option<RequestId>,
}

/// How one attempt ended, and whether a configured fallback may take over.
pub(super) enum AttemptResult {
    Done(InferenceReply),
    /// The provider's 429, relayed unless a later target answers.
    Relayable(InferenceReply),
    /// Failed in a way that is not the client's fault; the next target may try.
    Failed(DomainError),
    /// Not attempted (the credential became unusable): no ledger row was written.
    Skipped(DomainError),
}

/// A credential opened for an attempt, and when its secret was obtained.
pub(super) struct OpenedTarget {
    pub credential: OpenedCredential,
    /// A referenced secret fetched after this instant is newer than the one used.
    pub obtained_at: Instant,
}

/// How one send ended: answered (whatever the answer), or the provider refused the key.
pub(super) enum Sent {
    Answered(AttemptResult),
    KeyRejected(UsedSecret),
}

/// What identifies the secret a rejected call used, without keeping the secret.
pub(super) struct UsedSecret {
    /// The sealed blob, for a secret kept in Keyward (a rotation meanwhile wins over the mark).
    pub sealed: Option<SealedSecret>,
    /// SHA-256 of a referenced secret's value, to tell whether its manager now holds another.
    pub digest: Option<[u8; 32]>,
    /// When the secret was obtained.
    pub obtained_at: Instant,
}

impl UsedSecret {
    fn of(opened: &OpenedTarget) -> Self {
        let record = &opened.credential.record;
        let digest = match (&record.secret_ref, &opened.credential.secret) {
            (Some(_), Some(secret)) => Some(secret_digest(secret)),
            _ => None,
        };
        Self {
            sealed: record.secret.clone(),
            digest,
            obtained_at: opened.obtained_at,
        }
    }
}

/// A digest to compare two values of a secret by, never shown.
pub(super) fn secret_digest(secret: &keyward_core::secret::ProviderSecret) -> [u8; 32] {
    use sha2::Digest;
    sha2::Sha256::digest(secret.expose_secret().as_bytes()).into()
}

/// What an admitted attempt needs to settle its row.
struct Admitted {
    pending: PendingCall,
    price: Option<Price>,
    upstream_model: String,
    input_estimate: u64,
    max_output: u64,
}

impl Admitted {
    /// The pricing of a call whose usage is final (`usage_final`) or may be short of what the
    /// provider bills (a stream that did not complete).
    fn pricing(&self, usage_final: bool) -> Pricing<'_> {
        Pricing {
            price: self.price.as_ref(),
            model: &self.upstream_model,
            input_estimate: self.input_estimate,
            token_ceiling: self.input_estimate.saturating_add(self.max_output),
            usage_final,
        }
    }
}

impl Keyward {
    /// One upstream attempt with its own ledger row; a key the provider rejects is handled by
    /// `rejection` (a referenced secret is fetched again and the call retried once).
    pub(super) async fn attempt(
        &self,
        call: &Call,
        attempt: &Attempt,
        row: AttemptRow,
    ) -> Result<AttemptResult, DomainError> {
        let opened = match self.open_target(call, attempt).await? {
            Ok(opened) => opened,
            Err(unusable) => return Ok(AttemptResult::Skipped(unusable)),
        };
        match self.send_once(call, attempt, row, opened).await? {
            Sent::Answered(result) => Ok(result),
            Sent::KeyRejected(used) => self.key_rejected(call, attempt, row, used).await,
        }
    }

    /// Admits a row, sends the call on `opened`'s secret and settles the row however the call
    /// ends. A key rejection is returned to the caller undecided: the row is settled, the
    /// credential not yet marked.
    pub(super) async fn send_once(
        &self,
        call: &Call,
        attempt: &Attempt,
        row: AttemptRow,
        opened: OpenedTarget,
    ) -> Result<Sent, DomainError> {
        let span = super::trace::call_span(call, attempt, row);
        self.send_in_span(call, attempt, row, opened)
            .instrument(span)
            .await
    }

    /// [`Keyward::send_once`] inside the call's span: admission, upstream and settlement are
    /// its children.
    async fn send_in_span(
        &self,
        call: &Call,
        attempt: &Attempt,
        row: AttemptRow,
        opened: OpenedTarget,
    ) -> Result<Sent, DomainError> {
        let credential = &attempt.credential;
        let used = UsedSecret::of(&opened);
        let admitted = self
            .admit_attempt(call, attempt, row)
            .instrument(tracing::trace_span!("keyward.admission"))
            .await?;
        let target = Target {
            provider: credential.provider,
            options: credential.options.clone(),
            secret: opened.credential.secret,
            model: attempt.upstream_model.clone(),
        };
        let reply = self
            .router
            .send(
                call.surface,
                &target,
                &call.prompt,
                &call.route,
                &call.context.client_headers,
            )
            .instrument(tracing::trace_span!("keyward.upstream"))
            .await;
        drop(target);
        match reply {
            Err(err) => {
                self.settle(
                    &admitted.pending,
                    Some(admitted.pricing(true)),
                    settle::router_failure(&err),
                )
                .await;
                tracing::warn!(request_id = %row.request_id, credential = %credential.id, code = err.code().as_str(), error = %err, "upstream call failed");
                Ok(Sent::Answered(AttemptResult::Failed(DomainError::Router(
                    err,
                ))))
            }
            Ok(UpstreamReply::Complete(reply)) => {
                let key_rejected = reply.key_rejected;
                let result = self.complete(call, credential, admitted, *reply).await;
                Ok(if key_rejected {
                    Sent::KeyRejected(used)
                } else {
                    Sent::Answered(result)
                })
            }
            Ok(UpstreamReply::Streaming(reply)) => {
                Ok(Sent::Answered(self.stream(admitted, *reply)))
            }
        }
    }

    /// Opens the attempt's credential, reading its record again unless it was read just now
    /// (the status may have changed since the target was chosen: a disable, a rejection by a
    /// concurrent call, a fallback tried later). The inner `Err` is the reason it is unusable.
    async fn open_target(
        &self,
        call: &Call,
        attempt: &Attempt,
    ) -> Result<Result<OpenedTarget, DomainError>, DomainError> {
        let record = if attempt.read_at.elapsed() < FRESH_RECORD {
            attempt.credential.clone()
        } else {
            self.store
                .credential(call.caller.tenant, attempt.credential.id)
                .await?
                .ok_or(DomainError::NotFound { what: "credential" })?
        };
        let obtained_at = Instant::now();
        let credential = self
            .open_credential_record(record, Freshness::Cached)
            .await?;
        Ok(match unusable(&credential.record, call.surface) {
            None => Ok(OpenedTarget {
                credential,
                obtained_at,
            }),
            Some(error) => Err(error),
        })
    }

    /// Prices the attempt's worst case and commits its pending row.
    async fn admit_attempt(
        &self,
        call: &Call,
        attempt: &Attempt,
        row: AttemptRow,
    ) -> Result<Admitted, DomainError> {
        let credential = &attempt.credential;
        let route = &call.route;
        let created_at = Timestamp::now();
        let price = self
            .price_in_force(
                call.caller.tenant,
                credential.provider,
                &attempt.upstream_model,
                created_at,
            )
            .await;
        // Input tokens are bounded by the bytes plus each image at its maximum; a file or a
        // previous response cannot be bounded (refused where a hard cap applies).
        let input_estimate = route.input_bound.tokens(route.input_bytes);
        let unbounded_input = match route.input_bound {
            keyward_router::InputBound::Unbounded(field) => Some(field),
            keyward_router::InputBound::Tokens(_) => None,
        };
        let max_output = match call.surface {
            Surface::Embeddings => 0,
            _ => route.max_tokens.unwrap_or(self.default_max_output_tokens),
        };
        let mut tags = call.context.tags.clone();
        // The OpenAI `user` / Anthropic `metadata.user_id` is the `user` tag unless one is set.
        if let Some(user) = &route.user {
            tags.entry("user".to_owned())
                .or_insert_with(|| user.clone());
        }
        let pending = PendingCall {
            request_id: row.request_id,
            created_at,
            tenant_id: call.caller.tenant,
            key_id: call.caller.key,
            department_id: call.caller.department,
            credential_id: credential.id,
            credential_label: credential.label.clone(),
            provider: credential.provider,
            endpoint: call.ledger_endpoint,
            model_requested: route.model.clone(),
            stream: route.stream,
            tags,
            fallback_of: row.fallback_of,
            reserved_micro_usd: price
                .as_ref()
                .map_or(0, |price| price.worst_case(input_estimate, max_output)),
            priced: price.is_some(),
            unbounded_input,
        };
        self.admit(&pending).await?;
        Ok(Admitted {
            pending,
            price,
            upstream_model: attempt.upstream_model.clone(),
            input_estimate,
            max_output,
        })
    }

    /// Settles a whole reply and decides what the client sees.
    async fn complete(
        &self,
        call: &Call,
        credential: &CredentialRecord,
        admitted: Admitted,
        reply: CompleteReply,
    ) -> AttemptResult {
        let settlement = settle::complete_reply(&reply, call.client_gone());
        self.settle(&admitted.pending, Some(admitted.pricing(true)), settlement)
            .await;
        if reply.key_rejected {
            // Decided by the caller (`rejection`): park the credential, or retry on a secret
            // its manager now holds.
            return AttemptResult::Failed(DomainError::ProviderCredentialRejected {
                label: credential.label.clone(),
            });
        }
        if reply.status >= 500 {
            tracing::warn!(request_id = %admitted.pending.request_id, status = reply.status, "provider failed");
            return AttemptResult::Failed(DomainError::UpstreamFailed {
                status: reply.status,
                label: credential.label.clone(),
            });
        }
        let status = reply.status;
        let relayed = InferenceReply::Complete {
            status,
            content_type: reply.content_type,
            retry_after: reply.retry_after,
            body: reply.body,
            served_by: None,
            citations: None,
        };
        if status == 429 {
            AttemptResult::Relayable(relayed)
        } else {
            AttemptResult::Done(relayed)
        }
    }

    /// Hands the stream to the client and settles its row on a tracked task once the stream
    /// ends, however it ends.
    fn stream(&self, admitted: Admitted, reply: StreamingReply) -> AttemptResult {
        let keyward = self.clone();
        let provider_request_id = reply.provider_request_id.clone();
        let status = reply.status;
        let outcome = reply.outcome;
        self.tasks.spawn(
            async move {
                let outcome = outcome.await.ok();
                // Only a completed stream carried the provider's final usage; one the client left or
                // the provider broke may be billed for more than was seen (the provider keeps
                // generating until it notices), so it is charged as its ceiling.
                let usage_final = outcome
                    .as_ref()
                    .is_some_and(|outcome| outcome.end == keyward_router::StreamEnd::Completed);
                let settlement = settle::stream_end(status, provider_request_id, outcome);
                keyward
                    .settle(
                        &admitted.pending,
                        Some(admitted.pricing(usage_final)),
                        settlement,
                    )
                    .await;
            }
            .instrument(tracing::Span::current()),
        );
        AttemptResult::Done(InferenceReply::Streaming {
            status: reply.status,
            content_type: reply.content_type,
            stream: Box::new(reply.stream),
            served_by: None,
            citations: None,
        })
    }
}
