//! One model call, end to end: authorize the model, pick the credential, commit the ledger row,
//! call the provider through the router, handle a rejected key, settle the row.
//!
//! Invariants:
//! - Nothing goes upstream without a committed `pending` ledger row (strict mode), and every
//!   row is settled once the call ends — for streams by a tracked task that waits for the
//!   stream's outcome, whether it completed, broke off or the client left.
//! - A credential that is disabled or was rejected by the provider produces no upstream
//!   traffic: the call fails before the row is written.
//! - This module handles bodies only as opaque router types; it never reads them.

use std::collections::BTreeMap;
use std::time::Duration;

use keyward_core::{CredentialId, RequestId, Timestamp};
use keyward_router::{
    ClientHeaders, CompletionBody, CompletionStream, PromptBody, RouterError, StreamEnd, Surface,
    Target, UpstreamReply, UsageReport,
};
use keyward_store::{CallStatus, CredentialRecord, CredentialStatus, PendingCall, Settlement};

use crate::{Actor, DomainError, Keyward, TenantScope};

/// The ledger's `endpoint` for credential verification calls.
const VERIFY_ENDPOINT: &str = "verify";

/// Whether a call may proceed when its ledger row cannot be written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerMode {
    /// No ledger row, no upstream call.
    Strict,
    /// Call anyway and log the gap.
    BestEffort,
}

/// Per-call metadata from the HTTP layer.
#[derive(Clone, Debug)]
pub struct CallContext {
    /// Also the ledger row's id and the `x-keyward-request-id` header.
    pub request_id: RequestId,
    /// From `x-keyward-tags`.
    pub tags: BTreeMap<String, String>,
    /// Headers the provider must see as the client sent them.
    pub client_headers: ClientHeaders,
}

/// What goes back to the client.
pub enum InferenceReply {
    /// A whole body: the provider's success, or its 4xx error relayed unchanged.
    Complete {
        status: u16,
        content_type: Option<String>,
        retry_after: Option<String>,
        body: CompletionBody,
    },
    Streaming {
        status: u16,
        content_type: Option<String>,
        stream: CompletionStream,
    },
}

fn millis(duration: Duration) -> Option<u64> {
    u64::try_from(duration.as_millis()).ok()
}

fn settlement_from_usage(usage: &UsageReport) -> Settlement {
    Settlement {
        model_reported: usage.model_reported.clone(),
        input_tokens: usage.input_tokens,
        cached_input_tokens: usage.cached_input_tokens,
        cache_write_tokens: usage.cache_write_tokens,
        output_tokens: usage.output_tokens,
        reasoning_tokens: usage.reasoning_tokens,
        ..Settlement::default()
    }
}

/// Whether `model` (as addressed, and as the provider names it) is on an allow-list.
fn allowed(list: Option<&Vec<String>>, addressed: &str, upstream: &str) -> bool {
    list.is_none_or(|models| {
        models
            .iter()
            .any(|model| model == addressed || model == upstream)
    })
}

impl Keyward {
    /// Runs one model call for a platform key.
    pub async fn infer(
        &self,
        actor: &Actor,
        surface: Surface,
        prompt: PromptBody,
        context: CallContext,
    ) -> Result<InferenceReply, DomainError> {
        let route = prompt.route_request(surface).map_err(RouterError::from)?;
        let (tenant, key_id, department, key_models) = match actor {
            Actor::Member {
                tenant,
                key,
                department,
                models,
            } => (*tenant, *key, *department, models.clone()),
            Actor::TenantAdmin { tenant, key } => {
                let record = self.store.platform_key(*tenant, *key).await?;
                (
                    *tenant,
                    *key,
                    record.as_ref().and_then(|key| key.department_id),
                    record.and_then(|key| key.models),
                )
            }
            Actor::Operator => return Err(DomainError::InvalidPlatformKey),
        };
        let scope = TenantScope::for_platform_key(tenant);
        let (label, upstream_model) = route.model.split_once('/').ok_or_else(|| DomainError::NoCredential {
            reason: format!(
                "address the model as `<credential-label>/{}`, e.g. team-openai/{}; routes for bare model names are not configured",
                route.model, route.model
            ),
        })?;
        if !allowed(key_models.as_ref(), &route.model, upstream_model) {
            return Err(DomainError::ModelNotAllowed {
                model: route.model.clone(),
                by: "platform key",
            });
        }
        if let Some(department) = department {
            let models = self
                .store
                .department(tenant, department)
                .await?
                .and_then(|department| department.models);
            if !allowed(models.as_ref(), &route.model, upstream_model) {
                return Err(DomainError::ModelNotAllowed {
                    model: route.model.clone(),
                    by: "department",
                });
            }
        }
        let credential = self
            .store
            .credential_by_label(tenant, label)
            .await?
            .ok_or_else(|| DomainError::NoCredential {
                reason: format!("this tenant has no credential labelled `{label}`; connect one or check the label"),
            })?;
        match credential.status {
            CredentialStatus::Active => {}
            CredentialStatus::Disabled => {
                return Err(DomainError::CredentialDisabled {
                    label: credential.label,
                })
            }
            CredentialStatus::RejectedByProvider => {
                return Err(DomainError::ProviderCredentialRejected {
                    label: credential.label,
                })
            }
        }
        if !keyward_router::supports(surface, credential.provider) {
            return Err(DomainError::NoCredential {
                reason: format!(
                    "credential `{}` is a {} credential, which {} cannot reach yet; use a credential of a matching provider",
                    credential.label, credential.provider, surface.endpoint()
                ),
            });
        }
        let opened = self.open_credential_secret(&scope, credential.id).await?;

        let pending = PendingCall {
            request_id: context.request_id,
            created_at: Timestamp::now(),
            tenant_id: tenant,
            key_id: Some(key_id),
            department_id: department,
            credential_id: credential.id,
            credential_label: credential.label.clone(),
            provider: credential.provider,
            endpoint: surface.endpoint(),
            model_requested: route.model.clone(),
            stream: route.stream,
            tags: with_user_tag(context.tags, route.user.as_deref()),
        };
        if let Err(err) = self.store.insert_pending_call(&pending).await {
            match self.ledger_mode {
                LedgerMode::Strict => {
                    self.metrics.record_ledger_failure();
                    tracing::error!(request_id = %context.request_id, error = %err, "ledger write failed; call refused");
                    return Err(DomainError::LedgerUnavailable);
                }
                LedgerMode::BestEffort => {
                    tracing::warn!(request_id = %context.request_id, error = %err, "ledger write failed; calling anyway (best_effort)");
                }
            }
        }

        let target = Target {
            provider: credential.provider,
            options: credential.options.clone(),
            secret: opened.secret,
            model: upstream_model.to_owned(),
        };
        let reply = self
            .router
            .send(surface, &target, prompt, &route, &context.client_headers)
            .await;
        drop(target);
        match reply {
            Err(err) => {
                let status = match &err {
                    RouterError::Timeout { .. } => CallStatus::Timeout,
                    RouterError::EgressBlocked { .. } => CallStatus::EgressBlocked,
                    _ => CallStatus::Unreachable,
                };
                self.settle(
                    &pending,
                    Settlement {
                        status: Some(status),
                        ..Settlement::default()
                    },
                )
                .await;
                tracing::warn!(request_id = %context.request_id, credential = %credential.id, code = err.code().as_str(), error = %err, "upstream call failed");
                Err(DomainError::Router(err))
            }
            Ok(UpstreamReply::Complete(reply)) => {
                let mut settlement = settlement_from_usage(&reply.usage);
                settlement.http_status = Some(reply.status);
                settlement.provider_request_id = reply.provider_request_id.clone();
                settlement.latency_ms = millis(reply.elapsed);
                settlement.ttfb_ms = millis(reply.first_byte);
                let success = (200..300).contains(&reply.status);
                settlement.status = Some(if success {
                    CallStatus::Ok
                } else {
                    CallStatus::ProviderError
                });
                self.settle(&pending, settlement).await;
                if reply.key_rejected {
                    self.mark_rejected(&credential).await;
                    return Err(DomainError::ProviderCredentialRejected {
                        label: credential.label,
                    });
                }
                if reply.status >= 500 {
                    tracing::warn!(request_id = %context.request_id, status = reply.status, "provider failed");
                    return Err(DomainError::UpstreamFailed {
                        status: reply.status,
                        label: credential.label,
                    });
                }
                Ok(InferenceReply::Complete {
                    status: reply.status,
                    content_type: reply.content_type,
                    retry_after: reply.retry_after,
                    body: reply.body,
                })
            }
            Ok(UpstreamReply::Streaming(reply)) => {
                let store = self.store.clone();
                let metrics = self.metrics.clone();
                let call = pending.clone();
                let provider_request_id = reply.provider_request_id.clone();
                let status = reply.status;
                self.tasks.spawn(async move {
                    let outcome = reply.outcome.await;
                    let mut settlement = Settlement {
                        http_status: Some(status),
                        provider_request_id,
                        ..Settlement::default()
                    };
                    match outcome {
                        Ok(outcome) => {
                            let usage = settlement_from_usage(&outcome.usage);
                            settlement = Settlement {
                                http_status: settlement.http_status,
                                provider_request_id: settlement.provider_request_id,
                                ..usage
                            };
                            settlement.latency_ms = millis(outcome.elapsed);
                            settlement.ttfb_ms = outcome.first_byte.and_then(millis);
                            settlement.status = Some(match outcome.end {
                                StreamEnd::Completed => CallStatus::Ok,
                                StreamEnd::ClientCancelled => CallStatus::ClientCancelled,
                                StreamEnd::UpstreamFailed => CallStatus::ProviderError,
                            });
                        }
                        Err(_) => settlement.status = Some(CallStatus::ProviderError),
                    }
                    settle_row(&store, &metrics, &call, &settlement).await;
                });
                Ok(InferenceReply::Streaming {
                    status: reply.status,
                    content_type: reply.content_type,
                    stream: reply.stream,
                })
            }
        }
    }

    /// Verifies a credential with a cheap real call (the provider's model list). A provider that
    /// accepts the key clears `rejected_by_provider`; one that refuses it sets it. The call is
    /// an upstream call on the tenant's key, so it leaves a ledger row like any other.
    pub async fn verify_credential(
        &self,
        scope: &TenantScope,
        id: CredentialId,
    ) -> Result<CredentialRecord, DomainError> {
        let opened = self.open_credential_secret(scope, id).await?;
        let credential = opened.record;
        let request_id = RequestId::generate();
        let pending = PendingCall {
            request_id,
            created_at: Timestamp::now(),
            tenant_id: credential.tenant_id,
            key_id: None,
            department_id: None,
            credential_id: credential.id,
            credential_label: credential.label.clone(),
            provider: credential.provider,
            endpoint: VERIFY_ENDPOINT,
            model_requested: "-".to_owned(),
            stream: false,
            tags: BTreeMap::from([("purpose".to_owned(), "verify".to_owned())]),
        };
        if let Err(err) = self.store.insert_pending_call(&pending).await {
            if self.ledger_mode == LedgerMode::Strict {
                tracing::error!(%request_id, error = %err, "ledger write failed; verification refused");
                return Err(DomainError::LedgerUnavailable);
            }
        }
        let target = Target {
            provider: credential.provider,
            options: credential.options.clone(),
            secret: opened.secret,
            model: String::new(),
        };
        let verification = match self.router.verify(&target).await {
            Ok(verification) => verification,
            Err(err) => {
                let status = match &err {
                    RouterError::Timeout { .. } => CallStatus::Timeout,
                    RouterError::EgressBlocked { .. } => CallStatus::EgressBlocked,
                    _ => CallStatus::Unreachable,
                };
                self.settle(
                    &pending,
                    Settlement {
                        status: Some(status),
                        ..Settlement::default()
                    },
                )
                .await;
                return Err(DomainError::Router(err));
            }
        };
        let success = (200..300).contains(&verification.status);
        self.settle(
            &pending,
            Settlement {
                status: Some(if success {
                    CallStatus::Ok
                } else {
                    CallStatus::ProviderError
                }),
                http_status: Some(verification.status),
                provider_request_id: verification.provider_request_id.clone(),
                latency_ms: millis(verification.elapsed),
                ..Settlement::default()
            },
        )
        .await;
        if verification.key_rejected {
            self.mark_rejected(&credential).await;
        } else if !success {
            return Err(DomainError::UpstreamFailed {
                status: verification.status,
                label: credential.label,
            });
        } else if credential.status == CredentialStatus::RejectedByProvider {
            self.store
                .set_credential_status(
                    credential.tenant_id,
                    credential.id,
                    CredentialStatus::Active,
                    Timestamp::now(),
                )
                .await?;
            tracing::info!(tenant = %credential.tenant_id, credential = %credential.id, "provider accepted the credential again; active");
        }
        self.credential(scope, id).await
    }

    async fn settle(&self, call: &PendingCall, settlement: Settlement) {
        settle_row(&self.store, &self.metrics, call, &settlement).await;
    }

    /// The provider refused the key: stop using it until the tenant rotates or verifies it.
    async fn mark_rejected(&self, credential: &CredentialRecord) {
        let result = self
            .store
            .set_credential_status(
                credential.tenant_id,
                credential.id,
                CredentialStatus::RejectedByProvider,
                Timestamp::now(),
            )
            .await;
        match result {
            Ok(_) => {
                tracing::warn!(tenant = %credential.tenant_id, credential = %credential.id, "provider rejected the credential; marked rejected_by_provider")
            }
            Err(err) => {
                tracing::error!(credential = %credential.id, error = %err, "could not mark the credential rejected")
            }
        }
    }

    /// Ids of a tenant's credentials, for tests and tools.
    pub async fn credential_id_by_label(
        &self,
        scope: &TenantScope,
        label: &str,
    ) -> Result<CredentialId, DomainError> {
        self.store
            .credential_by_label(scope.tenant(), label)
            .await?
            .map(|credential| credential.id)
            .ok_or(DomainError::NotFound { what: "credential" })
    }
}

async fn settle_row(
    store: &keyward_store::Store,
    metrics: &crate::Metrics,
    call: &PendingCall,
    settlement: &Settlement,
) {
    let request_id = call.request_id;
    match store
        .settle_call(request_id, settlement, Timestamp::now())
        .await
    {
        Ok(true) => {}
        Ok(false) => tracing::warn!(%request_id, "ledger row was not pending; not settled twice"),
        Err(err) => {
            metrics.record_ledger_failure();
            tracing::error!(%request_id, error = %err, "ledger row could not be settled; it will be marked interrupted at the next start");
        }
    }
    metrics.record_call(crate::metrics::CallObservation {
        tenant: call.tenant_id.to_string(),
        provider: call.provider.as_str(),
        model: &call.model_requested,
        status: settlement
            .status
            .unwrap_or(CallStatus::ProviderError)
            .as_str(),
        input_tokens: settlement.input_tokens,
        output_tokens: settlement.output_tokens,
        latency: settlement.latency_ms.map(Duration::from_millis),
        ttfb: settlement.ttfb_ms.map(Duration::from_millis),
    });
}

/// Adds the OpenAI `user` / Anthropic `metadata.user_id` as the `user` tag.
fn with_user_tag(
    mut tags: BTreeMap<String, String>,
    user: Option<&str>,
) -> BTreeMap<String, String> {
    if let Some(user) = user {
        tags.entry("user".to_owned())
            .or_insert_with(|| user.to_owned());
    }
    tags
}
