//! Chat connectors: a tenant's own Teams bot or Google Chat app answering employees from their
//! department's knowledge bases on the tenant's key.
//!
//! - this module: connectors as tenant objects (create, list, disable, enable, delete) and the
//!   platforms' endpoints (`ConnectorsConfig`);
//! - [`members`]: who belongs to which department (`aad:`, `email:`, `domain:` identities);
//! - [`keys`]: the platforms' signing keys, fetched through the egress guard and cached;
//! - [`message`]: a Google Chat request verified, mapped to a department and answered;
//! - [`teams`]: a Teams activity verified, answered asynchronously with the app's own token.
//!
//! Invariants:
//! - A request is answered only after its token verified against the platform's published
//!   keys for this connector's app id; anything else is refused with no model call.
//! - A connector's model calls are ordinary calls of the user's department (allow-lists,
//!   budgets, ledger rows tagged `connector`, `channel`, `end_user` = a hash, never the
//!   identity itself).

mod keys;
mod members;
mod message;
mod teams;

use keyward_core::{ConnectorId, Timestamp};
use keyward_store::{ConnectorKind, ConnectorRecord};

pub(crate) use keys::PlatformKeys;
pub use message::{ChatAnswer, ConnectorRefusal};
pub use teams::TeamsAccepted;
pub(crate) use teams::{app_secret_binding, TeamsTokens};

/// What goes back to the platform, by connector kind.
pub enum ChatResponse {
    /// Google Chat: the reply is the HTTP response.
    GoogleChat(ChatAnswer),
    /// Teams: `202` (the reply follows) or `200`.
    Teams(TeamsAccepted),
}

use crate::{DomainError, Keyward, TenantScope};

/// The chat platforms' endpoints (SPEC config `connectors.*`).
#[derive(Clone, Debug)]
pub struct ConnectorsConfig {
    pub teams_openid_metadata_url: String,
    pub teams_token_url: String,
    /// A single-tenant bot's token endpoint, `{tenant}` standing for its Entra tenant.
    pub teams_tenant_token_url: String,
    /// Host names (`*.` for subdomains) a Teams `serviceUrl` may have.
    pub teams_service_url_allow: Vec<String>,
    pub google_chat_certs_url: String,
}

/// A connector to create.
pub struct ConnectorInput {
    pub kind: String,
    pub name: String,
    pub model: String,
    pub knowledge_base: Option<String>,
    pub app_id: String,
    /// Teams, single-tenant bot: its Entra tenant id (GUID or domain).
    pub app_tenant_id: Option<String>,
    /// Teams: the app password (sealed, never shown again).
    pub app_secret: Option<keyward_core::secret::ProviderSecret>,
    /// Teams, instead of `app_secret`: where the app password is held in a key manager.
    pub app_secret_ref: Option<String>,
}

/// The connector's kind and, for a single-tenant Teams bot, its Entra tenant; a Teams
/// connector needs its app password, a Google Chat one has none.
fn kind_and_tenant(input: &ConnectorInput) -> Result<(ConnectorKind, Option<String>), DomainError> {
    let kind = ConnectorKind::parse(&input.kind)
        .ok_or_else(|| DomainError::invalid("kind", "`teams` or `google-chat`"))?;
    match (kind, &input.app_secret, &input.app_secret_ref) {
        (ConnectorKind::Teams, None, None) => {
        return Err(DomainError::invalid("app_secret", "a Teams connector needs its app password (Azure app registration → Certificates & secrets) in `app_secret`, or `app_secret_ref` naming where it is held"))
        }
        (ConnectorKind::Teams, Some(_), Some(_)) => {
        return Err(DomainError::invalid("app_secret_ref", "send either `app_secret` or `app_secret_ref`, not both"))
        }
        (ConnectorKind::GoogleChat, Some(_), _) | (ConnectorKind::GoogleChat, _, Some(_)) => {
        return Err(DomainError::invalid("app_secret", "a Google Chat connector has no app secret; omit it"))
        }
        _ => {}
    }
    let app_tenant_id = match (kind, input.app_tenant_id.as_deref().map(str::trim)) {
        (_, None) => None,
        (ConnectorKind::GoogleChat, Some(_)) => {
            return Err(DomainError::invalid(
                "app_tenant_id",
                "only a Teams connector has an Entra tenant; omit it",
            ))
        }
        (ConnectorKind::Teams, Some(tenant)) => {
            let valid = !tenant.is_empty()
                && tenant.len() <= 128
                && tenant
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '.');
            if !valid {
                return Err(DomainError::invalid(
                    "app_tenant_id",
                    "the bot's Entra tenant id (a GUID) or primary domain",
                ));
            }
            Some(tenant.to_owned())
        }
    };
    Ok((kind, app_tenant_id))
}

fn not_found() -> DomainError {
    DomainError::NotFound { what: "connector" }
}

impl Keyward {
    pub async fn create_connector(
        &self,
        scope: &TenantScope,
        input: ConnectorInput,
    ) -> Result<ConnectorRecord, DomainError> {
        crate::validate::name("name", &input.name)?;
        let (kind, app_tenant_id) = kind_and_tenant(&input)?;
        let app_id = input.app_id.trim();
        if app_id.is_empty() || app_id.len() > 128 || !app_id.chars().all(|c| c.is_ascii_graphic())
        {
            return Err(DomainError::invalid(
                "app_id",
                "Teams: the bot's Microsoft app id; Google Chat: the Cloud project number its requests are addressed to",
            ));
        }
        if input.model.trim().is_empty() || input.model.len() > 256 {
            return Err(DomainError::invalid(
                "model",
                "a model as a client addresses it, e.g. team-openai/gpt-4o-mini",
            ));
        }
        let knowledge_base_id = match &input.knowledge_base {
            Some(kb) => Some(
                self.store
                    .knowledge_base(scope.tenant(), kb)
                    .await?
                    .ok_or_else(|| {
                        DomainError::invalid(
                            "knowledge_base",
                            "no knowledge base of this tenant has this name or id",
                        )
                    })?
                    .id,
            ),
            None => None,
        };
        let id = ConnectorId::generate();
        let mut record = ConnectorRecord {
            id,
            tenant_id: scope.tenant(),
            kind,
            name: input.name,
            model: input.model.trim().to_owned(),
            knowledge_base_id,
            app_id: app_id.to_owned(),
            app_tenant_id,
            secret: None,
            secret_ref: None,
            active: true,
            created_at: Timestamp::now(),
        };
        if let Some(text) = &input.app_secret_ref {
            record.secret_ref = Some(
                self.check_reference("app_secret_ref", scope, text)?
                    .to_string(),
            );
        }
        if let Some(secret) = &input.app_secret {
            let binding = teams::app_secret_binding(&record);
            record.secret = Some(
                self.vault
                    .seal(secret.expose_secret().as_bytes(), &binding)?,
            );
        }
        self.store.insert_connector(&record).await?;
        self.audit(
            scope,
            "connector.create",
            &record.id.to_string(),
            serde_json::json!({"kind": kind.as_str(), "name": record.name}),
        )
        .await;
        Ok(record)
    }

    pub async fn connectors(
        &self,
        scope: &TenantScope,
    ) -> Result<Vec<ConnectorRecord>, DomainError> {
        Ok(self.store.connectors(scope.tenant()).await?)
    }

    pub async fn connector(
        &self,
        scope: &TenantScope,
        id: ConnectorId,
    ) -> Result<ConnectorRecord, DomainError> {
        self.store
            .connector(id)
            .await?
            .filter(|connector| connector.tenant_id == scope.tenant())
            .ok_or_else(not_found)
    }

    pub async fn set_connector_active(
        &self,
        scope: &TenantScope,
        id: ConnectorId,
        active: bool,
    ) -> Result<ConnectorRecord, DomainError> {
        if !self
            .store
            .set_connector_active(scope.tenant(), id, active)
            .await?
        {
            return Err(not_found());
        }
        let action = if active {
            "connector.enable"
        } else {
            "connector.disable"
        };
        self.audit(scope, action, &id.to_string(), serde_json::json!({}))
            .await;
        self.connector(scope, id).await
    }

    pub async fn delete_connector(
        &self,
        scope: &TenantScope,
        id: ConnectorId,
    ) -> Result<(), DomainError> {
        if !self.store.delete_connector(scope.tenant(), id).await? {
            return Err(not_found());
        }
        self.audit(
            scope,
            "connector.delete",
            &id.to_string(),
            serde_json::json!({}),
        )
        .await;
        Ok(())
    }
}
