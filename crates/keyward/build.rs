//! Records the git commit the binary is built from (`keyward --version`) as `BUILD_GIT_COMMIT`:
//! `GIT_COMMIT` from the environment when set (a container build without `.git`), else
//! `git rev-parse`, else `unknown`. (Not a `KEYWARD_` name: cargo passes it to the processes it
//! runs, and the configuration refuses unknown `KEYWARD_` variables.)

use std::process::Command;

fn main() {
    println!("cargo:rerun-if-env-changed=GIT_COMMIT");
    // Rebuild when the checked-out commit changes (HEAD, or the branch it points at).
    println!("cargo:rerun-if-changed=../../.git/HEAD");
    if let Ok(head) = std::fs::read_to_string("../../.git/HEAD") {
        if let Some(reference) = head.trim().strip_prefix("ref: ") {
            println!("cargo:rerun-if-changed=../../.git/{reference}");
        }
    }
    let commit = std::env::var("GIT_COMMIT")
        .ok()
        .filter(|commit| !commit.trim().is_empty())
        .or_else(|| {
            Command::new("git")
                .args(["rev-parse", "--short=12", "HEAD"])
                .output()
                .ok()
                .filter(|output| output.status.success())
                .and_then(|output| String::from_utf8(output.stdout).ok())
                .map(|text| text.trim().to_owned())
                .filter(|commit| !commit.is_empty())
        })
        .unwrap_or_else(|| "unknown".to_owned());
    println!("cargo:rustc-env=BUILD_GIT_COMMIT={commit}");
}
