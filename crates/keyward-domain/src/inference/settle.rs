//! Settlement: how every kind of ending becomes the ledger row's final state, and the one
//! `settle` that prices it, charges budgets and token limits, writes it and records metrics.
//!
//! Invariants:
//! - Each ending (router failure, complete reply, stream outcome, verification) has exactly
//!   one builder here; model calls and verifications settle through the same [`Keyward::settle`].
//! - A call whose usage never arrived but may have been billed charges its input estimate to
//!   the key's TPM limit and its reservation to the budgets (see `budget::budget_charge`).
//! - A stream that did not complete (the client left, the provider broke it) has usage that
//!   is only a lower bound of the bill: its row records what was seen, its budgets keep the
//!   reservation (or the cost seen, if higher) and its key's TPM is charged the ceiling.
//! - A failed settlement is counted and logged with ids only; the row stays `pending` and is
//!   marked interrupted at the next start.

use std::time::Duration;

use keyward_core::{SealedSecret, Timestamp};
use keyward_router::{
    CompleteReply, RouterError, StreamEnd, StreamOutcome, UsageReport, Verification,
};
use keyward_store::{CallStatus, CredentialRecord, PendingCall, Settlement};
use tracing::Instrument as _;

use crate::budget::budget_charge;
use crate::price::Price;
use crate::Keyward;

/// What prices a model call's settlement (verifications have none).
#[derive(Clone, Copy)]
pub(super) struct Pricing<'a> {
    /// The price the reservation used; `None` when the model has no price.
    pub price: Option<&'a Price>,
    /// The provider's name of the model, for the unpriced-model metric.
    pub model: &'a str,
    /// The request's size, charged to TPM when no usage arrived.
    pub input_estimate: u64,
    /// The most tokens the call can be billed for: its input estimate and output ceiling.
    pub token_ceiling: u64,
    /// Whether the usage is the provider's final count. When it is not (a stream the client
    /// left or the provider broke), the budget is charged at least the reservation and TPM at
    /// least the ceiling: what was seen is a lower bound of what will be billed.
    pub usage_final: bool,
}

fn millis(duration: Duration) -> Option<u64> {
    u64::try_from(duration.as_millis()).ok()
}

fn from_usage(usage: &UsageReport) -> Settlement {
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

/// A call the router could not complete.
pub(super) fn router_failure(err: &RouterError) -> Settlement {
    let status = match err {
        RouterError::Timeout { .. } => CallStatus::Timeout,
        RouterError::EgressBlocked { .. } => CallStatus::EgressBlocked,
        _ => CallStatus::Unreachable,
    };
    Settlement {
        status: Some(status),
        ..Settlement::default()
    }
}

/// A whole reply: the provider's success or error, or a reply nobody waited for.
pub(super) fn complete_reply(reply: &CompleteReply, client_gone: bool) -> Settlement {
    let status = if client_gone {
        CallStatus::ClientCancelled
    } else if (200..300).contains(&reply.status) {
        CallStatus::Ok
    } else {
        CallStatus::ProviderError
    };
    Settlement {
        status: Some(status),
        http_status: Some(reply.status),
        provider_request_id: reply.provider_request_id.clone(),
        latency_ms: millis(reply.elapsed),
        ttfb_ms: millis(reply.first_byte),
        ..from_usage(&reply.usage)
    }
}

/// A stream's end, however it ended (`None`: the stream vanished without an outcome).
pub(super) fn stream_end(
    http_status: u16,
    provider_request_id: Option<String>,
    outcome: Option<StreamOutcome>,
) -> Settlement {
    let Some(outcome) = outcome else {
        return Settlement {
            status: Some(CallStatus::ProviderError),
            http_status: Some(http_status),
            provider_request_id,
            ..Settlement::default()
        };
    };
    Settlement {
        status: Some(match outcome.end {
            StreamEnd::Completed => CallStatus::Ok,
            StreamEnd::ClientCancelled => CallStatus::ClientCancelled,
            StreamEnd::UpstreamFailed => CallStatus::ProviderError,
            StreamEnd::TimedOut => CallStatus::Timeout,
        }),
        http_status: Some(http_status),
        provider_request_id,
        latency_ms: millis(outcome.elapsed),
        ttfb_ms: outcome.first_byte.and_then(millis),
        ..from_usage(&outcome.usage)
    }
}

/// A verification call's answer.
pub(super) fn verification(verification: &Verification) -> Settlement {
    Settlement {
        status: Some(if verification.accepted {
            CallStatus::Ok
        } else {
            CallStatus::ProviderError
        }),
        http_status: Some(verification.status),
        provider_request_id: verification.provider_request_id.clone(),
        latency_ms: millis(verification.elapsed),
        ..Settlement::default()
    }
}

impl Keyward {
    /// Prices a finished call (with the price its reservation used) and settles its row;
    /// alerts on soft limits the settlement crossed.
    pub(super) async fn settle(
        &self,
        call: &PendingCall,
        pricing: Option<Pricing<'_>>,
        mut settlement: Settlement,
    ) {
        let usage_final = pricing.is_none_or(|pricing| pricing.usage_final);
        if let (Some(key), Some(pricing)) = (call.key_id, pricing) {
            let mut tokens = rate_limited_tokens(&settlement, pricing.input_estimate);
            if !usage_final {
                tokens = tokens.max(pricing.token_ceiling);
            }
            self.limits.charge_tokens(key, tokens).await;
        }
        if let Some(pricing) = pricing {
            self.apply_price(call, pricing, &mut settlement);
        }
        settlement.budget_charge_micro_usd = budget_charge(&settlement, call.reserved_micro_usd);
        if !usage_final {
            // The row keeps what was seen (and its status says the usage is partial, for
            // reconciliation); the budget keeps the reservation, an upper bound of the bill.
            settlement.budget_charge_micro_usd = settlement
                .budget_charge_micro_usd
                .max(call.reserved_micro_usd);
        }
        let request_id = call.request_id;
        super::trace::record_settlement(&settlement);
        let ended = std::time::Instant::now();
        let written = self
            .store
            .settle_call(request_id, &settlement, Timestamp::now())
            .instrument(tracing::trace_span!("keyward.settlement"))
            .await;
        match written {
            Ok(settled) => {
                if settled.settled {
                    self.metrics.record_settled(ended.elapsed());
                } else {
                    self.settle_late(request_id, &settlement).await;
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
        // A metric label must come from a bounded set: the priced model's name (the price
        // book's or a tenant rate's), never a name a client or a self-hosted server chose.
        let model_label = match pricing {
            Some(Pricing {
                price: Some(_),
                model,
                ..
            }) => model,
            Some(_) => "other",
            None => "unknown",
        };
        self.record_call_metrics(call, &settlement, model_label);
    }

    /// A row that was no longer pending: if it was marked `interrupted` while the call ran,
    /// what the call used is recorded on it all the same (nothing is lost); else it was
    /// settled already and is left alone.
    async fn settle_late(&self, request_id: keyward_core::RequestId, settlement: &Settlement) {
        match self
            .store
            .record_late_settlement(request_id, settlement, Timestamp::now())
            .await
        {
            Ok(true) => {
                tracing::warn!(%request_id, "a call finished after its row was marked interrupted; its usage is recorded on the interrupted row")
            }
            Ok(false) => {
                tracing::warn!(%request_id, "ledger row was not pending; not settled twice")
            }
            Err(err) => {
                self.metrics.record_ledger_failure();
                tracing::error!(%request_id, error = %err, "the late settlement of an interrupted row could not be written");
            }
        }
    }

    fn apply_price(&self, call: &PendingCall, pricing: Pricing<'_>, settlement: &mut Settlement) {
        match pricing.price {
            Some(price) => price.apply(settlement),
            None if settlement.input_tokens.is_some() => {
                self.metrics.record_unpriced(call.provider.as_str());
                tracing::warn!(
                    provider = call.provider.as_str(),
                    model = pricing.model,
                    "no price for this model; the call's cost is left empty"
                );
            }
            None => {}
        }
    }

    fn record_call_metrics(&self, call: &PendingCall, settlement: &Settlement, model: &str) {
        self.metrics.record_call(crate::metrics::CallObservation {
            tenant: call.tenant_id.to_string(),
            provider: call.provider.as_str(),
            model,
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
    pub(super) async fn mark_rejected(
        &self,
        credential: &CredentialRecord,
        secret_used: Option<&SealedSecret>,
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
}

/// The tokens a call counts against its key's TPM limit: real tokens, or its input bytes when
/// no usage arrived but the provider may have billed it.
fn rate_limited_tokens(settlement: &Settlement, input_estimate: u64) -> u64 {
    match (settlement.input_tokens, settlement.output_tokens) {
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
    }
}
