//! The Windows leg on a Linux host runs under Wine in the project's own
//! prefix (`target/wine-prefix`), through the harness's bridge
//! (`plugcheck::bridge::wine`), which `plugcheck check --platform windows`
//! uses too.

pub use plugcheck::bridge::wine::{Wine, windows_path};

use plugcheck::bridge::Missing;

/// Wine with the project's prefix, or what is missing.
pub fn find() -> Result<Wine, Missing> {
    Wine::find(crate::paths::target_dir().join("wine-prefix"))
}
