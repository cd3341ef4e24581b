//! Logging setup: structured JSON (or text) lines with the request id from the enclosing span.
//! What is logged is structural metadata only; bodies and secrets are kept out by their types
//! (no `Debug`/`Display` that could show them), not by filters.

use tracing::level_filters::LevelFilter;
use tracing_subscriber::fmt::writer::BoxMakeWriter;

use crate::config::LogFormat;

/// Installs the global subscriber. Returns `false` if one was already installed (tests).
pub fn init(level: LevelFilter, format: LogFormat, writer: BoxMakeWriter) -> bool {
    let builder = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(writer)
        .with_target(true);
    let result = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
        LogFormat::Text => builder.with_ansi(false).try_init(),
    };
    result.is_ok()
}
