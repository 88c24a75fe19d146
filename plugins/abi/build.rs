//! Records the compiler that builds this crate, so a plugin's descriptor can
//! say which toolchain produced it (`plugcheck_plugin.toolchain`). The ABI
//! crate is always compiled by the same rustc as the plugin that uses it.
use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("--version")
        .output()
        .ok()
        .and_then(|out| String::from_utf8(out.stdout).ok())
        .map(|text| short_version(&text))
        .unwrap_or_else(|| "rustc (unknown version)".into());
    println!("cargo:rustc-env=PLUGCHECK_ABI_RUSTC={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}

/// `rustc 1.95.0 (59807616e 2026-04-14)` → `rustc 1.95.0`.
fn short_version(text: &str) -> String {
    text.split_whitespace()
        .take(2)
        .collect::<Vec<_>>()
        .join(" ")
}
