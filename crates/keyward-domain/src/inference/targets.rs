//! Who calls and where their model may go: the calling key's tenant and allow-lists, the
//! targets (credential + the provider's model name) a model name resolves to, and the one
//! decision whether a credential can take a call at all.
//!
//! Invariant: [`unusable`] is the only mapping from a credential's status to the error a call
//! answers; the pre-check before a fallback and the authoritative re-check in
//! `attempt::open_target` both use it.

use std::time::Instant;

use keyward_core::{DepartmentId, PlatformKeyId, TenantId};
use keyward_router::Surface;
use keyward_store::{CredentialRecord, CredentialStatus};

use crate::{Actor, DomainError, KeyLimits, Keyward};

/// The calling platform key, resolved once per call.
#[derive(Clone)]
pub(crate) struct Caller {
    pub tenant: TenantId,
    /// `None` for work an operator or tenant admin starts outside a model call (ingesting a
    /// document from the admin CLI).
    pub key: Option<PlatformKeyId>,
    pub department: Option<DepartmentId>,
    /// A tenant admin key: sees every department's knowledge bases.
    pub admin: bool,
    pub key_models: Option<Vec<String>>,
    pub department_models: Option<Vec<String>>,
    pub limits: KeyLimits,
}

impl Caller {
    /// A caller without a platform key: the operator's or a tenant admin's tenant scope
    /// (`admin`: every department's knowledge), or a chat connector's user in `department`.
    /// No per-key limits; the department's allow-list still applies.
    pub(crate) fn keyless(
        tenant: TenantId,
        department: Option<DepartmentId>,
        department_models: Option<Vec<String>>,
        admin: bool,
    ) -> Self {
        Self {
            tenant,
            key: None,
            department,
            admin,
            key_models: None,
            department_models,
            limits: KeyLimits::default(),
        }
    }
}

/// One place a call may go: a credential and the provider's name of the model.
pub(super) struct Attempt {
    pub credential: CredentialRecord,
    pub upstream_model: String,
    /// When `credential` was read: a record this fresh is authoritative for its status.
    pub read_at: Instant,
}

/// Whether `model` (as addressed, and as the provider names it) is on an allow-list.
pub(crate) fn allowed(list: Option<&Vec<String>>, addressed: &str, upstream: &str) -> bool {
    list.is_none_or(|models| {
        models
            .iter()
            .any(|model| model == addressed || model == upstream)
    })
}

/// Why `credential` cannot take a call on `surface`, or `None` when it can.
pub(super) fn unusable(credential: &CredentialRecord, surface: Surface) -> Option<DomainError> {
    match credential.status {
        CredentialStatus::Active if keyward_router::supports(surface, credential.provider) => None,
        CredentialStatus::Active => Some(DomainError::NoCredential {
            reason: format!(
                "credential `{}` is a {} credential, which {} cannot reach yet; use a credential of a matching provider",
                credential.label, credential.provider, surface.endpoint()
            ),
        }),
        CredentialStatus::Disabled => Some(DomainError::CredentialDisabled {
            label: credential.label.clone(),
        }),
        CredentialStatus::RejectedByProvider => Some(DomainError::ProviderCredentialRejected {
            label: credential.label.clone(),
        }),
    }
}

impl Keyward {
    /// Tenant, key and allow-lists of the calling platform key.
    pub(crate) async fn caller(&self, actor: &Actor) -> Result<Caller, DomainError> {
        let (tenant, key, department, key_models, limits) = match actor {
            Actor::Member {
                tenant,
                key,
                department,
                models,
                limits,
            } => (*tenant, *key, *department, models.clone(), *limits),
            Actor::TenantAdmin { tenant, key } => {
                let record = self.store.platform_key(*tenant, *key).await?;
                let limits = record
                    .as_ref()
                    .map_or_else(KeyLimits::default, |key| KeyLimits {
                        rpm: key.rpm_limit,
                        tpm: key.tpm_limit,
                    });
                (
                    *tenant,
                    *key,
                    record.as_ref().and_then(|key| key.department_id),
                    record.and_then(|key| key.models),
                    limits,
                )
            }
            Actor::Operator => return Err(DomainError::InvalidPlatformKey),
        };
        let department_models = match department {
            Some(department) => self
                .store
                .department(tenant, department)
                .await?
                .and_then(|department| department.models),
            None => None,
        };
        Ok(Caller {
            tenant,
            key: Some(key),
            department,
            admin: matches!(actor, Actor::TenantAdmin { .. }),
            key_models,
            department_models,
            limits,
        })
    }

    /// The targets a model name resolves to, after the allow-lists.
    pub(super) async fn attempts(
        &self,
        caller: &Caller,
        model: &str,
    ) -> Result<Vec<Attempt>, DomainError> {
        let (label, upstream) = match model.split_once('/') {
            Some((label, upstream)) => (Some(label), upstream),
            None => (None, model),
        };
        for (list, by) in [
            (&caller.key_models, "platform key"),
            (&caller.department_models, "department"),
        ] {
            if !allowed(list.as_ref(), model, upstream) {
                return Err(DomainError::ModelNotAllowed {
                    model: model.to_owned(),
                    by,
                });
            }
        }
        match label {
            Some(label) => Ok(vec![Attempt {
                credential: self.credential_for_label(caller.tenant, label).await?,
                upstream_model: upstream.to_owned(),
                read_at: Instant::now(),
            }]),
            None => self.route_attempts(caller.tenant, model).await,
        }
    }

    /// The credential labelled `label`, from the record cache when it is fresh.
    async fn credential_for_label(
        &self,
        tenant: TenantId,
        label: &str,
    ) -> Result<CredentialRecord, DomainError> {
        let cache_key = (tenant, label.to_owned());
        if let Some(credential) = self.records.credentials.get(&cache_key) {
            return Ok(credential);
        }
        let read_at = Instant::now();
        let credential = self
            .store
            .credential_by_label(tenant, label)
            .await?
            .ok_or_else(|| DomainError::NoCredential {
                reason: format!(
                    "this tenant has no credential labelled `{label}`; connect one or check the label"
                ),
            })?;
        self.records
            .credentials
            .insert(cache_key, credential.clone(), read_at);
        Ok(credential)
    }

    /// The targets of the tenant's route for a bare model name, in order.
    async fn route_attempts(
        &self,
        tenant: TenantId,
        model: &str,
    ) -> Result<Vec<Attempt>, DomainError> {
        let route = self.store.route(tenant, model).await?.ok_or_else(|| DomainError::NoCredential {
            reason: format!(
                "no route for `{model}`: address the model as `<credential-label>/{model}`, or a tenant admin can add a route (PUT /admin/v1/tenants/{{tenant}}/routes/{model})"
            ),
        })?;
        let mut attempts = Vec::with_capacity(route.targets.len());
        for target in route.targets {
            if let Some(credential) = self.store.credential(tenant, target.credential_id).await? {
                attempts.push(Attempt {
                    credential,
                    upstream_model: target.model,
                    read_at: Instant::now(),
                });
            }
        }
        Ok(attempts)
    }
}
