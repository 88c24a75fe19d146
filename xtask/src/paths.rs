//! Where the workspace is and where its builds go: what every task asks,
//! kept out of `main.rs` so that the tasks depend on a leaf, not on the
//! file that dispatches to them.

use std::path::{Path, PathBuf};

/// Where builds and reports go: `$CARGO_TARGET_DIR` when set (the Linux
/// leg in WSL2 builds on the Linux filesystem), else `target/`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if Path::new(&dir).is_absolute() => PathBuf::from(dir),
        Some(dir) => project_root().join(dir),
        None => project_root().join("target"),
    }
}

/// The workspace root (xtask's parent directory).
pub fn project_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_owned()
}
