//! Recording admin actions in the hash-chained audit log, reading it, and verifying the chain.
//!
//! Invariants: entries name the actor, the action, target ids and the outcome, plus
//! non-secret details chosen by each caller (labels, periods, amounts) — never a secret, a
//! platform key or a body. A failure to append is logged and counted, never hidden: the action
//! itself has already happened and is not undone.

use keyward_core::{TenantId, Timestamp};
use keyward_store::{verify_chain, AuditRecord, ChainBreak, NewAuditEntry, GENESIS_HASH};

use crate::{Actor, ActorName, DomainError, Keyward, TenantScope};

/// Entries read per round trip when verifying or listing.
const BATCH: u32 = 1000;

/// The result of checking the whole chain.
#[derive(Clone, Debug)]
pub struct AuditVerification {
    /// Entries checked.
    pub entries: u64,
    /// The newest entry's hash: record it elsewhere to detect a truncated tail later.
    pub head_hash: String,
    /// The first break, if any.
    pub broken: Option<ChainBreak>,
}

impl Keyward {
    /// Records a successful action within a tenant.
    pub(crate) async fn audit(
        &self,
        scope: &TenantScope,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) {
        self.append_audit(
            Some(scope.tenant()),
            scope.actor(),
            action,
            target,
            "ok",
            details,
        )
        .await;
    }

    /// Records a deployment-wide action (tenants, master keys).
    pub(crate) async fn audit_operator(
        &self,
        actor: &Actor,
        tenant: Option<TenantId>,
        action: &str,
        target: &str,
        details: serde_json::Value,
    ) {
        self.append_audit(tenant, actor.name(), action, target, "ok", details)
            .await;
    }

    pub(crate) async fn append_audit(
        &self,
        tenant: Option<TenantId>,
        actor: ActorName,
        action: &str,
        target: &str,
        outcome: &str,
        details: serde_json::Value,
    ) {
        let entry = NewAuditEntry {
            at: Timestamp::now(),
            tenant_id: tenant.map(|tenant| tenant.to_string()),
            actor: actor.to_string(),
            action: action.to_owned(),
            target: target.to_owned(),
            outcome: outcome.to_owned(),
            details: details.to_string(),
        };
        if let Err(err) = self.store.append_audit(&entry).await {
            self.metrics.record_audit_failure();
            tracing::error!(action, target, error = %err, "audit entry could not be written");
        }
    }

    /// A tenant's audit entries, oldest first, after sequence number `after`.
    pub async fn audit_log(
        &self,
        scope: &TenantScope,
        after: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, DomainError> {
        Ok(self
            .store
            .audit_entries(
                Some(&scope.tenant().to_string()),
                after,
                limit.clamp(1, BATCH),
            )
            .await?)
    }

    /// Walks the whole chain from the first entry (operator only).
    pub async fn verify_audit_log(&self, actor: &Actor) -> Result<AuditVerification, DomainError> {
        actor.require_operator()?;
        let mut prev = (0_i64, GENESIS_HASH.to_owned());
        let mut entries = 0_u64;
        loop {
            let batch = self.store.audit_entries(None, prev.0, BATCH).await?;
            if batch.is_empty() {
                break;
            }
            if let Err(broken) = verify_chain((prev.0, &prev.1), &batch) {
                return Ok(AuditVerification {
                    entries: entries + u64::try_from(broken.seq - prev.0 - 1).unwrap_or(0),
                    head_hash: prev.1,
                    broken: Some(broken),
                });
            }
            entries += batch.len() as u64;
            if let Some(last) = batch.last() {
                prev = (last.seq, last.hash.clone());
            }
        }
        Ok(AuditVerification {
            entries,
            head_hash: prev.1,
            broken: None,
        })
    }
}
