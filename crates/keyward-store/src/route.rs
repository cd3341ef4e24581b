//! Routes for bare model names: an ordered list of `(credential, model)` targets per tenant.

use keyward_core::{CredentialId, TenantId, Timestamp};
use serde_json::{json, Value};

use crate::{Page, PageRequest, Store, StoreError};

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RouteTarget {
    pub credential_id: CredentialId,
    /// The provider's name of the model.
    pub model: String,
}

#[derive(Clone, Debug)]
pub struct RouteRecord {
    pub tenant_id: TenantId,
    /// The bare name clients send.
    pub model: String,
    pub targets: Vec<RouteTarget>,
    pub updated_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct RouteRow {
    tenant_id: String,
    model: String,
    targets: String,
    updated_at: i64,
}

impl TryFrom<RouteRow> for RouteRecord {
    type Error = StoreError;
    fn try_from(row: RouteRow) -> Result<Self, StoreError> {
        let corrupt = |column| StoreError::corrupt("routes", column, &row.model);
        let targets: Vec<Value> =
            serde_json::from_str(&row.targets).map_err(|_| corrupt("targets"))?;
        let targets = targets
            .iter()
            .map(|target| {
                Some(RouteTarget {
                    credential_id: target.get("credential_id")?.as_str()?.parse().ok()?,
                    model: target.get("model")?.as_str()?.to_owned(),
                })
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(|| corrupt("targets"))?;
        Ok(Self {
            tenant_id: row.tenant_id.parse().map_err(|_| corrupt("tenant_id"))?,
            model: row.model,
            targets,
            updated_at: Timestamp::from_unix_millis(row.updated_at),
        })
    }
}

impl Store {
    /// Creates or replaces a route.
    pub async fn put_route(&self, route: &RouteRecord) -> Result<(), StoreError> {
        let targets: Vec<Value> = route
            .targets
            .iter()
            .map(|target| json!({"credential_id": target.credential_id.to_string(), "model": target.model}))
            .collect();
        sqlx::query(
            "INSERT INTO routes (tenant_id, model, targets, updated_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (tenant_id, model) DO UPDATE SET targets = $3, updated_at = $4",
        )
        .bind(route.tenant_id.to_string())
        .bind(&route.model)
        .bind(Value::from(targets).to_string())
        .bind(route.updated_at.unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub async fn route(
        &self,
        tenant: TenantId,
        model: &str,
    ) -> Result<Option<RouteRecord>, StoreError> {
        sqlx::query_as::<_, RouteRow>(
            "SELECT tenant_id, model, targets, updated_at FROM routes WHERE tenant_id = $1 AND model = $2",
        )
        .bind(tenant.to_string())
        .bind(model)
        .fetch_optional(&self.pool)
        .await?
        .map(RouteRecord::try_from)
        .transpose()
    }

    /// A tenant's routes in model-name order.
    pub async fn routes(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<RouteRecord>, StoreError> {
        let rows = sqlx::query_as::<_, RouteRow>(
            "SELECT tenant_id, model, targets, updated_at FROM routes
             WHERE tenant_id = $1 AND ($2 IS NULL OR model > $2) ORDER BY model LIMIT $3",
        )
        .bind(tenant.to_string())
        .bind(page.after.as_deref())
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        Page::<RouteRecord>::convert(rows, page, |route| route.model.clone())
    }
}
