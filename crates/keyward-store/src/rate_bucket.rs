//! Per-key limits shared by replicas (PostgreSQL): one token bucket per (platform key, limit
//! kind) in `rate_buckets`, refilled continuously at `capacity` per minute by the database's
//! clock. Replicas change it in one statement: return tokens or push debt (`give`), and lease
//! up to `want` whole tokens — never more than the bucket holds.
//!
//! Invariants:
//! - Every change is one row-locked `UPDATE … RETURNING`: concurrent replicas serialize on
//!   the row, so the tokens they are granted together never exceed what the bucket held.
//! - Time is the database's (`clock_timestamp()`), so replicas with skewed clocks refill the
//!   same bucket at the same rate.
//! - PostgreSQL only: a SQLite store has one process, which limits in memory.

use keyward_core::PlatformKeyId;

use crate::{Backend, Store, StoreError};

/// One change to a key's shared bucket.
#[derive(Clone, Copy, Debug)]
pub struct BucketChange {
    pub key: PlatformKeyId,
    /// `rpm` or `tpm`.
    pub kind: &'static str,
    /// The limit per minute, as configured now (a changed limit applies at once).
    pub capacity: u64,
    /// Tokens given back (positive) or owed (negative: tokens a finished call used).
    pub give: f64,
    /// Whole tokens wanted now; granted as far as the refilled level allows.
    pub want: u64,
}

/// The bucket after a change.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct BucketState {
    pub granted: u64,
    /// The level left in the database (negative while in debt).
    pub level: f64,
}

/// Now on the database's clock, in ms.
const NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM clock_timestamp()) * 1000 AS BIGINT)";

impl Store {
    /// Applies `change` to its bucket (created full on first use) and says what was granted.
    pub async fn change_rate_bucket(
        &self,
        change: BucketChange,
    ) -> Result<BucketState, StoreError> {
        if self.backend() != Backend::Postgres {
            return Err(StoreError::Unsupported {
                what: "shared rate-limit buckets (PostgreSQL only)",
            });
        }
        if let Some(state) = self.update_bucket(change).await? {
            return Ok(state);
        }
        sqlx::query(&format!(
            "INSERT INTO rate_buckets (key_id, kind, level, capacity, updated_at)
             VALUES ($1, $2, $3, $4, {NOW_MS}) ON CONFLICT (key_id, kind) DO NOTHING"
        ))
        .bind(change.key.to_string())
        .bind(change.kind)
        .bind(change.capacity as f64)
        .bind(i64::try_from(change.capacity).unwrap_or(i64::MAX))
        .execute(&self.pool)
        .await?;
        self.update_bucket(change)
            .await?
            .ok_or(StoreError::Unsupported {
                what: "a rate bucket that vanished while it was created",
            })
    }

    async fn update_bucket(&self, change: BucketChange) -> Result<Option<BucketState>, StoreError> {
        // refilled: the level now, with what is given back, at most the capacity; granted:
        // whole tokens of it, at most `want`.
        let row: Option<(i64, f64)> = sqlx::query_as(&format!(
            "WITH current AS (
                 SELECT LEAST($3, level + GREATEST(0, {NOW_MS} - updated_at) * $3 / 60000.0 + $4)
                            AS refilled,
                        GREATEST(updated_at, {NOW_MS}) AS now_ms
                 FROM rate_buckets WHERE key_id = $1 AND kind = $2 FOR UPDATE
             ), granted AS (
                 SELECT refilled, now_ms, GREATEST(0, LEAST($5, FLOOR(refilled))) AS tokens
                 FROM current
             )
             UPDATE rate_buckets SET level = granted.refilled - granted.tokens,
                    updated_at = granted.now_ms, capacity = CAST($3 AS BIGINT)
             FROM granted WHERE key_id = $1 AND kind = $2
             RETURNING CAST(granted.tokens AS BIGINT), rate_buckets.level"
        ))
        .bind(change.key.to_string())
        .bind(change.kind)
        .bind(change.capacity as f64)
        .bind(change.give)
        .bind(change.want as f64)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.map(|(granted, level)| BucketState {
            granted: u64::try_from(granted).unwrap_or(0),
            level,
        }))
    }
}
