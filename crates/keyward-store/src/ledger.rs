//! The usage ledger: the durable record of every upstream call.
//!
//! Invariant: a call's row is committed with status `pending` before the call goes upstream,
//! and only a `pending` row can be settled — once. Rows still `pending` when a process starts
//! belong to a process that died mid-call; they become `interrupted`.

use std::collections::BTreeMap;

use keyward_core::timestamp::DAY_MILLIS;
use keyward_core::{
    CredentialId, DepartmentId, PlatformKeyId, ProviderId, RequestId, TenantId, Timestamp,
};

use sqlx::pool::PoolConnection;
use sqlx::Connection;

use crate::budget::BudgetRow;
use crate::ledger_sql::{self as sql, PendingRow, SettlementRow};
use crate::{BudgetRecord, Page, PageRequest, Store, StoreError, WindowSpend};

/// Times a PostgreSQL settlement that failed transiently is tried again (see
/// [`Store::settle_call`]).
const SETTLE_RETRIES: u32 = 3;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CallStatus {
    Pending,
    Ok,
    /// The provider answered with an error, or its stream broke off.
    ProviderError,
    ClientCancelled,
    Timeout,
    /// The provider could not be reached.
    Unreachable,
    /// The base URL resolved to an address the egress policy refuses.
    EgressBlocked,
    /// Left pending by a process that stopped mid-call; to be reconciled.
    Interrupted,
}

impl CallStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Ok => "ok",
            Self::ProviderError => "provider_error",
            Self::ClientCancelled => "client_cancelled",
            Self::Timeout => "timeout",
            Self::Unreachable => "unreachable",
            Self::EgressBlocked => "egress_blocked",
            Self::Interrupted => "interrupted",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            Self::Pending,
            Self::Ok,
            Self::ProviderError,
            Self::ClientCancelled,
            Self::Timeout,
            Self::Unreachable,
            Self::EgressBlocked,
            Self::Interrupted,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// What is known before the call goes upstream.
#[derive(Clone, Debug)]
pub struct PendingCall {
    pub request_id: RequestId,
    pub created_at: Timestamp,
    pub tenant_id: TenantId,
    /// `None` for calls not made with a platform key (credential verification).
    pub key_id: Option<PlatformKeyId>,
    pub department_id: Option<DepartmentId>,
    pub credential_id: CredentialId,
    pub credential_label: String,
    pub provider: ProviderId,
    pub endpoint: &'static str,
    pub model_requested: String,
    pub stream: bool,
    pub tags: BTreeMap<String, String>,
    /// The request id of the first attempt, when this call is a configured fallback.
    pub fallback_of: Option<RequestId>,
    /// The call's worst-case cost, held against every budget that applies until it settles.
    pub reserved_micro_usd: i64,
    /// Whether the call has a price. An unpriced call is refused wherever a hard cap applies
    /// ([`Admission::Unpriced`]): its cost could not be counted against the cap.
    pub priced: bool,
    /// What makes the call's input tokens unbounded before it is sent (a file reference, a
    /// previous response), if anything. Such a call is refused wherever a hard cap applies
    /// ([`Admission::Unbounded`]).
    pub unbounded_input: Option<&'static str>,
}

/// Whether a call may go upstream.
#[derive(Clone, Debug)]
pub enum Admission {
    /// The row is committed and the reservation held.
    Admitted,
    /// A hard cap applies to a call whose model has no price: nothing was written.
    Unpriced { budget: BudgetRecord },
    /// A hard cap applies to a call whose input cannot be bounded (`field` says why):
    /// nothing was written.
    Unbounded {
        budget: BudgetRecord,
        field: &'static str,
    },
    /// A hard limit would be passed: nothing was written.
    OverBudget {
        budget: BudgetRecord,
        window: String,
        spend: WindowSpend,
    },
}

/// A budget whose soft limit a settlement crossed; reported once per window.
#[derive(Clone, Debug)]
pub struct SoftLimitCrossed {
    pub budget: BudgetRecord,
    pub window: String,
    pub spent_micro_usd: i64,
}

/// What settling a row did.
#[derive(Clone, Debug, Default)]
pub struct Settled {
    /// False when the row was not pending (already settled, or never written).
    pub settled: bool,
    pub soft_limits_crossed: Vec<SoftLimitCrossed>,
}

impl Settled {
    /// Settled a row that held no budget window: nothing released, no limit crossed.
    pub(crate) fn nothing_released() -> Self {
        Self {
            settled: true,
            soft_limits_crossed: Vec::new(),
        }
    }
}

/// What is known when the call ends.
#[derive(Clone, Debug, Default)]
pub struct Settlement {
    pub status: Option<CallStatus>,
    pub http_status: Option<u16>,
    pub model_reported: Option<String>,
    pub provider_request_id: Option<String>,
    pub input_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub latency_ms: Option<u64>,
    pub ttfb_ms: Option<u64>,
    /// Integer micro-dollars at the price `price_id` names; `None` when unpriced.
    pub cost_micro_usd: Option<i64>,
    pub price_id: Option<String>,
    /// What the budgets count as spent: the cost, or the worst case when the usage is unknown
    /// but the provider may have billed.
    pub budget_charge_micro_usd: i64,
}

/// A ledger row as stored.
#[derive(Clone, Debug)]
pub struct CallRecord {
    pub request_id: String,
    pub created_at: Timestamp,
    pub tenant_id: String,
    pub key_id: Option<String>,
    pub department_id: Option<String>,
    pub credential_id: String,
    pub credential_label: String,
    pub provider: String,
    pub endpoint: String,
    pub model_requested: String,
    pub model_reported: Option<String>,
    pub provider_request_id: Option<String>,
    pub status: CallStatus,
    pub http_status: Option<u16>,
    pub stream: bool,
    pub input_tokens: Option<u64>,
    pub cached_input_tokens: Option<u64>,
    pub cache_write_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub reasoning_tokens: Option<u64>,
    pub cost_micro_usd: Option<i64>,
    pub price_id: Option<String>,
    pub latency_ms: Option<u64>,
    pub ttfb_ms: Option<u64>,
    pub tags: BTreeMap<String, String>,
    pub fallback_of: Option<String>,
}

#[derive(sqlx::FromRow)]
struct CallRow {
    request_id: String,
    created_at: i64,
    tenant_id: String,
    key_id: Option<String>,
    department_id: Option<String>,
    credential_id: String,
    credential_label: String,
    provider: String,
    endpoint: String,
    model_requested: String,
    model_reported: Option<String>,
    provider_request_id: Option<String>,
    status: String,
    http_status: Option<i64>,
    stream: i64,
    input_tokens: Option<i64>,
    cached_input_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
    output_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    cost_micro_usd: Option<i64>,
    price_id: Option<String>,
    latency_ms: Option<i64>,
    ttfb_ms: Option<i64>,
    tags: String,
    fallback_of: Option<String>,
}

fn count(value: Option<i64>) -> Option<u64> {
    value.and_then(|value| u64::try_from(value).ok())
}

impl TryFrom<CallRow> for CallRecord {
    type Error = StoreError;
    fn try_from(row: CallRow) -> Result<Self, StoreError> {
        let corrupt = |column| StoreError::corrupt("ledger", column, &row.request_id);
        Ok(Self {
            status: CallStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            tags: serde_json::from_str(&row.tags).map_err(|_| corrupt("tags"))?,
            http_status: row
                .http_status
                .and_then(|status| u16::try_from(status).ok()),
            created_at: Timestamp::from_unix_millis(row.created_at),
            stream: row.stream != 0,
            input_tokens: count(row.input_tokens),
            cached_input_tokens: count(row.cached_input_tokens),
            cache_write_tokens: count(row.cache_write_tokens),
            output_tokens: count(row.output_tokens),
            reasoning_tokens: count(row.reasoning_tokens),
            latency_ms: count(row.latency_ms),
            ttfb_ms: count(row.ttfb_ms),
            request_id: row.request_id,
            tenant_id: row.tenant_id,
            key_id: row.key_id,
            department_id: row.department_id,
            credential_id: row.credential_id,
            credential_label: row.credential_label,
            provider: row.provider,
            endpoint: row.endpoint,
            model_requested: row.model_requested,
            model_reported: row.model_reported,
            provider_request_id: row.provider_request_id,
            cost_micro_usd: row.cost_micro_usd,
            price_id: row.price_id,
            fallback_of: row.fallback_of,
        })
    }
}

impl Store {
    /// Commits a call's `pending` row and reserves its worst-case cost in every budget that
    /// applies (tenant, department, key; each period), in one transaction. If a hard limit
    /// would be passed, nothing is written. On PostgreSQL a call no budget applies to is one
    /// autocommitted statement; otherwise the ledger insert comes first and budget rows are
    /// locked by the conditional updates: concurrent admissions serialise on the counters. On
    /// SQLite the work goes to the group-commit writer (one `BEGIN IMMEDIATE`
    /// transaction for many calls; a call budgets apply to in a savepoint of its own), the only
    /// writer of the ledger.
    pub async fn admit_call(&self, call: &PendingCall) -> Result<Admission, StoreError> {
        if let Some(writer) = &self.writer {
            return writer.admit(call.clone(), self.instance.clone()).await;
        }
        if self.admit_unbudgeted(call).await? {
            return Ok(Admission::Admitted);
        }
        let mut tx = self.pool.begin().await?;
        let admission = admit_in(&mut tx, call, self.instance.as_deref()).await?;
        match admission {
            Admission::Admitted => tx.commit().await?,
            Admission::OverBudget { .. }
            | Admission::Unpriced { .. }
            | Admission::Unbounded { .. } => tx.rollback().await?,
        }
        Ok(admission)
    }

    /// Settles a pending row and moves its reservation to spent (by the settlement's budget
    /// charge), in one transaction. Reports soft limits this settlement crossed.
    ///
    /// The call it records has been made and paid for, so on PostgreSQL a settlement that
    /// fails for a reason another connection may not have (see [`StoreError::is_transient`]:
    /// a connection the server closed, after a restart or a failover) is tried again, up to
    /// [`SETTLE_RETRIES`] times, each on a connection first tested with a round trip. Trying
    /// again is safe: a settlement only changes a row still `pending`, so one that committed
    /// before its answer was lost is not applied twice. The retry then reports
    /// `settled: false` and no soft limit crossed, so the alerts of a limit the lost attempt
    /// crossed are not sent.
    pub async fn settle_call(
        &self,
        request_id: RequestId,
        settlement: &Settlement,
        at: Timestamp,
    ) -> Result<Settled, StoreError> {
        if let Some(writer) = &self.writer {
            return writer.settle(request_id, settlement.clone(), at).await;
        }
        let row = SettlementRow::of(request_id, settlement, at);
        let mut connection = self.pool.acquire().await?;
        let mut retries = 0;
        loop {
            match settle_on(&mut connection, &row, settlement).await {
                Err(err) if err.is_transient() && retries < SETTLE_RETRIES => {
                    retries += 1;
                    tracing::warn!(%request_id, retries, error = %err, "settling the ledger row failed; trying again on another connection");
                    // Given back (closed) before another is taken: a pool of one would wait
                    // for itself otherwise.
                    connection.close_on_drop();
                    drop(connection);
                    connection = self.tested_connection().await?;
                }
                settled => return settled,
            }
        }
    }

    /// Records what is known of a call whose row was marked `interrupted` while it ran (its
    /// replica was judged gone, then finished it after all): the usage, cost and timings are
    /// written; the status stays `interrupted`, which with usage present says it was settled
    /// late. The budgets keep what the sweep charged (the reservation, an upper bound). False
    /// when the row is not such a row.
    pub async fn record_late_settlement(
        &self,
        request_id: RequestId,
        settlement: &Settlement,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let row = SettlementRow::of(request_id, settlement, at);
        let result = sqlx::query(
            "UPDATE ledger SET http_status = $1, model_reported = $2, provider_request_id = $3,
                 input_tokens = $4, cached_input_tokens = $5, cache_write_tokens = $6,
                 output_tokens = $7, reasoning_tokens = $8, latency_ms = $9, ttfb_ms = $10,
                 cost_micro_usd = $11, price_id = $12
             WHERE request_id = $13 AND status = 'interrupted'
               AND input_tokens IS NULL AND output_tokens IS NULL AND http_status IS NULL",
        )
        .bind(row.http_status)
        .bind(row.model_reported)
        .bind(row.provider_request_id)
        .bind(row.input_tokens)
        .bind(row.cached_input_tokens)
        .bind(row.cache_write_tokens)
        .bind(row.output_tokens)
        .bind(row.reasoning_tokens)
        .bind(row.latency_ms)
        .bind(row.ttfb_ms)
        .bind(row.cost_micro_usd)
        .bind(row.price_id)
        .bind(&row.request_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// A pooled connection that has just answered a round trip within the pool's acquire
    /// timeout; one that does not is closed and the next is tried (a restarted server leaves
    /// every pooled connection closed; a failed-over one may leave them silent).
    async fn tested_connection(&self) -> Result<PoolConnection<sqlx::Any>, StoreError> {
        let options = self.pool.options();
        let mut tries = 0;
        loop {
            let mut connection = self.pool.acquire().await?;
            let answered = tokio::time::timeout(options.get_acquire_timeout(), connection.ping())
                .await
                .unwrap_or(Err(sqlx::Error::PoolTimedOut));
            match answered {
                Ok(()) => return Ok(connection),
                Err(err) if tries >= options.get_max_connections() => return Err(err.into()),
                Err(_) => {
                    tries += 1;
                    connection.close_on_drop();
                }
            }
        }
    }

    /// The admission of a call no budget applies to, as one autocommitted statement (one round
    /// trip instead of four: begin, read budgets, insert, commit). `false`: budgets apply and
    /// nothing was written.
    async fn admit_unbudgeted(&self, call: &PendingCall) -> Result<bool, StoreError> {
        let row = PendingRow::of(call, self.instance.as_deref())?;
        let [_, department, key] = sql::budget_scope(call);
        let inserted = bind_pending(sqlx::query(sql::INSERT_PENDING_UNBUDGETED), row)
            .bind(department)
            .bind(key)
            .execute(&self.pool)
            .await?;
        Ok(inserted.rows_affected() == 1)
    }

    /// Marks `interrupted` the `pending` rows of the given dead instances, and, with
    /// `include_unowned`, rows written without an owner (by a version before instances). Their
    /// usage is unknown, so budgets count each one's whole reservation as spent. Each row is
    /// settled by a conditional update, so two replicas sweeping at once never both release it.
    pub async fn interrupt_pending_calls(
        &self,
        dead_instances: &[String],
        include_unowned: bool,
        at: Timestamp,
    ) -> Result<u64, StoreError> {
        let mut pending: Vec<String> = Vec::new();
        for instance in dead_instances {
            pending.extend(
                sqlx::query_scalar::<_, String>(
                    "SELECT request_id FROM ledger WHERE status = 'pending' AND instance_id = $1",
                )
                .bind(instance)
                .fetch_all(&self.pool)
                .await?,
            );
        }
        if include_unowned {
            pending.extend(
                sqlx::query_scalar::<_, String>(
                    "SELECT request_id FROM ledger WHERE status = 'pending' AND instance_id IS NULL",
                )
                .fetch_all(&self.pool)
                .await?,
            );
        }
        let mut interrupted = 0;
        for request_id in pending {
            let mut tx = self.pool.begin().await?;
            let held: Option<(Option<i64>, Option<String>)> = sqlx::query_as(
                "UPDATE ledger SET status = 'interrupted', settled_at = $1
                 WHERE request_id = $2 AND status = 'pending'
                 RETURNING reserved_micro_usd, budget_windows",
            )
            .bind(at.unix_millis())
            .bind(&request_id)
            .fetch_optional(&mut *tx)
            .await?;
            if let Some(held) = held {
                release_reservation(&mut tx, &request_id, held, None).await?;
                interrupted += 1;
            }
            tx.commit().await?;
        }
        Ok(interrupted)
    }

    pub async fn call(
        &self,
        tenant: TenantId,
        request_id: RequestId,
    ) -> Result<Option<CallRecord>, StoreError> {
        sqlx::query_as::<_, CallRow>(
            "SELECT * FROM ledger WHERE tenant_id = $1 AND request_id = $2",
        )
        .bind(tenant.to_string())
        .bind(request_id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(CallRecord::try_from)
        .transpose()
    }

    /// A tenant's calls in request-id (time) order.
    pub async fn calls(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<CallRecord>, StoreError> {
        let rows = sqlx::query_as::<_, CallRow>(
            "SELECT * FROM ledger WHERE tenant_id = $1 AND ($2 IS NULL OR request_id > $2)
             ORDER BY request_id LIMIT $3",
        )
        .bind(tenant.to_string())
        .bind(page.after.as_deref())
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        Page::<CallRecord>::convert(rows, page, |call| call.request_id.clone())
    }
}

/// Writes a call's pending row and its budget reservations on `connection` (inside the
/// caller's transaction). On `OverBudget` the caller must roll back what was written.
pub(crate) async fn admit_in(
    connection: &mut sqlx::AnyConnection,
    call: &PendingCall,
    instance: Option<&str>,
) -> Result<Admission, StoreError> {
    insert_pending(connection, call, instance).await?;
    let budgets = applicable_budgets(connection, call).await?;
    reserve(connection, call, budgets).await
}

/// The pending row alone (one statement: atomic by itself).
pub(crate) async fn insert_pending(
    connection: &mut sqlx::AnyConnection,
    call: &PendingCall,
    instance: Option<&str>,
) -> Result<(), StoreError> {
    let row = PendingRow::of(call, instance)?;
    bind_pending(sqlx::query(sql::INSERT_PENDING), row)
        .execute(&mut *connection)
        .await?;
    Ok(())
}

/// A statement with a pending row's values bound as $1..$15.
fn bind_pending<'q>(query: AnyQuery<'q>, row: PendingRow<'q>) -> AnyQuery<'q> {
    query
        .bind(row.request_id)
        .bind(row.created_at)
        .bind(row.tenant_id)
        .bind(row.key_id)
        .bind(row.department_id)
        .bind(row.credential_id)
        .bind(row.credential_label)
        .bind(row.provider)
        .bind(row.endpoint)
        .bind(row.model_requested)
        .bind(row.stream)
        .bind(row.tags)
        .bind(row.fallback_of)
        .bind(row.reserved_micro_usd)
        .bind(row.instance)
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;
type HeldQuery<'q> =
    sqlx::query::QueryAs<'q, sqlx::Any, (Option<i64>, Option<String>), sqlx::any::AnyArguments<'q>>;

/// A settling statement with a settlement's values bound as $1..$15.
fn bind_settlement<'q>(query: HeldQuery<'q>, row: &'q SettlementRow<'q>) -> HeldQuery<'q> {
    query
        .bind(row.status)
        .bind(row.http_status)
        .bind(row.model_reported)
        .bind(row.provider_request_id)
        .bind(row.input_tokens)
        .bind(row.cached_input_tokens)
        .bind(row.cache_write_tokens)
        .bind(row.output_tokens)
        .bind(row.reasoning_tokens)
        .bind(row.latency_ms)
        .bind(row.ttfb_ms)
        .bind(row.settled_at)
        .bind(&row.request_id)
        .bind(row.cost_micro_usd)
        .bind(row.price_id)
}

/// The budgets that apply to a call: its tenant's, its department's, its key's.
pub(crate) async fn applicable_budgets(
    connection: &mut sqlx::AnyConnection,
    call: &PendingCall,
) -> Result<Vec<BudgetRecord>, StoreError> {
    let [tenant, department, key] = sql::budget_scope(call);
    sqlx::query_as::<_, BudgetRow>(sql::APPLICABLE_BUDGETS)
        .bind(tenant)
        .bind(department)
        .bind(key)
        .fetch_all(&mut *connection)
        .await?
        .into_iter()
        .map(BudgetRecord::try_from)
        .collect()
}

/// Reserves a call's worst case in each budget (its pending row already written); on
/// `OverBudget` the caller rolls back.
pub(crate) async fn reserve(
    connection: &mut sqlx::AnyConnection,
    call: &PendingCall,
    budgets: Vec<BudgetRecord>,
) -> Result<Admission, StoreError> {
    if budgets.is_empty() {
        return Ok(Admission::Admitted);
    }
    if let Some(unpriced) = sql::uncountable_under_cap(call, &budgets) {
        return Ok(unpriced);
    }
    let mut held = Vec::with_capacity(budgets.len());
    for budget in budgets {
        let window = budget.period.window(call.created_at).key;
        sqlx::query(sql::OPEN_WINDOW)
            .bind(budget.id.to_string())
            .bind(&window)
            .execute(&mut *connection)
            .await?;
        let reserved = sqlx::query(sql::RESERVE)
            .bind(budget.id.to_string())
            .bind(&window)
            .bind(call.reserved_micro_usd)
            .execute(&mut *connection)
            .await?;
        if reserved.rows_affected() != 1 {
            let spend: Option<(i64, i64)> = sqlx::query_as(sql::WINDOW_SPEND)
                .bind(budget.id.to_string())
                .bind(&window)
                .fetch_optional(&mut *connection)
                .await?;
            return Ok(sql::over_budget(budget, window, spend));
        }
        held.push((budget.id.to_string(), window));
    }
    sqlx::query(sql::HOLD_WINDOWS)
        .bind(call.request_id.to_string())
        .bind(sql::held_windows(call.request_id, &held)?)
        .execute(&mut *connection)
        .await?;
    Ok(Admission::Admitted)
}

/// Settles on `connection`: one autocommitted statement for a row that held no budget
/// window, otherwise [`settle_in`] in a transaction.
async fn settle_on(
    connection: &mut sqlx::AnyConnection,
    row: &SettlementRow<'_>,
    settlement: &Settlement,
) -> Result<Settled, StoreError> {
    if bind_settlement(sqlx::query_as(sql::SETTLE_UNBUDGETED), row)
        .fetch_optional(&mut *connection)
        .await?
        .is_some()
    {
        return Ok(Settled::nothing_released());
    }
    let mut tx = connection.begin().await?;
    let settled = settle_in(&mut tx, row, settlement).await?;
    tx.commit().await?;
    Ok(settled)
}

/// Settles a pending row on `connection` (inside the caller's transaction); a row that is not
/// pending is left alone (`settled: false`).
pub(crate) async fn settle_in(
    connection: &mut sqlx::AnyConnection,
    row: &SettlementRow<'_>,
    settlement: &Settlement,
) -> Result<Settled, StoreError> {
    let held = bind_settlement(sqlx::query_as(sql::SETTLE), row)
        .fetch_optional(&mut *connection)
        .await?;
    let Some((reserved, held)) = held else {
        return Ok(Settled::default());
    };
    let soft_limits_crossed = release_reservation(
        connection,
        &row.request_id,
        (reserved, held),
        Some(settlement.budget_charge_micro_usd),
    )
    .await?;
    Ok(Settled {
        settled: true,
        soft_limits_crossed,
    })
}

/// Moves a settled row's reservation (its `reserved_micro_usd` and `budget_windows`, as the
/// settling UPDATE returned them) out of its budget windows, adding `charge` (or, when `None`,
/// the whole reservation) to spent. Returns the soft limits crossed by this charge.
async fn release_reservation(
    tx: &mut sqlx::AnyConnection,
    request_id: &str,
    (reserved, held): (Option<i64>, Option<String>),
    charge: Option<i64>,
) -> Result<Vec<SoftLimitCrossed>, StoreError> {
    let Some(held) = held else {
        return Ok(Vec::new());
    };
    let reserved = reserved.unwrap_or(0);
    let charge = charge.unwrap_or(reserved);
    let mut crossed = Vec::new();
    for (budget_id, window) in sql::parse_held_windows(request_id, &held)? {
        sqlx::query(sql::RELEASE)
            .bind(&budget_id)
            .bind(&window)
            .bind(reserved)
            .bind(charge)
            .execute(&mut *tx)
            .await?;
        let alerted = sqlx::query(sql::MARK_SOFT_ALERTED)
            .bind(&budget_id)
            .bind(&window)
            .execute(&mut *tx)
            .await?;
        if alerted.rows_affected() == 1 {
            let budget: BudgetRecord = sqlx::query_as::<_, BudgetRow>(sql::BUDGET)
                .bind(&budget_id)
                .fetch_one(&mut *tx)
                .await?
                .try_into()?;
            let spent: i64 = sqlx::query_scalar(sql::WINDOW_SPENT)
                .bind(&budget_id)
                .bind(&window)
                .fetch_one(&mut *tx)
                .await?;
            crossed.push(SoftLimitCrossed {
                budget,
                window,
                spent_micro_usd: spent,
            });
        }
    }
    Ok(crossed)
}

/// Requests routed for a tenant on one UTC day (days since the Unix epoch).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoutedRequests {
    pub day: i64,
    pub requests: i64,
}

impl Store {
    /// A tenant's calls created in `[from, to)`, in request-id (time) order, after the cursor
    /// `after`: the unit of a streamed export, so memory stays bounded by `limit`.
    pub async fn calls_between(
        &self,
        tenant: TenantId,
        from: Timestamp,
        to: Timestamp,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CallRecord>, StoreError> {
        sqlx::query_as::<_, CallRow>(
            "SELECT * FROM ledger WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
                 AND ($4 IS NULL OR request_id > $4)
             ORDER BY request_id LIMIT $5",
        )
        .bind(tenant.to_string())
        .bind(from.unix_millis())
        .bind(to.unix_millis())
        .bind(after)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(CallRecord::try_from)
        .collect()
    }

    /// One page of a tenant's calls in `[from, to)`, newest first, before the cursor (a request
    /// id; request ids grow with time), keeping only the calls `filter` matches.
    pub async fn calls_newest(
        &self,
        tenant: TenantId,
        (from, to): (Timestamp, Timestamp),
        filter: &CallFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CallRecord>, StoreError> {
        // Request ids are UUIDv7 (`RequestId::generate`), so they sort by the time they were
        // made, which is within the body-read timeout of `created_at`: bounding the id by the
        // range (an hour wider on each side) lets both databases walk the (tenant, request id)
        // index backwards and stop after `limit` rows; `created_at` keeps the range exact.
        let before = before
            .map(str::to_owned)
            .unwrap_or_else(|| request_id_bound(to.unix_millis().saturating_add(HOUR_MILLIS)));
        sqlx::query_as::<_, CallRow>(
            "SELECT * FROM ledger WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
                 AND request_id < $4 AND request_id >= $10
                 AND ($5 IS NULL OR model_requested = $5 OR model_reported = $5)
                 AND ($6 IS NULL OR key_id = $6)
                 AND ($7 IS NULL OR credential_id = $7)
                 AND ($8 IS NULL OR status = $8)
             ORDER BY request_id DESC LIMIT $9",
        )
        .bind(tenant.to_string())
        .bind(from.unix_millis())
        .bind(to.unix_millis())
        .bind(before)
        .bind(filter.model.as_deref())
        .bind(filter.key_id.as_deref())
        .bind(filter.credential_id.as_deref())
        .bind(filter.status.map(CallStatus::as_str))
        .bind(i64::from(limit))
        .bind(request_id_bound(
            from.unix_millis().saturating_sub(HOUR_MILLIS),
        ))
        .fetch_all(&self.pool)
        .await?
        .into_iter()
        .map(CallRecord::try_from)
        .collect()
    }

    /// A tenant's calls in `[from, to)` summed per value of `column`, by the database. Every
    /// sum is checked: a total past `i64` is an error on both backends (SQLite's integer
    /// `SUM` raises; PostgreSQL's `CAST(… AS BIGINT)` of the exact `numeric` sum raises), never
    /// a wrapped or rounded figure.
    pub async fn call_totals(
        &self,
        tenant: TenantId,
        (from, to): (Timestamp, Timestamp),
        column: TotalsColumn,
    ) -> Result<Vec<CallTotals>, StoreError> {
        let group = column.expression();
        let rows: Vec<TotalsRow> = sqlx::query_as(&format!(
            "SELECT {group} AS grp, COUNT(*) AS requests,
                 CAST(SUM(input_tokens) AS BIGINT) AS input_tokens,
                 CAST(SUM(cached_input_tokens) AS BIGINT) AS cached_input_tokens,
                 CAST(SUM(cache_write_tokens) AS BIGINT) AS cache_write_tokens,
                 CAST(SUM(output_tokens) AS BIGINT) AS output_tokens,
                 CAST(SUM(reasoning_tokens) AS BIGINT) AS reasoning_tokens,
                 CAST(SUM(cost_micro_usd) AS BIGINT) AS cost_micro_usd,
                 CAST(SUM(CASE WHEN cost_micro_usd IS NULL THEN 1 ELSE 0 END) AS BIGINT) AS unpriced,
                 CAST(SUM(CASE WHEN status = 'pending' THEN 1 ELSE 0 END) AS BIGINT) AS pending
             FROM ledger WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
             GROUP BY {group}"
        ))
        .bind(tenant.to_string())
        .bind(from.unix_millis())
        .bind(to.unix_millis())
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter().map(CallTotals::try_from).collect()
    }

    /// The tenants with a call made at or after `since` (to warm their usage totals).
    pub async fn tenants_with_calls_since(
        &self,
        since: Timestamp,
    ) -> Result<Vec<TenantId>, StoreError> {
        let rows: Vec<(String,)> =
            sqlx::query_as("SELECT DISTINCT tenant_id FROM ledger WHERE created_at >= $1")
                .bind(since.unix_millis())
                .fetch_all(&self.pool)
                .await?;
        rows.into_iter()
            .map(|(tenant,)| {
                tenant
                    .parse()
                    .map_err(|_| StoreError::corrupt("ledger", "tenant_id", &tenant))
            })
            .collect()
    }

    /// Requests routed per UTC day in `[from, to)`: calls made with a platform key, counting a
    /// request once however many fallback attempts it took; a knowledge base's own embedding
    /// calls (`endpoint` `embeddings`) are metered as retrievals and documents instead. No
    /// tokens, no dollars.
    pub async fn routed_requests_per_day(
        &self,
        tenant: TenantId,
        from: Timestamp,
        to: Timestamp,
    ) -> Result<Vec<RoutedRequests>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT created_at / $4 AS day, COUNT(*) FROM ledger
             WHERE tenant_id = $1 AND created_at >= $2 AND created_at < $3
                 AND key_id IS NOT NULL AND fallback_of IS NULL AND endpoint <> 'embeddings'
             GROUP BY created_at / $4 ORDER BY day",
        )
        .bind(tenant.to_string())
        .bind(from.unix_millis())
        .bind(to.unix_millis())
        .bind(DAY_MILLIS)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows
            .into_iter()
            .map(|(day, requests)| RoutedRequests { day, requests })
            .collect())
    }
}

/// Which calls a usage page keeps; `None` keeps every value.
#[derive(Clone, Debug, Default)]
pub struct CallFilter {
    /// Matches the model requested or the model the provider reported.
    pub model: Option<String>,
    pub key_id: Option<String>,
    pub credential_id: Option<String>,
    pub status: Option<CallStatus>,
}

/// What [`Store::call_totals`] groups by.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum TotalsColumn {
    /// The UTC day number (Unix milliseconds / 86,400,000), as text.
    Day,
    /// The model the provider reported, else the one requested.
    Model,
    /// The platform key id; `None` for Keyward's own calls.
    Key,
    Credential,
    /// The department id; `None` for calls without one.
    Department,
    Status,
}

impl TotalsColumn {
    fn expression(self) -> &'static str {
        match self {
            Self::Day => "CAST(created_at / 86400000 AS TEXT)",
            Self::Model => "COALESCE(model_reported, model_requested)",
            Self::Key => "key_id",
            Self::Credential => "credential_label",
            Self::Department => "department_id",
            Self::Status => "status",
        }
    }
}

/// One group's totals; token sums are `None` when no call of the group reported them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CallTotals {
    pub group: Option<String>,
    pub requests: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// The priced calls' costs.
    pub cost_micro_usd: i64,
    /// Calls without a cost.
    pub unpriced_requests: u64,
    /// Calls still in flight: their row (and these totals) will change.
    pub pending: u64,
}

#[derive(sqlx::FromRow)]
struct TotalsRow {
    grp: Option<String>,
    requests: i64,
    input_tokens: Option<i64>,
    cached_input_tokens: Option<i64>,
    cache_write_tokens: Option<i64>,
    output_tokens: Option<i64>,
    reasoning_tokens: Option<i64>,
    cost_micro_usd: Option<i64>,
    unpriced: Option<i64>,
    pending: Option<i64>,
}

impl TryFrom<TotalsRow> for CallTotals {
    type Error = StoreError;

    fn try_from(row: TotalsRow) -> Result<Self, StoreError> {
        let count = |value: Option<i64>, column| {
            u64::try_from(value.unwrap_or(0))
                .map_err(|_| StoreError::corrupt("ledger", column, "(totals)"))
        };
        Ok(Self {
            requests: count(Some(row.requests), "request_id")?,
            input_tokens: count(row.input_tokens, "input_tokens")?,
            cached_input_tokens: count(row.cached_input_tokens, "cached_input_tokens")?,
            cache_write_tokens: count(row.cache_write_tokens, "cache_write_tokens")?,
            output_tokens: count(row.output_tokens, "output_tokens")?,
            reasoning_tokens: count(row.reasoning_tokens, "reasoning_tokens")?,
            unpriced_requests: count(row.unpriced, "cost_micro_usd")?,
            pending: count(row.pending, "status")?,
            cost_micro_usd: row.cost_micro_usd.unwrap_or(0),
            group: row.grp,
        })
    }
}

const HOUR_MILLIS: i64 = 3_600_000;

/// The text that sorts just before every UUIDv7 request id made at or after `millis` (its
/// 48-bit millisecond prefix, as the hyphenated lowercase form writes it).
fn request_id_bound(millis: i64) -> String {
    let millis = millis.clamp(0, (1 << 48) - 1);
    format!("{:08x}-{:04x}", millis >> 16, millis & 0xffff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_id_bound_sorts_between_ids_made_before_and_after() {
        let now = Timestamp::now().unix_millis();
        let before = keyward_core::RequestId::generate().to_string();
        std::thread::sleep(std::time::Duration::from_millis(3));
        let bound = request_id_bound(Timestamp::now().unix_millis());
        std::thread::sleep(std::time::Duration::from_millis(3));
        let after = keyward_core::RequestId::generate().to_string();
        assert!(before.as_str() < bound.as_str(), "{before} < {bound}");
        assert!(bound.as_str() < after.as_str(), "{bound} < {after}");
        assert!(request_id_bound(now - HOUR_MILLIS) < before);
        assert_eq!(request_id_bound(-5), "00000000-0000");
        assert_eq!(request_id_bound(i64::MAX), "ffffffff-ffff");
    }
}
