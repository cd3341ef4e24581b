//! The span of one upstream call, with the OpenTelemetry GenAI semantic-convention attributes
//! (`gen_ai.*`) and Keyward's own (`keyward.*`). Exported over OTLP when traces are on; with
//! JSON logs its fields also label the log lines inside it.
//!
//! Invariants: only metadata is declared — model names, token counts, ids, cost, status; never
//! a body. Fields known only at the end are declared empty and recorded by the settlement.
//! These spans (and their admission, upstream and settlement children) are at `TRACE` level:
//! the trace exporter takes Keyward's spans at any level, the log layer only at `log.level`,
//! so with traces off and logs at `info` they are disabled callsites and cost nothing.

use keyward_core::ProviderId;
use keyward_router::Surface;
use keyward_store::Settlement;
use tracing::field::Empty;

use super::attempt::AttemptRow;
use super::targets::Attempt;
use super::Call;

/// `gen_ai.provider.name`: the semantic conventions' value where they define one.
fn provider_name(provider: ProviderId) -> &'static str {
    match provider {
        ProviderId::OpenAi => "openai",
        ProviderId::AzureOpenAi => "azure.ai.openai",
        ProviderId::Anthropic => "anthropic",
        ProviderId::Bedrock => "aws.bedrock",
        ProviderId::Mistral => "mistral_ai",
        ProviderId::Groq => "groq",
        ProviderId::OpenAiCompatible => "openai_compatible",
    }
}

/// `gen_ai.operation.name`.
fn operation(surface: Surface) -> &'static str {
    match surface {
        Surface::Embeddings => "embeddings",
        Surface::ChatCompletions | Surface::Messages | Surface::Responses => "chat",
    }
}

/// The span of one attempt (one upstream call, one ledger row), named as the conventions
/// say: `{operation} {model}`.
pub(super) fn call_span(call: &Call, attempt: &Attempt, row: AttemptRow) -> tracing::Span {
    let operation = operation(call.surface);
    tracing::trace_span!(
        "gen_ai.call",
        otel.name = %format_args!("{operation} {}", attempt.upstream_model),
        otel.kind = "client",
        otel.status_code = Empty,
        gen_ai.operation.name = operation,
        gen_ai.provider.name = provider_name(attempt.credential.provider),
        gen_ai.request.model = %attempt.upstream_model,
        gen_ai.response.model = Empty,
        gen_ai.usage.input_tokens = Empty,
        gen_ai.usage.output_tokens = Empty,
        keyward.request_id = %row.request_id,
        keyward.tenant_id = %call.caller.tenant,
        keyward.credential_id = %attempt.credential.id,
        keyward.cost_micro_usd = Empty,
        keyward.status = Empty,
    )
}

/// Records how the call ended on the current span (the call's, when the settlement runs in
/// it; any other span lacks these fields and ignores them).
pub(super) fn record_settlement(settlement: &Settlement) {
    let span = tracing::Span::current();
    if let Some(model) = &settlement.model_reported {
        span.record("gen_ai.response.model", model.as_str());
    }
    if let Some(tokens) = settlement.input_tokens {
        span.record("gen_ai.usage.input_tokens", tokens);
    }
    if let Some(tokens) = settlement.output_tokens {
        span.record("gen_ai.usage.output_tokens", tokens);
    }
    if let Some(cost) = settlement.cost_micro_usd {
        span.record("keyward.cost_micro_usd", cost);
    }
    if let Some(status) = settlement.status {
        span.record("keyward.status", status.as_str());
        if status != keyward_store::CallStatus::Ok {
            span.record("otel.status_code", "ERROR");
        }
    }
}
