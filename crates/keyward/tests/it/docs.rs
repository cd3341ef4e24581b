//! Generated references stay current: the test rewrites the file and fails when it was stale,
//! so the fix is to commit what it wrote.

use std::path::PathBuf;

fn ensure_file_contents(relative: &str, expected: &str) {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(relative);
    let current = std::fs::read_to_string(&path).unwrap_or_default();
    if current != expected {
        std::fs::write(&path, expected).unwrap();
        panic!("{relative} was stale and has been regenerated; commit it");
    }
}

#[test]
fn configuration_reference_is_current() {
    ensure_file_contents(
        "docs/configuration.md",
        &keyward::config::reference_markdown(),
    );
}

#[test]
fn openapi_document_is_current() {
    ensure_file_contents(
        "docs/openapi.json",
        &format!("{}\n", keyward_http::openapi_json()),
    );
}

/// Every series `/metrics` exposes is documented in docs/operations.md.
#[tokio::test]
async fn every_metric_is_documented() {
    let app = crate::harness::TestApp::spawn().await;
    let scrape = app.metrics_text().await;
    let documented = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../docs/operations.md"),
    )
    .unwrap();
    let names: Vec<&str> = scrape
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_whitespace().next())
        .collect();
    assert!(names.len() > 20, "{scrape}");
    for name in names {
        assert!(
            documented.contains(&format!("`{name}`")),
            "{name} is not in docs/operations.md"
        );
    }
}
