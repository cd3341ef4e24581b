//! [`CompletionStream`]: a provider's SSE stream forwarded event by event as it arrives, with
//! usage read on the way and the usage-only chunk Keyward asked for hidden from the client.
//! However the stream ends — completed, broken by the provider, or dropped because the client
//! went away — exactly one [`StreamOutcome`] is reported, so the call can be settled.

use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use serde_json::Value;
use tokio::sync::oneshot;

use crate::sse::{SseEvent, SseParser};
use crate::translate::anthropic_stream::AnthropicToOpenAi;
use crate::translate::anthropic_to_openai::OpenAiToAnthropic;
use crate::translate::bedrock::BedrockToOpenAi;
use crate::translate::Translation;

/// A stream rewritten from the provider's format into the client's.
enum Translator {
    ToOpenAi(AnthropicToOpenAi),
    ToAnthropic(OpenAiToAnthropic),
    FromBedrock(BedrockToOpenAi),
    /// Bedrock → OpenAI chunks → Anthropic events.
    BedrockToAnthropic(BedrockToOpenAi, OpenAiToAnthropic),
}

fn bedrock_to_openai(include_usage: bool) -> BedrockToOpenAi {
    let now = crate::translate::unix_now();
    BedrockToOpenAi::new(format!("chatcmpl-{now}"), String::new(), now, include_usage)
}

impl Translator {
    fn translate(&mut self, name: Option<&str>, data: &str) -> Vec<Bytes> {
        match self {
            Self::ToOpenAi(translator) => serde_json::from_str::<Value>(data)
                .map(|data| translator.translate(name, &data))
                .unwrap_or_default(),
            Self::ToAnthropic(translator) => translator.translate(data),
            Self::FromBedrock(translator) => serde_json::from_str::<Value>(data)
                .map(|data| translator.translate(name.unwrap_or_default(), &data))
                .unwrap_or_default(),
            Self::BedrockToAnthropic(from_bedrock, to_anthropic) => {
                let Ok(data) = serde_json::from_str::<Value>(data) else {
                    return Vec::new();
                };
                from_bedrock
                    .translate(name.unwrap_or_default(), &data)
                    .iter()
                    .flat_map(|frame| {
                        let text = String::from_utf8_lossy(frame);
                        let payload = text
                            .trim_end()
                            .strip_prefix("data: ")
                            .unwrap_or_default()
                            .to_owned();
                        to_anthropic.translate(&payload)
                    })
                    .collect()
            }
        }
    }
}
use crate::UsageReport;

/// How a provider frames its stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Dialect {
    /// `data: {chunk}` … `data: [DONE]`.
    OpenAi,
    /// `event: message_start` … `event: message_stop`.
    Anthropic,
    /// OpenAI Responses: `event: response.created` … `event: response.completed`.
    OpenAiResponses,
    /// Bedrock ConverseStream: AWS event-stream frames, `messageStart` … `metadata`.
    Bedrock,
}

/// How the provider frames its stream.
enum Framing {
    Sse(SseParser),
    EventStream(crate::aws::eventstream::Decoder),
}

impl Framing {
    /// Complete events in the bytes so far. Event-stream messages become events named by
    /// their `:event-type` (or `exception:<type>`), with the JSON payload as data.
    fn push(&mut self, chunk: &[u8]) -> Result<Vec<SseEvent>, ()> {
        match self {
            Self::Sse(parser) => parser.push(chunk).map_err(|_| ()),
            Self::EventStream(decoder) => {
                let messages = decoder.push(chunk).map_err(|_| ())?;
                Ok(messages
                    .into_iter()
                    .map(|message| {
                        let (name, data) = match message.header(":message-type") {
                            Some("exception") => (
                                format!("exception:{}", message.header(":exception-type").unwrap_or("unknown")),
                                String::from_utf8_lossy(&message.payload).into_owned(),
                            ),
                            // `error` frames carry their code and message in headers.
                            Some("error") => (
                                format!("exception:{}", message.header(":error-code").unwrap_or("unknown")),
                                serde_json::json!({"message": message.header(":error-message").unwrap_or("the provider's stream failed")}).to_string(),
                            ),
                            _ => (
                                message.header(":event-type").unwrap_or_default().to_owned(),
                                String::from_utf8_lossy(&message.payload).into_owned(),
                            ),
                        };
                        SseEvent { raw: Bytes::new(), name: Some(name), data }
                    })
                    .collect())
            }
        }
    }

    fn take_rest(&mut self) -> Bytes {
        match self {
            Self::Sse(parser) => parser.take_rest(),
            Self::EventStream(_) => Bytes::new(),
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamEnd {
    /// The provider sent its terminal event.
    Completed,
    /// The client went away first; the upstream request was cancelled.
    ClientCancelled,
    /// The provider's stream broke off, sent an error event, or sent an oversized event.
    UpstreamFailed,
    /// The provider went silent for longer than `egress.idle_timeout` before its end.
    TimedOut,
}

#[derive(Clone, Debug)]
pub struct StreamOutcome {
    pub end: StreamEnd,
    /// Usage known when the stream ended.
    pub usage: UsageReport,
    /// From sending the request to the first byte of the response body.
    pub first_byte: Option<Duration>,
    /// From sending the request to the end of the stream.
    pub elapsed: Duration,
}

type Upstream = Pin<Box<dyn Stream<Item = Result<Bytes, reqwest::Error>> + Send>>;

/// A streamed completion. No `Debug`, `Display` or `Clone`: only its bytes leave, to the client.
pub struct CompletionStream {
    upstream: Upstream,
    framing: Framing,
    dialect: Dialect,
    hide_usage_chunk: bool,
    usage: UsageReport,
    /// Rewrites the provider's events into the client's format, when they differ.
    translator: Option<Translator>,
    saw_terminal: bool,
    saw_error_event: bool,
    started: Instant,
    first_byte: Option<Duration>,
    report: Option<oneshot::Sender<StreamOutcome>>,
    done: bool,
    /// Bytes received from the provider so far, against `budget`.
    received: u64,
    budget: StreamBudget,
}

/// The most one stream may take from a provider, however it paces its events
/// (`egress.max_stream_bytes`, `egress.max_stream_duration`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamBudget {
    pub bytes: u64,
    pub duration: Duration,
}

impl StreamBudget {
    pub const UNLIMITED: Self = Self {
        bytes: u64::MAX,
        duration: Duration::MAX,
    };
}

static_assertions::assert_not_impl_any!(CompletionStream: std::fmt::Debug, std::fmt::Display, Clone);

impl CompletionStream {
    pub(crate) fn new(
        upstream: Upstream,
        dialect: Dialect,
        hide_usage_chunk: bool,
        started: Instant,
        translation: Option<Translation>,
    ) -> (Self, oneshot::Receiver<StreamOutcome>) {
        let translator = translation.map(|translation| match translation {
            Translation::AnthropicToOpenAi { include_usage } => Translator::ToOpenAi(
                AnthropicToOpenAi::new(include_usage, crate::translate::unix_now()),
            ),
            Translation::OpenAiToAnthropic => Translator::ToAnthropic(OpenAiToAnthropic::new()),
            Translation::BedrockToOpenAi { include_usage } => {
                Translator::FromBedrock(bedrock_to_openai(include_usage))
            }
            Translation::BedrockToAnthropic => {
                Translator::BedrockToAnthropic(bedrock_to_openai(true), OpenAiToAnthropic::new())
            }
        });
        let (report, outcome) = oneshot::channel();
        let stream = Self {
            upstream,
            framing: if dialect == Dialect::Bedrock {
                Framing::EventStream(Default::default())
            } else {
                Framing::Sse(SseParser::default())
            },
            dialect,
            hide_usage_chunk,
            usage: UsageReport::default(),
            translator,
            saw_terminal: false,
            saw_error_event: false,
            started,
            first_byte: None,
            report: Some(report),
            done: false,
            received: 0,
            budget: StreamBudget::UNLIMITED,
        };
        (stream, outcome)
    }

    /// Bounds the stream: past `budget` it ends as a provider failure.
    pub(crate) fn with_budget(mut self, budget: StreamBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Records the model called, for providers whose stream does not name it (Bedrock).
    pub(crate) fn with_model(mut self, model: &str) -> Self {
        if self.dialect == Dialect::Bedrock {
            self.usage.set_model(Some(model));
            if let Some(
                Translator::FromBedrock(translator) | Translator::BedrockToAnthropic(translator, _),
            ) = &mut self.translator
            {
                translator.set_model(model);
            }
        }
        self
    }

    fn finish(&mut self, end: StreamEnd) {
        self.done = true;
        if let Some(report) = self.report.take() {
            let _ = report.send(StreamOutcome {
                end,
                usage: self.usage.clone(),
                first_byte: self.first_byte,
                elapsed: self.started.elapsed(),
            });
        }
    }

    fn natural_end(&self) -> StreamEnd {
        if self.saw_terminal && !self.saw_error_event {
            StreamEnd::Completed
        } else {
            StreamEnd::UpstreamFailed
        }
    }

    /// Reads usage from complete events and returns the bytes to forward.
    fn forward(&mut self, events: Vec<SseEvent>) -> Bytes {
        let mut out = BytesMut::new();
        for event in events {
            let visible = self.inspect(&event);
            match self.translator.as_mut() {
                Some(translator) => {
                    for frame in translator.translate(event.name.as_deref(), &event.data) {
                        out.extend_from_slice(&frame);
                    }
                }
                None if visible => out.extend_from_slice(&event.raw),
                None => {}
            }
        }
        out.freeze()
    }

    /// Returns whether the event goes to the client.
    fn inspect(&mut self, event: &SseEvent) -> bool {
        match self.dialect {
            Dialect::OpenAi => self.inspect_openai(event),
            Dialect::Bedrock => self.inspect_bedrock(event),
            Dialect::OpenAiResponses => self.inspect_responses(event),
            Dialect::Anthropic => self.inspect_anthropic(event),
        }
    }

    /// An OpenAI chat chunk: usage (also Groq's `x_groq.usage`) and the model; a usage-only
    /// chunk the client did not ask for is hidden.
    fn inspect_openai(&mut self, event: &SseEvent) -> bool {
        if event.data.trim() == "[DONE]" {
            self.saw_terminal = true;
            return true;
        }
        let Ok(chunk) = serde_json::from_str::<Value>(&event.data) else {
            return true;
        };
        self.usage
            .set_model(chunk.get("model").and_then(Value::as_str));
        let usage = chunk.get("usage").filter(|usage| usage.is_object());
        if let Some(usage) = usage {
            self.usage.merge_openai(usage);
        }
        // Groq has reported usage under `x_groq.usage`.
        if let Some(usage) = chunk.get("x_groq").and_then(|groq| groq.get("usage")) {
            self.usage.merge_openai(usage);
        }
        let usage_only = usage.is_some()
            && chunk
                .get("choices")
                .and_then(Value::as_array)
                .is_some_and(Vec::is_empty);
        !(self.hide_usage_chunk && usage_only)
    }

    /// A Bedrock ConverseStream event: usage from `metadata`, which also ends the stream; the
    /// events are translated, never forwarded as they are.
    fn inspect_bedrock(&mut self, event: &SseEvent) -> bool {
        let name = event.name.as_deref().unwrap_or_default();
        if name.starts_with("exception:") {
            self.saw_error_event = true;
        } else if name == "metadata" {
            if let Ok(data) = serde_json::from_str::<Value>(&event.data) {
                if let Some(usage) = data.get("usage") {
                    self.usage.merge_bedrock(usage);
                }
            }
            self.saw_terminal = true;
        }
        false
    }

    /// A Responses API event: usage and model from the final `response.*` event.
    fn inspect_responses(&mut self, event: &SseEvent) -> bool {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            return true;
        };
        let kind = event
            .name
            .as_deref()
            .or_else(|| data.get("type").and_then(Value::as_str));
        if let Some("response.completed" | "response.incomplete" | "response.failed") = kind {
            let response = data.get("response").unwrap_or(&Value::Null);
            self.usage
                .set_model(response.get("model").and_then(Value::as_str));
            if let Some(usage) = response.get("usage") {
                self.usage.merge_responses(usage);
            }
            self.saw_terminal = true;
            self.saw_error_event |= kind == Some("response.failed");
        }
        if kind == Some("error") {
            self.saw_error_event = true;
        }
        true
    }

    /// An Anthropic Messages event: model and input usage from `message_start`, output usage
    /// from `message_delta`, the end from `message_stop`.
    fn inspect_anthropic(&mut self, event: &SseEvent) -> bool {
        let Ok(data) = serde_json::from_str::<Value>(&event.data) else {
            return true;
        };
        match event
            .name
            .as_deref()
            .or_else(|| data.get("type").and_then(Value::as_str))
        {
            Some("message_start") => {
                let message = data.get("message").unwrap_or(&Value::Null);
                self.usage
                    .set_model(message.get("model").and_then(Value::as_str));
                if let Some(usage) = message.get("usage") {
                    self.usage.merge_anthropic(usage);
                }
            }
            Some("message_delta") => {
                if let Some(usage) = data.get("usage") {
                    self.usage.merge_anthropic(usage);
                }
            }
            Some("message_stop") => self.saw_terminal = true,
            Some("error") => self.saw_error_event = true,
            _ => {}
        }
        true
    }
}

impl Stream for CompletionStream {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        loop {
            if self.done {
                return Poll::Ready(None);
            }
            match self.upstream.as_mut().poll_next(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(Some(Ok(chunk))) => {
                    if self.first_byte.is_none() {
                        self.first_byte = Some(self.started.elapsed());
                    }
                    self.received = self.received.saturating_add(chunk.len() as u64);
                    if self.received > self.budget.bytes
                        || self.started.elapsed() > self.budget.duration
                    {
                        // An endless trickle of events: ended here, settled as what it is.
                        self.finish(StreamEnd::UpstreamFailed);
                        return Poll::Ready(Some(Err(std::io::Error::other(
                            "the provider's stream passed egress.max_stream_bytes or egress.max_stream_duration",
                        ))));
                    }
                    match self.framing.push(&chunk) {
                        Ok(events) => {
                            let out = self.forward(events);
                            if !out.is_empty() {
                                return Poll::Ready(Some(Ok(out)));
                            }
                        }
                        Err(_) => {
                            self.finish(StreamEnd::UpstreamFailed);
                            return Poll::Ready(Some(Err(std::io::Error::other(
                                "the provider sent an oversized stream event",
                            ))));
                        }
                    }
                }
                Poll::Ready(Some(Err(err))) => {
                    let end = match self.natural_end() {
                        StreamEnd::UpstreamFailed if err.is_timeout() => StreamEnd::TimedOut,
                        end => end,
                    };
                    self.finish(end);
                    return Poll::Ready(Some(Err(std::io::Error::other(
                        "the provider's stream broke off",
                    ))));
                }
                Poll::Ready(None) => {
                    // An unfinished event at the end is passed on only when events are passed on
                    // as they are (not translated or filtered).
                    let rest = self.framing.take_rest();
                    let rest = if self.translator.is_some() || self.hide_usage_chunk {
                        Bytes::new()
                    } else {
                        rest
                    };
                    let end = self.natural_end();
                    self.finish(end);
                    if !rest.is_empty() {
                        return Poll::Ready(Some(Ok(rest)));
                    }
                    return Poll::Ready(None);
                }
            }
        }
    }
}

impl Drop for CompletionStream {
    fn drop(&mut self) {
        // Still reporting means the stream was dropped before its upstream ended. After the
        // terminal event the client may close at once (SDKs do): that call completed. Before
        // it, the client left.
        let end = if self.saw_terminal && !self.saw_error_event {
            StreamEnd::Completed
        } else {
            StreamEnd::ClientCancelled
        };
        self.finish(end);
    }
}

#[cfg(test)]
mod tests {
    use futures_util::{stream, StreamExt};

    use super::*;

    fn upstream(events: &[&'static str]) -> Upstream {
        let chunks: Vec<Result<Bytes, reqwest::Error>> = events
            .iter()
            .map(|event| Ok(Bytes::from_static(event.as_bytes())))
            .collect();
        // The provider keeps the connection open after its last event.
        Box::pin(stream::iter(chunks).chain(stream::pending()))
    }

    async fn outcome_after_dropping(events: &[&'static str], reads: usize) -> StreamOutcome {
        let (mut completion, outcome) = CompletionStream::new(
            upstream(events),
            Dialect::OpenAi,
            false,
            Instant::now(),
            None,
        );
        for _ in 0..reads {
            assert!(completion.next().await.is_some());
        }
        drop(completion);
        outcome.await.unwrap()
    }

    const CHUNK: &str = "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}],\"usage\":null}\n\n";
    const USAGE: &str =
        "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":1}}\n\n";

    // Regression: an SDK that closes right after `[DONE]` made a completed call look cancelled
    // (found by the SDK suite's concurrent test).
    #[tokio::test]
    async fn a_drop_after_the_terminal_event_is_a_completed_call() {
        let outcome = outcome_after_dropping(&[CHUNK, USAGE, "data: [DONE]\n\n"], 3).await;
        assert_eq!(outcome.end, StreamEnd::Completed);
        assert_eq!(outcome.usage.input_tokens, Some(3));
    }

    #[tokio::test]
    async fn a_drop_before_the_terminal_event_is_a_cancelled_call() {
        let outcome = outcome_after_dropping(&[CHUNK, CHUNK], 1).await;
        assert_eq!(outcome.end, StreamEnd::ClientCancelled);
    }
}
