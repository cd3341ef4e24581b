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
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use keyward_core::{CredentialId, DepartmentId, PlatformKeyId, RequestId, TenantId, Timestamp};
use keyward_router::{
    ClientHeaders, CompletionBody, CompletionStream, PromptBody, RouterError, StreamEnd, Surface,
    Target, UpstreamReply, UsageReport,
};
use keyward_store::{
    Admission, CallStatus, CredentialRecord, CredentialStatus, PendingCall, Settlement,
};

use crate::budget::budget_charge;
use crate::error::BudgetRefusal;
use crate::price::Price;

use crate::{Actor, DomainError, Keyward, TenantScope};

/// The ledger's `endpoint` for credential verification calls.
pub(crate) const VERIFY_ENDPOINT: &str = "verify";

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

/// Sets its flag when dropped: the request's future is gone, so the client is too.
struct SetOnDrop(Arc<AtomicBool>);

impl Drop for SetOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Relaxed);
    }
}

/// The calling platform key, resolved once per call.
#[derive(Clone)]
pub(crate) struct Caller {
    pub tenant: TenantId,
    pub key: PlatformKeyId,
    pub department: Option<DepartmentId>,
    pub key_models: Option<Vec<String>>,
    pub department_models: Option<Vec<String>>,
    pub limits: crate::KeyLimits,
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
    },
    Streaming {
        status: u16,
        content_type: Option<String>,
        stream: Box<CompletionStream>,
        served_by: Option<ServedBy>,
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

    pub fn served_by(&self) -> Option<&ServedBy> {
        match self {
            Self::Complete { served_by, .. } | Self::Streaming { served_by, .. } => {
                served_by.as_ref()
            }
        }
    }
}

/// The ledger status of a call the router could not complete.
fn failed_status(err: &RouterError) -> CallStatus {
    match err {
        RouterError::Timeout { .. } => CallStatus::Timeout,
        RouterError::EgressBlocked { .. } => CallStatus::EgressBlocked,
        _ => CallStatus::Unreachable,
    }
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
pub(crate) fn allowed(list: Option<&Vec<String>>, addressed: &str, upstream: &str) -> bool {
    list.is_none_or(|models| {
        models
            .iter()
            .any(|model| model == addressed || model == upstream)
    })
}

/// One place a call may go: a credential and the provider's name of the model.
struct Attempt {
    credential: CredentialRecord,
    upstream_model: String,
    /// When `credential` was read: a record this fresh is authoritative for its status.
    read_at: std::time::Instant,
}

/// A credential record read less than this long ago is not read again before its call.
const FRESH_RECORD: std::time::Duration = std::time::Duration::from_millis(50);

/// How one attempt ended, and whether a configured fallback may take over.
enum AttemptResult {
    Done(InferenceReply),
    /// The provider's 429, relayed unless a later target answers.
    Relayable(InferenceReply),
    /// Failed in a way that is not the client's fault; the next target may try.
    Failed(DomainError),
    /// Not attempted (the credential became unusable): no ledger row was written.
    Skipped(DomainError),
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
        let route = prompt.route_request(surface).map_err(RouterError::from)?;
        let caller = self.caller(actor).await?;
        let attempts = self.attempts(&caller, &route.model).await?;
        if let Err(refused) =
            self.rate_limiter
                .admit(caller.key, caller.limits, std::time::Instant::now())
        {
            self.metrics.record_rate_limited(caller.tenant.to_string());
            return Err(DomainError::RateLimited(refused));
        }
        // The calls run on a tracked task: if the client goes away (and with it this future),
        // the upstream call still finishes and its row is settled, as `client_cancelled`.
        let client_gone = Arc::new(AtomicBool::new(false));
        let _guard = SetOnDrop(client_gone.clone());
        let keyward = self.clone();
        let run = self.tasks.spawn(async move {
            keyward
                .run_attempts(
                    caller,
                    surface,
                    prompt,
                    route,
                    context,
                    attempts,
                    client_gone,
                )
                .await
        });
        run.await.map_err(|_| DomainError::CallAborted)?
    }

    #[expect(
        clippy::too_many_arguments,
        reason = "one call's whole context, passed once"
    )]
    async fn run_attempts(
        &self,
        caller: Caller,
        surface: Surface,
        prompt: PromptBody,
        route: keyward_router::RouteRequest,
        context: CallContext,
        attempts: Vec<Attempt>,
        client_gone: Arc<AtomicBool>,
    ) -> Result<InferenceReply, DomainError> {
        let mut last: Option<Result<InferenceReply, DomainError>> = None;
        // A relayable 429 stays the answer unless a later target answers: a later target's
        // failure does not replace it.
        let remember = |last: &mut Option<Result<InferenceReply, DomainError>>,
                        error: DomainError| {
            if !matches!(last, Some(Ok(_))) {
                *last = Some(Err(error));
            }
        };
        let mut first_row: Option<RequestId> = None;
        let total = attempts.len();
        for (index, attempt) in attempts.into_iter().enumerate() {
            if client_gone.load(Ordering::Relaxed) {
                // Nobody is waiting: no further target is called on the tenant's key.
                break;
            }
            let credential = &attempt.credential;
            let unusable = match credential.status {
                CredentialStatus::Active if keyward_router::supports(surface, credential.provider) => None,
                CredentialStatus::Active => Some(DomainError::NoCredential {
                    reason: format!(
                        "credential `{}` is a {} credential, which {} cannot reach yet; use a credential of a matching provider",
                        credential.label, credential.provider, surface.endpoint()
                    ),
                }),
                CredentialStatus::Disabled => Some(DomainError::CredentialDisabled { label: credential.label.clone() }),
                CredentialStatus::RejectedByProvider => {
                    Some(DomainError::ProviderCredentialRejected { label: credential.label.clone() })
                }
            };
            if let Some(error) = unusable {
                remember(&mut last, error);
                continue;
            }
            // The first attempt that writes a ledger row carries the request's id; fallbacks
            // get their own rows, linked to it.
            let (request_id, fallback_of) = match first_row {
                None => (context.request_id, None),
                Some(first) => (RequestId::generate(), Some(first)),
            };
            let result = self
                .attempt(
                    &caller,
                    surface,
                    &prompt,
                    &route,
                    &context,
                    &attempt,
                    request_id,
                    fallback_of,
                    &client_gone,
                )
                .await?;
            if !matches!(result, AttemptResult::Skipped(_)) {
                first_row.get_or_insert(context.request_id);
            }
            let served_by = fallback_of.map(|_| ServedBy {
                target: format!("{}/{}", credential.label, attempt.upstream_model),
                request_id,
            });
            match result {
                AttemptResult::Done(reply) => return Ok(reply.with_served_by(served_by)),
                AttemptResult::Relayable(reply) => last = Some(Ok(reply.with_served_by(served_by))),
                AttemptResult::Failed(error) | AttemptResult::Skipped(error) => {
                    remember(&mut last, error)
                }
            }
            if index + 1 < total {
                tracing::warn!(%request_id, credential = %credential.id, "target failed; trying the route's next target");
            }
        }
        last.unwrap_or(Err(DomainError::NoCredential {
            reason: "the route has no target".to_owned(),
        }))
    }

    /// Tenant, key and allow-lists of the calling platform key.
    pub(crate) async fn caller(&self, actor: &Actor) -> Result<Caller, DomainError> {
        let (tenant, key, department, key_models, limits) = match actor {
            Actor::Member {
                tenant,
                key,
                department,
                models,
                limits,
            } => (*tenant, *key, *department, models.clone(), *limits),
            Actor::TenantAdmin { tenant, key } => {
                let record = self.store.platform_key(*tenant, *key).await?;
                let limits = record
                    .as_ref()
                    .map_or_else(crate::KeyLimits::default, |key| crate::KeyLimits {
                        rpm: key.rpm_limit,
                        tpm: key.tpm_limit,
                    });
                (
                    *tenant,
                    *key,
                    record.as_ref().and_then(|key| key.department_id),
                    record.and_then(|key| key.models),
                    limits,
                )
            }
            Actor::Operator => return Err(DomainError::InvalidPlatformKey),
        };
        let department_models = match department {
            Some(department) => self
                .store
                .department(tenant, department)
                .await?
                .and_then(|department| department.models),
            None => None,
        };
        Ok(Caller {
            tenant,
            key,
            department,
            key_models,
            department_models,
            limits,
        })
    }

    /// The targets a model name resolves to, after the allow-lists.
    async fn attempts(&self, caller: &Caller, model: &str) -> Result<Vec<Attempt>, DomainError> {
        let (label, upstream) = match model.split_once('/') {
            Some((label, upstream)) => (Some(label), upstream),
            None => (None, model),
        };
        for (list, by) in [
            (&caller.key_models, "platform key"),
            (&caller.department_models, "department"),
        ] {
            if !allowed(list.as_ref(), model, upstream) {
                return Err(DomainError::ModelNotAllowed {
                    model: model.to_owned(),
                    by,
                });
            }
        }
        if let Some(label) = label {
            let cache_key = (caller.tenant, label.to_owned());
            let cached = self.records.credentials.get(&cache_key);
            let credential = match cached {
                Some(credential) => credential,
                None => {
                    let read_at = std::time::Instant::now();
                    let credential = self.store.credential_by_label(caller.tenant, label).await?.ok_or_else(|| {
                        DomainError::NoCredential {
                            reason: format!("this tenant has no credential labelled `{label}`; connect one or check the label"),
                        }
                    })?;
                    self.records
                        .credentials
                        .insert(cache_key, credential.clone(), read_at);
                    credential
                }
            };
            return Ok(vec![Attempt {
                credential,
                upstream_model: upstream.to_owned(),
                read_at: std::time::Instant::now(),
            }]);
        }
        let route = self.store.route(caller.tenant, model).await?.ok_or_else(|| DomainError::NoCredential {
            reason: format!(
                "no route for `{model}`: address the model as `<credential-label>/{model}`, or a tenant admin can add a route (PUT /admin/v1/tenants/{{tenant}}/routes/{model})"
            ),
        })?;
        let mut attempts = Vec::with_capacity(route.targets.len());
        for target in route.targets {
            if let Some(credential) = self
                .store
                .credential(caller.tenant, target.credential_id)
                .await?
            {
                attempts.push(Attempt {
                    credential,
                    upstream_model: target.model,
                    read_at: std::time::Instant::now(),
                });
            }
        }
        Ok(attempts)
    }

    /// One upstream attempt with its own ledger row.
    #[expect(
        clippy::too_many_arguments,
        reason = "one call's whole context, passed once"
    )]
    async fn attempt(
        &self,
        caller: &Caller,
        surface: Surface,
        prompt: &PromptBody,
        route: &keyward_router::RouteRequest,
        context: &CallContext,
        attempt: &Attempt,
        request_id: RequestId,
        fallback_of: Option<RequestId>,
        client_gone: &AtomicBool,
    ) -> Result<AttemptResult, DomainError> {
        let credential = &attempt.credential;
        let scope = TenantScope::for_platform_key(caller.tenant, caller.key);
        // The status may have changed since the target was chosen (a disable, a rejection by
        // a concurrent call, for a fallback tried later): unless the record was read just now,
        // it is read again, and the row read is authoritative.
        let opened = if attempt.read_at.elapsed() < FRESH_RECORD {
            self.open_credential_record(credential.clone(), crate::credential::Freshness::Cached)
                .await?
        } else {
            self.open_credential_secret(&scope, credential.id).await?
        };
        match opened.record.status {
            CredentialStatus::Active => {}
            CredentialStatus::Disabled => {
                return Ok(AttemptResult::Skipped(DomainError::CredentialDisabled {
                    label: credential.label.clone(),
                }))
            }
            CredentialStatus::RejectedByProvider => {
                return Ok(AttemptResult::Skipped(
                    DomainError::ProviderCredentialRejected {
                        label: credential.label.clone(),
                    },
                ))
            }
        }
        let secret_used = opened.record.secret.clone();
        let created_at = Timestamp::now();
        let price = self
            .price_in_force(
                caller.tenant,
                credential.provider,
                &attempt.upstream_model,
                created_at,
            )
            .await;
        let max_output = match surface {
            Surface::Embeddings => 0,
            _ => route.max_tokens.unwrap_or(self.default_max_output_tokens),
        };
        let pending = PendingCall {
            request_id,
            created_at,
            tenant_id: caller.tenant,
            key_id: Some(caller.key),
            department_id: caller.department,
            credential_id: credential.id,
            credential_label: credential.label.clone(),
            provider: credential.provider,
            endpoint: surface.endpoint(),
            model_requested: route.model.clone(),
            stream: route.stream,
            tags: with_user_tag(context.tags.clone(), route.user.as_deref()),
            fallback_of,
            reserved_micro_usd: price
                .as_ref()
                .map_or(0, |price| price.worst_case(route.input_bytes, max_output)),
        };
        match self.store.admit_call(&pending).await {
            Ok(Admission::Admitted) => {}
            Ok(Admission::OverBudget {
                budget,
                window,
                spend,
            }) => {
                self.metrics
                    .record_budget_refusal(caller.tenant.to_string());
                tracing::info!(%request_id, budget = %budget.id, window, "call refused: hard budget");
                return Err(DomainError::BudgetExceeded(Box::new(BudgetRefusal::new(
                    &budget,
                    window,
                    &spend,
                    pending.reserved_micro_usd,
                ))));
            }
            Err(err) => {
                self.metrics.record_ledger_failure();
                match self.ledger_mode {
                    LedgerMode::Strict => {
                        tracing::error!(%request_id, error = %err, "ledger write failed; call refused");
                        return Err(DomainError::LedgerUnavailable);
                    }
                    LedgerMode::BestEffort => {
                        tracing::warn!(%request_id, error = %err, "ledger write failed; calling anyway (best_effort)");
                    }
                }
            }
        }
        let target = Target {
            provider: credential.provider,
            options: credential.options.clone(),
            secret: opened.secret,
            model: attempt.upstream_model.clone(),
        };
        let input_estimate = route.input_bytes;
        let reply = self
            .router
            .send(surface, &target, prompt, route, &context.client_headers)
            .await;
        drop(target);
        let reply = match reply {
            Err(err) => {
                let status = failed_status(&err);
                self.settle(
                    &pending,
                    Some((price.as_ref(), &attempt.upstream_model, input_estimate)),
                    Settlement {
                        status: Some(status),
                        ..Settlement::default()
                    },
                )
                .await;
                tracing::warn!(%request_id, credential = %credential.id, code = err.code().as_str(), error = %err, "upstream call failed");
                return Ok(AttemptResult::Failed(DomainError::Router(err)));
            }
            Ok(reply) => reply,
        };
        match reply {
            UpstreamReply::Complete(reply) => {
                let reply = *reply;
                let mut settlement = settlement_from_usage(&reply.usage);
                settlement.http_status = Some(reply.status);
                settlement.provider_request_id = reply.provider_request_id.clone();
                settlement.latency_ms = millis(reply.elapsed);
                settlement.ttfb_ms = millis(reply.first_byte);
                let success = (200..300).contains(&reply.status);
                settlement.status = Some(if client_gone.load(Ordering::Relaxed) {
                    CallStatus::ClientCancelled
                } else if success {
                    CallStatus::Ok
                } else {
                    CallStatus::ProviderError
                });
                self.settle(
                    &pending,
                    Some((price.as_ref(), &attempt.upstream_model, input_estimate)),
                    settlement,
                )
                .await;
                if reply.key_rejected {
                    self.mark_rejected(credential, secret_used.as_ref()).await;
                    return Ok(AttemptResult::Failed(
                        DomainError::ProviderCredentialRejected {
                            label: credential.label.clone(),
                        },
                    ));
                }
                if reply.status >= 500 {
                    tracing::warn!(%request_id, status = reply.status, "provider failed");
                    return Ok(AttemptResult::Failed(DomainError::UpstreamFailed {
                        status: reply.status,
                        label: credential.label.clone(),
                    }));
                }
                let relayed = InferenceReply::Complete {
                    status: reply.status,
                    content_type: reply.content_type,
                    retry_after: reply.retry_after,
                    body: reply.body,
                    served_by: None,
                };
                if reply.status == 429 {
                    return Ok(AttemptResult::Relayable(relayed));
                }
                Ok(AttemptResult::Done(relayed))
            }
            UpstreamReply::Streaming(reply) => {
                let reply = *reply;
                let keyward = self.clone();
                let upstream_model = attempt.upstream_model.clone();
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
                    keyward
                        .settle(
                            &pending,
                            Some((price.as_ref(), upstream_model.as_str(), input_estimate)),
                            settlement,
                        )
                        .await;
                });
                Ok(AttemptResult::Done(InferenceReply::Streaming {
                    status: reply.status,
                    content_type: reply.content_type,
                    stream: Box::new(reply.stream),
                    served_by: None,
                }))
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
        // A referenced secret is fetched anew: verify is how an operator checks a rotation in
        // the manager without waiting for the cache to expire.
        let record = self.credential(scope, id).await?;
        let opened = self
            .open_credential_record(record, crate::credential::Freshness::Refetch)
            .await?;
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
            fallback_of: None,
            reserved_micro_usd: 0,
        };
        if let Err(err) = self.store.admit_call(&pending).await {
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
                let status = failed_status(&err);
                self.settle(
                    &pending,
                    None,
                    Settlement {
                        status: Some(status),
                        ..Settlement::default()
                    },
                )
                .await;
                return Err(DomainError::Router(err));
            }
        };
        let success = verification.accepted;
        self.audit(
            scope,
            "credential.verify",
            &id.to_string(),
            serde_json::json!({"accepted": success, "key_rejected": verification.key_rejected, "http_status": verification.status}),
        )
        .await;
        self.settle(
            &pending,
            None,
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
            self.mark_rejected(&credential, credential.secret.as_ref())
                .await;
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
            self.records.credentials.clear();
            tracing::info!(tenant = %credential.tenant_id, credential = %credential.id, "provider accepted the credential again; active");
        }
        self.credential(scope, id).await
    }

    /// Prices a finished call (with the price its reservation used) and settles its row;
    /// alerts on soft limits the settlement crossed.
    async fn settle(
        &self,
        call: &PendingCall,
        pricing: Option<(Option<&Price>, &str, u64)>,
        mut settlement: Settlement,
    ) {
        if let (Some(key), Some((_, _, input_estimate))) = (call.key_id, pricing) {
            // TPM counts real tokens; a call whose usage never arrived counts its input bytes.
            let tokens = match (settlement.input_tokens, settlement.output_tokens) {
                (None, None)
                    if crate::budget::may_have_been_billed(
                        settlement.status.unwrap_or(CallStatus::ProviderError),
                        settlement.http_status,
                    ) =>
                {
                    input_estimate
                }
                (None, None) => 0,
                (input, output) => input.unwrap_or(0).saturating_add(output.unwrap_or(0)),
            };
            self.rate_limiter
                .charge_tokens(key, tokens, std::time::Instant::now());
        }
        if let Some((price, model, _)) = pricing {
            match price {
                Some(price) => price.apply(&mut settlement),
                None if settlement.input_tokens.is_some() => {
                    self.metrics.record_unpriced(call.provider.as_str(), model);
                    tracing::warn!(
                        provider = call.provider.as_str(),
                        model,
                        "no price for this model; the call's cost is left empty"
                    );
                }
                None => {}
            }
        }
        settlement.budget_charge_micro_usd = budget_charge(&settlement, call.reserved_micro_usd);
        let request_id = call.request_id;
        match self
            .store
            .settle_call(request_id, &settlement, Timestamp::now())
            .await
        {
            Ok(settled) => {
                if !settled.settled {
                    tracing::warn!(%request_id, "ledger row was not pending; not settled twice");
                }
                for crossed in settled.soft_limits_crossed {
                    self.soft_limit_crossed(crossed).await;
                }
            }
            Err(err) => {
                self.metrics.record_ledger_failure();
                tracing::error!(%request_id, error = %err, "ledger row could not be settled; it will be marked interrupted at the next start");
            }
        }
        self.metrics.record_call(crate::metrics::CallObservation {
            tenant: call.tenant_id.to_string(),
            provider: call.provider.as_str(),
            // The provider's own model name, not the client's free text: it keeps the label
            // set bounded by what providers serve.
            model: settlement.model_reported.as_deref().unwrap_or("unknown"),
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

    /// The provider refused the key: stop using it until the tenant rotates or verifies it.
    /// Only an active credential still holding the refused secret is marked: a rotation or a
    /// disable that happened meanwhile wins.
    async fn mark_rejected(
        &self,
        credential: &CredentialRecord,
        secret_used: Option<&keyward_core::SealedSecret>,
    ) {
        let result = self
            .store
            .reject_credential(
                credential.tenant_id,
                credential.id,
                secret_used,
                Timestamp::now(),
            )
            .await;
        self.records.credentials.clear();
        match result {
            Ok(false) => {
                tracing::info!(credential = %credential.id, "provider rejected a secret the credential no longer holds; status unchanged")
            }
            Ok(true) => {
                tracing::warn!(tenant = %credential.tenant_id, credential = %credential.id, "provider rejected the credential; marked rejected_by_provider");
                self.raise_alert(
                    credential.tenant_id,
                    "credential.rejected_by_provider",
                    &credential.id.to_string(),
                    serde_json::json!({"credential_id": credential.id.to_string(), "label": credential.label, "provider": credential.provider.as_str()}),
                )
                .await;
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
