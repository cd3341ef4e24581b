//! Provider credentials: label, provider, options, and the sealed secret.

use std::collections::BTreeMap;

use keyward_core::{CredentialId, KeyVersion, ProviderId, SealedSecret, TenantId, Timestamp};

use crate::{Page, PageRequest, Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CredentialStatus {
    Active,
    Disabled,
    RejectedByProvider,
}

impl CredentialStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Active => "active",
            Self::Disabled => "disabled",
            Self::RejectedByProvider => "rejected_by_provider",
        }
    }

    fn parse(text: &str) -> Option<Self> {
        [Self::Active, Self::Disabled, Self::RejectedByProvider]
            .into_iter()
            .find(|status| status.as_str() == text)
    }
}

#[derive(Clone, Debug)]
pub struct CredentialRecord {
    pub id: CredentialId,
    pub tenant_id: TenantId,
    pub label: String,
    pub provider: ProviderId,
    pub options: BTreeMap<String, String>,
    /// `None` for keyless self-hosted endpoints and for references.
    pub secret: Option<SealedSecret>,
    /// Where the secret is held instead (`vault://…`, `aws-sm://…`, `azure-kv://…`); never
    /// set together with `secret`.
    pub secret_ref: Option<String>,
    pub fingerprint: String,
    pub status: CredentialStatus,
    pub created_at: Timestamp,
    pub rotated_at: Option<Timestamp>,
    pub status_changed_at: Timestamp,
}

/// What is written when a credential is connected.
pub type NewCredential = CredentialRecord;

/// A row still sealed under an older master-key version.
#[derive(Clone, Debug)]
pub struct RewrapCandidate {
    pub id: CredentialId,
    pub tenant_id: TenantId,
    pub secret: SealedSecret,
}

#[derive(sqlx::FromRow)]
struct CredentialRow {
    id: String,
    tenant_id: String,
    label: String,
    provider: String,
    options: String,
    secret_blob: Option<String>,
    secret_key_version: Option<i64>,
    secret_ref: Option<String>,
    fingerprint: String,
    status: String,
    created_at: i64,
    rotated_at: Option<i64>,
    status_changed_at: i64,
}

pub(crate) fn sealed(
    blob: Option<String>,
    version: Option<i64>,
    corrupt: impl Fn(&'static str) -> StoreError,
) -> Result<Option<SealedSecret>, StoreError> {
    match (blob, version) {
        (None, None) => Ok(None),
        (Some(blob), Some(version)) => {
            let key_version = u32::try_from(version)
                .ok()
                .and_then(KeyVersion::new)
                .ok_or_else(|| corrupt("secret_key_version"))?;
            Ok(Some(SealedSecret { blob, key_version }))
        }
        _ => Err(corrupt("secret_key_version")),
    }
}

impl TryFrom<CredentialRow> for CredentialRecord {
    type Error = StoreError;
    fn try_from(row: CredentialRow) -> Result<Self, StoreError> {
        let id = row.id.clone();
        let corrupt = move |column| StoreError::corrupt("credentials", column, &id);
        Ok(Self {
            id: row.id.parse().map_err(|_| corrupt("id"))?,
            tenant_id: row.tenant_id.parse().map_err(|_| corrupt("tenant_id"))?,
            provider: row.provider.parse().map_err(|_| corrupt("provider"))?,
            options: serde_json::from_str(&row.options).map_err(|_| corrupt("options"))?,
            secret: sealed(row.secret_blob, row.secret_key_version, &corrupt)?,
            secret_ref: row.secret_ref,
            status: CredentialStatus::parse(&row.status).ok_or_else(|| corrupt("status"))?,
            label: row.label,
            fingerprint: row.fingerprint,
            created_at: Timestamp::from_unix_millis(row.created_at),
            rotated_at: row.rotated_at.map(Timestamp::from_unix_millis),
            status_changed_at: Timestamp::from_unix_millis(row.status_changed_at),
        })
    }
}

const COLUMNS: &str = "id, tenant_id, label, provider, options, secret_blob, secret_key_version, \
                       fingerprint, status, created_at, rotated_at, status_changed_at, secret_ref";

impl Store {
    pub async fn insert_credential(&self, credential: &NewCredential) -> Result<(), StoreError> {
        let options = serde_json::to_string(&credential.options)
            .map_err(|_| StoreError::corrupt("credentials", "options", credential.id))?;
        sqlx::query(&format!(
            "INSERT INTO credentials ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)"
        ))
        .bind(credential.id.to_string())
        .bind(credential.tenant_id.to_string())
        .bind(&credential.label)
        .bind(credential.provider.as_str())
        .bind(options)
        .bind(credential.secret.as_ref().map(|sealed| sealed.blob.as_str()))
        .bind(credential.secret.as_ref().map(|sealed| i64::from(sealed.key_version.get())))
        .bind(&credential.fingerprint)
        .bind(credential.status.as_str())
        .bind(credential.created_at.unix_millis())
        .bind(credential.rotated_at.map(Timestamp::unix_millis))
        .bind(credential.status_changed_at.unix_millis())
        .bind(credential.secret_ref.as_deref())
        .execute(&self.pool)
        .await
        .map_err(|err| StoreError::from_write(err, "credential", "label"))?;
        Ok(())
    }

    pub async fn credential(
        &self,
        tenant: TenantId,
        id: CredentialId,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        sqlx::query_as::<_, CredentialRow>(&format!(
            "SELECT {COLUMNS} FROM credentials WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(CredentialRecord::try_from)
        .transpose()
    }

    pub async fn credential_by_label(
        &self,
        tenant: TenantId,
        label: &str,
    ) -> Result<Option<CredentialRecord>, StoreError> {
        sqlx::query_as::<_, CredentialRow>(&format!(
            "SELECT {COLUMNS} FROM credentials WHERE tenant_id = $1 AND label = $2"
        ))
        .bind(tenant.to_string())
        .bind(label)
        .fetch_optional(&self.pool)
        .await?
        .map(CredentialRecord::try_from)
        .transpose()
    }

    /// The tenant owning a credential, for operator tools addressing a credential by id alone.
    pub async fn credential_owner(&self, id: CredentialId) -> Result<Option<TenantId>, StoreError> {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT tenant_id FROM credentials WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        owner
            .map(|tenant| {
                tenant
                    .parse()
                    .map_err(|_| StoreError::corrupt("credentials", "tenant_id", id))
            })
            .transpose()
    }

    pub async fn credentials(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<CredentialRecord>, StoreError> {
        let rows = sqlx::query_as::<_, CredentialRow>(&format!(
            "SELECT {COLUMNS} FROM credentials
             WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        ))
        .bind(tenant.to_string())
        .bind(page.after.as_deref())
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        Page::<CredentialRecord>::convert(rows, page, |credential| credential.id.to_string())
    }

    /// Replaces the secret (a tenant rotation). A credential the provider had rejected becomes
    /// active again; a disabled one stays disabled. Returns whether the row existed.
    pub async fn rotate_credential_secret(
        &self,
        tenant: TenantId,
        id: CredentialId,
        secret: &SealedSecret,
        fingerprint: &str,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE credentials
             SET secret_blob = $1, secret_key_version = $2, fingerprint = $3, rotated_at = $4,
                 secret_ref = NULL,
                 status = CASE WHEN status = 'disabled' THEN 'disabled' ELSE 'active' END,
                 status_changed_at = CASE WHEN status = 'rejected_by_provider' THEN $4
                                          ELSE status_changed_at END
             WHERE tenant_id = $5 AND id = $6",
        )
        .bind(&secret.blob)
        .bind(i64::from(secret.key_version.get()))
        .bind(fingerprint)
        .bind(at.unix_millis())
        .bind(tenant.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    pub async fn set_credential_status(
        &self,
        tenant: TenantId,
        id: CredentialId,
        status: CredentialStatus,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE credentials SET status = $1, status_changed_at = $2
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(status.as_str())
        .bind(at.unix_millis())
        .bind(tenant.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Marks a credential `rejected_by_provider` only if it is still active and still holds the
    /// secret the provider refused. Returns whether it was marked.
    pub async fn reject_credential(
        &self,
        tenant: TenantId,
        id: CredentialId,
        secret_used: Option<&SealedSecret>,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE credentials SET status = 'rejected_by_provider', status_changed_at = $1
             WHERE tenant_id = $2 AND id = $3 AND status = 'active'
               AND (secret_blob = $4 OR (secret_blob IS NULL AND $4 IS NULL))",
        )
        .bind(at.unix_millis())
        .bind(tenant.to_string())
        .bind(id.to_string())
        .bind(secret_used.map(|sealed| sealed.blob.as_str()))
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes the row and with it the only copy of the ciphertext.
    pub async fn delete_credential(
        &self,
        tenant: TenantId,
        id: CredentialId,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM credentials WHERE tenant_id = $1 AND id = $2")
            .bind(tenant.to_string())
            .bind(id.to_string())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Rows sealed under a version below `primary`, in id order after `after`.
    pub async fn rewrap_candidates(
        &self,
        primary: KeyVersion,
        after: Option<CredentialId>,
        limit: u32,
    ) -> Result<Vec<RewrapCandidate>, StoreError> {
        let rows: Vec<(String, String, String, i64)> = sqlx::query_as(
            "SELECT id, tenant_id, secret_blob, secret_key_version FROM credentials
             WHERE secret_key_version < $1 AND ($2 IS NULL OR id > $2)
             ORDER BY id LIMIT $3",
        )
        .bind(i64::from(primary.get()))
        .bind(after.map(|id| id.to_string()))
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(id, tenant_id, blob, version)| {
                let corrupt = |column| StoreError::corrupt("credentials", column, &id);
                Ok(RewrapCandidate {
                    id: id.parse().map_err(|_| corrupt("id"))?,
                    tenant_id: tenant_id.parse().map_err(|_| corrupt("tenant_id"))?,
                    secret: sealed(Some(blob), Some(version), corrupt)?
                        .ok_or_else(|| corrupt("secret_blob"))?,
                })
            })
            .collect()
    }

    /// Compare-and-swap of a sealed secret: writes `new` only if the row still holds
    /// `expected` (a tenant rotating the same row meanwhile wins). Returns whether it wrote.
    pub async fn swap_sealed_secret(
        &self,
        id: CredentialId,
        expected: &SealedSecret,
        new: &SealedSecret,
    ) -> Result<bool, StoreError> {
        self.swap_sealed(
            crate::sealed_swap::SealedColumn::Credential,
            &id.to_string(),
            expected,
            new,
        )
        .await
    }

    /// How many sealed values each master-key version holds: credentials' secrets, documents'
    /// names and chunks' text.
    pub async fn sealed_rows_by_version(&self) -> Result<Vec<(KeyVersion, u64)>, StoreError> {
        let rows: Vec<(i64, i64)> = sqlx::query_as(
            "SELECT version, CAST(SUM(n) AS BIGINT) FROM (
                 SELECT secret_key_version AS version, COUNT(*) AS n FROM credentials
                 WHERE secret_key_version IS NOT NULL GROUP BY secret_key_version
                 UNION ALL
                 SELECT sealed_key_version, COUNT(*) FROM kb_documents
                 WHERE sealed_key_version IS NOT NULL GROUP BY sealed_key_version
                 UNION ALL
                 SELECT sealed_key_version, COUNT(*) FROM kb_chunks GROUP BY sealed_key_version
                 UNION ALL
                 SELECT secret_key_version, COUNT(*) FROM connectors
                 WHERE secret_key_version IS NOT NULL GROUP BY secret_key_version
             ) AS sealed GROUP BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(version, count)| {
                let version = u32::try_from(version)
                    .ok()
                    .and_then(KeyVersion::new)
                    .ok_or_else(|| {
                        StoreError::corrupt("credentials", "secret_key_version", version)
                    })?;
                Ok((version, u64::try_from(count).unwrap_or(0)))
            })
            .collect()
    }
}
