//! Short-lived per-replica caches of the records every model call reads: the platform key (by
//! its lookup id) and the credential (by tenant and label). Each read saved is a database round
//! trip on the hot path.
//!
//! Invariants:
//! - An entry is served for at most [`RECORD_TTL`] after it was read from the database; a
//!   change made through this process clears the cache at once, a change made by another
//!   replica or the CLI is seen within [`RECORD_TTL`] (the one-second propagation contract).
//! - Only records are cached, never secrets: a platform key is still compared (constant time,
//!   against its stored hash) on every request, and a credential's secret is opened per call.
//! - Bounded: past [`MAX_ENTRIES`] the cache is emptied rather than grown.

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use keyward_core::TenantId;
use keyward_store::{CredentialRecord, PlatformKeyRecord};

/// Longest a cached record is served.
pub const RECORD_TTL: Duration = Duration::from_millis(500);
const MAX_ENTRIES: usize = 16_384;

pub struct TtlCache<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for TtlCache<K, V> {
    fn default() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: Eq + Hash, V: Clone> TtlCache<K, V> {
    fn entries(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        match self.entries.lock() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        }
    }

    pub fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: std::borrow::Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries();
        entries
            .get(key)
            .filter(|(read_at, _)| read_at.elapsed() < RECORD_TTL)
            .map(|(_, value)| value.clone())
    }

    /// Stores a record read at `read_at` (taken before the read, so a change committed during
    /// the read is never hidden for longer than the TTL).
    pub fn insert(&self, key: K, value: V, read_at: Instant) {
        let mut entries = self.entries();
        if entries.len() >= MAX_ENTRIES {
            entries.clear();
        }
        entries.insert(key, (read_at, value));
    }

    pub fn clear(&self) {
        self.entries().clear();
    }
}

#[derive(Default)]
pub struct RecordCaches {
    pub platform_keys: TtlCache<String, PlatformKeyRecord>,
    pub credentials: TtlCache<(TenantId, String), CredentialRecord>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_expire_and_clear() {
        let cache: TtlCache<&str, u32> = TtlCache::default();
        cache.insert("fresh", 1, Instant::now());
        let old = Instant::now().checked_sub(RECORD_TTL).unwrap();
        cache.insert("old", 2, old);
        assert_eq!(cache.get(&"fresh"), Some(1));
        assert_eq!(cache.get(&"old"), None);
        cache.clear();
        assert_eq!(cache.get(&"fresh"), None);
    }
}
