//! Departments group a tenant's platform keys under one model allow-list (and, later, budgets
//! and knowledge bases).

use keyward_core::{DepartmentId, Timestamp};
use keyward_store::{DepartmentRecord, Page, PageRequest};

use crate::{validate, DomainError, Keyward, TenantScope};

#[derive(Debug, Default)]
pub struct DepartmentInput {
    pub name: String,
    pub models: Option<Vec<String>>,
}

impl Keyward {
    pub async fn create_department(
        &self,
        scope: &TenantScope,
        input: DepartmentInput,
    ) -> Result<DepartmentRecord, DomainError> {
        validate::name("name", &input.name)?;
        let department = DepartmentRecord {
            id: DepartmentId::generate(),
            tenant_id: scope.tenant(),
            name: input.name,
            models: validate::models("models", input.models)?,
            created_at: Timestamp::now(),
        };
        self.store.insert_department(&department).await?;
        tracing::info!(tenant = %scope.tenant(), department = %department.id, "department created");
        self.audit(
            scope,
            "department.create",
            &department.id.to_string(),
            serde_json::json!({"name": department.name, "models": department.models}),
        )
        .await;
        Ok(department)
    }

    pub async fn departments(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<DepartmentRecord>, DomainError> {
        Ok(self.store.departments(scope.tenant(), page).await?)
    }

    pub async fn department_name(
        &self,
        scope: &TenantScope,
        id: DepartmentId,
    ) -> Result<Option<String>, DomainError> {
        Ok(self
            .store
            .department(scope.tenant(), id)
            .await?
            .map(|department| department.name))
    }
}
