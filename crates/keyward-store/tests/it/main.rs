//! Integration tests of the store against a real database file.

mod repositories;
