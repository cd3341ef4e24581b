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

use std::time::Duration;

use keyward_core::{RequestId, SealedSecret, Timestamp};
use keyward_router::{CompleteReply, StreamingReply, Surface, Target, UpstreamReply};
use keyward_store::{CredentialRecord, PendingCall};

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

/// What an admitted attempt needs to settle its row.
struct Admitted {
    pending: PendingCall,
    price: Option<Price>,
    upstream_model: String,
    input_estimate: u64,
}

impl Admitted {
    fn pricing(&self) -> Pricing<'_> {
        Pricing {
            price: self.price.as_ref(),
            model: &self.upstream_model,
            input_estimate: self.input_estimate,
        }
    }
}

impl Keyward {
    /// One upstream attempt with its own ledger row.
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
        let credential = &attempt.credential;
        let secret_used = opened.record.secret.clone();
        let admitted = self.admit_attempt(call, attempt, row).await?;
        let target = Target {
            provider: credential.provider,
            options: credential.options.clone(),
            secret: opened.secret,
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
            .await;
        drop(target);
        match reply {
            Err(err) => {
                self.settle(
                    &admitted.pending,
                    Some(admitted.pricing()),
                    settle::router_failure(&err),
                )
                .await;
                tracing::warn!(request_id = %row.request_id, credential = %credential.id, code = err.code().as_str(), error = %err, "upstream call failed");
                Ok(AttemptResult::Failed(DomainError::Router(err)))
            }
            Ok(UpstreamReply::Complete(reply)) => Ok(self
                .complete(call, credential, secret_used.as_ref(), admitted, *reply)
                .await),
            Ok(UpstreamReply::Streaming(reply)) => Ok(self.stream(admitted, *reply)),
        }
    }

    /// Opens the attempt's credential, reading its record again unless it was read just now
    /// (the status may have changed since the target was chosen: a disable, a rejection by a
    /// concurrent call, a fallback tried later). The inner `Err` is the reason it is unusable.
    async fn open_target(
        &self,
        call: &Call,
        attempt: &Attempt,
    ) -> Result<Result<OpenedCredential, DomainError>, DomainError> {
        let record = if attempt.read_at.elapsed() < FRESH_RECORD {
            attempt.credential.clone()
        } else {
            self.store
                .credential(call.caller.tenant, attempt.credential.id)
                .await?
                .ok_or(DomainError::NotFound { what: "credential" })?
        };
        let opened = self
            .open_credential_record(record, Freshness::Cached)
            .await?;
        Ok(match unusable(&opened.record, call.surface) {
            None => Ok(opened),
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
            key_id: Some(call.caller.key),
            department_id: call.caller.department,
            credential_id: credential.id,
            credential_label: credential.label.clone(),
            provider: credential.provider,
            endpoint: call.surface.endpoint(),
            model_requested: route.model.clone(),
            stream: route.stream,
            tags,
            fallback_of: row.fallback_of,
            reserved_micro_usd: price
                .as_ref()
                .map_or(0, |price| price.worst_case(route.input_bytes, max_output)),
        };
        self.admit(&pending).await?;
        Ok(Admitted {
            pending,
            price,
            upstream_model: attempt.upstream_model.clone(),
            input_estimate: route.input_bytes,
        })
    }

    /// Settles a whole reply and decides what the client sees.
    async fn complete(
        &self,
        call: &Call,
        credential: &CredentialRecord,
        secret_used: Option<&SealedSecret>,
        admitted: Admitted,
        reply: CompleteReply,
    ) -> AttemptResult {
        let settlement = settle::complete_reply(&reply, call.client_gone());
        self.settle(&admitted.pending, Some(admitted.pricing()), settlement)
            .await;
        if reply.key_rejected {
            self.mark_rejected(credential, secret_used).await;
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
        self.tasks.spawn(async move {
            let settlement = settle::stream_end(status, provider_request_id, outcome.await.ok());
            keyward
                .settle(&admitted.pending, Some(admitted.pricing()), settlement)
                .await;
        });
        AttemptResult::Done(InferenceReply::Streaming {
            status: reply.status,
            content_type: reply.content_type,
            stream: Box::new(reply.stream),
            served_by: None,
        })
    }
}
