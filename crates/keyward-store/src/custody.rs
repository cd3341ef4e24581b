//! Key custody rows: data keys wrapped by an external key manager (envelope master-key
//! sources) and this deployment's id, which is part of every wrapping context.
//!
//! Invariant: only wrapped data keys are stored; the store never sees one in the clear.

use keyward_core::{KeyVersion, Timestamp};

use crate::{Store, StoreError};

/// A master-key version whose data key is held wrapped by a key manager.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WrappedDataKeyRecord {
    pub version: KeyVersion,
    /// The source that wrapped it, as configured (`aws-kms:…`, `vault-transit:…`).
    pub wrapper: String,
    /// The manager's ciphertext (base64 for KMS, `vault:vN:…` for Transit).
    pub wrapped: String,
    pub created_at: Timestamp,
}

impl Store {
    pub async fn wrapped_data_keys(&self) -> Result<Vec<WrappedDataKeyRecord>, StoreError> {
        let rows: Vec<(i64, String, String, i64)> = sqlx::query_as(
            "SELECT version, wrapper, wrapped, created_at FROM wrapped_data_keys ORDER BY version",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.into_iter()
            .map(|(version, wrapper, wrapped, created_at)| {
                let version = u32::try_from(version)
                    .ok()
                    .and_then(KeyVersion::new)
                    .ok_or_else(|| StoreError::corrupt("wrapped_data_keys", "version", version))?;
                Ok(WrappedDataKeyRecord {
                    version,
                    wrapper,
                    wrapped,
                    created_at: Timestamp::from_unix_millis(created_at),
                })
            })
            .collect()
    }

    /// Stores a new wrapped data key. `false` if the version is taken (another replica created
    /// one at the same moment: the caller reloads and uses theirs).
    pub async fn insert_wrapped_data_key(
        &self,
        key: &WrappedDataKeyRecord,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO wrapped_data_keys (version, wrapper, wrapped, created_at)
             VALUES ($1, $2, $3, $4) ON CONFLICT (version) DO NOTHING",
        )
        .bind(i64::from(key.version.get()))
        .bind(&key.wrapper)
        .bind(&key.wrapped)
        .bind(key.created_at.unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The highest master-key version this database knows of, recorded or wrapped.
    pub async fn highest_key_version(&self) -> Result<Option<KeyVersion>, StoreError> {
        let highest: Option<i64> = sqlx::query_scalar(
            "SELECT CAST(MAX(version) AS BIGINT) FROM (
                 SELECT version FROM master_keys UNION ALL SELECT version FROM wrapped_data_keys
             ) AS known",
        )
        .fetch_one(&self.pool)
        .await?;
        Ok(highest
            .and_then(|version| u32::try_from(version).ok())
            .and_then(KeyVersion::new))
    }

    /// This deployment's id: `candidate` if this is the first call ever, else the one stored.
    pub async fn deployment_id(&self, candidate: &str) -> Result<String, StoreError> {
        sqlx::query(
            "INSERT INTO deployment (singleton, id, created_at) VALUES (1, $1, $2)
             ON CONFLICT (singleton) DO NOTHING",
        )
        .bind(candidate)
        .bind(Timestamp::now().unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(
            sqlx::query_scalar("SELECT id FROM deployment WHERE singleton = 1")
                .fetch_one(&self.pool)
                .await?,
        )
    }
}
