//! Logging setup: structured JSON (or text) lines with the request id from the enclosing span.
//! What is logged is structural metadata only; bodies and secrets are kept out by their types
//! (no `Debug`/`Display` that could show them), not by filters.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;
use tracing_subscriber::{Layer, Registry};

use crate::config::LogFormat;

/// A layer of the global subscriber.
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync>;

/// Installs the global subscriber: log lines at `level`, and `traces` (the OTLP layer, fed
/// every span — not events — at `info` and above, and Keyward's own at any level, whatever the
/// log level) when exporting. Returns `false` if
/// one was already installed (tests).
pub fn init(
    level: LevelFilter,
    format: LogFormat,
    writer: BoxMakeWriter,
    traces: Option<BoxedLayer>,
) -> bool {
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(writer)
        .with_target(true);
    let logs: BoxedLayer = match format {
        LogFormat::Json => logs
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .with_filter(level)
            .boxed(),
        LogFormat::Text => logs.with_ansi(false).with_filter(level).boxed(),
    };
    let mut layers = vec![logs];
    if let Some(traces) = traces {
        // Spans only: log lines stay logs (copying each into its span as an event would cost
        // on every line and duplicate what the log already holds).
        // Keyward's own spans at any level (the call spans are `TRACE`, so that without
        // export they are never created), others' at `info` and above.
        let spans_only = tracing_subscriber::filter::filter_fn(|metadata| {
            metadata.is_span()
                && (*metadata.level() <= tracing::Level::INFO
                    || metadata.target().starts_with("keyward"))
        });
        layers.push(traces.with_filter(spans_only).boxed());
    }
    tracing_subscriber::registry()
        .with(layers)
        .try_init()
        .is_ok()
}

/// Replaces the standard panic message (printed to stderr) with one error event through the
/// logger: the thread's name and the source location, so a thread that dies (the ledger
/// writer, a request task) is seen where the operator looks. The message itself is logged only
/// when it is a literal from the source: a formatted one may quote whatever the thread held (a
/// slicing panic quotes the string, `Result::expect` the error), and no body or secret may
/// reach the logs.
pub fn log_panics() {
    std::panic::set_hook(Box::new(|panic| {
        let thread = std::thread::current();
        let thread = thread.name().unwrap_or("unnamed");
        let location = panic
            .location()
            .map(|location| format!("{}:{}", location.file(), location.line()));
        let panic_message = panic
            .payload()
            .downcast_ref::<&'static str>()
            .copied()
            .unwrap_or("[not logged: it may quote data]");
        tracing::error!(
            thread,
            location = location.as_deref().unwrap_or("unknown"),
            panic_message,
            "a thread panicked: this is a bug in Keyward, please report it with this line"
        );
    }));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log_buffer::tests::Captured;

    /// Runs `body` on a thread named `name` whose log events go to the returned text.
    fn log_of_thread(name: &str, body: impl FnOnce() + Send + 'static) -> String {
        let captured = Captured::default();
        let writer = captured.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let subscriber = tracing_subscriber::fmt()
                    .json()
                    .with_writer(move || writer.clone())
                    .finish();
                let _default = tracing::subscriber::set_default(subscriber);
                body();
            })
            .unwrap();
        assert!(thread.join().is_err(), "the thread was to panic");
        captured.text()
    }

    #[test]
    fn a_panic_is_logged_with_its_thread_and_place_but_never_a_formatted_message() {
        let previous = std::panic::take_hook();
        log_panics();
        let canary = "sk-canary-panic-7f3a";
        let formatted = log_of_thread("keyward-canary", move || {
            let held = format!("{canary} held by the thread");
            panic!("could not parse {held}");
        });
        let literal = log_of_thread("keyward-literal", || panic!("a literal message"));
        std::panic::set_hook(previous);

        assert!(formatted.contains("a thread panicked"), "{formatted}");
        assert!(
            formatted.contains("\"thread\":\"keyward-canary\""),
            "{formatted}"
        );
        assert!(formatted.contains("telemetry.rs:"), "{formatted}");
        assert!(formatted.contains("\"level\":\"ERROR\""), "{formatted}");
        assert!(!formatted.contains(canary), "{formatted}");
        assert!(
            literal.contains("\"panic_message\":\"a literal message\""),
            "{literal}"
        );
        // One `message` key per line: log pipelines drop or rewrite lines with two.
        assert_eq!(literal.matches("\"message\":").count(), 1, "{literal}");
    }
}
