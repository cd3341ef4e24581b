//! Per-group totals of closed UTC days, kept in memory so that a month of usage is summed by
//! the database once, not on every page view.
//!
//! Invariant: a day is closed when it ended more than [`SETTLE_MARGIN`] ago and none of its
//! calls is pending. A ledger row changes only while pending (settled once, or swept to
//! `interrupted`), so a closed day's totals never change and the cache needs no invalidation.
//! Only the last [`CACHED_DAYS`] closed days are cached; older ranges and the open tail are
//! summed live. The map is bounded: when full it is emptied. At startup the server warms it
//! (per day and per model, the usage page's first views) in the background.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use keyward_core::timestamp::DAY_MILLIS;
use keyward_core::{TenantId, Timestamp};
use keyward_store::{CallTotals, Store, TotalsColumn};

use crate::DomainError;

/// How long after its end a day may still receive rows (a call admitted just before
/// midnight, a stream, a late settlement).
const SETTLE_MARGIN: i64 = 3_600_000;
/// How many closed days back the cache reaches.
const CACHED_DAYS: i64 = 62;
/// Entries kept at most: (tenant, column, day) triples.
const CAPACITY: usize = 50_000;

type Key = (TenantId, TotalsColumn, i64);

#[derive(Default)]
pub(crate) struct ClosedDays {
    totals: Mutex<HashMap<Key, Arc<Vec<CallTotals>>>>,
}

impl ClosedDays {
    fn get(&self, key: &Key) -> Option<Arc<Vec<CallTotals>>> {
        self.totals
            .lock()
            .unwrap_or_else(|poison| poison.into_inner())
            .get(key)
            .cloned()
    }

    fn insert(&self, key: Key, totals: Vec<CallTotals>) {
        let mut map = self
            .totals
            .lock()
            .unwrap_or_else(|poison| poison.into_inner());
        if map.len() >= CAPACITY {
            map.clear();
        }
        map.insert(key, Arc::new(totals));
    }

    /// Sums the cached window's closed days for the groupings the console's usage page asks
    /// first (per day, per model), for every tenant with calls in it, so that the first view
    /// after a start is served from memory. Returns the number of tenants warmed.
    pub(crate) async fn warm(&self, store: &Store) -> Result<usize, DomainError> {
        let closed_end =
            (Timestamp::now().unix_millis() - SETTLE_MARGIN).div_euclid(DAY_MILLIS) * DAY_MILLIS;
        let start = closed_end - CACHED_DAYS * DAY_MILLIS;
        let range = (
            Timestamp::from_unix_millis(start),
            Timestamp::from_unix_millis(closed_end),
        );
        let tenants = store.tenants_with_calls_since(range.0).await?;
        for tenant in &tenants {
            for column in [TotalsColumn::Day, TotalsColumn::Model] {
                self.totals(store, *tenant, range, column).await?;
            }
        }
        Ok(tenants.len())
    }

    /// The totals of `[from, to)` per value of `column`: cached closed days, the rest live.
    /// A group may appear once per piece; the caller merges them.
    pub(crate) async fn totals(
        &self,
        store: &Store,
        tenant: TenantId,
        (from, to): (Timestamp, Timestamp),
        column: TotalsColumn,
    ) -> Result<Vec<CallTotals>, DomainError> {
        let (from, to) = (from.unix_millis(), to.unix_millis());
        let closed_end =
            (Timestamp::now().unix_millis() - SETTLE_MARGIN).div_euclid(DAY_MILLIS) * DAY_MILLIS;
        let first = (from + DAY_MILLIS - 1).div_euclid(DAY_MILLIS) * DAY_MILLIS;
        let first = first.max(closed_end - CACHED_DAYS * DAY_MILLIS);
        let last = to
            .div_euclid(DAY_MILLIS)
            .saturating_mul(DAY_MILLIS)
            .min(closed_end);
        let live = |start: i64, end: i64| {
            store.call_totals(
                tenant,
                (
                    Timestamp::from_unix_millis(start),
                    Timestamp::from_unix_millis(end),
                ),
                column,
            )
        };
        if first >= last {
            return Ok(live(from, to).await?);
        }
        let mut all = Vec::new();
        if from < first {
            all.extend(live(from, first).await?);
        }
        let mut day = first;
        while day < last {
            let key = (tenant, column, day);
            match self.get(&key) {
                Some(cached) => all.extend(cached.iter().cloned()),
                None => {
                    let totals = live(day, day + DAY_MILLIS).await?;
                    if totals.iter().all(|group| group.pending == 0) {
                        self.insert(key, totals.clone());
                    }
                    all.extend(totals);
                }
            }
            day += DAY_MILLIS;
        }
        if last < to {
            all.extend(live(last, to).await?);
        }
        Ok(all)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use keyward_core::{CredentialId, ProviderId, RequestId};
    use keyward_store::{CallStatus, PendingCall, Settlement, TenantRecord};

    use super::*;

    fn call(tenant: TenantId, created_at: i64) -> PendingCall {
        PendingCall {
            request_id: RequestId::generate(),
            created_at: Timestamp::from_unix_millis(created_at),
            tenant_id: tenant,
            key_id: None,
            department_id: None,
            credential_id: CredentialId::generate(),
            credential_label: "c".into(),
            provider: ProviderId::OpenAi,
            endpoint: "/v1/chat/completions",
            model_requested: "gpt-4o-mini".into(),
            stream: false,
            tags: BTreeMap::new(),
            fallback_of: None,
            reserved_micro_usd: 0,
            priced: true,
            unbounded_input: None,
        }
    }

    fn settled(cost: i64) -> Settlement {
        Settlement {
            status: Some(CallStatus::Ok),
            http_status: Some(200),
            model_reported: Some("gpt-4o-mini".into()),
            provider_request_id: None,
            input_tokens: Some(10),
            cached_input_tokens: None,
            cache_write_tokens: None,
            output_tokens: Some(5),
            reasoning_tokens: None,
            latency_ms: Some(1),
            ttfb_ms: None,
            cost_micro_usd: Some(cost),
            price_id: None,
            budget_charge_micro_usd: cost,
        }
    }

    async fn add(store: &Store, tenant: TenantId, at: i64, cost: Option<i64>) -> RequestId {
        let pending = call(tenant, at);
        store
            .admit_call(&pending)
            .await
            .unwrap_or_else(|err| unreachable!("{err}"));
        if let Some(cost) = cost {
            store
                .settle_call(pending.request_id, &settled(cost), Timestamp::now())
                .await
                .unwrap_or_else(|err| unreachable!("{err}"));
        }
        pending.request_id
    }

    fn requests_and_cost(totals: &[CallTotals]) -> (u64, i64) {
        totals.iter().fold((0, 0), |(requests, cost), group| {
            (requests + group.requests, cost + group.cost_micro_usd)
        })
    }

    /// A tenant with two settled calls three days ago, a pending one two days ago and one
    /// today: (database, store, tenant, three days ago, two days ago, the pending call).
    async fn seeded() -> (
        keyward_test_db::TestDb,
        Store,
        TenantId,
        i64,
        i64,
        RequestId,
    ) {
        let db = keyward_test_db::TestDb::sqlite();
        let store = Store::open(db.url())
            .await
            .unwrap_or_else(|err| unreachable!("{err}"));
        let tenant = TenantRecord {
            id: TenantId::generate(),
            name: "acme".into(),
            created_at: Timestamp::now(),
        };
        store
            .insert_tenant(&tenant)
            .await
            .unwrap_or_else(|err| unreachable!("{err}"));
        let today = Timestamp::now().unix_millis().div_euclid(DAY_MILLIS) * DAY_MILLIS;
        let three_ago = today - 3 * DAY_MILLIS;
        let two_ago = today - 2 * DAY_MILLIS;
        add(&store, tenant.id, three_ago + 5, Some(100)).await;
        add(&store, tenant.id, three_ago + DAY_MILLIS - 1, Some(20)).await;
        let pending = add(&store, tenant.id, two_ago + 7, None).await;
        add(&store, tenant.id, Timestamp::now().unix_millis(), Some(3)).await;
        (db, store, tenant.id, three_ago, two_ago, pending)
    }

    #[tokio::test]
    async fn warming_fills_the_first_groupings_of_the_window() {
        let (_db, store, tenant, three_ago, two_ago, _) = seeded().await;
        let days = ClosedDays::default();
        assert_eq!(
            days.warm(&store)
                .await
                .unwrap_or_else(|err| unreachable!("{err}")),
            1
        );
        for column in [TotalsColumn::Day, TotalsColumn::Model] {
            assert!(
                days.get(&(tenant, column, three_ago)).is_some(),
                "{column:?}"
            );
        }
        assert!(
            days.get(&(tenant, TotalsColumn::Day, two_ago)).is_none(),
            "still pending"
        );
        assert!(days
            .get(&(tenant, TotalsColumn::Status, three_ago))
            .is_none());
    }

    #[tokio::test]
    async fn closed_days_are_summed_once_and_days_with_pending_calls_are_not_kept() {
        let (_db, store, tenant, three_ago, two_ago, pending) = seeded().await;
        let today = Timestamp::now().unix_millis().div_euclid(DAY_MILLIS) * DAY_MILLIS;
        let days = ClosedDays::default();
        let range = (
            Timestamp::from_unix_millis(three_ago),
            Timestamp::from_unix_millis(today + DAY_MILLIS),
        );
        let totals = days
            .totals(&store, tenant, range, TotalsColumn::Model)
            .await
            .unwrap_or_else(|err| unreachable!("{err}"));
        assert_eq!(requests_and_cost(&totals), (4, 123));
        assert!(days
            .get(&(tenant, TotalsColumn::Model, three_ago))
            .is_some());
        assert!(
            days.get(&(tenant, TotalsColumn::Model, two_ago)).is_none(),
            "a day with a pending call is summed again next time"
        );

        // The pending call settles: its day is counted anew and now kept.
        store
            .settle_call(pending, &settled(1_000), Timestamp::now())
            .await
            .unwrap_or_else(|err| unreachable!("{err}"));
        let totals = days
            .totals(&store, tenant, range, TotalsColumn::Model)
            .await
            .unwrap_or_else(|err| unreachable!("{err}"));
        assert_eq!(requests_and_cost(&totals), (4, 1_123));
        assert!(days.get(&(tenant, TotalsColumn::Model, two_ago)).is_some());

        // A range starting mid-day sums that part live, not the cached whole day.
        let partial = (Timestamp::from_unix_millis(three_ago + 10), range.1);
        let totals = days
            .totals(&store, tenant, partial, TotalsColumn::Model)
            .await
            .unwrap_or_else(|err| unreachable!("{err}"));
        assert_eq!(requests_and_cost(&totals), (3, 1_023));
        // A range of the distant past is summed live and cached nowhere.
        let old = (
            Timestamp::from_unix_millis(0),
            Timestamp::from_unix_millis(DAY_MILLIS * 400),
        );
        let totals = days
            .totals(&store, tenant, old, TotalsColumn::Day)
            .await
            .unwrap_or_else(|err| unreachable!("{err}"));
        assert!(totals.is_empty());
    }
}
