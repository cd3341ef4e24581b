//! Tenants.

use keyward_core::{TenantId, Timestamp};

use crate::{Page, PageRequest, Store, StoreError};

#[derive(Clone, Debug)]
pub struct TenantRecord {
    pub id: TenantId,
    pub name: String,
    pub created_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct TenantRow {
    id: String,
    name: String,
    created_at: i64,
}

impl TryFrom<TenantRow> for TenantRecord {
    type Error = StoreError;
    fn try_from(row: TenantRow) -> Result<Self, StoreError> {
        Ok(Self {
            id: row
                .id
                .parse()
                .map_err(|_| StoreError::corrupt("tenants", "id", &row.id))?,
            name: row.name,
            created_at: Timestamp::from_unix_millis(row.created_at),
        })
    }
}

impl Store {
    pub async fn insert_tenant(&self, tenant: &TenantRecord) -> Result<(), StoreError> {
        sqlx::query("INSERT INTO tenants (id, name, created_at) VALUES ($1, $2, $3)")
            .bind(tenant.id.to_string())
            .bind(&tenant.name)
            .bind(tenant.created_at.unix_millis())
            .execute(&self.pool)
            .await
            .map_err(|err| StoreError::from_write(err, "tenant", "name"))?;
        Ok(())
    }

    pub async fn tenant(&self, id: TenantId) -> Result<Option<TenantRecord>, StoreError> {
        sqlx::query_as::<_, TenantRow>("SELECT id, name, created_at FROM tenants WHERE id = $1")
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?
            .map(TenantRecord::try_from)
            .transpose()
    }

    pub async fn tenant_by_name(&self, name: &str) -> Result<Option<TenantRecord>, StoreError> {
        sqlx::query_as::<_, TenantRow>("SELECT id, name, created_at FROM tenants WHERE name = $1")
            .bind(name)
            .fetch_optional(&self.pool)
            .await?
            .map(TenantRecord::try_from)
            .transpose()
    }

    pub async fn tenants(&self, page: &PageRequest) -> Result<Page<TenantRecord>, StoreError> {
        let rows = sqlx::query_as::<_, TenantRow>(
            "SELECT id, name, created_at FROM tenants
             WHERE ($1 IS NULL OR id > $1) ORDER BY id LIMIT $2",
        )
        .bind(page.after.as_deref())
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        Page::<TenantRecord>::convert(rows, page, |tenant| tenant.id.to_string())
    }
}
