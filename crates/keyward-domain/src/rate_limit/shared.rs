//! Limits shared by every replica on one PostgreSQL: the key's bucket lives in the database
//! (`Store::change_rate_bucket`), and each replica leases a slice of it — half a second of the
//! allowance, at least one — and admits calls from its slice without a round trip.
//!
//! Invariants:
//! - Tokens a replica is granted are taken from the shared bucket first, so replicas together
//!   admit what one bucket allows. The only excess: a replica may still hold up to one slice
//!   leased earlier while the bucket refills, so over any window a key gets at most its limit
//!   plus one slice per replica.
//! - A call's real tokens are charged to the replica's slice; a charge past it is pushed to the
//!   database as debt at once (or with the next lease when the database is away), so the other
//!   replicas see it.
//! - The database unreachable: calls go on only while the replica's slice lasts, then are
//!   refused (`ledger_unavailable`) until a lease succeeds again — a limit is never lifted.
//! - One lease in flight per key and replica: concurrent calls wait for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use keyward_core::PlatformKeyId;
use keyward_store::{BucketChange, Store};

use super::{seconds_to_refill, KeyLimits, LimitKind, LimitRefusal, RateLimited};

/// The share of a per-minute limit leased at a time: half a second of it, at least one.
pub(crate) fn slice(limit: u64) -> u64 {
    (limit / 120).max(1)
}

/// A key unused this long is forgotten (what it held is at most one slice per limit).
const IDLE_BEFORE_SWEEP: Duration = Duration::from_secs(600);
/// Entries are swept when the map has grown by this many since the last sweep.
const SWEEP_EVERY: usize = 1024;

/// What this replica holds of one key's buckets.
#[derive(Debug)]
struct Held {
    /// Whole requests leased and not yet used.
    requests: f64,
    /// Tokens leased; negative while a charge waits to be pushed to the database.
    tokens: f64,
    /// The TPM limit the tokens were leased under.
    tpm: Option<u64>,
    used: Instant,
}

impl Held {
    fn new() -> Self {
        Self {
            requests: 0.0,
            tokens: 0.0,
            tpm: None,
            used: Instant::now(),
        }
    }
}

type Entry = Arc<tokio::sync::Mutex<Held>>;

pub(crate) struct SharedLimiter {
    store: Store,
    keys: Mutex<(HashMap<PlatformKeyId, Entry>, usize)>,
}

impl SharedLimiter {
    pub(crate) fn new(store: Store) -> Self {
        Self {
            store,
            keys: Mutex::new((HashMap::new(), 0)),
        }
    }

    fn entry(&self, key: PlatformKeyId) -> Entry {
        let mut keys = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let (map, swept_at_len) = &mut *keys;
        if map.len() >= *swept_at_len + SWEEP_EVERY {
            map.retain(|_, entry| {
                entry
                    .try_lock()
                    .map_or(true, |held| held.used.elapsed() < IDLE_BEFORE_SWEEP)
            });
            *swept_at_len = map.len();
        }
        map.entry(key)
            .or_insert_with(|| Arc::new(tokio::sync::Mutex::new(Held::new())))
            .clone()
    }

    async fn change(
        &self,
        key: PlatformKeyId,
        kind: &'static str,
        capacity: u64,
        give: f64,
        want: u64,
    ) -> Result<keyward_store::BucketState, LimitRefusal> {
        self.store
            .change_rate_bucket(BucketChange {
                key,
                kind,
                capacity,
                give,
                want,
            })
            .await
            .map_err(LimitRefusal::Unavailable)
    }

    /// Admits one request of `key`: from what this replica holds, else from a new lease.
    pub(crate) async fn admit(
        &self,
        key: PlatformKeyId,
        limits: KeyLimits,
    ) -> Result<(), LimitRefusal> {
        if limits.is_unlimited() {
            return Ok(());
        }
        let entry = self.entry(key);
        let mut held = entry.lock().await;
        held.used = Instant::now();
        if let Some(rpm) = limits.rpm {
            if held.requests < 1.0 {
                let state = self.change(key, "rpm", rpm, 0.0, slice(rpm)).await?;
                held.requests += state.granted as f64;
                if held.requests < 1.0 {
                    return Err(LimitRefusal::Limited(RateLimited {
                        kind: LimitKind::RequestsPerMinute,
                        limit: rpm,
                        retry_after_secs: seconds_to_refill(rpm, 1.0 - state.level),
                    }));
                }
            }
        }
        if let Some(tpm) = limits.tpm {
            held.tpm = Some(tpm);
            if held.tokens <= 0.0 {
                // What is owed goes with the lease: the database's level pays it first.
                let owed = held.tokens;
                let state = self.change(key, "tpm", tpm, owed, slice(tpm)).await?;
                held.tokens = state.granted as f64;
                if held.tokens <= 0.0 {
                    return Err(LimitRefusal::Limited(RateLimited {
                        kind: LimitKind::TokensPerMinute,
                        limit: tpm,
                        retry_after_secs: seconds_to_refill(tpm, 1.0 - state.level),
                    }));
                }
            }
        }
        if limits.rpm.is_some() {
            held.requests -= 1.0;
        }
        Ok(())
    }

    /// Charges a finished call's tokens; a charge past the slice is owed to the database.
    pub(crate) async fn charge_tokens(&self, key: PlatformKeyId, tokens: u64) {
        let entry = self.entry(key);
        let mut held = entry.lock().await;
        let Some(tpm) = held.tpm else {
            return;
        };
        held.tokens -= tokens as f64;
        if held.tokens >= 0.0 {
            return;
        }
        match self.change(key, "tpm", tpm, held.tokens, 0).await {
            Ok(_) => held.tokens = 0.0,
            // Kept, and pushed with this replica's next lease for the key.
            Err(_) => {
                tracing::warn!(key = %key, "a call's tokens could not be charged to the shared limit yet");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slice_is_half_a_second_of_the_limit_and_at_least_one() {
        assert_eq!(slice(30), 1);
        assert_eq!(slice(120), 1);
        assert_eq!(slice(1_200), 10);
        assert_eq!(slice(120_000), 1_000);
    }
}
