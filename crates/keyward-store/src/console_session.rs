//! Web console sessions.
//!
//! Invariants: a session is found only by the SHA-256 of its cookie value (the value itself is
//! never stored); a tenant admin's session names its tenant and key, the operator's names
//! neither; deleting a session ends it on every replica at once.

use keyward_core::{PlatformKeyId, TenantId, Timestamp};

use crate::{Store, StoreError};

/// One signed-in console session.
#[derive(Clone, Debug)]
pub struct ConsoleSessionRecord {
    /// `None` for the operator.
    pub tenant_id: Option<TenantId>,
    pub key_id: Option<PlatformKeyId>,
    pub created_at: Timestamp,
    pub last_seen_at: Timestamp,
}

impl Store {
    /// Records a new session.
    pub async fn insert_console_session(
        &self,
        token_hash: &str,
        tenant: Option<TenantId>,
        key: Option<PlatformKeyId>,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, tenant_id, key_id, created_at, last_seen_at)
             VALUES ($1, $2, $3, $4, $4)",
        )
        .bind(token_hash)
        .bind(tenant.map(|tenant| tenant.to_string()))
        .bind(key.map(|key| key.to_string()))
        .bind(now.unix_millis())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The session whose cookie hashes to `token_hash`, if it exists.
    pub async fn console_session(
        &self,
        token_hash: &str,
    ) -> Result<Option<ConsoleSessionRecord>, StoreError> {
        let row: Option<(Option<String>, Option<String>, i64, i64)> = sqlx::query_as(
            "SELECT tenant_id, key_id, created_at, last_seen_at FROM console_sessions
             WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(&self.pool)
        .await?;
        let Some((tenant, key, created_at, last_seen_at)) = row else {
            return Ok(None);
        };
        let corrupt = |column| StoreError::corrupt("console_sessions", column, "(session)");
        Ok(Some(ConsoleSessionRecord {
            tenant_id: tenant
                .map(|tenant| tenant.parse().map_err(|_| corrupt("tenant_id")))
                .transpose()?,
            key_id: key
                .map(|key| key.parse().map_err(|_| corrupt("key_id")))
                .transpose()?,
            created_at: Timestamp::from_unix_millis(created_at),
            last_seen_at: Timestamp::from_unix_millis(last_seen_at),
        }))
    }

    /// Moves a session's idle clock forward.
    pub async fn touch_console_session(
        &self,
        token_hash: &str,
        now: Timestamp,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE console_sessions SET last_seen_at = $2 WHERE token_hash = $1")
            .bind(token_hash)
            .bind(now.unix_millis())
            .execute(&self.pool)
            .await?;
        Ok(())
    }

    /// Ends one session; true when it existed.
    pub async fn delete_console_session(&self, token_hash: &str) -> Result<bool, StoreError> {
        let done = sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .execute(&self.pool)
            .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Deletes the sessions created before `created_before` or idle since before `idle_before`.
    pub async fn delete_expired_console_sessions(
        &self,
        created_before: Timestamp,
        idle_before: Timestamp,
    ) -> Result<u64, StoreError> {
        let done =
            sqlx::query("DELETE FROM console_sessions WHERE created_at < $1 OR last_seen_at < $2")
                .bind(created_before.unix_millis())
                .bind(idle_before.unix_millis())
                .execute(&self.pool)
                .await?;
        Ok(done.rows_affected())
    }
}
