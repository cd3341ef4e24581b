//! Alerts: events an operator wants pushed (a soft budget limit crossed, a credential
//! rejected by its provider). Each is written to the audit log and handed to the optional
//! alert channel, whose consumer (the webhook sender) delivers it.
//!
//! Invariant: raising an alert never blocks or fails a call — a full channel drops the alert
//! from the push path (counted and logged); the audit entry is still written.

use keyward_core::{format_usd, TenantId, Timestamp};
use keyward_store::SoftLimitCrossed;
use serde::Serialize;

use crate::{ActorName, Keyward};

/// One alert, as the webhook body carries it. Ids, names and amounts only.
#[derive(Clone, Debug, Serialize)]
pub struct Alert {
    /// Unique per alert, for receivers to drop duplicates of a retried delivery.
    pub id: String,
    /// `budget.soft_limit_crossed` or `credential.rejected_by_provider`.
    pub event: &'static str,
    pub tenant_id: String,
    pub at: String,
    pub details: serde_json::Value,
}

pub type AlertSender = tokio::sync::mpsc::Sender<Alert>;
pub type AlertReceiver = tokio::sync::mpsc::Receiver<Alert>;

/// Alerts waiting for delivery before new ones are dropped from the push path.
pub const ALERT_QUEUE: usize = 1024;

pub fn alert_channel() -> (AlertSender, AlertReceiver) {
    tokio::sync::mpsc::channel(ALERT_QUEUE)
}

impl Keyward {
    pub(crate) async fn raise_alert(
        &self,
        tenant: TenantId,
        event: &'static str,
        target: &str,
        details: serde_json::Value,
    ) {
        self.append_audit(
            Some(tenant),
            ActorName::System,
            event,
            target,
            "alert",
            details.clone(),
        )
        .await;
        let Some(alerts) = &self.alerts else {
            return;
        };
        let alert = Alert {
            id: keyward_core::RequestId::generate().to_string(),
            event,
            tenant_id: tenant.to_string(),
            at: Timestamp::now().to_rfc3339(),
            details,
        };
        if alerts.try_send(alert).is_err() {
            self.metrics.record_alert_dropped();
            tracing::warn!(
                event,
                "alert queue full or closed; this alert is in the audit log only"
            );
        }
    }

    pub(crate) async fn soft_limit_crossed(&self, crossed: SoftLimitCrossed) {
        let tenant = crossed.budget.tenant_id;
        tracing::warn!(tenant = %tenant, budget = %crossed.budget.id, window = crossed.window, "soft budget limit crossed");
        self.raise_alert(
            tenant,
            "budget.soft_limit_crossed",
            &crossed.budget.id.to_string(),
            serde_json::json!({
                "budget_id": crossed.budget.id,
                "scope_kind": crossed.budget.scope_kind.as_str(),
                "scope_id": crossed.budget.scope_id,
                "period": crossed.budget.period.as_str(),
                "window": crossed.window,
                "soft_limit_usd": crossed.budget.soft_limit_micro_usd.map(format_usd),
                "hard_limit_usd": crossed.budget.hard_limit_micro_usd.map(format_usd),
                "spent_usd": format_usd(crossed.spent_micro_usd),
            }),
        )
        .await;
    }
}
