//! Web console sessions: a tenant admin key or the operator token, checked once at sign-in,
//! exchanged for a random session token whose SHA-256 the store keeps.
//!
//! Invariants: a member key never gets a session; a session ends at its idle or absolute
//! expiry, at sign-out, and as soon as its key is revoked or expires (checked on every use);
//! the session token is never stored, logged or audited — only its hash is stored.

use std::time::Duration;

use keyward_core::secret::ConsoleSessionToken;
use keyward_core::Timestamp;

use crate::{Actor, DomainError, Keyward};

/// How long a console session lives.
#[derive(Clone, Copy, Debug)]
pub struct SessionLimits {
    /// Ended after this long without a request.
    pub idle: Duration,
    /// Ended this long after sign-in, however active.
    pub absolute: Duration,
}

/// A session's idle clock is written at most this often (one write per minute of activity,
/// not one per page).
const TOUCH_EVERY: Duration = Duration::from_secs(30);

fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

impl Keyward {
    /// Starts a session for an actor that authenticated with its token: the operator or a
    /// tenant admin. Expired sessions are cleared on the way.
    pub async fn start_console_session(
        &self,
        actor: &Actor,
        limits: SessionLimits,
    ) -> Result<ConsoleSessionToken, DomainError> {
        let (tenant, key) = match actor {
            Actor::Operator => (None, None),
            Actor::TenantAdmin { tenant, key } => (Some(*tenant), Some(*key)),
            Actor::Member { .. } => {
                return Err(DomainError::Forbidden(
                    "a member key cannot sign in to the console; use a key with role `admin`",
                ))
            }
        };
        let now = Timestamp::now();
        self.store
            .delete_expired_console_sessions(
                Timestamp::from_unix_millis(now.unix_millis() - millis(limits.absolute)),
                Timestamp::from_unix_millis(now.unix_millis() - millis(limits.idle)),
            )
            .await?;
        let token = ConsoleSessionToken::generate()
            .map_err(|_| DomainError::Vault(keyward_vault::VaultError::RandomUnavailable))?;
        self.store
            .insert_console_session(&token.hash_hex(), tenant, key, now)
            .await?;
        self.append_audit(
            tenant,
            actor.name(),
            "console.sign_in",
            "console",
            "ok",
            serde_json::json!({}),
        )
        .await;
        Ok(token)
    }

    /// The actor of a live session, or `Unauthenticated` for a session that does not exist,
    /// has expired (it is deleted) or whose key no longer authenticates.
    pub async fn console_session_actor(
        &self,
        token: &ConsoleSessionToken,
        limits: SessionLimits,
    ) -> Result<Actor, DomainError> {
        let hash = token.hash_hex();
        let Some(session) = self.store.console_session(&hash).await? else {
            return Err(DomainError::Unauthenticated);
        };
        let now = Timestamp::now().unix_millis();
        let idle_for = now - session.last_seen_at.unix_millis();
        let age = now - session.created_at.unix_millis();
        if idle_for > millis(limits.idle) || age > millis(limits.absolute) {
            self.store.delete_console_session(&hash).await?;
            return Err(DomainError::Unauthenticated);
        }
        let actor = match (session.tenant_id, session.key_id) {
            (None, None) => Actor::Operator,
            (Some(tenant), Some(key)) => {
                let record = self.store.platform_key(tenant, key).await?;
                let usable = record.is_some_and(|record| {
                    record.role == keyward_store::Role::Admin
                        && record.revoked_at.is_none()
                        && record.expires_at.is_none_or(|at| at.unix_millis() > now)
                });
                if !usable {
                    self.store.delete_console_session(&hash).await?;
                    return Err(DomainError::Unauthenticated);
                }
                Actor::TenantAdmin { tenant, key }
            }
            _ => return Err(DomainError::Unauthenticated),
        };
        if idle_for > millis(TOUCH_EVERY) {
            self.store
                .touch_console_session(&hash, Timestamp::from_unix_millis(now))
                .await?;
        }
        Ok(actor)
    }

    /// Ends a session (sign-out). Ending one that is already gone is not an error.
    pub async fn end_console_session(
        &self,
        token: &ConsoleSessionToken,
    ) -> Result<(), DomainError> {
        self.store.delete_console_session(&token.hash_hex()).await?;
        Ok(())
    }
}
