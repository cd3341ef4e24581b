//! Per-platform-key limits: requests per minute (RPM) and tokens per minute (TPM).
//!
//! Each limit is a token bucket holding at most one minute's allowance and refilling
//! continuously, so a key may burst up to its limit and then runs at the limit's rate.
//! - RPM: a request is admitted when a whole request is in the bucket, and takes it.
//! - TPM: a request is admitted while the bucket is above zero; when the call ends, its real
//!   tokens (input + output) are taken, which may leave the bucket in debt — the next requests
//!   wait until the debt is repaid. A call whose usage never arrives is charged its input byte
//!   count, an upper bound of its input tokens.
//! - A refusal says how long until the request would be admitted (`retry-after`, whole seconds,
//!   at least 1).
//!
//! Where the bucket lives depends on the store ([`Limits::for_store`]): with SQLite (one
//! process) in this process's memory ([`RateLimiter`]); with PostgreSQL in the database,
//! shared by every replica, which lease slices of it ([`shared::SharedLimiter`]) so that a
//! call costs no database round trip of its own.
//!
//! Invariants: memory is one entry per key that has limits and was used recently — idle
//! entries, which would be full again, are dropped.

mod shared;

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keyward_core::PlatformKeyId;

/// A key's limits as configured; `None` is unlimited.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct KeyLimits {
    pub rpm: Option<u64>,
    pub tpm: Option<u64>,
}

impl KeyLimits {
    pub(crate) fn is_unlimited(self) -> bool {
        self.rpm.is_none() && self.tpm.is_none()
    }
}

/// Which limit refused a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    RequestsPerMinute,
    TokensPerMinute,
}

impl LimitKind {
    pub fn describe(self) -> &'static str {
        match self {
            Self::RequestsPerMinute => "requests per minute",
            Self::TokensPerMinute => "tokens per minute",
        }
    }
}

/// A refusal: the limit, its value, and when to retry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RateLimited {
    pub kind: LimitKind,
    pub limit: u64,
    pub retry_after_secs: u64,
}

const MINUTE: f64 = 60.0;
/// A key untouched this long (no admission, no charge) may be forgotten once full again.
const IDLE_BEFORE_SWEEP: Duration = Duration::from_secs(600);
/// Entries are swept when the map has grown by this many since the last sweep.
const SWEEP_EVERY: usize = 1024;

#[derive(Debug)]
struct Bucket {
    level: f64,
    capacity: f64,
}

impl Bucket {
    fn full(limit: u64) -> Self {
        let capacity = limit as f64;
        Self {
            level: capacity,
            capacity,
        }
    }

    fn refill(&mut self, elapsed: Duration) {
        let rate = self.capacity / MINUTE;
        self.level = (self.level + rate * elapsed.as_secs_f64()).min(self.capacity);
    }

    /// Seconds until the level reaches `needed`.
    fn wait_for(&self, needed: f64) -> u64 {
        seconds_to_refill(self.capacity as u64, needed - self.level)
    }
}

#[derive(Debug)]
struct KeyState {
    limits: KeyLimits,
    requests: Option<Bucket>,
    tokens: Option<Bucket>,
    updated: Instant,
}

impl KeyState {
    fn new(limits: KeyLimits, now: Instant) -> Self {
        Self {
            limits,
            requests: limits.rpm.map(Bucket::full),
            tokens: limits.tpm.map(Bucket::full),
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated);
        // `now` may be older than `updated` (taken before another caller's): never go back.
        self.updated = self.updated.max(now);
        for bucket in [&mut self.requests, &mut self.tokens].into_iter().flatten() {
            bucket.refill(elapsed);
        }
    }

    /// Limits changed by an admin: keep what was used, within the new capacities.
    fn apply(&mut self, limits: KeyLimits) {
        if self.limits == limits {
            return;
        }
        let rebuild = |old: Option<Bucket>, limit: Option<u64>| {
            limit.map(|limit| {
                let mut bucket = Bucket::full(limit);
                if let Some(old) = old {
                    bucket.level =
                        (bucket.capacity - (old.capacity - old.level)).min(bucket.capacity);
                }
                bucket
            })
        };
        self.requests = rebuild(self.requests.take(), limits.rpm);
        self.tokens = rebuild(self.tokens.take(), limits.tpm);
        self.limits = limits;
    }

    fn is_full(&self) -> bool {
        [&self.requests, &self.tokens]
            .into_iter()
            .flatten()
            .all(|bucket| bucket.level >= bucket.capacity)
    }
}

/// Why a call was not admitted by its key's limits.
#[derive(Debug)]
pub(crate) enum LimitRefusal {
    Limited(RateLimited),
    /// The shared bucket could not be reached (PostgreSQL down): no limit is ever assumed.
    Unavailable(keyward_store::StoreError),
}

/// The limiter a store calls for: in memory for SQLite, shared through PostgreSQL.
pub(crate) enum Limits {
    Local(RateLimiter),
    Shared(shared::SharedLimiter),
}

impl Limits {
    pub(crate) fn for_store(store: &keyward_store::Store) -> Self {
        match store.backend() {
            keyward_store::Backend::Postgres => {
                Self::Shared(shared::SharedLimiter::new(store.clone()))
            }
            keyward_store::Backend::Sqlite => Self::Local(RateLimiter::default()),
        }
    }

    /// Admits one request of `key` under `limits`, or says why not.
    pub(crate) async fn admit(
        &self,
        key: PlatformKeyId,
        limits: KeyLimits,
    ) -> Result<(), LimitRefusal> {
        match self {
            Self::Local(limiter) => limiter
                .admit(key, limits, Instant::now())
                .map_err(LimitRefusal::Limited),
            Self::Shared(limiter) => limiter.admit(key, limits).await,
        }
    }

    /// Takes a finished call's tokens from its key's TPM allowance.
    pub(crate) async fn charge_tokens(&self, key: PlatformKeyId, tokens: u64) {
        match self {
            Self::Local(limiter) => limiter.charge_tokens(key, tokens, Instant::now()),
            Self::Shared(limiter) => limiter.charge_tokens(key, tokens).await,
        }
    }
}

/// Whole seconds (at least 1) until a bucket refilling at `limit` per minute gains `deficit`.
fn seconds_to_refill(limit: u64, deficit: f64) -> u64 {
    let seconds = (deficit / (limit as f64 / MINUTE)).ceil();
    if seconds.is_finite() && seconds >= 1.0 {
        seconds as u64
    } else {
        1
    }
}

#[derive(Debug, Default)]
pub struct RateLimiter {
    keys: Mutex<Limiter>,
}

#[derive(Debug, Default)]
struct Limiter {
    states: HashMap<PlatformKeyId, KeyState>,
    swept_at_len: usize,
}

impl RateLimiter {
    /// Admits one request of `key` under `limits`, or says which limit refuses it and when to
    /// retry.
    pub fn admit(
        &self,
        key: PlatformKeyId,
        limits: KeyLimits,
        now: Instant,
    ) -> Result<(), RateLimited> {
        let mut limiter = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if limits.is_unlimited() {
            limiter.states.remove(&key);
            return Ok(());
        }
        limiter.sweep(now);
        let state = limiter
            .states
            .entry(key)
            .or_insert_with(|| KeyState::new(limits, now));
        state.apply(limits);
        state.refill(now);
        if let (Some(bucket), Some(limit)) = (&state.requests, limits.rpm) {
            if bucket.level < 1.0 {
                return Err(RateLimited {
                    kind: LimitKind::RequestsPerMinute,
                    limit,
                    retry_after_secs: bucket.wait_for(1.0),
                });
            }
        }
        if let (Some(bucket), Some(limit)) = (&state.tokens, limits.tpm) {
            if bucket.level <= 0.0 {
                return Err(RateLimited {
                    kind: LimitKind::TokensPerMinute,
                    limit,
                    retry_after_secs: bucket.wait_for(f64::MIN_POSITIVE),
                });
            }
        }
        if let Some(bucket) = &mut state.requests {
            bucket.level -= 1.0;
        }
        Ok(())
    }

    /// Takes a finished call's tokens from its key's TPM bucket (if the key has one).
    pub fn charge_tokens(&self, key: PlatformKeyId, tokens: u64, now: Instant) {
        let mut limiter = self
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(state) = limiter.states.get_mut(&key) {
            state.refill(now);
            if let Some(bucket) = &mut state.tokens {
                bucket.level -= tokens as f64;
            }
        }
    }
}

impl Limiter {
    /// Drops entries that are full again (idle keys), once the map has grown enough.
    fn sweep(&mut self, now: Instant) {
        if self.states.len() < self.swept_at_len + SWEEP_EVERY {
            return;
        }
        // Only keys idle for a while: a key with a call in flight must keep its entry, or the
        // call's tokens could not be charged when it ends.
        self.states.retain(|_, state| {
            let idle = now.saturating_duration_since(state.updated) >= IDLE_BEFORE_SWEEP;
            state.refill(now);
            !(idle && state.is_full())
        });
        self.swept_at_len = self.states.len();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(rpm: Option<u64>, tpm: Option<u64>) -> KeyLimits {
        KeyLimits { rpm, tpm }
    }

    #[test]
    fn rpm_allows_a_burst_of_the_limit_then_the_rate() {
        let limiter = RateLimiter::default();
        let key = PlatformKeyId::generate();
        let start = Instant::now();
        let rpm = limits(Some(6), None);
        for _ in 0..6 {
            limiter.admit(key, rpm, start).unwrap();
        }
        let refused = limiter.admit(key, rpm, start).unwrap_err();
        assert_eq!(refused.kind, LimitKind::RequestsPerMinute);
        assert_eq!(refused.limit, 6);
        // 6 per minute: one every 10 s.
        assert_eq!(refused.retry_after_secs, 10);
        assert!(limiter
            .admit(key, rpm, start + Duration::from_secs(9))
            .is_err());
        limiter
            .admit(key, rpm, start + Duration::from_secs(10))
            .unwrap();
        assert!(limiter
            .admit(key, rpm, start + Duration::from_secs(10))
            .is_err());
    }

    #[test]
    fn tpm_charges_real_tokens_and_waits_out_the_debt() {
        let limiter = RateLimiter::default();
        let key = PlatformKeyId::generate();
        let start = Instant::now();
        let tpm = limits(None, Some(600));
        limiter.admit(key, tpm, start).unwrap();
        limiter.charge_tokens(key, 500, start);
        limiter.admit(key, tpm, start).unwrap();
        limiter.charge_tokens(key, 400, start);
        // 300 tokens in debt at 10 tokens/s: 30 s.
        let refused = limiter.admit(key, tpm, start).unwrap_err();
        assert_eq!(refused.kind, LimitKind::TokensPerMinute);
        assert_eq!(refused.retry_after_secs, 30);
        assert!(limiter
            .admit(key, tpm, start + Duration::from_secs(29))
            .is_err());
        limiter
            .admit(key, tpm, start + Duration::from_secs(31))
            .unwrap();
    }

    #[test]
    fn changed_limits_apply_at_once_and_unlimited_keys_hold_no_state() {
        let limiter = RateLimiter::default();
        let key = PlatformKeyId::generate();
        let start = Instant::now();
        for _ in 0..3 {
            limiter.admit(key, limits(Some(10), None), start).unwrap();
        }
        // Lowered to 3: the 3 already used count against it.
        assert!(limiter.admit(key, limits(Some(3), None), start).is_err());
        limiter.admit(key, limits(None, None), start).unwrap();
        assert!(limiter.keys.lock().unwrap().states.is_empty());
    }
}
