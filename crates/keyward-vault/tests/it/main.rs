//! Integration tests of the vault.

mod seal;
