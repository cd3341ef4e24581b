//! Conventions as tests: every Rust file starts with a `//!` module doc; no test is skipped or
//! expected to panic.

use std::path::{Path, PathBuf};

/// Every `.rs` file below `dir`, `target` folders left out.
pub(crate) fn rust_files(dir: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            if path.file_name().is_some_and(|name| name != "target") {
                rust_files(&path, found);
            }
        } else if path.extension().is_some_and(|ext| ext == "rs") {
            found.push(path);
        }
    }
}

#[test]
fn every_rust_file_states_its_purpose_and_no_test_is_skipped() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut files = Vec::new();
    rust_files(&root.join("crates"), &mut files);
    assert!(files.len() > 20);
    let ignore = ["#[", "ignore]"].concat();
    let should_panic = ["#[", "should_panic"].concat();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        assert!(
            text.starts_with("//!"),
            "{} must start with a //! module doc",
            file.display()
        );
        assert!(!text.contains(&ignore), "{} skips a test", file.display());
        assert!(
            !text.contains(&should_panic),
            "{} expects a panic",
            file.display()
        );
    }
}
