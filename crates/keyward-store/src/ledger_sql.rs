//! The ledger's write statements and the values they bind, shared by its two engines: sqlx
//! (PostgreSQL, and every read) in `ledger.rs`, and the SQLite writer thread in
//! `ledger_sqlite.rs`. One text per statement, so the engines cannot drift apart.
//!
//! Parameters are `$N`: PostgreSQL's positional form, which SQLite reads as the named
//! parameter `"$N"` (the writer binds by that name).

use std::collections::BTreeMap;

use keyward_core::{RequestId, Timestamp};

use crate::budget::budget_columns;
use crate::{Admission, BudgetRecord, PendingCall, Settlement, StoreError, WindowSpend};

/// The pending row's columns, and the values [`PendingRow`] binds to them ($1..$15).
macro_rules! pending_row {
    (columns) => {
        "request_id, created_at, tenant_id, key_id, department_id, credential_id,
         credential_label, provider, endpoint, model_requested, status, stream, tags,
         fallback_of, reserved_micro_usd, instance_id"
    };
    (values) => {
        "$1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12, $13, $14, $15"
    };
}

/// The pending row, before the call goes upstream ($1..$15 in [`PendingRow`]'s order).
pub(crate) const INSERT_PENDING: &str = concat!(
    "INSERT INTO ledger (",
    pending_row!(columns),
    ") VALUES (",
    pending_row!(values),
    ")"
);

/// The pending row of a call no budget applies to, in one statement: inserted (one row
/// affected) only if the call's tenant has no budget, its department ($16, or "") none, its
/// key ($17, or "") none. Zero rows: budgets apply, so the call takes the full admission
/// (budgets read, reserved, in a transaction). As in that transaction, budgets are read as of
/// the statement's start.
pub(crate) const INSERT_PENDING_UNBUDGETED: &str = concat!(
    "INSERT INTO ledger (",
    pending_row!(columns),
    ") SELECT ",
    pending_row!(values),
    " WHERE NOT EXISTS (SELECT 1 FROM budgets WHERE tenant_id = $3 AND (scope_kind = 'tenant'
         OR (scope_kind = 'department' AND scope_id = $16)
         OR (scope_kind = 'key' AND scope_id = $17)))"
);

/// The budgets that apply to a call: its tenant's ($1), its department's ($2), its key's ($3).
pub(crate) const APPLICABLE_BUDGETS: &str = concat!(
    "SELECT ",
    budget_columns!(),
    " FROM budgets WHERE tenant_id = $1 AND (scope_kind = 'tenant'
         OR (scope_kind = 'department' AND scope_id = $2)
         OR (scope_kind = 'key' AND scope_id = $3))"
);

/// Creates budget $1's window $2 if this is its first call.
pub(crate) const OPEN_WINDOW: &str = "INSERT INTO budget_windows (budget_id, window_start,
         spent_micro_usd, reserved_micro_usd, soft_alerted) VALUES ($1, $2, 0, 0, 0)
     ON CONFLICT (budget_id, window_start) DO NOTHING";

/// Reserves $3 in budget $1's window $2 unless that would pass its hard limit: one row
/// affected means reserved.
pub(crate) const RESERVE: &str = "UPDATE budget_windows
     SET reserved_micro_usd = reserved_micro_usd + $3
     WHERE budget_id = $1 AND window_start = $2 AND (
         (SELECT hard_limit_micro_usd FROM budgets WHERE id = $1) IS NULL
         OR spent_micro_usd + reserved_micro_usd + $3
             <= (SELECT hard_limit_micro_usd FROM budgets WHERE id = $1))";

/// Spent and reserved of budget $1's window $2.
pub(crate) const WINDOW_SPEND: &str = "SELECT spent_micro_usd, reserved_micro_usd
     FROM budget_windows WHERE budget_id = $1 AND window_start = $2";

/// Records on row $1 the windows its reservation is held in ($2, see [`held_windows`]).
pub(crate) const HOLD_WINDOWS: &str = "UPDATE ledger SET budget_windows = $2 WHERE request_id = $1";

/// The settlement of row $13 if still pending ($1..$15 in [`SettlementRow`]'s order).
macro_rules! settle_pending_row {
    () => {
        "UPDATE ledger SET status = $1, http_status = $2,
             model_reported = $3, provider_request_id = $4, input_tokens = $5,
             cached_input_tokens = $6, cache_write_tokens = $7, output_tokens = $8,
             reasoning_tokens = $9, latency_ms = $10, ttfb_ms = $11, settled_at = $12,
             cost_micro_usd = $14, price_id = $15
         WHERE request_id = $13 AND status = 'pending'"
    };
}

/// Settles row $13 if still pending ($1..$15 in [`SettlementRow`]'s order); returns what it
/// held.
pub(crate) const SETTLE: &str = concat!(
    settle_pending_row!(),
    " RETURNING reserved_micro_usd, budget_windows"
);

/// [`SETTLE`] for a row that holds no budget window, in one statement with nothing to
/// release: a row returned means settled. None: the row is not pending or holds windows, so
/// it takes the full settlement (releases, soft limits, in a transaction).
pub(crate) const SETTLE_UNBUDGETED: &str = concat!(
    settle_pending_row!(),
    " AND budget_windows IS NULL RETURNING reserved_micro_usd, budget_windows"
);

/// Moves reservation $3 out of budget $1's window $2 and adds charge $4 to its spend.
pub(crate) const RELEASE: &str = "UPDATE budget_windows
     SET reserved_micro_usd = reserved_micro_usd - $3, spent_micro_usd = spent_micro_usd + $4
     WHERE budget_id = $1 AND window_start = $2";

/// Marks budget $1's window $2 soft-alerted if its spend reached the soft limit and it was
/// not yet: one row affected means this charge crossed it.
pub(crate) const MARK_SOFT_ALERTED: &str = "UPDATE budget_windows SET soft_alerted = 1
     WHERE budget_id = $1 AND window_start = $2 AND soft_alerted = 0
         AND spent_micro_usd >= (SELECT soft_limit_micro_usd FROM budgets WHERE id = $1)";

/// Budget $1.
pub(crate) const BUDGET: &str =
    concat!("SELECT ", budget_columns!(), " FROM budgets WHERE id = $1");

/// Spent in budget $1's window $2.
pub(crate) const WINDOW_SPENT: &str =
    "SELECT spent_micro_usd FROM budget_windows WHERE budget_id = $1 AND window_start = $2";

/// A pending call as [`INSERT_PENDING`] binds it.
pub(crate) struct PendingRow<'a> {
    pub request_id: String,
    pub created_at: i64,
    pub tenant_id: String,
    pub key_id: Option<String>,
    pub department_id: Option<String>,
    pub credential_id: String,
    pub credential_label: &'a str,
    pub provider: &'static str,
    pub endpoint: &'static str,
    pub model_requested: &'a str,
    pub stream: i64,
    pub tags: String,
    pub fallback_of: Option<String>,
    pub reserved_micro_usd: i64,
    pub instance: Option<&'a str>,
}

impl<'a> PendingRow<'a> {
    pub(crate) fn of(call: &'a PendingCall, instance: Option<&'a str>) -> Result<Self, StoreError> {
        Ok(Self {
            request_id: call.request_id.to_string(),
            created_at: call.created_at.unix_millis(),
            tenant_id: call.tenant_id.to_string(),
            key_id: call.key_id.map(|id| id.to_string()),
            department_id: call.department_id.map(|id| id.to_string()),
            credential_id: call.credential_id.to_string(),
            credential_label: &call.credential_label,
            provider: call.provider.as_str(),
            endpoint: call.endpoint,
            model_requested: &call.model_requested,
            stream: i64::from(call.stream),
            tags: tags_json(&call.tags, call.request_id)?,
            fallback_of: call.fallback_of.map(|id| id.to_string()),
            reserved_micro_usd: call.reserved_micro_usd,
            instance,
        })
    }
}

/// The scope ids [`APPLICABLE_BUDGETS`] binds: tenant, department (or ""), key (or "").
pub(crate) fn budget_scope(call: &PendingCall) -> [String; 3] {
    [
        call.tenant_id.to_string(),
        call.department_id
            .map(|id| id.to_string())
            .unwrap_or_default(),
        call.key_id.map(|id| id.to_string()).unwrap_or_default(),
    ]
}

/// A settlement as [`SETTLE`] binds it.
pub(crate) struct SettlementRow<'a> {
    pub status: &'static str,
    pub http_status: Option<i64>,
    pub model_reported: Option<&'a str>,
    pub provider_request_id: Option<&'a str>,
    pub input_tokens: Option<i64>,
    pub cached_input_tokens: Option<i64>,
    pub cache_write_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub reasoning_tokens: Option<i64>,
    pub latency_ms: Option<i64>,
    pub ttfb_ms: Option<i64>,
    pub settled_at: i64,
    pub request_id: String,
    pub cost_micro_usd: Option<i64>,
    pub price_id: Option<&'a str>,
}

impl<'a> SettlementRow<'a> {
    pub(crate) fn of(request_id: RequestId, settlement: &'a Settlement, at: Timestamp) -> Self {
        Self {
            status: settlement
                .status
                .unwrap_or(crate::CallStatus::ProviderError)
                .as_str(),
            http_status: settlement.http_status.map(i64::from),
            model_reported: settlement.model_reported.as_deref(),
            provider_request_id: settlement.provider_request_id.as_deref(),
            input_tokens: stored(settlement.input_tokens),
            cached_input_tokens: stored(settlement.cached_input_tokens),
            cache_write_tokens: stored(settlement.cache_write_tokens),
            output_tokens: stored(settlement.output_tokens),
            reasoning_tokens: stored(settlement.reasoning_tokens),
            latency_ms: stored(settlement.latency_ms),
            ttfb_ms: stored(settlement.ttfb_ms),
            settled_at: at.unix_millis(),
            request_id: request_id.to_string(),
            cost_micro_usd: settlement.cost_micro_usd,
            price_id: settlement.price_id.as_deref(),
        }
    }
}

/// A count as stored (BIGINT); saturates rather than wraps.
pub(crate) fn stored(value: Option<u64>) -> Option<i64> {
    value.map(|value| i64::try_from(value).unwrap_or(i64::MAX))
}

fn tags_json(tags: &BTreeMap<String, String>, request_id: RequestId) -> Result<String, StoreError> {
    serde_json::to_string(tags).map_err(|_| StoreError::corrupt("ledger", "tags", request_id))
}

/// The `budget_windows` column: the (budget id, window) pairs a reservation is held in.
pub(crate) fn held_windows(
    request_id: RequestId,
    held: &[(String, String)],
) -> Result<String, StoreError> {
    serde_json::to_string(held)
        .map_err(|_| StoreError::corrupt("ledger", "budget_windows", request_id))
}

/// Reads the `budget_windows` column back.
pub(crate) fn parse_held_windows(
    request_id: &str,
    held: &str,
) -> Result<Vec<(String, String)>, StoreError> {
    serde_json::from_str(held)
        .map_err(|_| StoreError::corrupt("ledger", "budget_windows", request_id))
}

/// The refusal of a call whose cost a hard cap that applies to it could not count — no price,
/// or an input with no bound — if it is one.
pub(crate) fn uncountable_under_cap(
    call: &PendingCall,
    budgets: &[BudgetRecord],
) -> Option<Admission> {
    if call.priced && call.unbounded_input.is_none() {
        return None;
    }
    let budget = budgets
        .iter()
        .find(|budget| budget.hard_limit_micro_usd.is_some())?
        .clone();
    Some(match call.unbounded_input {
        Some(field) if call.priced => Admission::Unbounded { budget, field },
        _ => Admission::Unpriced { budget },
    })
}

/// The refusal for a budget whose window has no room (its counters as read, if any).
pub(crate) fn over_budget(
    budget: BudgetRecord,
    window: String,
    spend: Option<(i64, i64)>,
) -> Admission {
    let (spent, reserved) = spend.unwrap_or_default();
    Admission::OverBudget {
        budget,
        window,
        spend: WindowSpend {
            spent_micro_usd: spent,
            reserved_micro_usd: reserved,
        },
    }
}
