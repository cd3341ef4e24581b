//! Departments: groups of a tenant's platform keys with their own model allow-list.

use keyward_core::{DepartmentId, TenantId, Timestamp};

use crate::{Page, PageRequest, Store, StoreError};

#[derive(Clone, Debug)]
pub struct DepartmentRecord {
    pub id: DepartmentId,
    pub tenant_id: TenantId,
    pub name: String,
    /// `None`: every model the tenant can reach.
    pub models: Option<Vec<String>>,
    pub created_at: Timestamp,
}

#[derive(sqlx::FromRow)]
struct DepartmentRow {
    id: String,
    tenant_id: String,
    name: String,
    models: Option<String>,
    created_at: i64,
}

impl TryFrom<DepartmentRow> for DepartmentRecord {
    type Error = StoreError;
    fn try_from(row: DepartmentRow) -> Result<Self, StoreError> {
        let corrupt = |column| StoreError::corrupt("departments", column, &row.id);
        Ok(Self {
            id: row.id.parse().map_err(|_| corrupt("id"))?,
            tenant_id: row.tenant_id.parse().map_err(|_| corrupt("tenant_id"))?,
            models: decode_list(row.models.as_deref()).map_err(|()| corrupt("models"))?,
            name: row.name,
            created_at: Timestamp::from_unix_millis(row.created_at),
        })
    }
}

pub(crate) fn encode_list(list: Option<&[String]>) -> Option<String> {
    list.map(|items| serde_json::Value::from(items.to_vec()).to_string())
}

pub(crate) fn decode_list(text: Option<&str>) -> Result<Option<Vec<String>>, ()> {
    text.map(|text| serde_json::from_str::<Vec<String>>(text).map_err(|_| ()))
        .transpose()
}

const COLUMNS: &str = "id, tenant_id, name, models, created_at";

impl Store {
    pub async fn insert_department(&self, department: &DepartmentRecord) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO departments (id, tenant_id, name, models, created_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(department.id.to_string())
        .bind(department.tenant_id.to_string())
        .bind(&department.name)
        .bind(encode_list(department.models.as_deref()))
        .bind(department.created_at.unix_millis())
        .execute(&self.pool)
        .await
        .map_err(|err| StoreError::from_write(err, "department", "name"))?;
        Ok(())
    }

    pub async fn department_by_name(
        &self,
        tenant: TenantId,
        name: &str,
    ) -> Result<Option<DepartmentRecord>, StoreError> {
        sqlx::query_as::<_, DepartmentRow>(&format!(
            "SELECT {COLUMNS} FROM departments WHERE tenant_id = $1 AND name = $2"
        ))
        .bind(tenant.to_string())
        .bind(name)
        .fetch_optional(&self.pool)
        .await?
        .map(DepartmentRecord::try_from)
        .transpose()
    }

    pub async fn department(
        &self,
        tenant: TenantId,
        id: DepartmentId,
    ) -> Result<Option<DepartmentRecord>, StoreError> {
        sqlx::query_as::<_, DepartmentRow>(&format!(
            "SELECT {COLUMNS} FROM departments WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(DepartmentRecord::try_from)
        .transpose()
    }

    pub async fn departments(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<DepartmentRecord>, StoreError> {
        let rows = sqlx::query_as::<_, DepartmentRow>(&format!(
            "SELECT {COLUMNS} FROM departments
             WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        ))
        .bind(tenant.to_string())
        .bind(page.after.as_deref())
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        Page::<DepartmentRecord>::convert(rows, page, |department| department.id.to_string())
    }
}
