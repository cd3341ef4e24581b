//! The usage ledger: the durable record of every upstream call.
//!
//! Invariant: a call's row is committed with status `pending` before the call goes upstream,
//! and only a `pending` row can be settled — once. Rows still `pending` when a process starts
//! belong to a process that died mid-call; they become `interrupted`.

use std::collections::BTreeMap;

use keyward_core::{
    CredentialId, DepartmentId, PlatformKeyId, ProviderId, RequestId, TenantId, Timestamp,
};

use crate::{Page, PageRequest, Store, StoreError};

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

    fn parse(text: &str) -> Option<Self> {
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

fn stored(value: Option<u64>) -> Option<i64> {
    value.map(|value| i64::try_from(value).unwrap_or(i64::MAX))
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
    /// Commits a call's row before it goes upstream.
    pub async fn insert_pending_call(&self, call: &PendingCall) -> Result<(), StoreError> {
        let tags = serde_json::to_string(&call.tags)
            .map_err(|_| StoreError::corrupt("ledger", "tags", call.request_id))?;
        sqlx::query(
            "INSERT INTO ledger (request_id, created_at, tenant_id, key_id, department_id,
                 credential_id, credential_label, provider, endpoint, model_requested, status,
                 stream, tags, fallback_of)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, 'pending', $11, $12, $13)",
        )
        .bind(call.request_id.to_string())
        .bind(call.created_at.unix_millis())
        .bind(call.tenant_id.to_string())
        .bind(call.key_id.map(|id| id.to_string()))
        .bind(call.department_id.map(|id| id.to_string()))
        .bind(call.credential_id.to_string())
        .bind(&call.credential_label)
        .bind(call.provider.as_str())
        .bind(call.endpoint)
        .bind(&call.model_requested)
        .bind(i64::from(call.stream))
        .bind(tags)
        .bind(call.fallback_of.map(|id| id.to_string()))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// Settles a pending row. Returns whether a pending row was settled.
    pub async fn settle_call(
        &self,
        request_id: RequestId,
        settlement: &Settlement,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let status = settlement.status.unwrap_or(CallStatus::ProviderError);
        let result = sqlx::query(
            "UPDATE ledger SET status = $1, http_status = $2, model_reported = $3,
                 provider_request_id = $4, input_tokens = $5, cached_input_tokens = $6,
                 cache_write_tokens = $7, output_tokens = $8, reasoning_tokens = $9,
                                  latency_ms = $10, ttfb_ms = $11, settled_at = $12, cost_micro_usd = $14,
                 price_id = $15
             WHERE request_id = $13 AND status = 'pending'",
        )
        .bind(status.as_str())
        .bind(settlement.http_status.map(i64::from))
        .bind(settlement.model_reported.as_deref())
        .bind(settlement.provider_request_id.as_deref())
        .bind(stored(settlement.input_tokens))
        .bind(stored(settlement.cached_input_tokens))
        .bind(stored(settlement.cache_write_tokens))
        .bind(stored(settlement.output_tokens))
        .bind(stored(settlement.reasoning_tokens))
        .bind(stored(settlement.latency_ms))
        .bind(stored(settlement.ttfb_ms))
        .bind(at.unix_millis())
        .bind(request_id.to_string())
        .bind(settlement.cost_micro_usd)
        .bind(settlement.price_id.as_deref())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Marks every `pending` row `interrupted` (run at startup, before serving).
    pub async fn interrupt_pending_calls(&self, at: Timestamp) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE ledger SET status = 'interrupted', settled_at = $1 WHERE status = 'pending'",
        )
        .bind(at.unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
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
