//! Connecting, listing, rotating, disabling and deleting a tenant's provider credentials, and
//! opening a credential's secret for an outbound call.
//!
//! Invariant: the secret is sealed (bound to tenant and credential id) before the row is
//! written; no method returns it except [`Keyward::open_credential_secret`], whose result lives
//! only as long as the call that needs it.

use std::collections::BTreeMap;

use keyward_core::secret::ProviderSecret;
use keyward_core::{CredentialId, ProviderId, SealedSecret, TenantId, Timestamp};
use keyward_custody::SecretReference;
use keyward_store::{CredentialRecord, CredentialStatus, Page, PageRequest};
use keyward_vault::RowBinding;

use crate::{validate, DomainError, Keyward, TenantScope};

/// The AAD field name of a credential's secret.
const SECRET_FIELD: &str = "credential.secret";
/// Longest secret accepted (Bedrock JSON with a session token fits comfortably).
const MAX_SECRET_LEN: usize = 8 * 1024;

/// What a tenant sends to connect a credential.
#[derive(Debug)]
pub struct CredentialInput {
    pub provider: String,
    pub label: String,
    pub secret: Option<ProviderSecret>,
    pub secret_ref: Option<String>,
    pub base_url: Option<String>,
    pub options: BTreeMap<String, String>,
}

/// How fresh a referenced secret must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Freshness {
    /// A cached copy younger than `secrets.cache_ttl` will do.
    Cached,
    /// Fetch from the manager now (`credential verify`).
    Refetch,
    /// Fetched after this instant: the provider rejected the value obtained then (one fetch
    /// serves every call rejected at once).
    RefetchSince(std::time::Instant),
}

/// A credential with its secret opened for one outbound call.
#[derive(Debug)]
pub struct OpenedCredential {
    pub record: CredentialRecord,
    /// `None` for keyless self-hosted endpoints.
    pub secret: Option<ProviderSecret>,
}

pub(crate) fn binding(tenant: TenantId, credential: CredentialId) -> RowBinding {
    RowBinding {
        tenant,
        record: credential.to_string(),
        field: SECRET_FIELD,
    }
}

impl Keyward {
    pub async fn connect_credential(
        &self,
        scope: &TenantScope,
        input: CredentialInput,
    ) -> Result<CredentialRecord, DomainError> {
        let provider: ProviderId = input.provider.parse().map_err(|_| {
            DomainError::invalid(
                "provider",
                "unknown provider; use one of: openai, azure-openai, anthropic, bedrock, mistral, groq, openai-compatible",
            )
        })?;
        validate::name("label", &input.label)?;
        let reference = match input.secret_ref.as_deref() {
            None => None,
            Some(_) if input.secret.is_some() => {
                return Err(DomainError::invalid(
                    "secret_ref",
                    "send either `secret` or `secret_ref`, not both",
                ))
            }
            Some(text) => Some(self.check_reference("secret_ref", scope, text)?),
        };
        let options = self.credential_options(provider, input.base_url, input.options)?;
        let secret = match input.secret {
            Some(secret) => Some(check_secret(provider, secret)?),
            None if provider.secret_optional() || reference.is_some() => None,
            None => {
                return Err(DomainError::invalid(
                    "secret",
                    format!("a {provider} credential needs the provider's API key in `secret`, or `secret_ref` naming where it is held"),
                ))
            }
        };

        let id = CredentialId::generate();
        let now = Timestamp::now();
        let sealed = secret
            .as_ref()
            .map(|secret| self.seal_secret(scope.tenant(), id, secret))
            .transpose()?;
        let record = CredentialRecord {
            id,
            tenant_id: scope.tenant(),
            label: input.label,
            provider,
            options,
            fingerprint: match (&secret, &reference) {
                (Some(secret), _) => fingerprint(provider, secret),
                (None, Some(_)) => "(held elsewhere)".to_owned(),
                (None, None) => "(none)".to_owned(),
            },
            secret: sealed,
            secret_ref: reference.as_ref().map(ToString::to_string),
            status: CredentialStatus::Active,
            created_at: now,
            rotated_at: None,
            status_changed_at: now,
        };
        self.store.insert_credential(&record).await?;
        tracing::info!(tenant = %record.tenant_id, credential = %record.id, provider = %provider, "credential connected");
        self.audit(scope, "credential.add", &record.id.to_string(), serde_json::json!({"label": record.label, "provider": provider.as_str(), "fingerprint": record.fingerprint}))
            .await;
        Ok(record)
    }

    pub async fn credential(
        &self,
        scope: &TenantScope,
        id: CredentialId,
    ) -> Result<CredentialRecord, DomainError> {
        self.store
            .credential(scope.tenant(), id)
            .await?
            .ok_or(DomainError::NotFound { what: "credential" })
    }

    /// Ids of a tenant's credentials, for tests and tools.
    pub async fn credential_id_by_label(
        &self,
        scope: &TenantScope,
        label: &str,
    ) -> Result<CredentialId, DomainError> {
        self.store
            .credential_by_label(scope.tenant(), label)
            .await?
            .map(|credential| credential.id)
            .ok_or(DomainError::NotFound { what: "credential" })
    }

    pub async fn credentials(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<CredentialRecord>, DomainError> {
        Ok(self.store.credentials(scope.tenant(), page).await?)
    }

    /// The tenant of a credential, for the operator's CLI which names credentials by id only.
    pub async fn credential_tenant(&self, id: CredentialId) -> Result<TenantId, DomainError> {
        self.store
            .credential_owner(id)
            .await?
            .ok_or(DomainError::NotFound { what: "credential" })
    }

    /// Replaces the secret; the next call uses the new one. A credential the provider rejected
    /// becomes active again.
    pub async fn rotate_credential(
        &self,
        scope: &TenantScope,
        id: CredentialId,
        secret: ProviderSecret,
    ) -> Result<CredentialRecord, DomainError> {
        let current = self.credential(scope, id).await?;
        let secret = check_secret(current.provider, secret)?;
        let sealed = self.seal_secret(scope.tenant(), id, &secret)?;
        let fingerprint = fingerprint(current.provider, &secret);
        let rotated = self
            .store
            .rotate_credential_secret(scope.tenant(), id, &sealed, &fingerprint, Timestamp::now())
            .await?;
        self.records.credentials.clear();
        if !rotated {
            return Err(DomainError::NotFound { what: "credential" });
        }
        tracing::info!(tenant = %scope.tenant(), credential = %id, "credential rotated");
        self.audit(
            scope,
            "credential.rotate",
            &id.to_string(),
            serde_json::json!({}),
        )
        .await;
        self.credential(scope, id).await
    }

    pub async fn set_credential_enabled(
        &self,
        scope: &TenantScope,
        id: CredentialId,
        enabled: bool,
    ) -> Result<CredentialRecord, DomainError> {
        let current = self.credential(scope, id).await?;
        let target = match (enabled, current.status) {
            (false, _) => CredentialStatus::Disabled,
            // Enabling does not clear a provider rejection: only rotate or verify does.
            (true, CredentialStatus::RejectedByProvider) => CredentialStatus::RejectedByProvider,
            (true, _) => CredentialStatus::Active,
        };
        if target != current.status {
            self.store
                .set_credential_status(scope.tenant(), id, target, Timestamp::now())
                .await?;
            self.records.credentials.clear();
            tracing::info!(tenant = %scope.tenant(), credential = %id, status = target.as_str(), "credential status changed");
            let action = if enabled {
                "credential.enable"
            } else {
                "credential.disable"
            };
            self.audit(
                scope,
                action,
                &id.to_string(),
                serde_json::json!({"status": target.as_str()}),
            )
            .await;
        }
        self.credential(scope, id).await
    }

    pub async fn delete_credential(
        &self,
        scope: &TenantScope,
        id: CredentialId,
    ) -> Result<(), DomainError> {
        let deleted = self.store.delete_credential(scope.tenant(), id).await?;
        self.records.credentials.clear();
        if !deleted {
            return Err(DomainError::NotFound { what: "credential" });
        }
        tracing::info!(tenant = %scope.tenant(), credential = %id, "credential deleted");
        self.audit(
            scope,
            "credential.delete",
            &id.to_string(),
            serde_json::json!({}),
        )
        .await;
        Ok(())
    }

    /// Opens a credential's secret for one outbound call. A blob that does not open (wrong or
    /// missing master key, a blob copied from another row) is `CredentialUnreadable`, logged
    /// with ids only — never another tenant's key.
    pub async fn open_credential_secret(
        &self,
        scope: &TenantScope,
        id: CredentialId,
    ) -> Result<OpenedCredential, DomainError> {
        let record = self.credential(scope, id).await?;
        self.open_credential_record(record, Freshness::Cached).await
    }

    /// Opens the secret of a record the caller has just read: unseals it, or fetches it from
    /// the manager its reference names.
    pub(crate) async fn open_credential_record(
        &self,
        record: CredentialRecord,
        freshness: Freshness,
    ) -> Result<OpenedCredential, DomainError> {
        let secret = match (&record.secret, &record.secret_ref) {
            (Some(sealed), _) => Some(self.open_sealed(&record, sealed).await?),
            (None, Some(reference)) => {
                Some(self.fetch_referenced(&record, reference, freshness).await?)
            }
            (None, None) => None,
        };
        Ok(OpenedCredential { record, secret })
    }

    async fn fetch_referenced(
        &self,
        record: &CredentialRecord,
        reference: &str,
        freshness: Freshness,
    ) -> Result<ProviderSecret, DomainError> {
        let unreadable = |manager: &'static str, source: keyward_custody::CustodyError| {
            tracing::error!(
                tenant = %record.tenant_id,
                credential = %record.id,
                reference,
                error = %source,
                "referenced credential secret cannot be fetched"
            );
            DomainError::CredentialReferenceUnreadable {
                id: record.id,
                label: record.label.clone(),
                reference: reference.to_owned(),
                manager,
                source: Box::new(source),
            }
        };
        let parsed = SecretReference::parse(reference).map_err(|_| {
            unreadable(
                "its manager",
                keyward_custody::CustodyError::NotConfigured {
                    manager: "Keyward",
                    hint: format!("the stored reference {reference} is malformed; connect the credential again"),
                },
            )
        })?;
        let fetched = match freshness {
            Freshness::Cached => self.secrets.resolve(&parsed, false).await,
            Freshness::Refetch => self.secrets.resolve(&parsed, true).await,
            Freshness::RefetchSince(used_at) => self.secrets.refetch_since(&parsed, used_at).await,
        };
        let text = fetched.map_err(|source| unreadable(parsed.manager(), source))?;
        // The manager's value is checked like a pasted key, never echoed; a malformed one is
        // not kept, so a fixed value in the manager is read by the next call.
        let checked = check_secret(
            record.provider,
            ProviderSecret::new(text.as_str().to_owned()),
        );
        if checked.is_err() {
            self.secrets.forget(&parsed).await;
        }
        checked.map_err(|_| {
            unreadable(
                parsed.manager(),
                keyward_custody::CustodyError::Refused {
                    manager: parsed.manager(),
                    action: "read".into(),
                    resource: reference.to_owned(),
                    detail: format!(
                        "the value is not a well-formed {} key (empty, too long, or with spaces)",
                        record.provider
                    ),
                },
            )
        })
    }

    /// Parses a reference and checks that this actor may use it: the operator any, a tenant
    /// admin only under `secrets.tenant_reference_prefixes` with `{tenant}` = its tenant id —
    /// else one tenant could point Keyward at another tenant's secret (a confused deputy:
    /// Keyward's identity can read both).
    pub(crate) fn check_reference(
        &self,
        field: &str,
        scope: &TenantScope,
        text: &str,
    ) -> Result<SecretReference, DomainError> {
        let reference = SecretReference::parse(text)
            .map_err(|err| DomainError::invalid(field, err.to_string()))?;
        if scope.is_operator() {
            return Ok(reference);
        }
        let canonical = reference.to_string();
        let tenant = scope.tenant().to_string();
        let allowed = self.tenant_reference_prefixes.iter().any(|prefix| {
            let prefix = prefix.replace("{tenant}", &tenant);
            !prefix.is_empty() && canonical.starts_with(&prefix)
        });
        if !allowed {
            return Err(DomainError::invalid(
                field,
                if self.tenant_reference_prefixes.is_empty() {
                    "only the operator may connect secrets by reference on this server (secrets.tenant_reference_prefixes is empty)".to_owned()
                } else {
                    format!(
                        "a tenant's references must start with one of: {} ({{tenant}} = {tenant})",
                        self.tenant_reference_prefixes.join(", ")
                    )
                },
            ));
        }
        Ok(reference)
    }

    async fn open_sealed(
        &self,
        record: &CredentialRecord,
        sealed: &SealedSecret,
    ) -> Result<ProviderSecret, DomainError> {
        self.vault
            .open_secret(sealed, &binding(record.tenant_id, record.id))
            .await
            .map_err(|source| {
                tracing::error!(
                    tenant = %record.tenant_id,
                    credential = %record.id,
                    key_version = %sealed.key_version,
                    error = %source,
                    "credential secret cannot be opened"
                );
                DomainError::CredentialUnreadable {
                    id: record.id,
                    label: record.label.clone(),
                    version: sealed.key_version,
                    source,
                }
            })
    }

    fn seal_secret(
        &self,
        tenant: TenantId,
        id: CredentialId,
        secret: &ProviderSecret,
    ) -> Result<SealedSecret, DomainError> {
        Ok(self
            .vault
            .seal(secret.expose_secret().as_bytes(), &binding(tenant, id))?)
    }

    fn credential_options(
        &self,
        provider: ProviderId,
        base_url: Option<String>,
        mut options: BTreeMap<String, String>,
    ) -> Result<BTreeMap<String, String>, DomainError> {
        if let Some(base_url) = base_url {
            if options.insert("base_url".into(), base_url).is_some() {
                return Err(DomainError::invalid(
                    "base_url",
                    "given both as a field and in options; send it once",
                ));
            }
        }
        let allowed = provider.allowed_options();
        for (key, value) in &mut options {
            if !allowed.contains(&key.as_str()) {
                return Err(DomainError::invalid(
                    format!("options.{key}"),
                    format!(
                        "not an option of {provider}; its options are: {}",
                        allowed.join(", ")
                    ),
                ));
            }
            let trimmed = value.trim();
            if trimmed.is_empty() || trimmed.len() > 1024 {
                return Err(DomainError::invalid(
                    format!("options.{key}"),
                    "1 to 1024 characters",
                ));
            }
            *value = trimmed.to_owned();
        }
        for required in provider.required_options() {
            if !options.contains_key(*required) {
                return Err(DomainError::invalid(
                    format!("options.{required}"),
                    format!("a {provider} credential needs `{required}`"),
                ));
            }
        }
        if let Some(url) = options.get("base_url") {
            let normalized = validate::base_url(url, &self.egress)?;
            options.insert("base_url".into(), normalized);
        }
        provider_specific_options(provider, &options)?;
        Ok(options)
    }
}

fn provider_specific_options(
    provider: ProviderId,
    options: &BTreeMap<String, String>,
) -> Result<(), DomainError> {
    match provider {
        ProviderId::AzureOpenAi => {
            if !options.contains_key("resource") && !options.contains_key("base_url") {
                return Err(DomainError::invalid(
                    "options.resource",
                    "an azure-openai credential needs `resource` (the name in https://RESOURCE.openai.azure.com) or `base_url`",
                ));
            }
            if let Some(resource) = options.get("resource") {
                validate::name("options.resource", resource)?;
            }
            if let Some(deployments) = options.get("deployments") {
                let well_formed = deployments.split(',').all(|pair| {
                    pair.split_once('=').is_some_and(|(model, deployment)| {
                        !model.trim().is_empty() && validate::name("", deployment.trim()).is_ok()
                    })
                });
                if !well_formed {
                    return Err(DomainError::invalid(
                        "options.deployments",
                        "write `model=deployment` pairs separated by commas, e.g. gpt-4o=prod-gpt4o,text-embedding-3-small=emb",
                    ));
                }
            }
        }
        ProviderId::Bedrock => {
            let region = options
                .get("region")
                .map(String::as_str)
                .unwrap_or_default();
            let well_formed = region.len() <= 32
                && region.split('-').count() >= 3
                && region
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
            if !well_formed {
                return Err(DomainError::invalid(
                    "options.region",
                    "an AWS region such as us-east-1 or eu-central-1",
                ));
            }
        }
        _ => {}
    }
    Ok(())
}

/// Checks a secret's shape (never echoing it) and trims surrounding whitespace.
fn check_secret(
    provider: ProviderId,
    secret: ProviderSecret,
) -> Result<ProviderSecret, DomainError> {
    let text = secret.expose_secret();
    let trimmed = text.trim();
    if trimmed.is_empty() {
        return Err(DomainError::invalid("secret", "the secret is empty"));
    }
    if trimmed.len() > MAX_SECRET_LEN {
        return Err(DomainError::invalid(
            "secret",
            format!("longer than {MAX_SECRET_LEN} bytes; provider keys are far shorter"),
        ));
    }
    if provider == ProviderId::Bedrock {
        bedrock_keys(trimmed)?;
    } else if trimmed.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(DomainError::invalid(
            "secret",
            "contains whitespace or control characters; paste the key alone",
        ));
    }
    if trimmed.len() == text.len() {
        return Ok(secret);
    }
    Ok(ProviderSecret::new(trimmed.to_owned()))
}

/// Bedrock's secret: `ACCESS_KEY_ID:SECRET_ACCESS_KEY[:SESSION_TOKEN]`. Returns the access key
/// id (not secret; shown in fingerprints).
fn bedrock_keys(secret: &str) -> Result<&str, DomainError> {
    let mut parts = secret.splitn(3, ':');
    let access_key_id = parts.next().unwrap_or_default();
    let secret_access_key = parts.next().unwrap_or_default();
    let well_formed = (16..=128).contains(&access_key_id.len())
        && access_key_id.chars().all(|c| c.is_ascii_alphanumeric())
        && !secret_access_key.is_empty()
        && !secret.chars().any(|c| c.is_whitespace() || c.is_control());
    if !well_formed {
        return Err(DomainError::invalid(
            "secret",
            "a bedrock secret is ACCESS_KEY_ID:SECRET_ACCESS_KEY or ACCESS_KEY_ID:SECRET_ACCESS_KEY:SESSION_TOKEN",
        ));
    }
    Ok(access_key_id)
}

/// Key prefixes providers publish; they identify the kind of key, not the key.
const VENDOR_PREFIXES: [&str; 4] = ["sk-ant-", "sk-", "gsk_", "xai-"];

/// A recognisable, non-reversible hint of a secret: its vendor prefix (`sk-`, `gsk_`) and last
/// four characters for long keys, fewer for short ones, e.g. `sk-…a1B9`.
pub(crate) fn fingerprint(provider: ProviderId, secret: &ProviderSecret) -> String {
    let text = secret.expose_secret();
    if provider == ProviderId::Bedrock {
        let access_key_id = bedrock_keys(text).unwrap_or_default();
        return tail_hint(
            &access_key_id[..access_key_id.len().min(4)],
            access_key_id,
            4,
        );
    }
    // Only well-known vendor prefixes are shown, and at most a sixth of the key: a short,
    // hand-made key (common for self-hosted endpoints) must not be half revealed.
    let prefix = VENDOR_PREFIXES
        .iter()
        .find(|prefix| text.starts_with(**prefix) && text.len() >= prefix.len() + 16)
        .copied()
        .unwrap_or("");
    let shown = match text.len() {
        0..=11 => 0,
        12..=23 => 2,
        _ => 4,
    };
    tail_hint(prefix, text, shown)
}

fn tail_hint(prefix: &str, text: &str, shown: usize) -> String {
    let tail_start = text
        .char_indices()
        .rev()
        .nth(shown.saturating_sub(1))
        .map_or(text.len(), |(index, _)| index);
    let tail = if shown == 0 { "" } else { &text[tail_start..] };
    format!("{prefix}…{tail}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secret(text: &str) -> ProviderSecret {
        ProviderSecret::new(text.into())
    }

    #[test]
    fn fingerprints_show_prefix_and_tail_only() {
        assert_eq!(
            fingerprint(
                ProviderId::OpenAi,
                &secret("sk-proj-abcdefghijklmnopqrstuvwxyza1B9")
            ),
            "sk-…a1B9"
        );
        assert_eq!(
            fingerprint(ProviderId::Groq, &secret("gsk_0123456789abcdefWXYZ")),
            "gsk_…WXYZ"
        );
        assert_eq!(
            fingerprint(ProviderId::Mistral, &secret("0123456789ab")),
            "…ab"
        );
        assert_eq!(fingerprint(ProviderId::Mistral, &secret("short")), "…");
        assert_eq!(
            fingerprint(
                ProviderId::Bedrock,
                &secret("AKIAIOSFODNN7EXAMPLE:wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY")
            ),
            "AKIA…MPLE"
        );
    }

    #[test]
    fn secret_checks_never_echo_the_secret() {
        let canary = "sk-canary-has space-9f3e";
        let err = check_secret(ProviderId::OpenAi, secret(canary)).unwrap_err();
        assert!(!err.to_string().contains("canary"), "{err}");
        let err = check_secret(ProviderId::Bedrock, secret("sk-canary-9f3e")).unwrap_err();
        assert!(!err.to_string().contains("canary"), "{err}");
        let trimmed = check_secret(ProviderId::OpenAi, secret("  sk-abc\n")).unwrap();
        assert_eq!(trimmed.expose_secret(), "sk-abc");
    }
}
