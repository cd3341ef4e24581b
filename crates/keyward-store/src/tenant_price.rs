//! A tenant's negotiated rates, which take precedence over the shipped price book.

use keyward_core::TenantId;

use crate::{Store, StoreError};

/// Rates in micro-dollars per million tokens, in force from `effective` (`YYYY-MM-DD`).
#[derive(Clone, Debug, PartialEq, Eq, sqlx::FromRow)]
pub struct TenantPriceRecord {
    pub tenant_id: String,
    pub provider: String,
    pub model: String,
    pub effective: String,
    pub input_micro_usd: i64,
    pub cached_input_micro_usd: Option<i64>,
    pub cache_write_micro_usd: Option<i64>,
    pub output_micro_usd: i64,
    pub created_at: i64,
}

const COLUMNS: &str = "tenant_id, provider, model, effective, input_micro_usd, \
    cached_input_micro_usd, cache_write_micro_usd, output_micro_usd, created_at";

impl Store {
    /// Creates or replaces the tenant's rate for a provider and model from a date on.
    pub async fn put_tenant_price(&self, price: &TenantPriceRecord) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO tenant_prices ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
             ON CONFLICT (tenant_id, provider, model, effective) DO UPDATE SET
                 input_micro_usd = $5, cached_input_micro_usd = $6, cache_write_micro_usd = $7,
                 output_micro_usd = $8, created_at = $9"
        ))
        .bind(&price.tenant_id)
        .bind(&price.provider)
        .bind(&price.model)
        .bind(&price.effective)
        .bind(price.input_micro_usd)
        .bind(price.cached_input_micro_usd)
        .bind(price.cache_write_micro_usd)
        .bind(price.output_micro_usd)
        .bind(price.created_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The tenant's rate in force on `date` (`YYYY-MM-DD`), if it negotiated one.
    pub async fn tenant_prices(
        &self,
        tenant: TenantId,
    ) -> Result<Vec<TenantPriceRecord>, StoreError> {
        Ok(sqlx::query_as::<_, TenantPriceRecord>(&format!(
            "SELECT {COLUMNS} FROM tenant_prices WHERE tenant_id = $1
             ORDER BY provider, model, effective"
        ))
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await?)
    }
}
