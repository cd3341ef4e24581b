//! Admission: the one place a call's `pending` ledger row is committed before anything goes
//! upstream — model calls and credential verifications alike.
//!
//! Invariants:
//! - In [`LedgerMode::Strict`] a row that cannot be written means no upstream call.
//! - A hard budget's refusal writes nothing (the store rolls the row back) and is counted; so
//!   does a hard cap's refusal of a call whose model has no price (`model_unpriced`).
//! - Every failed ledger write is counted, whatever the mode.

use keyward_store::{Admission, PendingCall};

use crate::error::BudgetRefusal;
use crate::{DomainError, Keyward};

/// Whether a call may proceed when its ledger row cannot be written (`ledger.mode`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LedgerMode {
    /// No ledger row, no upstream call.
    Strict,
    /// Call anyway and log the gap.
    BestEffort,
}

impl LedgerMode {
    /// The mode named as in the configuration (`strict`, `best_effort`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "strict" => Some(Self::Strict),
            "best_effort" => Some(Self::BestEffort),
            _ => None,
        }
    }
}

impl Keyward {
    /// Commits `pending` (with its budget reservations) or says why the call may not go.
    pub(super) async fn admit(&self, pending: &PendingCall) -> Result<(), DomainError> {
        let request_id = pending.request_id;
        match self.store.admit_call(pending).await {
            Ok(Admission::Admitted) => {
                self.metrics.record_admitted();
                Ok(())
            }
            Ok(Admission::Unpriced { budget }) => {
                self.metrics
                    .record_budget_refusal(pending.tenant_id.to_string());
                tracing::info!(%request_id, budget = %budget.id, "call refused: unpriced model under a hard cap");
                Err(DomainError::ModelUnpriced {
                    model: pending.model_requested.clone(),
                    provider: pending.provider.as_str(),
                    scope: budget.scope_kind.as_str().to_owned(),
                })
            }
            Ok(Admission::Unbounded { budget, field }) => {
                self.metrics
                    .record_budget_refusal(pending.tenant_id.to_string());
                tracing::info!(%request_id, budget = %budget.id, "call refused: unbounded input under a hard cap");
                Err(DomainError::InputUnbounded {
                    field,
                    scope: budget.scope_kind.as_str().to_owned(),
                })
            }
            Ok(Admission::OverBudget {
                budget,
                window,
                spend,
            }) => {
                self.metrics
                    .record_budget_refusal(pending.tenant_id.to_string());
                tracing::info!(%request_id, budget = %budget.id, window, "call refused: hard budget");
                Err(DomainError::BudgetExceeded(Box::new(BudgetRefusal::new(
                    &budget,
                    window,
                    &spend,
                    pending.reserved_micro_usd,
                ))))
            }
            Err(err) => {
                self.metrics.record_ledger_failure();
                match self.ledger_mode {
                    LedgerMode::Strict => {
                        tracing::error!(%request_id, endpoint = pending.endpoint, error = %err, "ledger write failed; call refused");
                        Err(DomainError::LedgerUnavailable)
                    }
                    LedgerMode::BestEffort => {
                        tracing::warn!(%request_id, endpoint = pending.endpoint, error = %err, "ledger write failed; calling anyway (best_effort)");
                        Ok(())
                    }
                }
            }
        }
    }
}
