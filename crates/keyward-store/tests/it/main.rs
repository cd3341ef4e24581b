//! Integration tests of the store against a real database file.
#![expect(
    clippy::unwrap_used,
    reason = "a failed setup step should fail the test loudly"
)]

mod audit;
mod repositories;
mod roles;
