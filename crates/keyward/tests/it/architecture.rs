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
    (
        "keyward-http",
        &["keyward-domain", "keyward-console", "keyward-core"],
    ),
    (
        "keyward-domain",
        &[
            "keyward-router",
            "keyward-store",
            "keyward-custody",
            "keyward-knowledge",
            "keyward-connectors",
            "keyward-vault",
            "keyward-core",
        ],
    ),
    ("keyward-router", &["keyward-core"]),
    // The web console's page, script and style (compiled in), cookies, CSRF tokens, security
    // headers and the sign-in throttle. Presentation only: what it shows comes from the admin
    // API, so it depends on no Keyward crate.
    ("keyward-console", &[]),
    // Chat connectors: JWT verification (jsonwebtoken) and the platforms' keys and messages.
    ("keyward-connectors", &["keyward-core"]),
    // Knowledge bases: chunking (text-splitter, tiktoken), sealed layouts, the vector index.
    // Pure computation: the domain stores, seals and embeds.
    ("keyward-knowledge", &["keyward-core"]),
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
    ("hyper", &["keyward-http"]),
    ("sqlx", &["keyward-store", "keyward-test-db"]),
    ("aes-gcm", &["keyward-vault"]),
    ("text-splitter", &["keyward-knowledge"]),
    ("tiktoken-rs", &["keyward-knowledge"]),
    ("jsonwebtoken", &["keyward-connectors"]),
    // Trace export is the binary's: the domain and HTTP layers only make `tracing` spans.
    ("opentelemetry", &["keyward"]),
    ("opentelemetry_sdk", &["keyward"]),
    ("opentelemetry-otlp", &["keyward"]),
    ("tracing-opentelemetry", &["keyward"]),
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

/// The only items a crate re-exports from a lower Keyward crate: a facade reached through a
/// side door (a whole crate re-exported, a glob) would let an upper layer skip the rules of
/// the one in between. A new entry is a design change.
const REEXPORTS: &[(&str, &str)] = &[
    // What `keyward-http` hands `Keyward::infer`: the body stays a router type.
    ("keyward-domain", "keyward_router::ClientHeaders"),
    ("keyward-domain", "keyward_router::PromptBody"),
    ("keyward-domain", "keyward_router::Surface"),
    // Read-only records the admin API and the CLI render.
    ("keyward-domain", "keyward_store::AuditRecord"),
    ("keyward-domain", "keyward_store::BudgetRecord"),
    ("keyward-domain", "keyward_store::CallFilter"),
    ("keyward-domain", "keyward_store::CallRecord"),
    ("keyward-domain", "keyward_store::CallStatus"),
    ("keyward-domain", "keyward_store::ConnectorRecord"),
    ("keyward-domain", "keyward_store::CredentialRecord"),
    ("keyward-domain", "keyward_store::CredentialStatus"),
    ("keyward-domain", "keyward_store::DepartmentRecord"),
    ("keyward-domain", "keyward_store::Page"),
    ("keyward-domain", "keyward_store::PageRequest"),
    ("keyward-domain", "keyward_store::PlatformKeyRecord"),
    ("keyward-domain", "keyward_store::RewrapJob"),
    ("keyward-domain", "keyward_store::RewrapState"),
    ("keyward-domain", "keyward_store::Role"),
    ("keyward-domain", "keyward_store::RouteRecord"),
    ("keyward-domain", "keyward_store::TenantPriceRecord"),
    ("keyward-domain", "keyward_store::TenantRecord"),
    // What `keyward-http` needs to read a document upload and answer a search.
    ("keyward-domain", "keyward_knowledge::document::decode"),
    (
        "keyward-domain",
        "keyward_knowledge::document::kind_of_upload",
    ),
    ("keyward-domain", "keyward_knowledge::ContentKind"),
    ("keyward-domain", "keyward_knowledge::DocumentError"),
    ("keyward-domain", "keyward_knowledge::SearchAnswer"),
    // SigV4 lives in core (the custody clients sign too); the router names it as its own.
    ("keyward-router", "keyward_core::sigv4"),
];

/// Every `pub use keyward_…` statement in `text`, flattened to `crate::path::Item` strings; a
/// whole crate (`pub use keyward_x as y`) or a glob comes out as `keyward_x::*`.
fn keyward_reexports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("pub use keyward_") {
        let statement = &rest[start + "pub use ".len()..];
        let end = statement.find(';').unwrap_or(statement.len());
        let statement: String = statement[..end]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ");
        let crate_end = statement
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(statement.len());
        let (krate, tree) = statement.split_at(crate_end);
        match tree.strip_prefix("::") {
            Some(tree) => flatten_use_tree(tree, krate, &mut found),
            None => found.push(format!("{krate}::*")),
        }
        rest = &rest[start + 1..];
    }
    found
}

fn flatten_use_tree(tree: &str, prefix: &str, out: &mut Vec<String>) {
    let tree = tree.trim();
    if tree.is_empty() || tree == "self" {
        return out.push(prefix.to_owned());
    }
    if let Some(inner) = tree
        .strip_prefix('{')
        .and_then(|tree| tree.strip_suffix('}'))
    {
        let mut depth = 0;
        let mut part_start = 0;
        for (index, c) in inner.char_indices() {
            match c {
                '{' => depth += 1,
                '}' => depth -= 1,
                ',' if depth == 0 => {
                    flatten_use_tree(&inner[part_start..index], prefix, out);
                    part_start = index + 1;
                }
                _ => {}
            }
        }
        if !inner[part_start..].trim().is_empty() {
            flatten_use_tree(&inner[part_start..], prefix, out);
        }
        return;
    }
    match tree.find("::") {
        Some(split) => flatten_use_tree(
            &tree[split + 2..],
            &format!("{prefix}::{}", &tree[..split]),
            out,
        ),
        // `Item as Alias` is re-exported under another name, but it is still `Item`.
        None => {
            let item = tree.split(" as ").next().unwrap_or(tree).trim();
            out.push(format!("{prefix}::{item}"));
        }
    }
}

#[test]
fn no_crate_reexports_a_lower_crate_beyond_the_listed_items() {
    let mut unlisted = Vec::new();
    for entry in std::fs::read_dir(workspace_root().join("crates")).unwrap() {
        let dir = entry.unwrap().path();
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let mut files = Vec::new();
        crate::tidy::rust_files(&dir.join("src"), &mut files);
        for file in files {
            let text = std::fs::read_to_string(&file).unwrap();
            for item in keyward_reexports(&text) {
                if !REEXPORTS.contains(&(name.as_str(), item.as_str())) {
                    unlisted.push(format!("{name}: pub use {item} ({})", file.display()));
                }
            }
        }
    }
    assert!(
        unlisted.is_empty(),
        "re-exports of lower crates not in REEXPORTS (narrow them, or list them as a design change): {unlisted:#?}"
    );
}

#[test]
fn the_reexport_reader_sees_whole_crates_globs_and_nested_groups() {
    let text = "pub use keyward_router as router;\npub use keyward_store::{A, b::{C, D as E}};\n\
                pub use keyward_core::*;\npub(crate) use keyward_vault::Hidden;";
    assert_eq!(
        keyward_reexports(text),
        [
            "keyward_router::*",
            "keyward_store::A",
            "keyward_store::b::C",
            "keyward_store::b::D",
            "keyward_core::*",
        ]
    );
}
