//! Operational metrics, rendered in Prometheus' text format at `/metrics`.
//!
//! Invariant: labels are structural only — tenant id, provider, model as addressed, outcome
//! status, route template, HTTP status. No body, secret or client free text reaches a label:
//! the model label is the model the provider reported, truncated and escaped.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms.
const BUCKETS: [f64; 14] = [
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

#[derive(Default, Clone)]
struct Histogram {
    counts: [u64; BUCKETS.len()],
    count: u64,
    sum_seconds: f64,
}

impl Histogram {
    fn observe(&mut self, value: Duration) {
        let seconds = value.as_secs_f64();
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter_mut()) {
            if seconds <= *bound {
                *count += 1;
            }
        }
        self.count += 1;
        self.sum_seconds += seconds;
    }

    fn render(&self, out: &mut String, name: &str, labels: &str) {
        let (bucket_labels, own) = if labels.is_empty() {
            (String::new(), String::new())
        } else {
            (format!("{labels},"), format!("{{{labels}}}"))
        };
        for (bound, count) in BUCKETS.iter().zip(self.counts.iter()) {
            let _ = writeln!(
                out,
                "{name}_bucket{{{bucket_labels}le=\"{bound}\"}} {count}"
            );
        }
        let _ = writeln!(
            out,
            "{name}_bucket{{{bucket_labels}le=\"+Inf\"}} {}",
            self.count
        );
        let _ = writeln!(out, "{name}_sum{own} {}", self.sum_seconds);
        let _ = writeln!(out, "{name}_count{own} {}", self.count);
    }
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct CallKey {
    tenant: String,
    provider: &'static str,
    model: String,
    status: &'static str,
}

#[derive(Default, Clone)]
struct CallSeries {
    calls: u64,
    input_tokens: u64,
    output_tokens: u64,
    latency: Histogram,
    ttfb: Histogram,
}

#[derive(Default)]
struct Registry {
    calls: BTreeMap<CallKey, CallSeries>,
    /// Ledger rows committed `pending` by this process, and those it settled.
    ledger_admitted: u64,
    ledger_settled: u64,
    /// From a call's end to its settlement's commit: the ledger's lag.
    ledger_settle: Histogram,
    requests: BTreeMap<(String, u16), (u64, Histogram)>,
    ledger_failures: u64,
    audit_failures: u64,
    alerts_dropped: u64,
    /// Calls refused by a hard budget: tenant → count.
    budget_refusals: BTreeMap<String, u64>,
    /// Calls refused by a platform key's RPM/TPM limit: tenant → count.
    rate_limited: BTreeMap<String, u64>,
    /// Calls whose model has no price: (provider, model reported or called).
    /// By provider only: the model of an unpriced call is whatever name a client or a
    /// self-hosted server chose, so it is never a label (the log line names it).
    unpriced: BTreeMap<&'static str, u64>,
    /// Connections closed at accept, by the limit that was full.
    connections_refused: BTreeMap<&'static str, u64>,
    /// Chat platform requests refused, by (channel, reason).
    connector_refusals: BTreeMap<(&'static str, &'static str), u64>,
}

/// The process's metrics.
#[derive(Default)]
pub struct Metrics {
    registry: Mutex<Registry>,
}

/// One settled upstream call, as metrics see it.
pub(crate) struct CallObservation<'a> {
    pub tenant: String,
    pub provider: &'static str,
    pub model: &'a str,
    pub status: &'static str,
    pub input_tokens: Option<u64>,
    pub output_tokens: Option<u64>,
    pub latency: Option<Duration>,
    pub ttfb: Option<Duration>,
}

/// Escapes a label value and bounds its length.
fn label(value: &str) -> String {
    value
        .chars()
        .take(128)
        .flat_map(|c| match c {
            '\\' => vec!['\\', '\\'],
            '"' => vec!['\\', '"'],
            '\n' => vec!['\\', 'n'],
            c if c.is_control() => vec![],
            c => vec![c],
        })
        .collect()
}

impl Metrics {
    pub(crate) fn record_call(&self, call: CallObservation<'_>) {
        let Ok(mut registry) = self.registry.lock() else {
            return;
        };
        let key = CallKey {
            tenant: call.tenant,
            provider: call.provider,
            model: label(call.model),
            status: call.status,
        };
        let series = registry.calls.entry(key).or_default();
        series.calls += 1;
        series.input_tokens += call.input_tokens.unwrap_or(0);
        series.output_tokens += call.output_tokens.unwrap_or(0);
        if let Some(latency) = call.latency {
            series.latency.observe(latency);
        }
        if let Some(ttfb) = call.ttfb {
            series.ttfb.observe(ttfb);
        }
    }

    /// A call's row committed `pending` (before the upstream call).
    pub(crate) fn record_admitted(&self) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.ledger_admitted += 1;
        }
    }

    /// A call's row settled, `lag` after the call ended.
    pub(crate) fn record_settled(&self, lag: Duration) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.ledger_settled += 1;
            registry.ledger_settle.observe(lag);
        }
    }

    pub(crate) fn record_ledger_failure(&self) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.ledger_failures += 1;
        }
    }

    pub(crate) fn record_audit_failure(&self) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.audit_failures += 1;
        }
    }

    pub(crate) fn record_alert_dropped(&self) {
        if let Ok(mut registry) = self.registry.lock() {
            registry.alerts_dropped += 1;
        }
    }

    pub(crate) fn record_budget_refusal(&self, tenant: String) {
        if let Ok(mut registry) = self.registry.lock() {
            *registry.budget_refusals.entry(tenant).or_default() += 1;
        }
    }

    pub(crate) fn record_rate_limited(&self, tenant: String) {
        if let Ok(mut registry) = self.registry.lock() {
            *registry.rate_limited.entry(tenant).or_default() += 1;
        }
    }

    /// A call whose model is missing from the price book (its cost is left empty).
    /// A connection closed at accept because `limit` (a config key) was full.
    pub fn record_connection_refused(&self, limit: &'static str) {
        if let Ok(mut registry) = self.registry.lock() {
            *registry.connections_refused.entry(limit).or_default() += 1;
        }
    }

    /// A chat platform request that failed verification (or found no connector).
    pub(crate) fn record_connector_refused(&self, channel: &'static str, reason: &'static str) {
        if let Ok(mut registry) = self.registry.lock() {
            *registry
                .connector_refusals
                .entry((channel, reason))
                .or_default() += 1;
        }
    }

    pub(crate) fn record_unpriced(&self, provider: &'static str) {
        if let Ok(mut registry) = self.registry.lock() {
            *registry.unpriced.entry(provider).or_default() += 1;
        }
    }

    /// One HTTP request, by route template (never the raw path) and status.
    pub fn record_request(&self, route: &str, status: u16, latency: Duration) {
        let Ok(mut registry) = self.registry.lock() else {
            return;
        };
        let entry = registry.requests.entry((label(route), status)).or_default();
        entry.0 += 1;
        entry.1.observe(latency);
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let registry = match self.registry.lock() {
            Ok(registry) => registry,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut out = String::new();
        render_requests(&registry, &mut out);
        render_calls(&registry, &mut out);
        render_failures(&registry, &mut out);
        render_refusals(&registry, &mut out);
        out
    }
}

/// HTTP requests: counts and latency by route template and status.
fn render_requests(registry: &Registry, out: &mut String) {
    out.push_str("# HELP keyward_http_requests_total HTTP requests by route template and status.\n# TYPE keyward_http_requests_total counter\n");
    for ((route, status), (count, _)) in &registry.requests {
        let _ = writeln!(
            out,
            "keyward_http_requests_total{{route=\"{route}\",status=\"{status}\"}} {count}"
        );
    }
    out.push_str("# HELP keyward_http_request_duration_seconds HTTP request latency (for streams: until the response starts).\n# TYPE keyward_http_request_duration_seconds histogram\n");
    for ((route, status), (_, histogram)) in &registry.requests {
        histogram.render(
            out,
            "keyward_http_request_duration_seconds",
            &format!("route=\"{route}\",status=\"{status}\""),
        );
    }
}

/// Upstream calls: counts, tokens, latency and time to first byte per tenant, provider, model and outcome.
fn render_calls(registry: &Registry, out: &mut String) {
    let call_labels = |key: &CallKey| {
        format!(
            "tenant=\"{}\",provider=\"{}\",model=\"{}\",status=\"{}\"",
            key.tenant, key.provider, key.model, key.status
        )
    };
    out.push_str("# HELP keyward_upstream_calls_total Upstream calls by outcome (the ledger's status) and the model the provider reported.\n# TYPE keyward_upstream_calls_total counter\n");
    for (key, series) in &registry.calls {
        let _ = writeln!(
            out,
            "keyward_upstream_calls_total{{{}}} {}",
            call_labels(key),
            series.calls
        );
    }
    out.push_str("# HELP keyward_upstream_tokens_total Tokens reported by providers.\n# TYPE keyward_upstream_tokens_total counter\n");
    for (key, series) in &registry.calls {
        let labels = call_labels(key);
        let _ = writeln!(
            out,
            "keyward_upstream_tokens_total{{{labels},direction=\"input\"}} {}",
            series.input_tokens
        );
        let _ = writeln!(
            out,
            "keyward_upstream_tokens_total{{{labels},direction=\"output\"}} {}",
            series.output_tokens
        );
    }
    out.push_str("# HELP keyward_upstream_latency_seconds Upstream call duration (streams: to the last byte).\n# TYPE keyward_upstream_latency_seconds histogram\n");
    for (key, series) in &registry.calls {
        series
            .latency
            .render(out, "keyward_upstream_latency_seconds", &call_labels(key));
    }
    out.push_str("# HELP keyward_upstream_ttfb_seconds Time to the provider's first byte.\n# TYPE keyward_upstream_ttfb_seconds histogram\n");
    for (key, series) in &registry.calls {
        series
            .ttfb
            .render(out, "keyward_upstream_ttfb_seconds", &call_labels(key));
    }
}

/// Writes that failed or were dropped: ledger rows, audit entries, alerts; and the ledger's lag.
fn render_failures(registry: &Registry, out: &mut String) {
    out.push_str("# HELP keyward_ledger_admitted_total Ledger rows this process committed `pending` before an upstream call.\n# TYPE keyward_ledger_admitted_total counter\n");
    let _ = writeln!(
        out,
        "keyward_ledger_admitted_total {}",
        registry.ledger_admitted
    );
    out.push_str("# HELP keyward_ledger_settled_total Ledger rows this process settled (admitted minus settled: calls in flight or rows left to the startup sweep).\n# TYPE keyward_ledger_settled_total counter\n");
    let _ = writeln!(
        out,
        "keyward_ledger_settled_total {}",
        registry.ledger_settled
    );
    out.push_str("# HELP keyward_ledger_settle_seconds Ledger lag: from a call's end to the commit of its settlement.\n# TYPE keyward_ledger_settle_seconds histogram\n");
    registry
        .ledger_settle
        .render(out, "keyward_ledger_settle_seconds", "");
    out.push_str("# HELP keyward_ledger_write_failures_total Ledger rows that could not be written or settled.\n# TYPE keyward_ledger_write_failures_total counter\n");
    let _ = writeln!(
        out,
        "keyward_ledger_write_failures_total {}",
        registry.ledger_failures
    );
    out.push_str("# HELP keyward_audit_write_failures_total Audit entries that could not be written.\n# TYPE keyward_audit_write_failures_total counter\n");
    let _ = writeln!(
        out,
        "keyward_audit_write_failures_total {}",
        registry.audit_failures
    );
    out.push_str("# HELP keyward_alerts_dropped_total Alerts not queued for the webhook (queue full); they are in the audit log.\n# TYPE keyward_alerts_dropped_total counter\n");
    let _ = writeln!(
        out,
        "keyward_alerts_dropped_total {}",
        registry.alerts_dropped
    );
}

/// Calls refused (hard budgets, rate limits) or recorded without a price.
fn render_refusals(registry: &Registry, out: &mut String) {
    out.push_str("# HELP keyward_budget_refusals_total Calls refused because a hard budget would be passed.\n# TYPE keyward_budget_refusals_total counter\n");
    for (tenant, count) in &registry.budget_refusals {
        let _ = writeln!(
            out,
            "keyward_budget_refusals_total{{tenant=\"{tenant}\"}} {count}"
        );
    }
    out.push_str("# HELP keyward_rate_limited_total Calls refused by a platform key's requests- or tokens-per-minute limit.\n# TYPE keyward_rate_limited_total counter\n");
    for (tenant, count) in &registry.rate_limited {
        let _ = writeln!(
            out,
            "keyward_rate_limited_total{{tenant=\"{tenant}\"}} {count}"
        );
    }
    out.push_str("# HELP keyward_connections_refused_total Connections closed at accept: a connection limit (server.max_connections, server.max_connections_per_address) was full.\n# TYPE keyward_connections_refused_total counter\n");
    for (limit, count) in &registry.connections_refused {
        let _ = writeln!(
            out,
            "keyward_connections_refused_total{{limit=\"{limit}\"}} {count}"
        );
    }
    out.push_str("# HELP keyward_connector_requests_refused_total Chat platform requests refused before any model call, by channel and the check that failed.\n# TYPE keyward_connector_requests_refused_total counter\n");
    for ((channel, reason), count) in &registry.connector_refusals {
        let _ = writeln!(
            out,
            "keyward_connector_requests_refused_total{{channel=\"{channel}\",reason=\"{reason}\"}} {count}"
        );
    }
    out.push_str("# HELP keyward_unpriced_calls_total Calls recorded without cost: the model is not in the price book.\n# TYPE keyward_unpriced_calls_total counter\n");
    for (provider, count) in &registry.unpriced {
        let _ = writeln!(
            out,
            "keyward_unpriced_calls_total{{provider=\"{provider}\"}} {count}"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_escaped_and_bounded() {
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
        assert_eq!(label(&"x".repeat(500)).len(), 128);
    }

    #[test]
    fn histograms_are_cumulative() {
        let metrics = Metrics::default();
        metrics.record_request("/v1/chat/completions", 200, Duration::from_millis(3));
        metrics.record_request("/v1/chat/completions", 200, Duration::from_millis(300));
        let text = metrics.render();
        assert!(text.contains(
            "keyward_http_requests_total{route=\"/v1/chat/completions\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.005\"} 1"));
        assert!(text.contains("le=\"0.5\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
    }
}
