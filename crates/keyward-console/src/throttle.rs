//! Failed sign-ins per client address: after `max_failures` in a window, that address waits
//! until the window has passed since its first failure. A success clears the address. The table
//! is bounded: when full, the entries whose window has passed are dropped, and if none has, the
//! oldest; an attacker with many addresses can only wear out its own entries.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The per-address throttle of one process.
pub struct SignInThrottle {
    max_failures: u32,
    window: Duration,
    capacity: usize,
    failures: Mutex<HashMap<IpAddr, (u32, Instant)>>,
}

impl SignInThrottle {
    pub fn new(max_failures: u32, window: Duration, capacity: usize) -> Self {
        Self {
            max_failures,
            window,
            capacity,
            failures: Mutex::new(HashMap::new()),
        }
    }

    /// Seconds `address` must wait before trying again, or `None` when it may try now.
    pub fn wait_secs(&self, address: IpAddr, now: Instant) -> Option<u64> {
        let failures = self
            .failures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        let (count, first) = failures.get(&address)?;
        let elapsed = now.saturating_duration_since(*first);
        (*count >= self.max_failures && elapsed < self.window)
            .then(|| (self.window - elapsed).as_secs().max(1))
    }

    /// Records a failed sign-in from `address`.
    pub fn failed(&self, address: IpAddr, now: Instant) {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if failures.len() >= self.capacity && !failures.contains_key(&address) {
            failures.retain(|_, (_, first)| now.saturating_duration_since(*first) < self.window);
            if failures.len() >= self.capacity {
                let oldest = failures
                    .iter()
                    .min_by_key(|(_, (_, first))| *first)
                    .map(|(address, _)| *address);
                if let Some(oldest) = oldest {
                    failures.remove(&oldest);
                }
            }
        }
        let entry = failures.entry(address).or_insert((0, now));
        if now.saturating_duration_since(entry.1) >= self.window {
            *entry = (0, now);
        }
        entry.0 = entry.0.saturating_add(1);
    }

    /// Forgets `address`'s failures after a successful sign-in.
    pub fn succeeded(&self, address: IpAddr) {
        self.failures
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .remove(&address);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn address(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn an_address_waits_after_too_many_failures_and_only_that_address() {
        let throttle = SignInThrottle::new(3, Duration::from_secs(60), 100);
        let start = Instant::now();
        for _ in 0..3 {
            assert_eq!(throttle.wait_secs(address(1), start), None);
            throttle.failed(address(1), start);
        }
        assert_eq!(throttle.wait_secs(address(1), start), Some(60));
        assert_eq!(throttle.wait_secs(address(2), start), None);
        let later = start + Duration::from_secs(61);
        assert_eq!(throttle.wait_secs(address(1), later), None);
        throttle.failed(address(1), later);
        assert_eq!(throttle.wait_secs(address(1), later), None, "a new window");
    }

    #[test]
    fn success_clears_and_the_table_stays_bounded() {
        let throttle = SignInThrottle::new(1, Duration::from_secs(60), 4);
        let now = Instant::now();
        throttle.failed(address(1), now);
        throttle.succeeded(address(1));
        assert_eq!(throttle.wait_secs(address(1), now), None);
        for last in 0..50 {
            throttle.failed(address(last), now + Duration::from_millis(u64::from(last)));
        }
        let table = throttle.failures.lock().unwrap_or_else(|p| p.into_inner());
        assert!(table.len() <= 4);
        assert!(
            table.contains_key(&address(49)),
            "the newest failure is kept"
        );
    }
}
