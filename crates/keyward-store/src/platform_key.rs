//! Platform keys (`kw_…`): only a SHA-256 hash and a display prefix are kept.

use keyward_core::{DepartmentId, PlatformKeyId, TenantId, Timestamp};

use crate::department::{decode_list, encode_list};
use crate::{Page, PageRequest, Store, StoreError};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// Manages its own tenant through the admin API, and calls models.
    Admin,
    /// Calls models only.
    Member,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Admin => "admin",
            Self::Member => "member",
        }
    }

    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "admin" => Some(Self::Admin),
            "member" => Some(Self::Member),
            _ => None,
        }
    }
}

#[derive(Clone, Debug)]
pub struct PlatformKeyRecord {
    pub id: PlatformKeyId,
    pub tenant_id: TenantId,
    /// Non-secret prefix used to find the row.
    pub lookup: String,
    /// Lowercase hex SHA-256 of the whole key.
    pub key_hash: String,
    /// `kw_` and the first characters, for people to recognise a key.
    pub display_prefix: String,
    pub name: Option<String>,
    pub role: Role,
    pub models: Option<Vec<String>>,
    pub department_id: Option<DepartmentId>,
    pub expires_at: Option<Timestamp>,
    pub revoked_at: Option<Timestamp>,
    pub created_at: Timestamp,
    /// Requests per minute this key may make; `None`: unlimited.
    pub rpm_limit: Option<u64>,
    /// Tokens (input + output) per minute; `None`: unlimited.
    pub tpm_limit: Option<u64>,
}

pub type NewPlatformKey = PlatformKeyRecord;

#[derive(sqlx::FromRow)]
struct PlatformKeyRow {
    id: String,
    tenant_id: String,
    lookup: String,
    key_hash: String,
    display_prefix: String,
    name: Option<String>,
    role: String,
    models: Option<String>,
    department_id: Option<String>,
    expires_at: Option<i64>,
    revoked_at: Option<i64>,
    created_at: i64,
    rpm_limit: Option<i64>,
    tpm_limit: Option<i64>,
}

impl TryFrom<PlatformKeyRow> for PlatformKeyRecord {
    type Error = StoreError;
    fn try_from(row: PlatformKeyRow) -> Result<Self, StoreError> {
        let corrupt = |column| StoreError::corrupt("platform_keys", column, &row.id);
        Ok(Self {
            id: row.id.parse().map_err(|_| corrupt("id"))?,
            tenant_id: row.tenant_id.parse().map_err(|_| corrupt("tenant_id"))?,
            role: Role::parse(&row.role).ok_or_else(|| corrupt("role"))?,
            models: decode_list(row.models.as_deref()).map_err(|()| corrupt("models"))?,
            department_id: row
                .department_id
                .as_deref()
                .map(str::parse)
                .transpose()
                .map_err(|_| corrupt("department_id"))?,
            lookup: row.lookup,
            key_hash: row.key_hash,
            display_prefix: row.display_prefix,
            name: row.name,
            expires_at: row.expires_at.map(Timestamp::from_unix_millis),
            revoked_at: row.revoked_at.map(Timestamp::from_unix_millis),
            created_at: Timestamp::from_unix_millis(row.created_at),
            rpm_limit: row
                .rpm_limit
                .map(u64::try_from)
                .transpose()
                .map_err(|_| corrupt("rpm_limit"))?,
            tpm_limit: row
                .tpm_limit
                .map(u64::try_from)
                .transpose()
                .map_err(|_| corrupt("tpm_limit"))?,
        })
    }
}

const COLUMNS: &str = "id, tenant_id, lookup, key_hash, display_prefix, name, role, models, \
                       department_id, expires_at, revoked_at, created_at, rpm_limit, tpm_limit";

impl Store {
    pub async fn insert_platform_key(&self, key: &NewPlatformKey) -> Result<(), StoreError> {
        sqlx::query(&format!(
            "INSERT INTO platform_keys ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)"
        ))
        .bind(key.id.to_string())
        .bind(key.tenant_id.to_string())
        .bind(&key.lookup)
        .bind(&key.key_hash)
        .bind(&key.display_prefix)
        .bind(key.name.as_deref())
        .bind(key.role.as_str())
        .bind(encode_list(key.models.as_deref()))
        .bind(key.department_id.map(|id| id.to_string()))
        .bind(key.expires_at.map(Timestamp::unix_millis))
        .bind(key.revoked_at.map(Timestamp::unix_millis))
        .bind(key.created_at.unix_millis())
        .bind(key.rpm_limit.map(|limit| i64::try_from(limit).unwrap_or(i64::MAX)))
        .bind(key.tpm_limit.map(|limit| i64::try_from(limit).unwrap_or(i64::MAX)))
        .execute(&self.pool)
        .await
        .map_err(|err| StoreError::from_write(err, "platform key", "lookup prefix"))?;
        Ok(())
    }

    /// The key whose lookup prefix matches; the caller still compares the hash.
    pub async fn platform_key_by_lookup(
        &self,
        lookup: &str,
    ) -> Result<Option<PlatformKeyRecord>, StoreError> {
        sqlx::query_as::<_, PlatformKeyRow>(&format!(
            "SELECT {COLUMNS} FROM platform_keys WHERE lookup = $1"
        ))
        .bind(lookup)
        .fetch_optional(&self.pool)
        .await?
        .map(PlatformKeyRecord::try_from)
        .transpose()
    }

    pub async fn platform_key(
        &self,
        tenant: TenantId,
        id: PlatformKeyId,
    ) -> Result<Option<PlatformKeyRecord>, StoreError> {
        sqlx::query_as::<_, PlatformKeyRow>(&format!(
            "SELECT {COLUMNS} FROM platform_keys WHERE tenant_id = $1 AND id = $2"
        ))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .fetch_optional(&self.pool)
        .await?
        .map(PlatformKeyRecord::try_from)
        .transpose()
    }

    /// The tenant owning a platform key, for operator tools addressing a key by id alone.
    pub async fn platform_key_owner(
        &self,
        id: PlatformKeyId,
    ) -> Result<Option<TenantId>, StoreError> {
        let owner: Option<String> =
            sqlx::query_scalar("SELECT tenant_id FROM platform_keys WHERE id = $1")
                .bind(id.to_string())
                .fetch_optional(&self.pool)
                .await?;
        owner
            .map(|tenant| {
                tenant
                    .parse()
                    .map_err(|_| StoreError::corrupt("platform_keys", "tenant_id", id))
            })
            .transpose()
    }

    pub async fn platform_keys(
        &self,
        tenant: TenantId,
        page: &PageRequest,
    ) -> Result<Page<PlatformKeyRecord>, StoreError> {
        let rows = sqlx::query_as::<_, PlatformKeyRow>(&format!(
            "SELECT {COLUMNS} FROM platform_keys
             WHERE tenant_id = $1 AND ($2 IS NULL OR id > $2) ORDER BY id LIMIT $3"
        ))
        .bind(tenant.to_string())
        .bind(page.after.as_deref())
        .bind(page.fetch_limit())
        .fetch_all(&self.pool)
        .await?;
        Page::<PlatformKeyRecord>::convert(rows, page, |key| key.id.to_string())
    }

    /// Marks a key revoked (idempotent: the first revocation time is kept). Returns whether
    /// the key exists.
    pub async fn revoke_platform_key(
        &self,
        tenant: TenantId,
        id: PlatformKeyId,
        at: Timestamp,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE platform_keys SET revoked_at = COALESCE(revoked_at, $1)
             WHERE tenant_id = $2 AND id = $3",
        )
        .bind(at.unix_millis())
        .bind(tenant.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Sets a key's per-minute limits (`None`: unlimited); false when there is no such key.
    pub async fn set_platform_key_limits(
        &self,
        tenant: TenantId,
        id: PlatformKeyId,
        rpm_limit: Option<u64>,
        tpm_limit: Option<u64>,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE platform_keys SET rpm_limit = $1, tpm_limit = $2
             WHERE tenant_id = $3 AND id = $4",
        )
        .bind(rpm_limit.map(|limit| i64::try_from(limit).unwrap_or(i64::MAX)))
        .bind(tpm_limit.map(|limit| i64::try_from(limit).unwrap_or(i64::MAX)))
        .bind(tenant.to_string())
        .bind(id.to_string())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
