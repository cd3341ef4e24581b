//! The `keyward` binary's library half: configuration, startup, the server application and the
//! CLI, kept here so integration tests can start the real application in-process.
//!
//! Invariants:
//! - Startup order: config → tracing → data directory → master keyring → store + migrations →
//!   key check against the database (fail fast) → bind.
//! - Secrets reach the CLI only on stdin, never as arguments, and are never printed.

// Functions stay short (clippy.toml: too-many-lines-threshold); a data table says why with
// an `#[expect]`.
#![warn(clippy::too_many_lines)]

pub mod app;
pub mod cli;
pub mod config;
mod custody;
pub mod log_buffer;
mod output;
mod secret_input;
pub mod startup;
pub mod telemetry;
pub mod traces;
pub mod webhook;
