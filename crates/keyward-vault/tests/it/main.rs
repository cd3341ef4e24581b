//! Integration tests of the vault.
#![expect(
    clippy::unwrap_used,
    reason = "a failed setup step should fail the test loudly"
)]

mod seal;
