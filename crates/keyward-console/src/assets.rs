//! The console's files, compiled into the binary, each with its content type and an entity tag
//! derived from its bytes (so a browser revalidates cheaply and never runs a stale script).

use std::sync::LazyLock;

use sha2::{Digest, Sha256};

/// One file the console serves.
pub struct Asset {
    pub name: &'static str,
    pub content_type: &'static str,
    pub body: &'static [u8],
    /// A strong entity tag: the quoted first 16 bytes of the SHA-256 of `body`, in hex.
    pub etag: String,
}

const FILES: &[(&str, &str, &[u8])] = &[
    (
        "index.html",
        "text/html; charset=utf-8",
        include_bytes!("../assets/index.html"),
    ),
    (
        "console.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/console.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../assets/charts.js"),
    ),
    (
        "console.css",
        "text/css; charset=utf-8",
        include_bytes!("../assets/console.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../assets/favicon.svg"),
    ),
];

static ASSETS: LazyLock<Vec<Asset>> = LazyLock::new(|| {
    FILES
        .iter()
        .map(|(name, content_type, body)| Asset {
            name,
            content_type,
            body,
            etag: etag_of(body),
        })
        .collect()
});

fn etag_of(body: &[u8]) -> String {
    let digest = Sha256::digest(body);
    let hex: String = digest[..16]
        .iter()
        .map(|byte| format!("{byte:02x}"))
        .collect();
    format!("\"{hex}\"")
}

/// The asset named `name` (a file name under `/console/assets/`), if there is one.
pub fn asset(name: &str) -> Option<&'static Asset> {
    ASSETS.iter().find(|asset| asset.name == name)
}

/// The page every console path answers with; its script picks the view from the path.
pub fn page() -> &'static Asset {
    &ASSETS[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_file_is_served_with_its_type_and_a_stable_tag() {
        for (name, content_type, body) in FILES {
            let asset = asset(name).unwrap_or_else(|| unreachable!("{name} is listed"));
            assert_eq!(asset.content_type, *content_type);
            assert_eq!(asset.body, *body);
            assert_eq!(asset.etag, etag_of(body));
            assert_eq!(asset.etag.len(), 34);
        }
        assert!(asset("../Cargo.toml").is_none());
        assert_eq!(page().name, "index.html");
    }

    #[test]
    fn the_page_loads_only_its_own_files() {
        let html = String::from_utf8_lossy(page().body);
        assert!(!html.contains("http://") && !html.contains("https://"));
        assert!(
            !html.contains("<script>"),
            "inline script is refused by the CSP"
        );
        assert!(
            !html.contains(" style="),
            "inline style is refused by the CSP"
        );
        for script in ["console.js", "charts.js"] {
            assert!(html.contains(&format!("/console/assets/{script}")));
        }
    }

    #[test]
    fn scripts_never_write_markup_from_data() {
        for name in ["console.js", "charts.js"] {
            let script = String::from_utf8_lossy(
                asset(name)
                    .unwrap_or_else(|| unreachable!("{name} is listed"))
                    .body,
            );
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
                "eval(",
            ] {
                assert!(!script.contains(sink), "{name} uses {sink}");
            }
        }
    }
}
