//! Traces: the domain's and the HTTP layer's `tracing` spans exported over OTLP/HTTP
//! (protobuf, or JSON with `OTEL_EXPORTER_OTLP_PROTOCOL=http/json`) when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (or `telemetry.otlp_endpoint`) is set, and the W3C trace
//! context continued from a client's `traceparent` and passed upstream.
//!
//! Invariants:
//! - Export never sits on a request's path: spans go to a bounded queue (2,048) drained by a
//!   batch task on the runtime; when the queue is full spans are dropped, and a collector that
//!   is down, slow or failing costs only `keyward_trace_export_failures_total`.
//! - Spans carry metadata only (the fields the domain declares: model names, token counts,
//!   ids, cost) — never a body; the canary test greps what the collector receives.
//! - A variable that does not parse stops the start with its name.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context as _};
use keyward_http::TraceExportStats as ExportStats;
use opentelemetry::propagation::TextMapPropagator as _;
use opentelemetry::trace::{TraceContextExt as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig as _, WithHttpConfig as _};
use opentelemetry_sdk::trace::span_processor_with_async_runtime::BatchSpanProcessor;
use opentelemetry_sdk::trace::{BatchConfigBuilder, SdkTracerProvider, SpanData, SpanExporter};
use opentelemetry_sdk::Resource;
use tracing_opentelemetry::OpenTelemetrySpanExt as _;

/// Where and how spans are exported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceSettings {
    /// The full URL spans are POSTed to (`…/v1/traces`).
    pub endpoint: String,
    pub headers: HashMap<String, String>,
    pub service_name: String,
    pub json: bool,
}

/// Reads the standard `OTEL_*` variables (and `telemetry.otlp_endpoint`); `None`: no export.
pub fn settings(
    configured_endpoint: Option<&str>,
    env: &dyn Fn(&str) -> Option<String>,
) -> anyhow::Result<Option<TraceSettings>> {
    let set = |name: &str| env(name).filter(|value| !value.trim().is_empty());
    let endpoint = match (
        set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"),
        set("OTEL_EXPORTER_OTLP_ENDPOINT"),
        configured_endpoint,
    ) {
        (Some(traces), _, _) => endpoint_url("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", &traces, false)?,
        (None, Some(base), _) => endpoint_url("OTEL_EXPORTER_OTLP_ENDPOINT", &base, true)?,
        (None, None, Some(base)) => endpoint_url("telemetry.otlp_endpoint", base, true)?,
        (None, None, None) => return Ok(None),
    };
    let json = match set("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL").or_else(|| set("OTEL_EXPORTER_OTLP_PROTOCOL")).as_deref() {
        None | Some("http/protobuf") => false,
        Some("http/json") => true,
        Some(other) => bail!("OTEL_EXPORTER_OTLP_PROTOCOL is `{other}`; Keyward exports over OTLP/HTTP: use `http/protobuf` (the default) or `http/json`"),
    };
    let headers = match set("OTEL_EXPORTER_OTLP_TRACES_HEADERS")
        .or_else(|| set("OTEL_EXPORTER_OTLP_HEADERS"))
    {
        Some(text) => parse_headers(&text)?,
        None => HashMap::new(),
    };
    Ok(Some(TraceSettings {
        endpoint,
        headers,
        service_name: set("OTEL_SERVICE_NAME").unwrap_or_else(|| "keyward".to_owned()),
        json,
    }))
}

/// An `http(s)://` URL; a base endpoint gets `/v1/traces` appended, as the OTLP spec says.
fn endpoint_url(name: &str, text: &str, base: bool) -> anyhow::Result<String> {
    let url = url::Url::parse(text.trim())
        .ok()
        .filter(|url| matches!(url.scheme(), "http" | "https") && url.host().is_some())
        .with_context(|| {
            format!("{name} must be an http:// or https:// URL such as http://127.0.0.1:4318")
        })?;
    if !base {
        return Ok(url.to_string());
    }
    Ok(format!("{}/v1/traces", url.as_str().trim_end_matches('/')))
}

/// `key1=value1,key2=value2` with percent-encoded values (the OTLP exporter's format).
fn parse_headers(text: &str) -> anyhow::Result<HashMap<String, String>> {
    let mut headers = HashMap::new();
    for pair in text.split(',').filter(|pair| !pair.trim().is_empty()) {
        let Some((key, value)) = pair.split_once('=') else {
            bail!("OTEL_EXPORTER_OTLP_HEADERS must be `key=value` pairs separated by commas");
        };
        let key = key.trim();
        let value = percent_decode(value.trim())
            .context("OTEL_EXPORTER_OTLP_HEADERS has a value that is not valid percent-encoding")?;
        let valid_key = !key.is_empty()
            && key
                .bytes()
                .all(|byte| byte.is_ascii_alphanumeric() || b"-_".contains(&byte));
        if !valid_key || http::HeaderValue::from_str(&value).is_err() {
            bail!("OTEL_EXPORTER_OTLP_HEADERS has a header name or value HTTP does not allow");
        }
        headers.insert(key.to_owned(), value);
    }
    Ok(headers)
}

fn percent_decode(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut index = 0;
    while index < bytes.len() {
        if bytes[index] == b'%' {
            let hex = text.get(index + 1..index + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            index += 3;
        } else {
            out.push(bytes[index]);
            index += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// Trace export as the configuration and the `OTEL_*` variables ask: the running export (shut
/// it down at exit), the subscriber layer and what the HTTP layer needs; all empty when no
/// endpoint is set.
pub fn from_config(
    config: &crate::config::Config,
) -> anyhow::Result<(
    Option<Traces>,
    Option<crate::telemetry::BoxedLayer>,
    crate::app::TraceHandles,
)> {
    let env = |name: &str| std::env::var(name).ok();
    let Some(settings) = settings(config.otlp_endpoint.as_deref(), &env)? else {
        return Ok((None, None, crate::app::TraceHandles::default()));
    };
    let stats = Arc::new(ExportStats::default());
    let (traces, layer) = start::<tracing_subscriber::Registry>(&settings, stats.clone())?;
    let handles = crate::app::TraceHandles {
        context: Some(Arc::new(Propagation::default())),
        stats,
    };
    Ok((Some(traces), Some(Box::new(layer)), handles))
}

/// The running export: shut it down at exit to send what is queued.
pub struct Traces {
    provider: SdkTracerProvider,
}

impl Traces {
    /// Sends what is queued (bounded by the exporter's timeout) and stops.
    pub fn shutdown(&self) {
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!(error = %err, "trace export did not finish at shutdown");
        }
    }
}

/// Builds the exporter and the tracing layer that feeds it; must run inside the tokio runtime.
pub fn start<S>(
    settings: &TraceSettings,
    stats: Arc<ExportStats>,
) -> anyhow::Result<(
    Traces,
    tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
)>
where
    S: tracing::Subscriber + for<'span> tracing_subscriber::registry::LookupSpan<'span>,
{
    #[expect(
        clippy::disallowed_methods,
        reason = "the operator's own collector, often internal: no SSRF guard, but no redirects and no proxy either"
    )]
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .connect_timeout(Duration::from_secs(5))
        .redirect(reqwest::redirect::Policy::none())
        .no_proxy()
        .build()
        .context("cannot build the trace exporter's HTTP client")?;
    let exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_http_client(Client(client))
        .with_endpoint(settings.endpoint.clone())
        .with_headers(settings.headers.clone())
        .with_protocol(if settings.json {
            Protocol::HttpJson
        } else {
            Protocol::HttpBinary
        })
        .with_timeout(Duration::from_secs(10))
        .build()
        .context("cannot build the OTLP trace exporter")?;
    let batch = BatchConfigBuilder::default()
        .with_max_queue_size(2048)
        .build();
    let processor = BatchSpanProcessor::builder(
        Counted {
            inner: exporter,
            stats,
        },
        opentelemetry_sdk::runtime::Tokio,
    )
    .with_batch_config(batch)
    .build();
    let provider = SdkTracerProvider::builder()
        .with_span_processor(processor)
        .with_resource(
            Resource::builder()
                .with_service_name(settings.service_name.clone())
                .with_attribute(opentelemetry::KeyValue::new(
                    "service.version",
                    env!("CARGO_PKG_VERSION"),
                ))
                .build(),
        )
        .build();
    let tracer = provider.tracer("keyward");
    // Only what a trace needs: no source locations, thread names, targets or busy/idle
    // timers (each costs a clock read or attributes on every span, on the request's core).
    // Log events are not copied into spans either (the telemetry layer passes spans only).
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_location(false)
        .with_threads(false)
        .with_target(false)
        .with_level(false)
        .with_tracked_inactivity(false)
        // Nothing else reads the OpenTelemetry context: no thread-local switch on every poll.
        .with_context_activation(false);
    Ok((Traces { provider }, layer))
}

/// The OTLP exporter with its outcomes counted.
#[derive(Debug)]
struct Counted {
    inner: opentelemetry_otlp::SpanExporter,
    stats: Arc<ExportStats>,
}

impl SpanExporter for Counted {
    fn export(
        &self,
        batch: Vec<SpanData>,
    ) -> impl std::future::Future<Output = opentelemetry_sdk::error::OTelSdkResult> + Send {
        let spans = batch.len() as u64;
        let stats = self.stats.clone();
        let export = self.inner.export(batch);
        async move {
            let result = export.await;
            let counter = if result.is_ok() {
                &stats.exported
            } else {
                &stats.failed
            };
            counter.fetch_add(spans, Ordering::Relaxed);
            result
        }
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn force_flush(&self) -> opentelemetry_sdk::error::OTelSdkResult {
        self.inner.force_flush()
    }

    fn set_resource(&mut self, resource: &Resource) {
        self.inner.set_resource(resource);
    }
}

/// The exporter's HTTP client: the workspace's reqwest (rustls), no proxy, no redirects.
#[derive(Debug)]
struct Client(reqwest::Client);

#[async_trait::async_trait]
impl opentelemetry_http::HttpClient for Client {
    async fn send_bytes(
        &self,
        request: http::Request<bytes::Bytes>,
    ) -> Result<http::Response<bytes::Bytes>, opentelemetry_http::HttpError> {
        let (parts, body) = request.into_parts();
        let response = self
            .0
            .request(parts.method, parts.uri.to_string())
            .headers(parts.headers)
            .body(body)
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        // A collector's answer is small; a larger one is cut rather than held.
        let mut body = response.bytes().await?;
        body.truncate(64 * 1024);
        let mut answer = http::Response::new(body);
        *answer.status_mut() = status;
        *answer.headers_mut() = headers;
        Ok(answer)
    }
}

/// W3C trace context for the HTTP layer: continue a client's trace, name a span upstream.
#[derive(Debug, Default)]
pub struct Propagation {
    propagator: opentelemetry_sdk::propagation::TraceContextPropagator,
}

impl keyward_http::TraceContext for Propagation {
    fn continue_trace(&self, span: &tracing::Span, traceparent: &str) {
        let carrier = HashMap::from([("traceparent".to_owned(), traceparent.to_owned())]);
        let parent = self.propagator.extract(&carrier);
        if parent.span().span_context().is_valid() {
            let _ = span.set_parent(parent);
        }
    }

    fn traceparent(&self, span: &tracing::Span) -> Option<String> {
        let context = span.context();
        let span_context = context.span().span_context().clone();
        span_context.is_valid().then(|| {
            format!(
                "00-{}-{}-{:02x}",
                span_context.trace_id(),
                span_context.span_id(),
                span_context.trace_flags().to_u8()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let pairs: HashMap<String, String> = pairs
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect();
        move |name| pairs.get(name).cloned()
    }

    #[test]
    fn settings_follow_the_standard_variables() {
        assert_eq!(
            settings(None, &env(&[])).unwrap_or_else(|err| unreachable!("{err}")),
            None
        );
        let found = settings(
            None,
            &env(&[
                ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318/"),
                (
                    "OTEL_EXPORTER_OTLP_HEADERS",
                    "x-tenant=acme,authorization=Bearer%20abc",
                ),
                ("OTEL_SERVICE_NAME", "gateway"),
            ]),
        )
        .unwrap_or_else(|err| unreachable!("{err}"))
        .unwrap_or_else(|| unreachable!("configured"));
        assert_eq!(found.endpoint, "http://127.0.0.1:4318/v1/traces");
        assert_eq!(found.headers["authorization"], "Bearer abc");
        assert_eq!(found.service_name, "gateway");
        assert!(!found.json);
        let specific = settings(
            Some("http://ignored:4318"),
            &env(&[
                (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    "https://collector.example/custom",
                ),
                ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json"),
            ]),
        )
        .unwrap_or_else(|err| unreachable!("{err}"))
        .unwrap_or_else(|| unreachable!("configured"));
        assert_eq!(specific.endpoint, "https://collector.example/custom");
        assert!(specific.json);
        let from_config = settings(Some("http://10.0.0.5:4318"), &env(&[]))
            .unwrap_or_else(|err| unreachable!("{err}"))
            .unwrap_or_else(|| unreachable!("configured"));
        assert_eq!(from_config.endpoint, "http://10.0.0.5:4318/v1/traces");
    }

    #[test]
    fn values_that_do_not_parse_name_their_variable() {
        let refused = |pairs: &[(&str, &str)]| {
            settings(None, &env(pairs))
                .err()
                .map(|err| err.to_string())
                .unwrap_or_default()
        };
        assert!(
            refused(&[("OTEL_EXPORTER_OTLP_ENDPOINT", "collector:4318")])
                .contains("OTEL_EXPORTER_OTLP_ENDPOINT")
        );
        assert!(refused(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "grpc")
        ])
        .contains("OTEL_EXPORTER_OTLP_PROTOCOL"));
        assert!(refused(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "novalue")
        ])
        .contains("OTEL_EXPORTER_OTLP_HEADERS"));
        assert!(refused(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=%zz")
        ])
        .contains("OTEL_EXPORTER_OTLP_HEADERS"));
        assert!(refused(&[
            ("OTEL_EXPORTER_OTLP_ENDPOINT", "http://c:4318"),
            ("OTEL_EXPORTER_OTLP_HEADERS", "a=b%0Ac")
        ])
        .contains("OTEL_EXPORTER_OTLP_HEADERS"));
    }
}
