//! Budgets: hard and soft spending caps per tenant, department or platform key, per UTC day,
//! UTC month or in total, and what a call reserves against them.
//!
//! Invariants:
//! - A call is admitted only if its worst-case cost fits under every hard limit that applies;
//!   the check and the reservation are one store transaction (`Store::admit_call`), so no
//!   interleaving of concurrent calls admits more than fits.
//! - The worst case never undercounts input: the prompt's UTF-8 byte count (every token is
//!   at least one byte of the request), plus the output cap the client set — or the
//!   configured default when it set none — at the dearest rate of the price in force.
//! - When a call ends with unknown usage but may have been billed (cancelled, timed out,
//!   broken stream, interrupted), its whole reservation is counted as spent.

use keyward_core::{format_usd, parse_usd, BudgetPeriod, PlatformKeyId, Timestamp};
use keyward_store::{BudgetRecord, BudgetScopeKind, CallStatus, Settlement, WindowSpend};

use crate::error::BudgetRefusal;
use crate::{DomainError, Keyward, TenantScope};

/// A budget as an admin sets it (SPEC: `PUT …/budgets`).
#[derive(Clone, Debug)]
pub struct BudgetInput {
    /// `tenant`, `department:NAME` or `key:ID`.
    pub scope: String,
    /// `day`, `month` or `total`.
    pub period: String,
    /// Decimal USD strings; `None` removes that limit.
    pub hard_limit_usd: Option<String>,
    pub soft_limit_usd: Option<String>,
}

/// A budget with what its current window holds.
#[derive(Clone, Debug)]
pub struct BudgetStatus {
    pub record: BudgetRecord,
    /// `tenant`, `department:NAME` or `key:ID`, as set.
    pub scope: String,
    /// The current window's key (`2026-11-23`, `2026-11`, `total`).
    pub window: String,
    pub spend: WindowSpend,
}

impl BudgetStatus {
    pub fn hard_limit_usd(&self) -> Option<String> {
        self.record.hard_limit_micro_usd.map(format_usd)
    }
    pub fn soft_limit_usd(&self) -> Option<String> {
        self.record.soft_limit_micro_usd.map(format_usd)
    }
}

fn limit(field: &str, text: Option<&str>) -> Result<Option<i64>, DomainError> {
    text.map(|text| {
        parse_usd(text).ok_or_else(|| {
            DomainError::invalid(
                field,
                "a decimal USD amount as a string, such as \"25\" or \"12.50\" (at most six decimals)",
            )
        })
    })
    .transpose()
}

impl BudgetRefusal {
    /// Why `budget` refused a call needing `needed` micro-dollars, given its window's spend.
    pub(crate) fn new(
        budget: &BudgetRecord,
        window: String,
        spend: &WindowSpend,
        needed: i64,
    ) -> Self {
        let hard = budget.hard_limit_micro_usd.unwrap_or(0);
        Self {
            scope: match budget.scope_kind {
                BudgetScopeKind::Tenant => "the tenant".to_owned(),
                kind => format!("{} {}", kind.as_str(), budget.scope_id),
            },
            period: budget.period.as_str(),
            window,
            needed_usd: format_usd(needed),
            left_usd: format_usd((hard - spend.spent_micro_usd - spend.reserved_micro_usd).max(0)),
            limit_usd: format_usd(hard),
        }
    }
}

/// What the budgets count as spent when a call settles.
pub(crate) fn budget_charge(settlement: &Settlement, reserved: i64) -> i64 {
    if let Some(cost) = settlement.cost_micro_usd {
        return cost;
    }
    if settlement.input_tokens.is_some() {
        // Usage known but unpriced: nothing the price book can count.
        return 0;
    }
    if may_have_been_billed(
        settlement.status.unwrap_or(CallStatus::ProviderError),
        settlement.http_status,
    ) {
        reserved
    } else {
        0
    }
}

/// Whether the provider may have billed a call that ended so, when its usage is unknown.
pub(crate) fn may_have_been_billed(status: CallStatus, http_status: Option<u16>) -> bool {
    match status {
        CallStatus::Ok
        | CallStatus::ClientCancelled
        | CallStatus::Timeout
        | CallStatus::Interrupted
        | CallStatus::Pending => true,
        // A whole error answer is not billed; a stream that broke after a 200 may be.
        CallStatus::ProviderError => http_status.is_some_and(|status| (200..300).contains(&status)),
        CallStatus::Unreachable | CallStatus::EgressBlocked => false,
    }
}

impl Keyward {
    /// Creates or updates the budget for a scope and period.
    pub async fn set_budget(
        &self,
        scope: &TenantScope,
        input: BudgetInput,
    ) -> Result<BudgetStatus, DomainError> {
        let period = BudgetPeriod::parse(&input.period)
            .ok_or_else(|| DomainError::invalid("period", "one of `day`, `month`, `total`"))?;
        let hard = limit("hard_limit_usd", input.hard_limit_usd.as_deref())?;
        let soft = limit("soft_limit_usd", input.soft_limit_usd.as_deref())?;
        if let (Some(hard), Some(soft)) = (hard, soft) {
            if soft > hard {
                return Err(DomainError::invalid(
                    "soft_limit_usd",
                    "the soft limit warns before the hard limit refuses: make it at most the hard limit",
                ));
            }
        }
        if hard.is_none() && soft.is_none() {
            return Err(DomainError::invalid(
                "hard_limit_usd",
                "give a hard limit, a soft limit or both",
            ));
        }
        let (kind, scope_id) = self.budget_scope(scope, &input.scope).await?;
        let now = Timestamp::now();
        let record = BudgetRecord {
            id: keyward_core::BudgetId::generate(),
            tenant_id: scope.tenant(),
            scope_kind: kind,
            scope_id,
            period,
            hard_limit_micro_usd: hard,
            soft_limit_micro_usd: soft,
            created_at: now,
            updated_at: now,
        };
        let stored = self.store.put_budget(&record).await?;
        tracing::info!(tenant = %scope.tenant(), budget = %stored.id, period = period.as_str(), "budget set");
        self.audit(
            scope,
            "budget.set",
            &stored.id.to_string(),
            serde_json::json!({
                "scope": input.scope,
                "period": period.as_str(),
                "hard_limit_usd": hard.map(format_usd),
                "soft_limit_usd": soft.map(format_usd),
            }),
        )
        .await;
        self.budget_status(scope, stored).await
    }

    /// The tenant's budgets with their current windows' spend.
    pub async fn budgets(&self, scope: &TenantScope) -> Result<Vec<BudgetStatus>, DomainError> {
        let records = self.store.budgets(scope.tenant()).await?;
        let mut statuses = Vec::with_capacity(records.len());
        for record in records {
            statuses.push(self.budget_status(scope, record).await?);
        }
        Ok(statuses)
    }

    async fn budget_status(
        &self,
        scope: &TenantScope,
        record: BudgetRecord,
    ) -> Result<BudgetStatus, DomainError> {
        let window = record.period.window(Timestamp::now()).key;
        let spend = self.store.window_spend(record.id, &window).await?;
        let name = match record.scope_kind {
            BudgetScopeKind::Tenant => "tenant".to_owned(),
            BudgetScopeKind::Key => format!("key:{}", record.scope_id),
            BudgetScopeKind::Department => {
                let name = match record.scope_id.parse() {
                    Ok(id) => self.department_name(scope, id).await?,
                    Err(_) => None,
                };
                format!(
                    "department:{}",
                    name.unwrap_or_else(|| record.scope_id.clone())
                )
            }
        };
        Ok(BudgetStatus {
            record,
            scope: name,
            window,
            spend,
        })
    }

    /// Resolves `tenant`, `department:NAME` or `key:ID` within the tenant.
    async fn budget_scope(
        &self,
        scope: &TenantScope,
        text: &str,
    ) -> Result<(BudgetScopeKind, String), DomainError> {
        let unknown = |what: &str| {
            DomainError::invalid(
                "scope",
                format!("no {what} `{text}` in this tenant; scope is `tenant`, `department:NAME` or `key:ID`"),
            )
        };
        if text == "tenant" {
            return Ok((BudgetScopeKind::Tenant, String::new()));
        }
        if let Some(name) = text.strip_prefix("department:") {
            let department = self
                .store
                .department_by_name(scope.tenant(), name)
                .await?
                .ok_or_else(|| unknown("department"))?;
            return Ok((BudgetScopeKind::Department, department.id.to_string()));
        }
        if let Some(id) = text.strip_prefix("key:") {
            let id: PlatformKeyId = id.parse().map_err(|_| unknown("platform key"))?;
            self.store
                .platform_key(scope.tenant(), id)
                .await?
                .ok_or_else(|| unknown("platform key"))?;
            return Ok((BudgetScopeKind::Key, id.to_string()));
        }
        Err(DomainError::invalid(
            "scope",
            "one of `tenant`, `department:NAME`, `key:ID`",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_usage_counts_the_reservation_only_when_the_provider_may_have_billed() {
        let with = |status, http| Settlement {
            status: Some(status),
            http_status: http,
            ..Settlement::default()
        };
        assert_eq!(
            budget_charge(&with(CallStatus::ClientCancelled, Some(200)), 70),
            70
        );
        assert_eq!(budget_charge(&with(CallStatus::Interrupted, None), 70), 70);
        assert_eq!(
            budget_charge(&with(CallStatus::ProviderError, Some(200)), 70),
            70
        );
        assert_eq!(
            budget_charge(&with(CallStatus::ProviderError, Some(500)), 70),
            0
        );
        assert_eq!(budget_charge(&with(CallStatus::Unreachable, None), 70), 0);
        let priced = Settlement {
            cost_micro_usd: Some(12),
            ..with(CallStatus::Ok, Some(200))
        };
        assert_eq!(budget_charge(&priced, 70), 12);
        let unpriced = Settlement {
            input_tokens: Some(5),
            ..with(CallStatus::Ok, Some(200))
        };
        assert_eq!(budget_charge(&unpriced, 70), 0);
    }
}
