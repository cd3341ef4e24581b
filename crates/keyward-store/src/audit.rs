//! The audit log: every admin action, append-only and hash-chained.
//!
//! Invariants:
//! - Entry `n` stores `prev_hash` = entry `n-1`'s hash (64 zeros for the first) and
//!   `hash` = SHA-256 over a length-prefixed encoding of its own fields and `prev_hash`, so
//!   changing or deleting any entry breaks every later link; [`verify_chain`] finds the first
//!   break.
//! - Appends are serialised by the primary key on `seq`: a concurrent append that lost the
//!   race retries on the new head. SQLite triggers refuse UPDATE and DELETE.
//! - Entries hold ids, names and outcomes, never a secret (callers pass only those).

use keyward_core::Timestamp;
use sha2::{Digest, Sha256};

use crate::{Store, StoreError};

/// `prev_hash` of the first entry.
pub const GENESIS_HASH: &str = "0000000000000000000000000000000000000000000000000000000000000000";

/// An action to record.
#[derive(Clone, Debug)]
pub struct NewAuditEntry {
    pub at: Timestamp,
    /// The tenant the action concerned; `None` for deployment-wide actions.
    pub tenant_id: Option<String>,
    /// `operator`, or `key:ID` for a tenant admin key, or `cli` for the command line.
    pub actor: String,
    /// e.g. `credential.rotate`.
    pub action: String,
    /// The ids the action touched.
    pub target: String,
    /// `ok`, or the error code that refused it.
    pub outcome: String,
    /// Non-secret details as a JSON object text.
    pub details: String,
}

#[derive(Clone, Debug, sqlx::FromRow)]
pub struct AuditRecord {
    pub seq: i64,
    pub at: i64,
    pub tenant_id: Option<String>,
    pub actor: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// The first entry whose link or hash does not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ChainBreak {
    /// The sequence number where the chain breaks (the entry expected or found there).
    pub seq: i64,
    pub reason: &'static str,
}

fn entry_hash(seq: i64, entry: &NewAuditEntry, prev_hash: &str) -> String {
    let mut hasher = Sha256::new();
    let seq = seq.to_string();
    let at = entry.at.unix_millis().to_string();
    for field in [
        seq.as_str(),
        at.as_str(),
        entry.tenant_id.as_deref().unwrap_or(""),
        &entry.actor,
        &entry.action,
        &entry.target,
        &entry.outcome,
        &entry.details,
        prev_hash,
    ] {
        hasher.update((field.len() as u64).to_be_bytes());
        hasher.update(field.as_bytes());
    }
    hasher
        .finalize()
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect()
}

impl AuditRecord {
    fn expected_hash(&self) -> String {
        let entry = NewAuditEntry {
            at: Timestamp::from_unix_millis(self.at),
            tenant_id: self.tenant_id.clone(),
            actor: self.actor.clone(),
            action: self.action.clone(),
            target: self.target.clone(),
            outcome: self.outcome.clone(),
            details: self.details.clone(),
        };
        entry_hash(self.seq, &entry, &self.prev_hash)
    }
}

/// Checks a chain segment that follows `(prev_seq, prev_hash)`.
pub fn verify_chain(prev: (i64, &str), entries: &[AuditRecord]) -> Result<(), ChainBreak> {
    let (mut seq, mut hash) = (prev.0, prev.1.to_owned());
    for entry in entries {
        if entry.seq != seq + 1 {
            return Err(ChainBreak {
                seq: seq + 1,
                reason: "an entry is missing (deleted)",
            });
        }
        if entry.prev_hash != hash {
            return Err(ChainBreak {
                seq: entry.seq,
                reason: "the link to the previous entry does not match (an earlier entry was changed or replaced)",
            });
        }
        if entry.expected_hash() != entry.hash {
            return Err(ChainBreak {
                seq: entry.seq,
                reason: "the entry's contents do not match its hash (it was changed)",
            });
        }
        seq = entry.seq;
        hash = entry.hash.clone();
    }
    Ok(())
}

const COLUMNS: &str =
    "seq, at, tenant_id, actor, action, target, outcome, details, prev_hash, hash";

impl Store {
    /// Appends an entry at the head of the chain.
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditRecord, StoreError> {
        for _ in 0..64 {
            let head: Option<(i64, String)> =
                sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
                    .fetch_optional(&self.pool)
                    .await?;
            let (prev_seq, prev_hash) = head.unwrap_or((0, GENESIS_HASH.to_owned()));
            let seq = prev_seq + 1;
            let hash = entry_hash(seq, entry, &prev_hash);
            let inserted = sqlx::query(&format!(
                "INSERT INTO audit_log ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)"
            ))
            .bind(seq)
            .bind(entry.at.unix_millis())
            .bind(entry.tenant_id.as_deref())
            .bind(&entry.actor)
            .bind(&entry.action)
            .bind(&entry.target)
            .bind(&entry.outcome)
            .bind(&entry.details)
            .bind(&prev_hash)
            .bind(&hash)
            .execute(&self.pool)
            .await;
            match inserted {
                Ok(_) => {
                    return Ok(AuditRecord {
                        seq,
                        at: entry.at.unix_millis(),
                        tenant_id: entry.tenant_id.clone(),
                        actor: entry.actor.clone(),
                        action: entry.action.clone(),
                        target: entry.target.clone(),
                        outcome: entry.outcome.clone(),
                        details: entry.details.clone(),
                        prev_hash,
                        hash,
                    })
                }
                Err(sqlx::Error::Database(db)) if db.is_unique_violation() => continue,
                Err(err) => return Err(err.into()),
            }
        }
        Err(StoreError::Contended { what: "audit log" })
    }

    /// Entries after `after_seq`, oldest first; `tenant` narrows to one tenant's entries.
    pub async fn audit_entries(
        &self,
        tenant: Option<&str>,
        after_seq: i64,
        limit: u32,
    ) -> Result<Vec<AuditRecord>, StoreError> {
        Ok(sqlx::query_as::<_, AuditRecord>(&format!(
            "SELECT {COLUMNS} FROM audit_log WHERE seq > $1 AND ($2 IS NULL OR tenant_id = $2)
             ORDER BY seq LIMIT $3"
        ))
        .bind(after_seq)
        .bind(tenant)
        .bind(i64::from(limit))
        .fetch_all(&self.pool)
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(action: &str) -> NewAuditEntry {
        NewAuditEntry {
            at: Timestamp::from_unix_millis(1_700_000_000_000),
            tenant_id: Some("t1".to_owned()),
            actor: "operator".to_owned(),
            action: action.to_owned(),
            target: "c1".to_owned(),
            outcome: "ok".to_owned(),
            details: "{}".to_owned(),
        }
    }

    fn chain(actions: &[&str]) -> Vec<AuditRecord> {
        let mut prev = GENESIS_HASH.to_owned();
        actions
            .iter()
            .zip(1..)
            .map(|(action, seq)| {
                let entry = entry(action);
                let hash = entry_hash(seq, &entry, &prev);
                AuditRecord {
                    seq,
                    at: entry.at.unix_millis(),
                    tenant_id: entry.tenant_id,
                    actor: entry.actor,
                    action: entry.action,
                    target: entry.target,
                    outcome: entry.outcome,
                    details: entry.details,
                    prev_hash: std::mem::replace(&mut prev, hash.clone()),
                    hash,
                }
            })
            .collect()
    }

    #[test]
    fn an_intact_chain_verifies_and_every_edit_breaks_it() {
        let good = chain(&["a", "b", "c"]);
        assert_eq!(verify_chain((0, GENESIS_HASH), &good), Ok(()));

        let mut changed = good.clone();
        changed[1].outcome = "forbidden".to_owned();
        assert_eq!(
            verify_chain((0, GENESIS_HASH), &changed).unwrap_err().seq,
            2
        );

        let mut deleted = good.clone();
        deleted.remove(1);
        assert_eq!(
            verify_chain((0, GENESIS_HASH), &deleted).unwrap_err().seq,
            2
        );

        // Rehashing the changed entry does not help: the next link no longer matches.
        let mut rehashed = good.clone();
        rehashed[1].outcome = "forbidden".to_owned();
        rehashed[1].hash = rehashed[1].expected_hash();
        let broken = verify_chain((0, GENESIS_HASH), &rehashed).unwrap_err();
        assert_eq!(broken.seq, 3);
    }

    #[test]
    fn field_boundaries_are_part_of_the_hash() {
        let mut a = entry("x");
        a.actor = "ab".to_owned();
        a.action = "c".to_owned();
        let mut b = entry("x");
        b.actor = "a".to_owned();
        b.action = "bc".to_owned();
        assert_ne!(
            entry_hash(1, &a, GENESIS_HASH),
            entry_hash(1, &b, GENESIS_HASH)
        );
    }
}
