//! Usage: the ledger read back per call or grouped, for export; and the platform meter.
//!
//! Invariants:
//! - Reads go page by page ([`USAGE_PAGE`] rows), so an export of any size holds one page
//!   plus, when grouping, one accumulator per group in memory.
//! - The platform meter counts Keyward's own billable units (requests routed) and never
//!   carries tokens or inference dollars.

use std::collections::{BTreeMap, HashMap};

use keyward_core::timestamp::DAY_MILLIS;
use keyward_core::Timestamp;
use keyward_store::{CallFilter, CallRecord, CallTotals, PageRequest, TotalsColumn};

use crate::{DomainError, Keyward, TenantScope};

/// Rows read per store round trip while exporting.
pub const USAGE_PAGE: u32 = 1000;

/// How usage rows are grouped (`group_by`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum GroupBy {
    Day,
    Model,
    Key,
    Credential,
    Department,
    /// How each call ended (`ok`, `provider_error`, …).
    Status,
    Tag(String),
}

impl GroupBy {
    pub fn parse(text: &str) -> Option<Self> {
        Some(match text {
            "day" => Self::Day,
            "model" => Self::Model,
            "key" => Self::Key,
            "credential" => Self::Credential,
            "department" => Self::Department,
            "status" => Self::Status,
            _ => {
                let name = text.strip_prefix("tag:")?;
                if name.is_empty() || name.len() > 64 {
                    return None;
                }
                Self::Tag(name.to_owned())
            }
        })
    }

    /// The group of one call.
    fn key_of(&self, call: &CallRecord, department: Option<&str>) -> String {
        match self {
            Self::Day => call.created_at.utc_date(),
            Self::Model => call
                .model_reported
                .clone()
                .unwrap_or_else(|| call.model_requested.clone()),
            Self::Key => call.key_id.clone().unwrap_or_else(|| "(none)".to_owned()),
            Self::Credential => call.credential_label.clone(),
            Self::Department => department.unwrap_or("(none)").to_owned(),
            Self::Status => call.status.as_str().to_owned(),
            Self::Tag(name) => call
                .tags
                .get(name)
                .cloned()
                .unwrap_or_else(|| "(none)".to_owned()),
        }
    }
}

/// Totals of one group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageGroup {
    pub group: String,
    pub requests: u64,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub reasoning_tokens: u64,
    /// Sum of the priced calls' costs.
    pub cost_micro_usd: i64,
    /// Calls without a cost (unpriced model or no usage reported).
    pub unpriced_requests: u64,
}

/// Sums calls into groups.
#[derive(Debug)]
pub struct UsageAggregator {
    by: GroupBy,
    groups: BTreeMap<String, UsageGroup>,
    /// A sum went past its type: `finish` refuses rather than report it.
    overflowed: bool,
}

impl UsageAggregator {
    pub fn new(by: GroupBy) -> Self {
        Self {
            by,
            groups: BTreeMap::new(),
            overflowed: false,
        }
    }

    pub fn add(&mut self, call: &CallRecord, department: Option<&str>) {
        let key = self.by.key_of(call, department);
        let mut totals = CallTotals {
            group: None,
            requests: 1,
            input_tokens: call.input_tokens.unwrap_or(0),
            cached_input_tokens: call.cached_input_tokens.unwrap_or(0),
            cache_write_tokens: call.cache_write_tokens.unwrap_or(0),
            output_tokens: call.output_tokens.unwrap_or(0),
            reasoning_tokens: call.reasoning_tokens.unwrap_or(0),
            cost_micro_usd: call.cost_micro_usd.unwrap_or(0),
            unpriced_requests: u64::from(call.cost_micro_usd.is_none()),
            pending: 0,
        };
        totals.group = Some(key);
        self.add_totals(totals);
    }

    /// Adds a group's totals (summed by the database) to the group `totals.group` names.
    fn add_totals(&mut self, totals: CallTotals) {
        let key = totals.group.unwrap_or_else(|| "(none)".to_owned());
        let group = self
            .groups
            .entry(key.clone())
            .or_insert_with(|| UsageGroup {
                group: key,
                ..UsageGroup::default()
            });
        let sums = [
            (&mut group.requests, totals.requests),
            (&mut group.input_tokens, totals.input_tokens),
            (&mut group.cached_input_tokens, totals.cached_input_tokens),
            (&mut group.cache_write_tokens, totals.cache_write_tokens),
            (&mut group.output_tokens, totals.output_tokens),
            (&mut group.reasoning_tokens, totals.reasoning_tokens),
            (&mut group.unpriced_requests, totals.unpriced_requests),
        ];
        for (sum, value) in sums {
            match sum.checked_add(value) {
                Some(total) => *sum = total,
                None => self.overflowed = true,
            }
        }
        match group.cost_micro_usd.checked_add(totals.cost_micro_usd) {
            Some(total) => group.cost_micro_usd = total,
            None => self.overflowed = true,
        }
    }

    /// The groups in order, or an error when a sum did not fit (never a wrapped figure).
    pub fn finish(self) -> Result<Vec<UsageGroup>, DomainError> {
        if self.overflowed {
            return Err(DomainError::invalid(
                "from",
                "the totals of this range do not fit in a 64-bit sum; choose a shorter range",
            ));
        }
        Ok(self.groups.into_values().collect())
    }
}

/// Requests routed on one UTC day.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlatformInvoiceDay {
    /// `YYYY-MM-DD`.
    pub date: String,
    pub requests_routed: u64,
    /// Knowledge-base documents stored at the end of the day (for today: now).
    pub documents_stored: u64,
    /// Knowledge bases searched (by the search route or an augmented call).
    pub retrievals_issued: u64,
}

/// `from` and `to` as given by a user (RFC 3339, or `YYYY-MM-DD`: `from` at that midnight,
/// `to` including that whole day) as a half-open range; defaults: the epoch and now.
pub fn usage_range(
    from: Option<&str>,
    to: Option<&str>,
) -> Result<(Timestamp, Timestamp), DomainError> {
    let parse = |field: &str, text: &str, end: bool| -> Result<Timestamp, DomainError> {
        let invalid = || DomainError::invalid(field, "a date YYYY-MM-DD or an RFC 3339 date-time");
        if text.len() == 10 {
            let midnight =
                Timestamp::parse_rfc3339(&format!("{text}T00:00:00Z")).map_err(|_| invalid())?;
            return Ok(if end {
                Timestamp::from_unix_millis(midnight.unix_millis() + DAY_MILLIS)
            } else {
                midnight
            });
        }
        Timestamp::parse_rfc3339(text).map_err(|_| invalid())
    };
    let from = match from {
        Some(text) => parse("from", text, false)?,
        None => Timestamp::from_unix_millis(0),
    };
    let to = match to {
        Some(text) => parse("to", text, true)?,
        None => Timestamp::from_unix_millis(Timestamp::now().unix_millis() + 1000),
    };
    if from >= to {
        return Err(DomainError::invalid("from", "`from` must be before `to`"));
    }
    Ok((from, to))
}

impl Keyward {
    /// One page of a tenant's calls in `[from, to)`, after the cursor (a request id).
    pub async fn usage_page(
        &self,
        scope: &TenantScope,
        (from, to): (Timestamp, Timestamp),
        after: Option<&str>,
    ) -> Result<Vec<CallRecord>, DomainError> {
        Ok(self
            .store
            .calls_between(scope.tenant(), from, to, after, USAGE_PAGE)
            .await?)
    }

    /// One page of a tenant's calls in `range`, newest first, before the cursor (a request
    /// id), keeping the calls `filter` matches: the console's per-call table.
    pub async fn usage_newest(
        &self,
        scope: &TenantScope,
        range: (Timestamp, Timestamp),
        filter: &CallFilter,
        before: Option<&str>,
        limit: u32,
    ) -> Result<Vec<CallRecord>, DomainError> {
        Ok(self
            .store
            .calls_newest(scope.tenant(), range, filter, before, limit)
            .await?)
    }

    /// The tenant's department names by id, for labelling usage rows.
    pub async fn department_names(
        &self,
        scope: &TenantScope,
    ) -> Result<HashMap<String, String>, DomainError> {
        let mut names = HashMap::new();
        let mut page = PageRequest {
            after: None,
            limit: 500,
        };
        loop {
            let batch = self.store.departments(scope.tenant(), &page).await?;
            for department in batch.items {
                names.insert(department.id.to_string(), department.name);
            }
            match batch.next_cursor {
                Some(cursor) => page.after = Some(cursor),
                None => return Ok(names),
            }
        }
    }

    /// Warms the usage totals of closed days (see `usage_days`): run in the background after
    /// startup so the console's first usage view does not sum a month of calls.
    pub async fn warm_usage_totals(&self) -> Result<usize, DomainError> {
        self.closed_days.warm(&self.store).await
    }

    /// Usage grouped: summed by the database for a column, page by page here for a tag.
    pub async fn usage_grouped(
        &self,
        scope: &TenantScope,
        range: (Timestamp, Timestamp),
        by: GroupBy,
    ) -> Result<Vec<UsageGroup>, DomainError> {
        let departments = self.department_names(scope).await?;
        let column = match &by {
            GroupBy::Day => TotalsColumn::Day,
            GroupBy::Model => TotalsColumn::Model,
            GroupBy::Key => TotalsColumn::Key,
            GroupBy::Credential => TotalsColumn::Credential,
            GroupBy::Department => TotalsColumn::Department,
            GroupBy::Status => TotalsColumn::Status,
            GroupBy::Tag(_) => return self.usage_by_tag(scope, range, by, &departments).await,
        };
        let mut aggregator = UsageAggregator::new(by);
        let pieces = self
            .closed_days
            .totals(&self.store, scope.tenant(), range, column)
            .await?;
        for mut totals in pieces {
            totals.group = match column {
                TotalsColumn::Day => totals
                    .group
                    .and_then(|day| day.parse::<i64>().ok())
                    .map(|day| Timestamp::from_unix_millis(day * DAY_MILLIS).utc_date()),
                TotalsColumn::Department => {
                    totals.group.and_then(|id| departments.get(&id).cloned())
                }
                _ => totals.group,
            };
            aggregator.add_totals(totals);
        }
        aggregator.finish()
    }

    /// Usage grouped by a tag's value, reading the range page by page.
    async fn usage_by_tag(
        &self,
        scope: &TenantScope,
        range: (Timestamp, Timestamp),
        by: GroupBy,
        departments: &HashMap<String, String>,
    ) -> Result<Vec<UsageGroup>, DomainError> {
        let mut aggregator = UsageAggregator::new(by);
        let mut after: Option<String> = None;
        loop {
            let page = self.usage_page(scope, range, after.as_deref()).await?;
            for call in &page {
                let department = call
                    .department_id
                    .as_ref()
                    .and_then(|id| departments.get(id))
                    .map(String::as_str);
                aggregator.add(call, department);
            }
            match page.last() {
                Some(last) if page.len() == USAGE_PAGE as usize => {
                    after = Some(last.request_id.clone())
                }
                _ => return aggregator.finish(),
            }
        }
    }

    /// Keyward's own billable units per UTC day: requests routed, documents stored, retrievals
    /// issued. No tokens, no dollars. A day with none of them has no line.
    pub async fn platform_invoice(
        &self,
        scope: &TenantScope,
        range: (Timestamp, Timestamp),
    ) -> Result<Vec<PlatformInvoiceDay>, DomainError> {
        let tenant = scope.tenant();
        let mut days: std::collections::BTreeMap<i64, PlatformInvoiceDay> = Default::default();
        let line = |day: i64| PlatformInvoiceDay {
            date: Timestamp::from_unix_millis(day * DAY_MILLIS).utc_date(),
            requests_routed: 0,
            documents_stored: 0,
            retrievals_issued: 0,
        };
        for routed in self
            .store
            .routed_requests_per_day(tenant, range.0, range.1)
            .await?
        {
            days.entry(routed.day)
                .or_insert_with(|| line(routed.day))
                .requests_routed = u64::try_from(routed.requests).unwrap_or(0);
        }
        let first_day = range.0.unix_millis().div_euclid(DAY_MILLIS);
        let end = range.1.min(Timestamp::now());
        let last_day = (end.unix_millis() - 1).div_euclid(DAY_MILLIS);
        let retrievals = self
            .store
            .retrievals_between(tenant, &line(first_day).date, &line(last_day).date)
            .await?;
        for (date, count) in retrievals {
            if let Ok(day) = Timestamp::parse_rfc3339(&format!("{date}T00:00:00Z")) {
                let day = day.unix_millis().div_euclid(DAY_MILLIS);
                days.entry(day)
                    .or_insert_with(|| line(day))
                    .retrievals_issued = count;
            }
        }
        let lifetimes = self.store.document_lifetimes(tenant).await?;
        let earliest = lifetimes
            .iter()
            .map(|(created, _)| created.unix_millis().div_euclid(DAY_MILLIS))
            .min();
        for day in earliest.unwrap_or(i64::MAX).max(first_day)..=last_day {
            // At the end of the day, or now for today.
            let at =
                Timestamp::from_unix_millis(((day + 1) * DAY_MILLIS - 1).min(end.unix_millis()));
            let stored = lifetimes
                .iter()
                .filter(|(created, deleted)| {
                    *created <= at && deleted.is_none_or(|deleted| deleted > at)
                })
                .count() as u64;
            if stored > 0 {
                days.entry(day)
                    .or_insert_with(|| line(day))
                    .documents_stored = stored;
            }
        }
        Ok(days.into_values().collect())
    }
}
