//! Platform keys: `kw_` + a 12-character lookup id + 43 characters (32 random bytes) of secret,
//! base64url. Only the SHA-256 of the whole key is stored; presented keys are found by their
//! lookup id and compared by hash in constant time.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use keyward_core::secret::PlatformKeyPlaintext;
use keyward_core::{PlatformKeyId, Timestamp};
use keyward_store::{Page, PageRequest, PlatformKeyRecord, Role};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::{validate, Actor, DomainError, Keyward, TenantScope};

const PREFIX: &str = "kw_";
const LOOKUP_LEN: usize = 12; // 9 random bytes
const SECRET_LEN: usize = 43; // 32 random bytes
const KEY_LEN: usize = PREFIX.len() + LOOKUP_LEN + SECRET_LEN;
const MAX_RPM: u64 = 10_000_000;
const MAX_TPM: u64 = 100_000_000_000;

fn validate_limit(field: &str, limit: Option<u64>, max: u64) -> Result<Option<u64>, DomainError> {
    match limit {
        Some(limit) if limit == 0 || limit > max => Err(DomainError::invalid(
            field,
            format!("a whole number from 1 to {max}; omit it for no limit"),
        )),
        limit => Ok(limit),
    }
}

#[derive(Debug, Default)]
pub struct PlatformKeyInput {
    pub name: Option<String>,
    /// `admin` or `member`; `member` when absent.
    pub role: Option<String>,
    pub models: Option<Vec<String>>,
    /// A department name of the tenant.
    pub department: Option<String>,
    /// RFC 3339.
    pub expires_at: Option<String>,
    /// Requests per minute; `None`: unlimited.
    pub rpm_limit: Option<u64>,
    /// Tokens (input + output) per minute; `None`: unlimited.
    pub tpm_limit: Option<u64>,
}

/// A freshly issued key: the only moment its plaintext exists.
#[derive(Debug)]
pub struct IssuedPlatformKey {
    pub record: PlatformKeyRecord,
    pub key: PlatformKeyPlaintext,
}

fn random_text(bytes: usize) -> Result<String, DomainError> {
    let mut buffer = vec![0u8; bytes];
    getrandom::getrandom(&mut buffer)
        .map_err(|_| DomainError::Vault(keyward_vault::VaultError::RandomUnavailable))?;
    Ok(URL_SAFE_NO_PAD.encode(buffer))
}

fn hash_hex(key: &str) -> String {
    Sha256::digest(key.as_bytes())
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl Keyward {
    pub async fn issue_platform_key(
        &self,
        scope: &TenantScope,
        input: PlatformKeyInput,
    ) -> Result<IssuedPlatformKey, DomainError> {
        let role = match input.role.as_deref() {
            None => Role::Member,
            Some(text) => Role::parse(text)
                .ok_or_else(|| DomainError::invalid("role", "use `admin` or `member`"))?,
        };
        if let Some(name) = &input.name {
            if name.trim().is_empty() || name.len() > 200 || name.chars().any(char::is_control) {
                return Err(DomainError::invalid(
                    "name",
                    "1 to 200 printable characters",
                ));
            }
        }
        let department_id = match &input.department {
            None => None,
            Some(name) => Some(
                self.store
                    .department_by_name(scope.tenant(), name)
                    .await?
                    .ok_or_else(|| {
                        DomainError::invalid(
                            "department",
                            format!("no department `{name}` in this tenant; create it first (POST /admin/v1/tenants/{{tenant}}/departments)"),
                        )
                    })?
                    .id,
            ),
        };
        let now = Timestamp::now();
        let expires_at = match &input.expires_at {
            None => None,
            Some(text) => {
                let at = Timestamp::parse_rfc3339(text)
                    .map_err(|err| DomainError::invalid("expires_at", err.to_string()))?;
                if at <= now {
                    return Err(DomainError::invalid("expires_at", "must be in the future"));
                }
                Some(at)
            }
        };

        let lookup = random_text(9)?;
        let key = PlatformKeyPlaintext::new(format!("{PREFIX}{lookup}{}", random_text(32)?));
        let record = PlatformKeyRecord {
            id: PlatformKeyId::generate(),
            tenant_id: scope.tenant(),
            display_prefix: format!("{PREFIX}{}…", &lookup[..6]),
            key_hash: hash_hex(key.expose_secret()),
            lookup,
            name: input.name,
            role,
            models: validate::models("models", input.models)?,
            department_id,
            expires_at,
            revoked_at: None,
            created_at: now,
            rpm_limit: validate_limit("rpm_limit", input.rpm_limit, MAX_RPM)?,
            tpm_limit: validate_limit("tpm_limit", input.tpm_limit, MAX_TPM)?,
        };
        self.store.insert_platform_key(&record).await?;
        tracing::info!(tenant = %scope.tenant(), key = %record.id, role = role.as_str(), "platform key issued");
        self.audit(scope, "key.issue", &record.id.to_string(), serde_json::json!({"role": role.as_str(), "name": record.name, "prefix": record.display_prefix}))
            .await;
        Ok(IssuedPlatformKey { record, key })
    }

    pub async fn platform_keys(
        &self,
        scope: &TenantScope,
        page: &PageRequest,
    ) -> Result<Page<PlatformKeyRecord>, DomainError> {
        Ok(self.store.platform_keys(scope.tenant(), page).await?)
    }

    pub async fn revoke_platform_key(
        &self,
        scope: &TenantScope,
        id: PlatformKeyId,
    ) -> Result<PlatformKeyRecord, DomainError> {
        let changed = self
            .store
            .revoke_platform_key(scope.tenant(), id, Timestamp::now())
            .await?;
        if changed {
            tracing::info!(tenant = %scope.tenant(), key = %id, "platform key revoked");
        }
        self.key_changed(scope, id, changed, "key.revoke", serde_json::json!({}))
            .await
    }

    /// After an update of key `id` (`changed`: whether its row existed): the audit entry and
    /// the key as it now is, or `NotFound`.
    async fn key_changed(
        &self,
        scope: &TenantScope,
        id: PlatformKeyId,
        changed: bool,
        action: &str,
        details: serde_json::Value,
    ) -> Result<PlatformKeyRecord, DomainError> {
        // This process's cached key records are dropped at once; other processes' expire.
        self.records.platform_keys.clear();
        let not_found = || DomainError::NotFound {
            what: "platform key",
        };
        if !changed {
            return Err(not_found());
        }
        self.audit(scope, action, &id.to_string(), details).await;
        self.store
            .platform_key(scope.tenant(), id)
            .await?
            .ok_or_else(not_found)
    }

    /// Sets or clears a key's per-minute limits; they apply from the key's next request.
    pub async fn set_platform_key_limits(
        &self,
        scope: &TenantScope,
        id: PlatformKeyId,
        rpm_limit: Option<u64>,
        tpm_limit: Option<u64>,
    ) -> Result<PlatformKeyRecord, DomainError> {
        let rpm_limit = validate_limit("rpm_limit", rpm_limit, MAX_RPM)?;
        let tpm_limit = validate_limit("tpm_limit", tpm_limit, MAX_TPM)?;
        let changed = self
            .store
            .set_platform_key_limits(scope.tenant(), id, rpm_limit, tpm_limit)
            .await?;
        if changed {
            tracing::info!(tenant = %scope.tenant(), key = %id, "platform key limits set");
        }
        self.key_changed(
            scope,
            id,
            changed,
            "key.limits",
            serde_json::json!({"rpm_limit": rpm_limit, "tpm_limit": tpm_limit}),
        )
        .await
    }

    /// The tenant owning a platform key, for the operator's CLI.
    pub async fn platform_key_tenant(
        &self,
        id: PlatformKeyId,
    ) -> Result<keyward_core::TenantId, DomainError> {
        self.store
            .platform_key_owner(id)
            .await?
            .ok_or(DomainError::NotFound {
                what: "platform key",
            })
    }

    /// Resolves a presented `kw_` key to its actor. Unknown, malformed, revoked and expired keys
    /// all give the same `InvalidPlatformKey`.
    pub async fn authenticate_platform_key(&self, presented: &str) -> Result<Actor, DomainError> {
        let candidate = presented.trim();
        if candidate.len() != KEY_LEN || !candidate.starts_with(PREFIX) || !candidate.is_ascii() {
            return Err(DomainError::InvalidPlatformKey);
        }
        let lookup = &candidate[PREFIX.len()..PREFIX.len() + LOOKUP_LEN];
        let record = match self.records.platform_keys.get(lookup) {
            Some(record) => record,
            None => {
                let read_at = std::time::Instant::now();
                let Some(record) = self.store.platform_key_by_lookup(lookup).await? else {
                    return Err(DomainError::InvalidPlatformKey);
                };
                self.records
                    .platform_keys
                    .insert(lookup.to_owned(), record.clone(), read_at);
                record
            }
        };
        let presented_hash = hash_hex(candidate);
        let matches: bool = presented_hash
            .as_bytes()
            .ct_eq(record.key_hash.as_bytes())
            .into();
        let now = Timestamp::now();
        let expired = record.expires_at.is_some_and(|at| at <= now);
        if !matches || record.revoked_at.is_some() || expired {
            return Err(DomainError::InvalidPlatformKey);
        }
        Ok(match record.role {
            Role::Admin => Actor::TenantAdmin {
                tenant: record.tenant_id,
                key: record.id,
            },
            Role::Member => Actor::Member {
                tenant: record.tenant_id,
                key: record.id,
                department: record.department_id,
                models: record.models,
                limits: crate::KeyLimits {
                    rpm: record.rpm_limit,
                    tpm: record.tpm_limit,
                },
            },
        })
    }
}
