//! Tenants: created and listed by the operator; a tenant admin sees only its own.

use keyward_core::{TenantId, Timestamp};
use keyward_store::{Page, PageRequest, TenantRecord};

use crate::{validate, Actor, DomainError, Keyward};

impl Keyward {
    pub async fn create_tenant(
        &self,
        actor: &Actor,
        name: &str,
    ) -> Result<TenantRecord, DomainError> {
        actor.require_operator()?;
        validate::name("name", name)?;
        let tenant = TenantRecord {
            id: TenantId::generate(),
            name: name.to_owned(),
            created_at: Timestamp::now(),
        };
        self.store.insert_tenant(&tenant).await?;
        tracing::info!(tenant = %tenant.id, "tenant created");
        self.audit_operator(
            actor,
            Some(tenant.id),
            "tenant.create",
            &tenant.id.to_string(),
            serde_json::json!({"name": tenant.name}),
        )
        .await;
        Ok(tenant)
    }

    pub async fn tenants(
        &self,
        actor: &Actor,
        page: &PageRequest,
    ) -> Result<Page<TenantRecord>, DomainError> {
        match actor {
            Actor::Operator => Ok(self.store.tenants(page).await?),
            Actor::TenantAdmin { tenant, .. } => {
                let own = self.store.tenant(*tenant).await?;
                Ok(Page {
                    items: own.into_iter().collect(),
                    next_cursor: None,
                })
            }
            Actor::Member { .. } => actor.require_operator().map(|()| Page {
                items: Vec::new(),
                next_cursor: None,
            }),
        }
    }

    /// A tenant by id or by name (the CLI accepts either).
    pub async fn find_tenant(&self, id_or_name: &str) -> Result<TenantRecord, DomainError> {
        let found = match id_or_name.parse::<TenantId>() {
            Ok(id) => self.store.tenant(id).await?,
            Err(_) => self.store.tenant_by_name(id_or_name).await?,
        };
        found.ok_or(DomainError::NotFound { what: "tenant" })
    }
}
