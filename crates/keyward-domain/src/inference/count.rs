//! `POST /v1/messages/count_tokens`: Anthropic's own count of a Messages body's input tokens,
//! on the tenant's Anthropic credential.
//!
//! Invariants: the target is resolved and allow-listed exactly as for a model call; only an
//! Anthropic credential counts (another provider's tokenizer would give another number); the
//! call is upstream on the tenant's key, so it has a ledger row (`endpoint` `count_tokens`,
//! nothing reserved: Anthropic does not bill it) and a refused key parks the credential.

use std::collections::BTreeMap;

use keyward_core::{ProviderId, Timestamp};
use keyward_router::{PromptBody, Surface, Target};
use keyward_store::{CallStatus, CredentialRecord, PendingCall, Settlement};

use super::targets::unusable;
use super::{CallContext, InferenceReply};
use crate::credential::Freshness;
use crate::{Actor, DomainError, Keyward};

/// The ledger `endpoint` of a token count.
const COUNT_ENDPOINT: &str = "count_tokens";

/// The ledger row of a token count: nothing reserved, Anthropic does not bill it.
fn count_row(
    caller: &super::targets::Caller,
    credential: &CredentialRecord,
    model: &str,
    request_id: keyward_core::RequestId,
) -> PendingCall {
    PendingCall {
        request_id,
        created_at: Timestamp::now(),
        tenant_id: credential.tenant_id,
        key_id: caller.key,
        department_id: caller.department,
        credential_id: credential.id,
        credential_label: credential.label.clone(),
        provider: credential.provider,
        endpoint: COUNT_ENDPOINT,
        model_requested: model.to_owned(),
        stream: false,
        tags: BTreeMap::from([("purpose".to_owned(), "count_tokens".to_owned())]),
        fallback_of: None,
        reserved_micro_usd: 0,
        priced: true,
        unbounded_input: None,
    }
}

/// How a count ended, for its row: free when it answered.
fn count_settlement(reply: &keyward_router::CompleteReply) -> Settlement {
    Settlement {
        status: Some(if reply.status < 400 {
            CallStatus::Ok
        } else {
            CallStatus::ProviderError
        }),
        http_status: Some(reply.status),
        provider_request_id: reply.provider_request_id.clone(),
        latency_ms: u64::try_from(reply.elapsed.as_millis()).ok(),
        cost_micro_usd: Some(0),
        ..Settlement::default()
    }
}

impl Keyward {
    /// Counts a Messages body's input tokens with Anthropic; the answer is relayed as is.
    pub async fn count_tokens(
        &self,
        actor: &Actor,
        prompt: PromptBody,
        context: CallContext,
    ) -> Result<InferenceReply, DomainError> {
        let caller = self.caller(actor).await?;
        if caller.key.is_none() {
            return Err(DomainError::InvalidPlatformKey);
        }
        let model = prompt
            .route_request(Surface::Messages)
            .map_err(keyward_router::RouterError::from)?
            .model;
        let attempt = self.count_target(&caller, &model).await?;
        let opened = self
            .open_credential_record(attempt.credential, Freshness::Cached)
            .await?;
        let credential = opened.record;
        let pending = count_row(&caller, &credential, &model, context.request_id);
        self.admit(&pending).await?;
        let target = Target {
            provider: credential.provider,
            options: credential.options.clone(),
            secret: opened.secret,
            model: attempt.upstream_model,
        };
        let counted = self
            .router
            .count_tokens(&target, &prompt, &context.client_headers)
            .await;
        let reply = match counted {
            Ok(reply) => reply,
            Err(err) => {
                self.settle(&pending, None, super::settle::router_failure(&err))
                    .await;
                return Err(DomainError::Router(err));
            }
        };
        self.settle(&pending, None, count_settlement(&reply)).await;
        if reply.key_rejected {
            self.mark_rejected(&credential, credential.secret.as_ref())
                .await;
            return Err(DomainError::ProviderCredentialRejected {
                label: credential.label,
            });
        }
        Ok(InferenceReply::Complete {
            status: reply.status,
            content_type: reply.content_type,
            retry_after: reply.retry_after,
            body: reply.body,
            served_by: None,
            citations: None,
        })
    }

    /// The first target of `model` for the caller, allow-listed as for a call; only an
    /// Anthropic credential can count.
    async fn count_target(
        &self,
        caller: &super::targets::Caller,
        model: &str,
    ) -> Result<super::targets::Attempt, DomainError> {
        let Some(attempt) = self.attempts(caller, model).await?.into_iter().next() else {
            return Err(DomainError::NoCredential {
                reason: format!("no credential serves `{model}`"),
            });
        };
        let credential = &attempt.credential;
        if credential.provider != ProviderId::Anthropic {
            return Err(DomainError::invalid(
                "model",
                format!(
                    "count_tokens counts with Anthropic's tokenizer, and `{}` is a {} credential; address a model of an Anthropic credential (label/model)",
                    credential.label,
                    credential.provider.as_str()
                ),
            ));
        }
        if let Some(refused) = unusable(credential, Surface::Messages) {
            return Err(refused);
        }
        Ok(attempt)
    }
}
