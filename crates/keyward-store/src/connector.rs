//! Chat connectors, department membership and the activities already answered.
//!
//! Invariants: a connector's app password arrives and leaves sealed (or as a reference);
//! an identity or domain belongs to at most one department of a tenant (primary key); an
//! activity id is recorded once per connector, so a replay is recognised.

use keyward_core::{
    ConnectorId, DepartmentId, KeyVersion, KnowledgeBaseId, SealedSecret, TenantId, Timestamp,
};
use sqlx::Row;

use crate::credential::sealed;
use crate::{Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConnectorKind {
    Teams,
    GoogleChat,
}

impl ConnectorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Teams => "teams",
            Self::GoogleChat => "google-chat",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "teams" => Some(Self::Teams),
            "google-chat" => Some(Self::GoogleChat),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct ConnectorRecord {
    pub id: ConnectorId,
    pub tenant_id: TenantId,
    pub kind: ConnectorKind,
    pub name: String,
    /// `label/model` or a routed name, as a client would address it.
    pub model: String,
    pub knowledge_base_id: Option<KnowledgeBaseId>,
    /// Teams: the bot's Microsoft app id; Google Chat: the project number.
    pub app_id: String,
    /// Teams, single-tenant bot: its Entra tenant (GUID or domain); `None`: multi-tenant.
    pub app_tenant_id: Option<String>,
    pub secret: Option<SealedSecret>,
    pub secret_ref: Option<String>,
    /// `active` or `disabled`.
    pub active: bool,
    pub created_at: Timestamp,
}

const COLUMNS: &str = "id, tenant_id, kind, name, model, knowledge_base_id, app_id, secret_blob, \
    secret_key_version, secret_ref, status, created_at, app_tenant_id";

fn connector_from_row(row: &sqlx::any::AnyRow) -> Result<ConnectorRecord, StoreError> {
    let id: String = row.try_get("id")?;
    let corrupt = |column| StoreError::corrupt("connectors", column, &id);
    let tenant: String = row.try_get("tenant_id")?;
    let kind: String = row.try_get("kind")?;
    let kb: Option<String> = row.try_get("knowledge_base_id")?;
    let status: String = row.try_get("status")?;
    Ok(ConnectorRecord {
        tenant_id: tenant.parse().map_err(|_| corrupt("tenant_id"))?,
        kind: ConnectorKind::parse(&kind).ok_or_else(|| corrupt("kind"))?,
        name: row.try_get("name")?,
        model: row.try_get("model")?,
        knowledge_base_id: kb
            .map(|kb| kb.parse().map_err(|_| corrupt("knowledge_base_id")))
            .transpose()?,
        app_id: row.try_get("app_id")?,
        app_tenant_id: row.try_get("app_tenant_id")?,
        secret: sealed(
            row.try_get("secret_blob")?,
            row.try_get("secret_key_version")?,
            corrupt,
        )?,
        secret_ref: row.try_get("secret_ref")?,
        active: status == "active",
        created_at: Timestamp::from_unix_millis(row.try_get("created_at")?),
        id: id.parse().map_err(|_| corrupt("id"))?,
    })
}

impl Store {
    pub async fn insert_connector(&self, connector: &ConnectorRecord) -> Result<(), StoreError> {
        let sealed = connector.secret.as_ref();
        sqlx::query(&format!(
            "INSERT INTO connectors ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(connector.id.to_string())
        .bind(connector.tenant_id.to_string())
        .bind(connector.kind.as_str())
        .bind(&connector.name)
        .bind(&connector.model)
        .bind(connector.knowledge_base_id.map(|kb| kb.to_string()))
        .bind(&connector.app_id)
        .bind(sealed.map(|sealed| sealed.blob.clone()))
        .bind(sealed.map(|sealed| i64::from(sealed.key_version.get())))
        .bind(connector.secret_ref.as_deref())
        .bind(if connector.active { "active" } else { "disabled" })
        .bind(connector.created_at.unix_millis())
        .bind(connector.app_tenant_id.as_deref())
        .execute(&self.pool)
        .await
        .map_err(|err| StoreError::from_write(err, "connector", "name"))?;
        Ok(())
    }

    pub async fn connectors(&self, tenant: TenantId) -> Result<Vec<ConnectorRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM connectors WHERE tenant_id = $1 ORDER BY name"
        ))
        .bind(tenant.to_string())
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(connector_from_row).collect()
    }

    /// A connector by id alone: the platforms call `/connectors/{id}/messages`, which names no
    /// tenant; everything after is scoped by the connector's tenant.
    pub async fn connector(&self, id: ConnectorId) -> Result<Option<ConnectorRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM connectors WHERE id = $1"))
            .bind(id.to_string())
            .fetch_optional(&self.pool)
            .await?;
        row.as_ref().map(connector_from_row).transpose()
    }

    pub async fn set_connector_active(
        &self,
        tenant: TenantId,
        id: ConnectorId,
        active: bool,
    ) -> Result<bool, StoreError> {
        let result =
            sqlx::query("UPDATE connectors SET status = $3 WHERE tenant_id = $1 AND id = $2")
                .bind(tenant.to_string())
                .bind(id.to_string())
                .bind(if active { "active" } else { "disabled" })
                .execute(&self.pool)
                .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn delete_connector(
        &self,
        tenant: TenantId,
        id: ConnectorId,
    ) -> Result<bool, StoreError> {
        let mut tx = self.pool.begin().await?;
        let deleted = sqlx::query("DELETE FROM connectors WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?
            .rows_affected();
        sqlx::query("DELETE FROM connector_activities WHERE connector_id = $1")
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(deleted == 1)
    }

    /// Records an activity; `false` when it was recorded before (a replay).
    pub async fn record_activity(
        &self,
        connector: ConnectorId,
        activity: &str,
        now: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO connector_activities (connector_id, activity_id, received_at)
             VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
        )
        .bind(connector.to_string())
        .bind(activity)
        .bind(now.unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Replaces a department's members in one transaction; an identity another department
    /// holds is a conflict.
    pub async fn set_department_members(
        &self,
        tenant: TenantId,
        department: DepartmentId,
        identities: &[String],
    ) -> Result<(), StoreError> {
        let mut tx = self.pool.begin().await?;
        sqlx::query("DELETE FROM department_members WHERE tenant_id = $1 AND department_id = $2")
            .bind(tenant.to_string())
            .bind(department.to_string())
            .execute(&mut *tx)
            .await?;
        for identity in identities {
            sqlx::query(
                "INSERT INTO department_members (tenant_id, department_id, identity) VALUES ($1, $2, $3)",
            )
            .bind(tenant.to_string())
            .bind(department.to_string())
            .bind(identity)
            .execute(&mut *tx)
            .await
            .map_err(|err| StoreError::from_write(err, "department member", "identity"))?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn department_members(
        &self,
        tenant: TenantId,
        department: DepartmentId,
    ) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT identity FROM department_members WHERE tenant_id = $1 AND department_id = $2
             ORDER BY identity",
        )
        .bind(tenant.to_string())
        .bind(department.to_string())
        .fetch_all(&self.pool)
        .await?)
    }

    /// The department of the first of `candidates` (most specific first) that is a member.
    pub async fn department_of(
        &self,
        tenant: TenantId,
        candidates: &[String],
    ) -> Result<Option<DepartmentId>, StoreError> {
        for candidate in candidates {
            let found: Option<String> = sqlx::query_scalar(
                "SELECT department_id FROM department_members WHERE tenant_id = $1 AND identity = $2",
            )
            .bind(tenant.to_string())
            .bind(candidate)
            .fetch_optional(&self.pool)
            .await?;
            if let Some(department) = found {
                return department.parse().map(Some).map_err(|_| {
                    StoreError::corrupt("department_members", "department_id", candidate)
                });
            }
        }
        Ok(None)
    }

    /// Connector secrets sealed below `primary`, after `after` in id order.
    pub async fn connector_rewrap_candidates(
        &self,
        primary: KeyVersion,
        after: Option<ConnectorId>,
        limit: u32,
    ) -> Result<Vec<ConnectorRecord>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM connectors
             WHERE secret_key_version < $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        ))
        .bind(i64::from(primary.get()))
        .bind(after.map(|id| id.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(connector_from_row).collect()
    }

    /// Compare-and-swap of a connector's sealed secret.
    pub async fn swap_connector_secret(
        &self,
        id: ConnectorId,
        expected: &SealedSecret,
        new: &SealedSecret,
    ) -> Result<bool, StoreError> {
        self.swap_sealed(
            crate::sealed_swap::SealedColumn::Connector,
            &id.to_string(),
            expected,
            new,
        )
        .await
    }
}
