//! The crate graph is the architecture (STYLE §1): arrows point down only, and a new edge is a
//! design change. This test reads every crate's manifest and fails on an edge not listed here.

use std::collections::BTreeSet;
use std::path::PathBuf;

fn workspace_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

const ALLOWED: &[(&str, &[&str])] = &[
    (
        "keyward",
        &[
            "keyward-http",
            "keyward-domain",
            "keyward-router",
            "keyward-store",
            "keyward-custody",
            "keyward-vault",
            "keyward-core",
        ],
    ),
    ("keyward-http", &["keyward-domain", "keyward-core"]),
    (
        "keyward-domain",
        &[
            "keyward-router",
            "keyward-store",
            "keyward-custody",
            "keyward-vault",
            "keyward-core",
        ],
    ),
    ("keyward-router", &["keyward-core"]),
    // Clients of external key managers (AWS KMS / Secrets Manager, Vault, Azure Key Vault).
    ("keyward-custody", &["keyward-vault", "keyward-core"]),
    ("keyward-store", &["keyward-core"]),
    ("keyward-vault", &["keyward-core"]),
    ("keyward-core", &[]),
    ("keyward-mock-provider", &[]),
    // Test support only (a dev-dependency): a fresh SQLite or PostgreSQL database per test.
    ("keyward-test-db", &[]),
];

/// Third-party crates that belong to exactly one layer.
const EXCLUSIVE: &[(&str, &[&str])] = &[
    ("axum", &["keyward-http", "keyward-mock-provider"]),
    ("sqlx", &["keyward-store", "keyward-test-db"]),
    ("aes-gcm", &["keyward-vault"]),
];

fn normal_dependencies(manifest: &toml::Table) -> BTreeSet<String> {
    manifest
        .get("dependencies")
        .and_then(|deps| deps.as_table())
        .map(|deps| deps.keys().cloned().collect())
        .unwrap_or_default()
}

#[test]
fn crate_edges_point_down_and_heavy_crates_stay_in_their_layer() {
    let crates_dir = workspace_root().join("crates");
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&crates_dir).unwrap() {
        let dir = entry.unwrap().path();
        let text = std::fs::read_to_string(dir.join("Cargo.toml")).unwrap();
        let manifest: toml::Table = text.parse().unwrap();
        let name = manifest["package"]["name"].as_str().unwrap().to_owned();
        let folder = dir.file_name().unwrap().to_string_lossy().into_owned();
        assert_eq!(name, folder, "a crate's folder is its name");
        let allowed = ALLOWED
            .iter()
            .find(|(crate_name, _)| *crate_name == name)
            .unwrap_or_else(|| {
                panic!(
                    "crate {name} is not in the architecture table; add it with its allowed edges"
                )
            })
            .1;
        let deps = normal_dependencies(&manifest);
        for dep in deps.iter().filter(|dep| dep.starts_with("keyward")) {
            assert!(
                allowed.contains(&dep.as_str()),
                "{name} → {dep} is not an allowed edge"
            );
        }
        for (third_party, owners) in EXCLUSIVE {
            if deps.contains(*third_party) {
                assert!(
                    owners.contains(&name.as_str()),
                    "{name} must not depend on {third_party}"
                );
            }
        }
        seen.push(name);
    }
    assert!(seen.len() >= 6, "found only {seen:?}");
}
