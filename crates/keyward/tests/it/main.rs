//! End-to-end tests of the `keyward` binary: the real application in-process (admin API,
//! isolation, canaries) and the real executable (CLI, startup, shutdown), plus the repository's
//! mechanical rules (crate edges, module docs).
#![expect(
    clippy::unwrap_used,
    clippy::panic,
    reason = "a failed setup step should fail the test loudly"
)]
#![expect(
    clippy::disallowed_methods,
    reason = "tests drive the server with a plain HTTP client and spawn tasks directly"
)]

mod admin_api;
mod architecture;
mod canary;
mod caps;
mod cli;
mod conformance;
mod connectors;
mod console;
mod custody;
mod docs;
mod fake_azure;
mod harness;
mod inference;
mod isolation;
mod knowledge;
mod ledger;
mod reconcile;
mod replica_agreement;
mod replicas;
mod rotation;
mod slow_clients;
mod tidy;
mod traces;
