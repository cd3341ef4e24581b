//! Credential verification: a cheap real call (the provider's model list) on the tenant's key,
//! admitted and settled like any model call.
//!
//! Invariants:
//! - The verification is an upstream call on the tenant's key, so it has a ledger row
//!   (`endpoint` `verify`), admitted through the same `admit` as a model call.
//! - A referenced secret is fetched anew, never from the cache.
//! - A provider that accepts the key clears `rejected_by_provider`; one that refuses it sets it.

use std::collections::BTreeMap;

use keyward_core::{CredentialId, RequestId, Timestamp};
use keyward_router::Target;
use keyward_store::{CredentialRecord, CredentialStatus, PendingCall};

use super::settle;
use super::{MODELS_ENDPOINT, VERIFY_ENDPOINT};
use crate::credential::Freshness;
use crate::{DomainError, Keyward, OpenedCredential, TenantScope};

/// The pending row of a model-list call (`endpoint` `verify` or `models`): no key, no model,
/// nothing reserved.
fn listing_row(
    credential: &CredentialRecord,
    endpoint: &'static str,
    purpose: &str,
) -> PendingCall {
    PendingCall {
        request_id: RequestId::generate(),
        created_at: Timestamp::now(),
        tenant_id: credential.tenant_id,
        key_id: None,
        department_id: None,
        credential_id: credential.id,
        credential_label: credential.label.clone(),
        provider: credential.provider,
        endpoint,
        model_requested: "-".to_owned(),
        stream: false,
        tags: BTreeMap::from([("purpose".to_owned(), purpose.to_owned())]),
        fallback_of: None,
        reserved_micro_usd: 0,
        // Listing models costs nothing at any provider.
        priced: true,
        unbounded_input: None,
    }
}

impl Keyward {
    /// Verifies a credential with a cheap real call (the provider's model list). A provider that
    /// accepts the key clears `rejected_by_provider`; one that refuses it sets it. The call is
    /// an upstream call on the tenant's key, so it leaves a ledger row like any other.
    pub async fn verify_credential(
        &self,
        scope: &TenantScope,
        id: CredentialId,
    ) -> Result<CredentialRecord, DomainError> {
        // A referenced secret is fetched anew: verify is how an operator checks a rotation in
        // the manager without waiting for the cache to expire.
        let record = self.credential(scope, id).await?;
        let opened = self
            .open_credential_record(record, Freshness::Refetch)
            .await?;
        let (credential, verification) = self
            .model_list_call(opened, VERIFY_ENDPOINT, "verify")
            .await?;
        self.audit(
            scope,
            "credential.verify",
            &id.to_string(),
            serde_json::json!({"accepted": verification.accepted, "key_rejected": verification.key_rejected, "http_status": verification.status}),
        )
        .await;
        if verification.key_rejected {
            self.mark_rejected(&credential, credential.secret.as_ref())
                .await;
        } else if !verification.accepted {
            return Err(DomainError::UpstreamFailed {
                status: verification.status,
                label: credential.label,
            });
        } else if credential.status == CredentialStatus::RejectedByProvider {
            self.reactivate(&credential).await?;
        }
        self.credential(scope, id).await
    }

    /// The models a credential's provider lists (for `GET /v1/models`), from a model-list call
    /// on the tenant's key with its own ledger row (`endpoint` `models`), kept
    /// [`MODEL_LIST_TTL`]. A key the provider refuses is parked as by any call.
    pub(crate) async fn provider_models(
        &self,
        credential: CredentialRecord,
    ) -> Result<std::sync::Arc<Vec<String>>, DomainError> {
        if let Some(models) = self.model_lists.get(credential.id) {
            return Ok(models);
        }
        let id = credential.id;
        let opened = self
            .open_credential_record(credential, Freshness::Cached)
            .await?;
        let (credential, listed) = self
            .model_list_call(opened, MODELS_ENDPOINT, "models")
            .await?;
        if listed.key_rejected {
            self.mark_rejected(&credential, credential.secret.as_ref())
                .await;
            return Err(DomainError::ProviderCredentialRejected {
                label: credential.label,
            });
        }
        Ok(self.model_lists.put(id, listed.models))
    }

    /// The provider's model list on an opened credential: an upstream call on the tenant's key,
    /// admitted and settled with its own ledger row (`endpoint`, tag `purpose`).
    async fn model_list_call(
        &self,
        opened: OpenedCredential,
        endpoint: &'static str,
        purpose: &str,
    ) -> Result<(CredentialRecord, keyward_router::Verification), DomainError> {
        let credential = opened.record;
        let pending = listing_row(&credential, endpoint, purpose);
        self.admit(&pending).await?;
        let target = Target {
            provider: credential.provider,
            options: credential.options.clone(),
            secret: opened.secret,
            model: String::new(),
        };
        let listed = match self.router.verify(&target).await {
            Ok(listed) => listed,
            Err(err) => {
                self.settle(&pending, None, settle::router_failure(&err))
                    .await;
                return Err(DomainError::Router(err));
            }
        };
        self.settle(&pending, None, settle::verification(&listed))
            .await;
        Ok((credential, listed))
    }

    /// The provider accepted a credential it had rejected: back to `active`.
    async fn reactivate(&self, credential: &CredentialRecord) -> Result<(), DomainError> {
        self.store
            .set_credential_status(
                credential.tenant_id,
                credential.id,
                CredentialStatus::Active,
                Timestamp::now(),
            )
            .await?;
        self.records.credentials.clear();
        tracing::info!(tenant = %credential.tenant_id, credential = %credential.id, "provider accepted the credential again; active");
        Ok(())
    }
}

/// How long a provider's model list is reused before `GET /v1/models` asks again.
pub(crate) const MODEL_LIST_TTL: std::time::Duration = std::time::Duration::from_secs(300);

/// Each credential's model list, kept [`MODEL_LIST_TTL`]; bounded (emptied when full).
type Listed = (std::time::Instant, std::sync::Arc<Vec<String>>);

#[derive(Default)]
pub(crate) struct ModelLists {
    lists: std::sync::Mutex<std::collections::HashMap<CredentialId, Listed>>,
}

impl ModelLists {
    fn get(&self, id: CredentialId) -> Option<std::sync::Arc<Vec<String>>> {
        let lists = self
            .lists
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (at, models) = lists.get(&id)?;
        (at.elapsed() < MODEL_LIST_TTL).then(|| models.clone())
    }

    fn put(&self, id: CredentialId, models: Vec<String>) -> std::sync::Arc<Vec<String>> {
        let mut lists = self
            .lists
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if lists.len() >= 10_000 {
            lists.clear();
        }
        let models = std::sync::Arc::new(models);
        lists.insert(id, (std::time::Instant::now(), models.clone()));
        models
    }
}
