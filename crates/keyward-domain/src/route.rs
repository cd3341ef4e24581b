//! Routes: a bare model name that a tenant's apps may call, served by an ordered list of
//! targets — the first is used, later ones are the tenant's configured fallbacks.

use keyward_core::{CredentialId, Timestamp};
use keyward_store::{Page, PageRequest, RouteRecord, RouteTarget};

use crate::{DomainError, Keyward, TenantScope};

/// Most targets in one route.
const MAX_TARGETS: usize = 8;

/// A target as an admin names it: a credential label or id, and the provider's model name.
#[derive(Clone, Debug)]
pub struct RouteTargetInput {
    pub credential: String,
    pub model: String,
}

fn valid_model(field: &str, model: &str, bare: bool) -> Result<(), DomainError> {
    let malformed = model.is_empty()
        || model.len() > 200
        || model.chars().any(|c| c.is_whitespace() || c.is_control())
        || (bare && model.contains('/'));
    if !malformed {
        return Ok(());
    }
    let rule = if bare {
        "a bare model name: 1 to 200 characters, no spaces and no `/` (a `/` means label/model)"
    } else {
        "the provider's model name: 1 to 200 characters without spaces"
    };
    Err(DomainError::invalid(field, rule))
}

impl Keyward {
    /// Creates or replaces the route of `model`.
    pub async fn put_route(
        &self,
        scope: &TenantScope,
        model: &str,
        targets: Vec<RouteTargetInput>,
    ) -> Result<RouteRecord, DomainError> {
        valid_model("model", model, true)?;
        if targets.is_empty() || targets.len() > MAX_TARGETS {
            return Err(DomainError::invalid(
                "targets",
                format!("give 1 to {MAX_TARGETS} targets, first choice first"),
            ));
        }
        let mut resolved = Vec::with_capacity(targets.len());
        for (index, target) in targets.into_iter().enumerate() {
            valid_model(&format!("targets[{index}].model"), &target.model, false)?;
            let credential = match target.credential.parse::<CredentialId>() {
                Ok(id) => self.store.credential(scope.tenant(), id).await?,
                Err(_) => self.store.credential_by_label(scope.tenant(), &target.credential).await?,
            }
            .ok_or_else(|| {
                DomainError::invalid(
                    format!("targets[{index}].credential"),
                    format!("no credential `{}` in this tenant; use a label or id from the credential list", target.credential),
                )
            })?;
            resolved.push(RouteTarget {
                credential_id: credential.id,
                model: target.model,
            });
        }
        let route = RouteRecord {
            tenant_id: scope.tenant(),
            model: model.to_owned(),
            targets: resolved,
            updated_at: Timestamp::now(),
        };
        self.store.put_route(&route).await?;
        tracing::info!(tenant = %scope.tenant(), targets = route.targets.len(), "route set");
        let targets: Vec<_> = route
            .targets
            .iter()
            .map(|target| serde_json::json!({"credential_id": target.credential_id.to_string(), "model": target.model}))
            .collect();
        self.audit(
            scope,
            "route.set",
            &route.model,
            serde_json::json!({"targets": targets}),
        )
        .await;
        Ok(route)
    }

    pub async fn routes(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<RouteRecord>, DomainError> {
        Ok(self.store.routes(scope.tenant(), page).await?)
    }

    /// The models a platform key may call by name: its tenant's routed bare names, and the
    /// `label/model` entries of its allow-lists that name a connected credential.
    pub async fn callable_models(&self, actor: &crate::Actor) -> Result<Vec<String>, DomainError> {
        let caller = self.caller(actor).await?;
        let mut names = Vec::new();
        let mut page = PageRequest {
            after: None,
            limit: 500,
        };
        loop {
            let routes = self.store.routes(caller.tenant, &page).await?;
            names.extend(routes.items.into_iter().map(|route| route.model));
            match routes.next_cursor {
                Some(cursor) => page.after = Some(cursor),
                None => break,
            }
        }
        for list in [&caller.key_models, &caller.department_models]
            .into_iter()
            .flatten()
        {
            for model in list {
                if let Some((label, _)) = model.split_once('/') {
                    if self
                        .store
                        .credential_by_label(caller.tenant, label)
                        .await?
                        .is_some()
                    {
                        names.push(model.clone());
                    }
                }
            }
        }
        if caller.key_models.is_none() && caller.department_models.is_none() {
            names.extend(self.provider_model_names(caller.tenant).await?);
        }
        names.retain(|model| {
            let upstream = model
                .split_once('/')
                .map_or(model.as_str(), |(_, upstream)| upstream);
            crate::inference::allowed(caller.key_models.as_ref(), model, upstream)
                && crate::inference::allowed(caller.department_models.as_ref(), model, upstream)
        });
        names.sort();
        names.dedup();
        Ok(names)
    }

    /// `label/model` for every model each usable credential of the tenant serves, as its
    /// provider lists them. A provider that cannot be asked is left out (and logged): one
    /// failing account does not empty the list.
    async fn provider_model_names(
        &self,
        tenant: keyward_core::TenantId,
    ) -> Result<Vec<String>, DomainError> {
        let mut names = Vec::new();
        let mut page = PageRequest {
            after: None,
            limit: 500,
        };
        loop {
            let credentials = self.store.credentials(tenant, &page).await?;
            for credential in credentials.items {
                if credential.status != keyward_store::CredentialStatus::Active {
                    continue;
                }
                let label = credential.label.clone();
                match self.provider_models(credential).await {
                    Ok(models) => {
                        names.extend(models.iter().map(|model| format!("{label}/{model}")))
                    }
                    Err(err) => {
                        tracing::warn!(credential = %label, error = %err, "the provider's model list could not be read; its models are left out of /v1/models")
                    }
                }
            }
            match credentials.next_cursor {
                Some(cursor) => page.after = Some(cursor),
                None => return Ok(names),
            }
        }
    }
}
