//! Budgets and their per-window spend counters.
//!
//! Invariants:
//! - A window's `spent + reserved` only grows past its hard limit through the settlement of a
//!   call already admitted (a call that used more than its worst case), never through an
//!   admission: admission is a conditional `UPDATE` in the transaction that writes the call's
//!   ledger row (see `ledger.rs`).
//! - Windows are created lazily by the first call in them; a budget created mid-window starts
//!   from the ledger's recorded cost for that window and scope.

use keyward_core::{BudgetId, BudgetPeriod, TenantId, Timestamp, Window};

use crate::{Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum BudgetScopeKind {
    Tenant,
    Department,
    Key,
}

impl BudgetScopeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Tenant => "tenant",
            Self::Department => "department",
            Self::Key => "key",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Tenant, Self::Department, Self::Key]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }

    /// The ledger column a scope's id is matched against.
    fn ledger_column(self) -> Option<&'static str> {
        match self {
            Self::Tenant => None,
            Self::Department => Some("department_id"),
            Self::Key => Some("key_id"),
        }
    }
}

#[derive(Clone, Debug)]
pub struct BudgetRecord {
    pub id: BudgetId,
    pub tenant_id: TenantId,
    pub scope_kind: BudgetScopeKind,
    /// Empty for the tenant scope; else a department or platform key id.
    pub scope_id: String,
    pub period: BudgetPeriod,
    pub hard_limit_micro_usd: Option<i64>,
    pub soft_limit_micro_usd: Option<i64>,
    pub created_at: Timestamp,
    pub updated_at: Timestamp,
}

/// A budget's counters in one window.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct WindowSpend {
    pub spent_micro_usd: i64,
    pub reserved_micro_usd: i64,
}

#[derive(sqlx::FromRow)]
pub(crate) struct BudgetRow {
    id: String,
    tenant_id: String,
    scope_kind: String,
    scope_id: String,
    period: String,
    hard_limit_micro_usd: Option<i64>,
    soft_limit_micro_usd: Option<i64>,
    created_at: i64,
    updated_at: i64,
}

impl TryFrom<BudgetRow> for BudgetRecord {
    type Error = StoreError;
    fn try_from(row: BudgetRow) -> Result<Self, StoreError> {
        let corrupt = |column| StoreError::corrupt("budgets", column, &row.id);
        Ok(Self {
            scope_kind: BudgetScopeKind::parse(&row.scope_kind)
                .ok_or_else(|| corrupt("scope_kind"))?,
            period: BudgetPeriod::parse(&row.period).ok_or_else(|| corrupt("period"))?,
            id: row.id.parse().map_err(|_| corrupt("id"))?,
            tenant_id: row.tenant_id.parse().map_err(|_| corrupt("tenant_id"))?,
            scope_id: row.scope_id,
            hard_limit_micro_usd: row.hard_limit_micro_usd,
            soft_limit_micro_usd: row.soft_limit_micro_usd,
            created_at: Timestamp::from_unix_millis(row.created_at),
            updated_at: Timestamp::from_unix_millis(row.updated_at),
        })
    }
}

/// The `budgets` columns in [`BudgetRow`]'s order, as a literal for `concat!`.
macro_rules! budget_columns {
    () => {
        "id, tenant_id, scope_kind, scope_id, period, hard_limit_micro_usd, \
         soft_limit_micro_usd, created_at, updated_at"
    };
}
pub(crate) use budget_columns;

pub(crate) const BUDGET_COLUMNS: &str = budget_columns!();

impl BudgetRow {
    /// Reads a row selected with [`BUDGET_COLUMNS`] on the ledger writer's connection.
    pub(crate) fn from_sqlite(row: &rusqlite::Row<'_>) -> rusqlite::Result<Self> {
        Ok(Self {
            id: row.get(0)?,
            tenant_id: row.get(1)?,
            scope_kind: row.get(2)?,
            scope_id: row.get(3)?,
            period: row.get(4)?,
            hard_limit_micro_usd: row.get(5)?,
            soft_limit_micro_usd: row.get(6)?,
            created_at: row.get(7)?,
            updated_at: row.get(8)?,
        })
    }
}

impl Store {
    /// Creates or updates the budget for `(tenant, scope, period)`; returns it as stored. A
    /// new budget's current window starts from the cost the ledger already holds for it.
    pub async fn put_budget(&self, budget: &BudgetRecord) -> Result<BudgetRecord, StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query(&format!(
            "INSERT INTO budgets ({BUDGET_COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $8)
             ON CONFLICT (tenant_id, scope_kind, scope_id, period) DO UPDATE SET
                 hard_limit_micro_usd = $6, soft_limit_micro_usd = $7, updated_at = $8"
        ))
        .bind(budget.id.to_string())
        .bind(budget.tenant_id.to_string())
        .bind(budget.scope_kind.as_str())
        .bind(&budget.scope_id)
        .bind(budget.period.as_str())
        .bind(budget.hard_limit_micro_usd)
        .bind(budget.soft_limit_micro_usd)
        .bind(budget.updated_at.unix_millis())
        .execute(&mut *tx)
        .await?;
        let stored: BudgetRecord = sqlx::query_as::<_, BudgetRow>(&format!(
            "SELECT {BUDGET_COLUMNS} FROM budgets
             WHERE tenant_id = $1 AND scope_kind = $2 AND scope_id = $3 AND period = $4"
        ))
        .bind(budget.tenant_id.to_string())
        .bind(budget.scope_kind.as_str())
        .bind(&budget.scope_id)
        .bind(budget.period.as_str())
        .fetch_one(&mut *tx)
        .await?
        .try_into()?;
        let window = stored.period.window(budget.updated_at);
        let exists: Option<i64> = sqlx::query_scalar(
            "SELECT spent_micro_usd FROM budget_windows WHERE budget_id = $1 AND window_start = $2",
        )
        .bind(stored.id.to_string())
        .bind(&window.key)
        .fetch_optional(&mut *tx)
        .await?;
        if exists.is_none() {
            let spent = recorded_cost(&mut tx, &stored, &window).await?;
            sqlx::query(
                "INSERT INTO budget_windows (budget_id, window_start, spent_micro_usd,
                     reserved_micro_usd, soft_alerted) VALUES ($1, $2, $3, 0, 0)",
            )
            .bind(stored.id.to_string())
            .bind(&window.key)
            .bind(spent)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(stored)
    }

    pub async fn budgets(&self, tenant: TenantId) -> Result<Vec<BudgetRecord>, StoreError> {
        sqlx::query_as::<_, BudgetRow>(&format!(
            "SELECT {BUDGET_COLUMNS} FROM budgets WHERE tenant_id = $1
             ORDER BY scope_kind, scope_id, period"
        ))
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(BudgetRecord::try_from)
        .collect()
    }

    /// A budget's counters in one window (zero if no call fell in it yet).
    pub async fn window_spend(
        &self,
        budget_id: BudgetId,
        window: &str,
    ) -> Result<WindowSpend, StoreError> {
        let row: Option<(i64, i64)> = sqlx::query_as(
            "SELECT spent_micro_usd, reserved_micro_usd FROM budget_windows
             WHERE budget_id = $1 AND window_start = $2",
        )
        .bind(budget_id.to_string())
        .bind(window)
        .fetch_optional(&self.pool)
        .await?;
        Ok(
            row.map_or_else(WindowSpend::default, |(spent, reserved)| WindowSpend {
                spent_micro_usd: spent,
                reserved_micro_usd: reserved,
            }),
        )
    }
}

/// The settled cost the ledger holds for a budget's scope in a window.
async fn recorded_cost(
    tx: &mut sqlx::Transaction<'_, sqlx::Any>,
    budget: &BudgetRecord,
    window: &Window,
) -> Result<i64, StoreError> {
    let scope_filter = budget.scope_kind.ledger_column().map_or_else(
        || " AND $4 = ''".to_owned(),
        |column| format!(" AND {column} = $4"),
    );
    let sum: Option<i64> = sqlx::query_scalar(&format!(
        "SELECT CAST(SUM(cost_micro_usd) AS BIGINT) FROM ledger WHERE tenant_id = $1 AND created_at >= $2
             AND created_at < $3 AND status <> 'pending'{scope_filter}"
    ))
    .bind(budget.tenant_id.to_string())
    .bind(window.start.unix_millis())
    .bind(window.end.unix_millis())
    .bind(&budget.scope_id)
    .fetch_one(&mut **tx)
    .await?;
    Ok(sum.unwrap_or(0))
}
